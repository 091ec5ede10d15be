"""Tests of the ENet model builder."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import tf_enet


@pytest.fixture(scope="module")
def enet():
    return tf_enet.build_enet(12)


@pytest.fixture(scope="module")
def tiny_enet():
    """A `tf_enet.ENet` of one convolution: its `predict` loop, cheaply."""
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Conv2D(12, 3, padding="same", name="logits")(inputs)
    return tf_enet.ENet(inputs, outputs)


def images(batch, height, width, seed=0):
    rng = np.random.RandomState(seed)
    return rng.uniform(0, 255, (batch, height, width, 3)).astype("float32")


def test_parameter_count_is_the_papers(enet):
    # The paper reports 0.36 M parameters (Table 3).
    trainable = sum(int(np.prod(w.shape)) for w in enet.trainable_weights)
    assert trainable == 363_163


@pytest.mark.parametrize("size", [(360, 480), (64, 64), (37, 53), (9, 250)])
def test_output_matches_input_size(enet, size):
    logits = enet(images(2, *size), training=False)
    assert logits.shape == (2, *size, 12)
    assert np.isfinite(logits.numpy()).all()


def test_no_lambda_layers_and_no_bias_before_batch_norm(enet):
    layers = {layer.name: layer for layer in enet.layers}
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in layers.values())
    for name, layer in layers.items():
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
            assert layer.use_bias == (name == "fullconv"), name


def test_layers_follow_the_paper(enet):
    names = {layer.name for layer in enet.layers}
    expected = {
        "initial_block_conv",
        "bottleneck1_0_pool",
        "bottleneck1_4_add",
        "bottleneck2_0_pool",
        "bottleneck2_2_dilated_conv",
        "bottleneck2_3_asymmetric_conv_5x1",
        "bottleneck3_8_dilated_conv",
        "bottleneck4_0_unpool",
        "bottleneck5_0_unpool",
        "bottleneck5_1_add",
        "fullconv",
    }
    assert expected <= names
    assert not any(name.startswith("bottleneck3_0") for name in names)
    assert enet.get_layer("bottleneck3_8_dilated_conv").dilation_rate == (16, 16)
    assert enet.get_layer("initial_block_conv").filters == 13
    assert enet.get_layer("bottleneck1_1_dropout").rate == 0.01
    assert enet.get_layer("bottleneck2_1_dropout").rate == 0.1
    assert isinstance(enet.get_layer("bottleneck1_1_activation"), keras.layers.PReLU)
    assert isinstance(enet.get_layer("bottleneck4_1_activation"), keras.layers.ReLU)
    assert enet.get_layer("bottleneck1_1_activation").shared_axes == [1, 2]


def test_unpooling_uses_the_encoders_indices(enet):
    """The decoder's unpooling consumes the argmax of the matching pool."""
    unpool4 = enet.get_layer("bottleneck4_0_unpool")
    argmax_source = unpool4.input[1]._keras_history.operation
    assert argmax_source.name == "bottleneck2_0_pool"
    unpool5 = enet.get_layer("bottleneck5_0_unpool")
    assert unpool5.input[1]._keras_history.operation.name == "bottleneck1_0_pool"


def test_options_change_the_graph_and_keep_output_size():
    model = tf_enet.build_enet(
        5,
        num_initial_blocks=2,
        stage_two_repeat=3,
        skip_connections=True,
        encoder_activation="relu",
        decoder_activation="prelu",
        dropout=0.2,
    )
    names = {layer.name for layer in model.layers}
    assert {"initial_block_2_conv", "bottleneck3b_8_dilated_conv", "skip4", "skip5"} <= names
    assert model(images(1, 45, 61), training=False).shape == (1, 45, 61, 5)
    default = tf_enet.build_enet(5)
    assert model.count_params() > default.count_params()


@pytest.mark.parametrize(
    "options, argument",
    [
        ({"num_initial_blocks": 0}, "num_initial_blocks"),
        ({"stage_two_repeat": 1.5}, "stage_two_repeat"),
        ({"skip_connections": "yes"}, "skip_connections"),
        ({"encoder_activation": "gelu"}, "encoder_activation"),
        ({"dropout": 1.0}, "dropout"),
        ({"dilation": 3}, "dilation"),
    ],
)
def test_invalid_options_name_the_argument(options, argument):
    with pytest.raises(ValueError, match=argument):
        tf_enet.build_enet(12, **options)
    with pytest.raises(ValueError, match="num_classes"):
        tf_enet.build_enet(0)


def test_encoder_outputs_at_one_eighth_and_transfers_by_name():
    encoder = tf_enet.build_enet_encoder(12)
    assert encoder(images(1, 360, 480), training=False).shape == (1, 45, 60, 12)
    assert encoder(images(1, 37, 53), training=False).shape == (1, 5, 7, 12)
    for weight in encoder.weights:
        weight.assign(np.random.RandomState(1).normal(size=weight.shape))
    full = tf_enet.build_enet(12)
    copied = tf_enet.transfer_weights(encoder, full)
    assert "bottleneck3_8_dilated_conv" in copied and "encoder_classifier" not in copied
    for name in copied:
        for a, b in zip(encoder.get_layer(name).weights, full.get_layer(name).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="same options"):
        other = tf_enet.build_enet(12, num_initial_blocks=2, encoder_activation="relu")
        tf_enet.transfer_weights(encoder, other)


