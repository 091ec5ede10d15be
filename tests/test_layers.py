"""Tests of the argmax pooling/unpooling and shape layers."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_enet.layers import (
    BatchNormalization,
    ChannelPadding,
    CropToReference,
    MaxPoolingWithArgmax2D,
    MaxUnpooling2D,
    PadToMultiple,
)


def reference_unpool(values, argmax, output_shape):
    """The classic unpooling: scatter each value into zeros at its argmax."""
    batch, height, width, channels = output_shape
    flat = tf.reshape(values, [batch, -1])
    argmax = tf.reshape(tf.cast(argmax, tf.int64), [batch, -1])
    batch_ids = tf.broadcast_to(tf.range(batch, dtype=tf.int64)[:, None], argmax.shape)
    indices = tf.stack([batch_ids, argmax], axis=-1)
    scattered = tf.scatter_nd(indices, flat, [batch, height * width * channels])
    return tf.reshape(scattered, output_shape).numpy()


@pytest.mark.parametrize("shape", [(2, 8, 12, 3), (3, 6, 10, 16), (1, 7, 9, 5)])
def test_pooling_matches_tf_max_pool_with_argmax(shape):
    x = np.random.RandomState(1).normal(size=shape).astype("float32")
    pooled, argmax = MaxPoolingWithArgmax2D()(x)
    ref_pooled, ref_argmax = tf.nn.max_pool_with_argmax(
        x, 2, 2, padding="VALID", include_batch_in_index=False
    )
    np.testing.assert_array_equal(pooled.numpy(), ref_pooled.numpy())
    np.testing.assert_array_equal(argmax.numpy(), ref_argmax.numpy())
    assert argmax.dtype == tf.int32


def test_pooling_ties_pick_first_position_in_row_major_order():
    # Window values [[1, 5], [5, 5]]: the maximum 5 first appears at (0, 1).
    x = np.array([[1.0, 5.0], [5.0, 5.0]], "float32").reshape(1, 2, 2, 1)
    _, argmax = MaxPoolingWithArgmax2D()(x)
    _, ref_argmax = tf.nn.max_pool_with_argmax(x, 2, 2, padding="VALID")
    assert argmax.numpy().item() == 1 == ref_argmax.numpy().item()


@pytest.mark.parametrize("shape", [(2, 8, 12, 3), (4, 16, 6, 8)])
def test_unpooling_matches_scatter_reference(shape):
    x = np.random.RandomState(2).normal(size=shape).astype("float32")
    pooled, argmax = MaxPoolingWithArgmax2D()(x)
    values = np.random.RandomState(3).normal(size=pooled.shape).astype("float32")
    unpooled = MaxUnpooling2D()([values, argmax]).numpy()
    np.testing.assert_array_equal(unpooled, reference_unpool(values, argmax, shape))


def test_unpooling_with_reference_restores_odd_size():
    shape = (2, 7, 9, 4)
    x = np.random.RandomState(4).normal(size=shape).astype("float32")
    pooled, argmax = MaxPoolingWithArgmax2D()(x)
    unpooled = MaxUnpooling2D()([pooled, argmax, x]).numpy()
    assert unpooled.shape == shape
    np.testing.assert_array_equal(unpooled, reference_unpool(pooled, argmax, shape))
    # Every pooled maximum is back where it came from.
    np.testing.assert_array_equal(np.sort(unpooled[unpooled != 0]), np.sort(pooled.numpy().ravel()))


def test_symbolic_shapes_static_and_dynamic():
    static = keras.Input(shape=(16, 24, 8), batch_size=2)
    pooled, argmax = MaxPoolingWithArgmax2D()(static)
    assert tuple(pooled.shape) == (2, 8, 12, 8)
    assert tuple(argmax.shape) == (2, 8, 12, 8)
    assert argmax.dtype == "int32"
    assert tuple(MaxUnpooling2D()([pooled, argmax]).shape) == (2, 16, 24, 8)

    dynamic = keras.Input(shape=(None, None, 8))
    pooled, argmax = MaxPoolingWithArgmax2D()(dynamic)
    assert tuple(pooled.shape) == (None, None, None, 8)
    unpooled = MaxUnpooling2D()([pooled, argmax, dynamic])
    assert tuple(unpooled.shape) == (None, None, None, 8)
    model = keras.Model(dynamic, unpooled)
    for size in [(6, 10), (5, 11)]:
        x = np.random.RandomState(5).normal(size=(3, *size, 8)).astype("float32")
        assert model(x).shape == (3, *size, 8)


def test_gradients_flow_to_the_maxima_only():
    x = tf.Variable(np.random.RandomState(6).normal(size=(2, 4, 6, 3)).astype("float32"))
    with tf.GradientTape() as tape:
        pooled, argmax = MaxPoolingWithArgmax2D()(x)
        unpooled = MaxUnpooling2D()([pooled * 3.0, argmax])
        loss = tf.reduce_sum(unpooled)
    grad = tape.gradient(loss, x).numpy()
    expected = np.zeros(x.shape, "float32").ravel()
    flat_argmax = argmax.numpy().reshape(2, -1)
    expected = expected.reshape(2, -1)
    for b in range(2):
        expected[b, flat_argmax[b]] = 3.0
    np.testing.assert_array_equal(grad, expected.reshape(x.shape))

    values = tf.Variable(pooled)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(MaxUnpooling2D()([values, argmax]) * 2.0)
    np.testing.assert_array_equal(tape.gradient(loss, values).numpy(), 2.0)


def test_xla_matches_eager():
    x = np.random.RandomState(7).normal(size=(2, 10, 14, 5)).astype("float32")
    pool, unpool = MaxPoolingWithArgmax2D(), MaxUnpooling2D()

    def round_trip(t):
        pooled, argmax = pool(t)
        return unpool([pooled, argmax]), argmax

    eager = round_trip(x)
    compiled = tf.function(round_trip, jit_compile=True)(x)
    for a, b in zip(eager, compiled):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize(
    "layer",
    [
        MaxPoolingWithArgmax2D(name="pool"),
        MaxUnpooling2D(name="unpool"),
        PadToMultiple(16, name="pad"),
        CropToReference(name="crop"),
        ChannelPadding(32, name="channels"),
        BatchNormalization(momentum=0.9, epsilon=1e-5, name="bn"),
    ],
)
def test_config_round_trip(layer):
    config = keras.saving.serialize_keras_object(layer)
    restored = keras.saving.deserialize_keras_object(config, safe_mode=True)
    assert type(restored) is type(layer)
    assert restored.get_config() == layer.get_config()


def test_pad_and_crop_restore_any_size():
    x = np.random.RandomState(8).normal(size=(2, 13, 21, 3)).astype("float32")
    padded = PadToMultiple(8)(x).numpy()
    assert padded.shape == (2, 16, 24, 3)
    np.testing.assert_array_equal(padded[:, :13, :21], x)
    assert not padded[:, 13:].any() and not padded[:, :, 21:].any()
    np.testing.assert_array_equal(CropToReference()([padded, x]).numpy(), x)
    assert PadToMultiple(8).compute_output_shape((None, 13, 16, 3)) == (None, 16, 16, 3)


def test_channel_padding_appends_zero_channels():
    x = np.random.RandomState(9).normal(size=(1, 2, 3, 5)).astype("float32")
    y = ChannelPadding(8)(x).numpy()
    np.testing.assert_array_equal(y[..., :5], x)
    assert y.shape == (1, 2, 3, 8) and not y[..., 5:].any()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: PadToMultiple(0), "multiple"),
        (lambda: ChannelPadding(-1), "channels"),
        (lambda: ChannelPadding(4)(np.zeros((1, 2, 2, 8), "float32")), "8 channels"),
        (lambda: MaxUnpooling2D()([np.zeros((1, 2, 2, 1), "float32")]), "argmax"),
    ],
)
def test_invalid_arguments_name_the_problem(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def _batch_norm_pair(channels, rank=4):
    """tf_enet's BatchNormalization and Keras's, with the same weights."""
    layers = [
        BatchNormalization(momentum=0.9, epsilon=1e-5),
        keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5),
    ]
    rng = np.random.RandomState(5)
    weights = [
        rng.uniform(0.5, 2.0, channels),  # gamma
        rng.normal(size=channels),  # beta
        rng.normal(size=channels),  # moving mean
        rng.uniform(0.5, 2.0, channels),  # moving variance
    ]
    for layer in layers:
        layer.build((None,) * (rank - 1) + (channels,))
        layer.set_weights([w.astype("float32") for w in weights])
    return layers


def _training_call(layer, x):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        # A loss that weighs every output differently.
        loss = tf.reduce_sum(y * tf.reshape(tf.range(tf.size(y), dtype=y.dtype), tf.shape(y)))
    gradients = tape.gradient(loss, [x, layer.gamma.value, layer.beta.value])
    return [y.numpy()] + [g.numpy() for g in gradients]


def test_fused_batch_norm_trains_as_keras_batch_norm():
    fused, reference = _batch_norm_pair(5)
    rng = np.random.RandomState(6)
    # 2 * 3 * 4 = 24 values per channel: the moving variance takes the
    # biased variance (/ 24), 4 % away from the unbiased one (/ 23).
    for _ in range(2):
        x = rng.normal(2.0, 3.0, (2, 3, 4, 5)).astype("float32")
        for got, expected in zip(_training_call(fused, x), _training_call(reference, x)):
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(fused.moving_mean.numpy(), reference.moving_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(
        fused.moving_variance.numpy(), reference.moving_variance.numpy(), rtol=1e-5
    )
    # Inference uses the moving statistics: Keras's own computation.
    fused.set_weights(reference.get_weights())
    x = rng.normal(size=(1, 3, 4, 5)).astype("float32")
    np.testing.assert_array_equal(fused(x, training=False), reference(x, training=False))


def _op_types(function, *args):
    return {
        op.type for op in tf.function(function).get_concrete_function(*args).graph.get_operations()
    }


def test_fused_batch_norm_runs_the_fused_kernel_only_in_training():
    fused, _ = _batch_norm_pair(4)
    spec = tf.TensorSpec((None, None, None, 4), tf.float32)
    assert "FusedBatchNormV3" in _op_types(lambda x: fused(x, training=True), spec)
    assert "FusedBatchNormV3" not in _op_types(lambda x: fused(x, training=False), spec)
    fused.trainable = False  # frozen layers normalise with the moving statistics
    assert "FusedBatchNormV3" not in _op_types(lambda x: fused(x, training=True), spec)


def test_fused_batch_norm_leaves_other_inputs_to_keras():
    fused, reference = _batch_norm_pair(3, rank=2)
    x = np.random.RandomState(7).normal(size=(6, 3)).astype("float32")  # rank 2
    np.testing.assert_allclose(fused(x, training=True), reference(x, training=True), rtol=1e-6)
    np.testing.assert_allclose(fused.moving_mean.numpy(), reference.moving_mean.numpy(), rtol=1e-6)


@pytest.mark.parametrize("size", [(13, 21), (16, 24)])
def test_shape_layers_at_a_size_known_when_traced_equal_the_dynamic_path(size):
    x = np.random.RandomState(9).normal(size=(2, *size, 3)).astype("float32")

    def pad_pool_unpool_crop(images):
        padded = PadToMultiple(8)(images)
        pooled, argmax = MaxPoolingWithArgmax2D()(padded)
        restored = MaxUnpooling2D()([pooled, argmax, padded])
        return CropToReference()([restored, images])

    static = tf.function(pad_pool_unpool_crop, input_signature=[tf.TensorSpec(x.shape)])
    dynamic = tf.function(
        pad_pool_unpool_crop, input_signature=[tf.TensorSpec((None, None, None, 3))]
    )
    np.testing.assert_array_equal(static(x), dynamic(x))
    assert static(x).shape == x.shape
    # Ops on the images themselves (4D), not on their shape vectors.
    ops = {
        op.type
        for op in static.get_concrete_function().graph.get_operations()
        if op.inputs and op.inputs[0].shape.rank == 4
    }
    if size == (16, 24):  # a multiple of 8: nothing to pad, slice or crop
        assert not ops & {"Pad", "PadV2", "StridedSlice"}
    else:
        assert ops & {"Pad", "PadV2"} and "StridedSlice" in ops
