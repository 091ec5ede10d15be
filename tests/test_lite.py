"""Tests of the TFLite rewrite (tf_enet.lite): same function, other ops."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import tf_enet
from tf_enet import lite
from tf_enet.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D
from tf_enet.lite import rewrite


def tied_values(shape, seed):
    """Few distinct values, so most 2x2 windows hold tied maxima."""
    return np.random.RandomState(seed).randint(0, 3, shape).astype("float32")


def near_ties(shape, seed):
    """Window values one float32 step apart, at magnitudes from 1e-5 to 1e4."""
    rng = np.random.RandomState(seed)
    base = 10.0 ** rng.randint(-5, 5, shape) * rng.choice([-1, 1], shape)
    base = base[:, ::2, ::2].repeat(2, 1).repeat(2, 2)[:, : shape[1], : shape[2]]
    steps = rng.randint(0, 3, shape)
    values = base.astype("float32")
    for _ in range(2):
        values = np.where(steps > 0, np.nextafter(values, np.float32(np.inf)), values)
        steps = steps - 1
    return values.astype("float32")


def int8_steps(shape, seed):
    """Values on a grid of step 0.125, as int8 tensors hold: many ties."""
    return 0.125 * np.random.RandomState(seed).randint(-3, 3, shape).astype("float32")


@pytest.mark.parametrize(
    "make, resolution",
    [(tied_values, None), (near_ties, None), (tied_values, 1.0), (int8_steps, 0.125)],
)
@pytest.mark.parametrize("shape", [(2, 8, 12, 3), (1, 7, 9, 5), (3, 6, 10, 16)])
def test_window_pooling_matches_argmax_pooling(shape, make, resolution):
    inputs = make(shape, seed=shape[-1])
    values = (
        np.random.RandomState(1)
        .normal(size=(shape[0], shape[1] // 2, shape[2] // 2, shape[3]))
        .astype("float32")
    )
    pooled, argmax = MaxPoolingWithArgmax2D()(inputs)
    window_pooled, mask = lite.WindowMaxPooling2D(resolution)(inputs)
    np.testing.assert_array_equal(window_pooled, pooled)
    # Exactly one marked position per window, with a 0/1 mask.
    assert set(np.unique(mask)) <= {0.0, 1.0}
    per_window = tf.reduce_sum(tf.reshape(mask, [*mask.shape[:3], 4, shape[3]]), axis=3)
    np.testing.assert_array_equal(per_window, 1)
    np.testing.assert_array_equal(
        lite.WindowUnpooling2D()([values, mask, inputs]),
        MaxUnpooling2D()([values, argmax, inputs]),
    )
    if shape[1] % 2 == 0 and shape[2] % 2 == 0:  # else the reference is needed
        np.testing.assert_array_equal(
            lite.WindowUnpooling2D()([values, mask]),
            MaxUnpooling2D()([values, argmax]),
        )


@pytest.mark.parametrize("low, high", [(-0.3, 0.9), (-0.5, 2.5)])
def test_depthwise_prelu_matches_prelu(low, high):
    # Slopes all <= 1 use one depthwise convolution, others two.
    channels = 6
    alpha = np.linspace(low, high, channels).astype("float32")
    prelu = keras.layers.PReLU(shared_axes=[1, 2])
    x = np.random.RandomState(0).normal(0, 3, (2, 5, 7, channels)).astype("float32")
    prelu.build(x.shape)
    prelu.set_weights([alpha.reshape(1, 1, channels)])
    np.testing.assert_allclose(lite.DepthwisePReLU(prelu.get_weights()[0])(x), prelu(x), atol=1e-5)


def test_depthwise_prelu_refuses_slopes_per_pixel():
    with pytest.raises(ValueError, match="one slope per channel"):
        lite.DepthwisePReLU(np.zeros((4, 5, 3), np.float32))


@pytest.mark.parametrize("int8", [False, True])
def test_tflite_friendly_enet_computes_the_same_function(int8):
    keras.utils.set_random_seed(0)
    model = tf_enet.build_enet(4, stage_two_repeat=1)
    for weight in model.weights:
        if "alpha" in weight.path:  # trained-looking slopes, not all 0.25
            weight.assign(np.random.RandomState(0).uniform(-0.2, 0.4, weight.shape))
    # Trained-looking statistics where int8 folds the batch norm away.
    rng = np.random.RandomState(3)
    for weight in model.get_layer("initial_block_bn").weights:
        low = 0.5 if "variance" in weight.path or "gamma" in weight.path else -1.0
        weight.assign(rng.uniform(low, 2.0, weight.shape))
    calibration = np.random.RandomState(2).uniform(0, 255, (3, 1, 37, 53, 3))
    # ranges="minmax" leaves every int8 range to TFLite: the same function.
    rewritten = lite.tflite_friendly(
        model,
        int8=int8,
        ranges="minmax",
        representative=lambda: ([image.astype("float32")] for image in calibration),
    )
    kinds = {type(layer) for layer in rewritten.layers}
    assert MaxPoolingWithArgmax2D not in kinds and MaxUnpooling2D not in kinds
    assert (keras.layers.Normalization in kinds) is not int8
    assert (keras.layers.PReLU in kinds) is not int8
    assert (lite.PooledChannelAffine in kinds) is int8
    pools = [layer for layer in rewritten.layers if isinstance(layer, lite.WindowMaxPooling2D)]
    assert all((pool.resolution is not None) is int8 for pool in pools)
    for pool in pools:
        if int8:
            # Float inputs differ by less than an int8 step, which the int8
            # mask need not resolve; at a float32 resolution it is exact.
            pool.resolution = 1e-20
    # 37x53 is not a multiple of 8 (padding inside the model).
    x = np.random.RandomState(1).uniform(0, 255, (2, 37, 53, 3)).astype("float32")
    np.testing.assert_allclose(rewritten(x, training=False), model(x, training=False), atol=1e-3)


def transposed_conv_reference(x, kernel, bias, strides, padding):
    """A transposed convolution by its definition, in numpy.

    Input pixel `i` adds `x[i] @ kernel[t].T` to output pixel
    `strides * i + t - pad` for every kernel tap `t`; "same" crops the
    scattered result to `strides` times the input's size, starting at
    `pad = (k - strides) // 2` (TensorFlow's split of the padding).
    """
    batch, height, width, _ = x.shape
    size, _, filters, _ = kernel.shape
    full = np.zeros((batch, (height - 1) * strides + size, (width - 1) * strides + size, filters))
    for i in range(height):
        for j in range(width):
            for ty in range(size):
                for tx in range(size):
                    full[:, strides * i + ty, strides * j + tx] += x[:, i, j] @ kernel[ty, tx].T
    if padding == "same":
        pad = max(size - strides, 0) // 2
        full = full[:, pad : pad + strides * height, pad : pad + strides * width]
    return full + (0.0 if bias is None else bias)


@pytest.mark.parametrize(
    "size, strides, padding",
    [
        (2, 2, "same"),
        (2, 2, "valid"),
        (3, 3, "same"),
        (3, 2, "same"),
        (4, 2, "same"),
        (5, 2, "same"),
    ],
)
def test_depth_to_space_conv_matches_transposed_conv(size, strides, padding):
    # (3, 2): ENet's upsampling bottlenecks, overlapping 3x3 windows.
    transposed = keras.layers.Conv2DTranspose(5, size, strides=strides, padding=padding)
    x = np.random.RandomState(0).normal(size=(2, 3, 4, 6)).astype("float32")
    transposed.build(x.shape)
    rng = np.random.RandomState(1)
    transposed.set_weights([rng.normal(size=w.shape) for w in transposed.get_weights()])
    rewritten = lite.DepthToSpaceConv2D.from_transposed(transposed)
    assert rewritten.name == transposed.name
    expected = transposed(x)
    assert expected.shape == (2, 3 * strides, 4 * strides, 5)
    np.testing.assert_allclose(rewritten(x), expected, atol=1e-4)
    reference = transposed_conv_reference(x, *transposed.get_weights(), strides, padding)
    np.testing.assert_allclose(rewritten(x), reference, atol=1e-4)


def test_depth_to_space_conv_folds_a_following_batch_norm_and_relu():
    transposed = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same", use_bias=False)
    bn = keras.layers.BatchNormalization(epsilon=1e-3)
    x = np.random.RandomState(0).normal(size=(2, 5, 3, 6)).astype("float32")
    transposed.build(x.shape)
    bn.build((None, None, None, 4))
    rng = np.random.RandomState(2)
    transposed.set_weights([rng.normal(size=w.shape) for w in transposed.get_weights()])
    gamma, beta, mean = (rng.normal(size=4) for _ in range(3))
    variance = rng.uniform(0.5, 2.0, 4)
    bn.set_weights([gamma, beta, mean, variance])
    rewritten = lite.DepthToSpaceConv2D.from_transposed(transposed, bn, relu=True)
    # Batch norm at inference by its formula, then the ReLU.
    normalized = (transposed(x).numpy() - mean) / np.sqrt(variance + 1e-3) * gamma + beta
    np.testing.assert_allclose(rewritten(x), np.maximum(normalized, 0.0), atol=1e-4)
    # An activation of its own comes before the batch norm: no folding.
    activated = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu")
    activated.build(x.shape)
    assert lite.DepthToSpaceConv2D.from_transposed(activated, bn) is None


def test_depth_to_space_conv_refuses_other_transposed_convolutions():
    # "valid" with windows larger than the strides grows the output by
    # more than the strides.
    grown = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="valid")
    padded = keras.layers.Conv2DTranspose(4, 2, strides=2, output_padding=1)
    uneven = keras.layers.Conv2DTranspose(4, 2, strides=(2, 1), padding="same")
    dilated = keras.layers.Conv2DTranspose(4, 3, dilation_rate=2, padding="same")
    for layer in (grown, padded, uneven, dilated):
        assert lite.DepthToSpaceConv2D.from_transposed(layer) is None
    # depth_to_space needs a block of at least 2; a stride-1 one stays.
    assert lite.DepthToSpaceConv2D.from_transposed(keras.layers.Conv2DTranspose(4, 1)) is None
    assert lite.DepthToSpaceConv2D.from_transposed(keras.layers.Conv2D(4, 2, strides=2)) is None
    with pytest.raises(ValueError, match="square kernel"):
        lite.DepthToSpaceConv2D(np.zeros((2, 3, 4, 5), np.float32))
    with pytest.raises(ValueError, match="strides of at least 2"):
        lite.DepthToSpaceConv2D(np.zeros((3, 3, 4, 5), np.float32), strides=1)


def trained_looking_batch_norms(model, seed):
    """Random statistics in every batch norm (a new one is the identity)."""
    rng = np.random.RandomState(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.gamma.shape[0]
            layer.set_weights(
                [
                    rng.uniform(0.5, 2.0, channels),
                    rng.uniform(-1.0, 1.0, channels),
                    rng.uniform(-1.0, 1.0, channels),
                    rng.uniform(0.5, 2.0, channels),
                ]
            )


@pytest.mark.parametrize("shape", [(1, 37, 53), (2, 24, 40), (1, 9, 15)])
def test_tflite_friendly_transposed_convs_are_depth_to_space_with_the_same_logits(shape):
    keras.utils.set_random_seed(0)
    model = tf_enet.build_enet(4, stage_two_repeat=1)
    trained_looking_batch_norms(model, seed=5)
    fullconv = model.get_layer("fullconv")
    rng = np.random.RandomState(4)
    fullconv.set_weights([rng.normal(0, 0.5, w.shape) for w in fullconv.get_weights()])
    rewritten = lite.tflite_friendly(model)
    for name in ("fullconv", "bottleneck4_0_transposed_conv", "bottleneck5_0_transposed_conv"):
        assert isinstance(rewritten.get_layer(name), lite.DepthToSpaceConv2D), name
    # The decoder's batch norms and ReLUs after them are folded in.
    for name in ("bottleneck5_0_conv_bn", "bottleneck5_0_conv_activation"):
        assert isinstance(rewritten.get_layer(name), rewrite.Folded), name
    x = np.random.RandomState(1).uniform(0, 255, (*shape, 3)).astype("float32")
    logits = rewritten(x, training=False)
    assert logits.shape == (*shape, 4)
    np.testing.assert_allclose(logits, model(x, training=False), atol=1e-3)


def converted_ops(function, shape):
    """The op names of `function` converted to float32 TFLite at `shape`."""
    function = tf.function(function, input_signature=[tf.TensorSpec(shape, tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [function.get_concrete_function()], function
    )
    interpreter = Interpreter(model_content=converter.convert())
    return [op["op_name"] for op in interpreter._get_ops_details()]


def test_float_window_pooling_converts_to_few_tflite_ops():
    layer = lite.WindowMaxPooling2D()
    ops = converted_ops(lambda x: layer(x), (1, 8, 12, 4))
    # No even-size slice at a static even size; each step of the mask's
    # exact comparison is one MUL with its clip fused (no MINIMUM).
    assert "STRIDED_SLICE" not in ops and "MINIMUM" not in ops and "MAXIMUM" not in ops, ops
    assert ops.count("MUL") == 3 * 3 + 2, ops
    # An odd size still drops the last row and column.
    assert "STRIDED_SLICE" in converted_ops(lambda x: layer(x), (1, 9, 12, 4))


def test_int8_ranges_are_the_mean_of_each_images_extremes():
    keras.utils.set_random_seed(0)
    model = tf_enet.build_enet(4, stage_two_repeat=1)
    calibration = np.random.RandomState(2).uniform(0, 255, (3, 1, 37, 53, 3))
    calibration = calibration.astype("float32")
    rewritten = lite.tflite_friendly(
        model, int8=True, representative=lambda: ([x] for x in calibration)
    )
    ranged = {layer.name: layer for layer in rewritten.layers if isinstance(layer, lite.Int8Range)}
    kinds = (keras.layers.PReLU, keras.layers.Add, keras.layers.BatchNormalization)
    # Not the folded batch norm, nor those TFLite folds into the
    # transposed convolutions before them.
    unranged = {"initial_block_bn", "bottleneck4_0_conv_bn", "bottleneck5_0_conv_bn"}
    expected = {layer.name for layer in model.layers if isinstance(layer, kinds)} - unranged
    assert set(ranged) == expected
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in sorted(ranged)])
    per_image = [probe([x], training=False) for x in calibration]
    for i, name in enumerate(sorted(ranged)):
        low = np.mean([np.min(values[i]) for values in per_image])
        high = np.mean([np.max(values[i]) for values in per_image])
        assert ranged[name].minimum == pytest.approx(min(low, 0.0), rel=1e-5, abs=1e-6)
        assert ranged[name].maximum == pytest.approx(max(high, 0.0), rel=1e-5)
    # Pooling masks resolve a quarter step of the ranged pooling inputs
    # (initial_block_activation feeds bottleneck1_0's pooling).
    pool = rewritten.get_layer("bottleneck1_0_pool")
    source = ranged["initial_block_activation"]
    assert pool.resolution == pytest.approx((source.maximum - source.minimum) / 255 / 4)
    # In float the ranged copy clips and rounds to the int8 steps.
    clipped = lite.Int8Range(keras.layers.Identity(), -1.0, 1.0)(
        np.array([-3.0, 0.3, 2.0], np.float32)
    ).numpy()
    np.testing.assert_allclose(clipped[[0, 2]], [-1.0, 1.0], atol=2 / 255)
    assert clipped[1] != np.float32(0.3)
    assert abs(clipped[1] - 0.3) <= 1 / 255
    with pytest.raises(ValueError, match="ranges"):
        lite.tflite_friendly(model, int8=True, ranges="max", representative=lambda: iter([]))


def test_int8_mask_resolves_differences_of_its_resolution():
    # The maximum is exactly one resolution above the bottom-right value.
    inputs = np.array([[0.0, 0.5], [0.25, 0.375]], np.float32).reshape(1, 2, 2, 1)
    _, mask = lite.WindowMaxPooling2D(resolution=0.125)(inputs)
    np.testing.assert_array_equal(np.reshape(mask, [4]), [0, 1, 0, 0])
    with pytest.raises(ValueError, match="resolution"):
        lite.WindowMaxPooling2D(resolution=0.0)


def test_pooling_resolutions_are_a_quarter_of_the_int8_step():
    inputs = keras.Input((4, 4, 1))
    scaled = keras.layers.Rescaling(2.0, offset=-1.0)(inputs)
    pooled, argmax = MaxPoolingWithArgmax2D(name="pool")(scaled)
    model = keras.Model(inputs, MaxUnpooling2D()([pooled, argmax]))
    images = [np.full((1, 4, 4, 1), v, np.float32) for v in (0.0, 3.0)]
    # Pooling inputs span [-1, 5]: int8 step 6 / 255.
    rewritten = lite.tflite_friendly(
        model, int8=True, ranges="minmax", representative=lambda: ([x] for x in images)
    )
    assert rewritten.get_layer("pool").resolution == pytest.approx(6 / 255 / 4)
    with pytest.raises(ValueError, match="representative"):
        lite.tflite_friendly(model, int8=True)


def test_channel_affine_matches_normalization():
    mean, variance = [120.0, 110.0, 100.0], [3000.0, 2500.0, 0.0]  # 0: epsilon
    layer = keras.layers.Normalization(mean=mean, variance=variance)
    x = np.random.RandomState(0).uniform(0, 255, (2, 5, 7, 3)).astype("float32")
    expected = layer(x)
    affine = rewrite.affine_normalization(layer)
    np.testing.assert_allclose(affine(x), expected, rtol=1e-6, atol=1e-3)
    assert rewrite.affine_normalization(keras.layers.Normalization(axis=1)) is None


def int8_converted(function, shape, input_type):
    """`function` converted to full-integer int8 TFLite (float input if None)."""
    function = tf.function(function, input_signature=[tf.TensorSpec(shape, tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [function.get_concrete_function()], function
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    calibration = np.random.RandomState(0).uniform(0, 255, (4, *shape)).astype("float32")
    converter.representative_dataset = lambda: ([image] for image in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if input_type is not None:
        converter.inference_input_type = input_type
    converter.inference_output_type = tf.int8
    return converter.convert()


def test_uint8_input_computes_what_the_converters_uint8_input_does():
    shape = (1, 16, 16, 3)
    kernel = tf.constant(np.array([0.02, -0.01, 0.03], np.float32).reshape(1, 1, 3, 1))

    def normalize(x):
        return tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], "VALID") - 1.0

    rewritten = lite.uint8_input(int8_converted(normalize, shape, None))
    reference = int8_converted(normalize, shape, tf.uint8)
    # Every pixel value 0..255 in every channel.
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    pixels = np.concatenate([pixels, pixels[:, ::-1], pixels.transpose(0, 2, 1, 3)], axis=-1)
    outputs, details = [], []
    for content in (rewritten, reference):
        interpreter = Interpreter(model_content=content)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], pixels)
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
        details.append(detail)
        ops = [op["op_name"] for op in interpreter._get_ops_details()]
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert details[0]["dtype"] == details[1]["dtype"] == np.uint8
    assert details[0]["quantization"] == pytest.approx(details[1]["quantization"])
    # The converter's uint8 input: a QUANTIZE from uint8, which XNNPack
    # does not run; the rewrite's: DEQUANTIZE, then QUANTIZE from float32.
    assert "DEQUANTIZE" not in ops
    interpreter = Interpreter(model_content=rewritten)
    ops = [op["op_name"] for op in interpreter._get_ops_details()]
    assert ops[:2] == ["DEQUANTIZE", "QUANTIZE"], ops
    with pytest.raises(ValueError, match="one float32 input read only by a QUANTIZE"):
        lite.uint8_input(reference)


def test_rewritten_model_round_trips_through_its_config():
    keras.utils.set_random_seed(0)
    model = tf_enet.build_enet(4, stage_two_repeat=1)
    trained_looking_batch_norms(model, seed=6)
    calibration = np.random.RandomState(2).uniform(0, 255, (2, 1, 24, 40, 3)).astype("float32")
    rewritten = lite.tflite_friendly(
        model, int8=True, representative=lambda: ([x] for x in calibration)
    )
    wrapped = [layer.layer for layer in rewritten.layers if isinstance(layer, lite.Int8Range)]
    kinds = {type(layer) for layer in rewritten.layers + wrapped}
    # Every replacement layer is in the int8 copy (PReLUs inside their
    # ranges), so each one's config is used.
    assert {
        lite.WindowMaxPooling2D,
        lite.WindowUnpooling2D,
        lite.DepthToSpaceConv2D,
        lite.DepthwisePReLU,
        lite.ChannelAffine,
        lite.PooledChannelAffine,
        lite.Int8Range,
        rewrite.Folded,
    } <= kinds
    restored = keras.models.model_from_json(rewritten.to_json())
    restored.set_weights(rewritten.get_weights())
    assert [type(layer) for layer in restored.layers] == [type(layer) for layer in rewritten.layers]
    x = np.random.RandomState(1).uniform(0, 255, (1, 24, 40, 3)).astype("float32")
    np.testing.assert_array_equal(restored(x, training=False), rewritten(x, training=False))