def test_keras_file_round_trip_in_safe_mode(enet, tmp_path):
    path = tmp_path / "enet.keras"
    enet.save(path)
    x = images(2, 40, 56)
    # A fresh interpreter that only imports tf_enet: no custom_objects needed.
    code = (
        "import sys, numpy as np, keras, tf_enet;"
        f"m = keras.saving.load_model(r'{path}', safe_mode=True);"
        "assert type(m) is tf_enet.ENet, type(m);"
        f"np.save(r'{tmp_path / 'out.npy'}', m(np.load(r'{tmp_path / 'x.npy'}'), training=False))"
    )
    np.save(tmp_path / "x.npy", x)
    subprocess.run([sys.executable, "-c", code], check=True)
    np.testing.assert_allclose(
        np.load(tmp_path / "out.npy"), enet(x, training=False).numpy(), atol=1e-5
    )


def test_weights_files_of_keras_batch_norm_load_both_ways(tmp_path, monkeypatch):
    # Runs before the fused batch norm built ENet with Keras's layer; their
    # weights files (the training backups) must load, and the other way round.
    def keras_batch_norm(name):
        return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)

    monkeypatch.setattr(tf_enet.model, "_batch_norm", keras_batch_norm)
    old = tf_enet.build_enet(12)
    monkeypatch.undo()
    enet = tf_enet.build_enet(12)
    assert type(old.get_layer("initial_block_bn")) is keras.layers.BatchNormalization
    assert type(enet.get_layer("initial_block_bn")) is tf_enet.layers.BatchNormalization
    rng = np.random.RandomState(3)
    old.set_weights([rng.normal(size=w.shape).astype("float32") for w in old.get_weights()])
    old.save_weights(tmp_path / "old.weights.h5")
    enet.load_weights(tmp_path / "old.weights.h5")
    for got, expected in zip(enet.get_weights(), old.get_weights()):
        np.testing.assert_array_equal(got, expected)
    enet.save_weights(tmp_path / "new.weights.h5")
    old.load_weights(tmp_path / "new.weights.h5")


class _BatchCounter(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = []

    def on_predict_batch_end(self, batch, logs=None):
        self.batches.append((batch, logs["outputs"].shape[0]))


def test_predict_on_arrays_matches_the_keras_loop(tiny_enet, capsys):
    enet = tiny_enet
    x = images(5, 24, 40, seed=4)
    reference = keras.Model.predict(enet, x, batch_size=2, verbose=0)
    assert reference.shape == (5, 24, 40, 12)
    counter = _BatchCounter()
    capsys.readouterr()
    out = enet.predict(x, batch_size=2, verbose=0, callbacks=[counter])
    assert capsys.readouterr().out == ""
    np.testing.assert_array_equal(out, reference)
    # Three batches, the last one partial.
    assert counter.batches == [(0, 2), (1, 2), (2, 1)]
    # Pixels as uint8 with the default batch size, and a tensor, give the same.
    pixels = np.round(x).astype("uint8")
    np.testing.assert_array_equal(
        enet.predict(pixels, verbose=0),
        keras.Model.predict(enet, pixels, verbose=0),
    )
    np.testing.assert_array_equal(enet.predict(tf.constant(x), batch_size=2, verbose=0), out)
    enet.predict(x[:3], batch_size=2, verbose=1)
    assert "2/2" in capsys.readouterr().out
    with pytest.raises(ValueError, match="empty array of shape"):
        enet.predict(x[:0])


def test_predict_on_a_dataset_takes_the_keras_loop(tiny_enet):
    enet = tiny_enet
    x = images(3, 16, 24, seed=5)
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(2)
    np.testing.assert_array_equal(
        enet.predict(dataset, verbose=0), enet.predict(x, batch_size=2, verbose=0)
    )


def test_xla_matches_keras(enet):
    x = images(2, 72, 96, seed=3)
    compiled = tf.function(lambda t: enet(t, training=False), jit_compile=True)
    np.testing.assert_allclose(compiled(x).numpy(), enet(x, training=False).numpy(), atol=1e-4)


@pytest.mark.slow
def test_tflite_builtin_ops_only_matches_keras(enet, tmp_path):
    converter = tf.lite.TFLiteConverter.from_keras_model(enet)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    flatbuffer = converter.convert()
    interpreter = Interpreter(model_content=flatbuffer)
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert not any(op.startswith("Flex") or op == "CUSTOM" for op in ops), ops
    detail = interpreter.get_input_details()[0]
    for size in [(64, 96), (37, 53)]:
        x = images(1, *size, seed=5)
        interpreter.resize_tensor_input(detail["index"], x.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(detail["index"], x)
        interpreter.invoke()
        out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        np.testing.assert_allclose(out, enet(x, training=False).numpy(), atol=1e-4)


def test_trained_checkpoint_with_its_loss_loads_after_import(tmp_path):
    # train.py saves the compiled model; its loss must resolve from `import tf_enet`.
    from tf_enet.losses import WeightedSparseCategoricalCrossentropy

    model = tf_enet.build_enet(3)
    model.compile(
        optimizer="adam",
        loss=WeightedSparseCategoricalCrossentropy([1.0, 2.0, 3.0], ignore_index=3),
    )
    path = tmp_path / "trained.keras"
    model.save(path)
    code = f"import keras, tf_enet; keras.saving.load_model(r'{path}')"
    subprocess.run([sys.executable, "-c", code], check=True)
