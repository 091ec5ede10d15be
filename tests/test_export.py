"""Tests of the SavedModel, TFLite and ONNX exports (tf_enet.exporting).

One small ENet checkpoint (stage_two_repeat=1, 3 classes, non-trivial
batch-norm statistics) is exported once per format and every export is
compared with the Keras model it came from.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import tf_enet
from tf_enet import exporting, inference, lite
from tf_enet.inference import runtimes
from tf_enet.model import PIXEL_MEAN, PIXEL_STD

from inference_helpers import (
    CLASSES,
    pixel_model,
    red_image,
    run_config,
    write_checkpoint,
    write_rgb,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_CLASSES = len(CLASSES)


def images(batch, height, width, seed=0):
    rng = np.random.RandomState(seed)
    return rng.uniform(0, 255, (batch, height, width, 3)).astype("float32")


def colour_blocks(batch, height, width, seed=0):
    """Street-scene-like inputs: 8x8 blocks of a few colours, with noise."""
    rng = np.random.RandomState(seed)
    colours = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200], [128, 128, 128]])
    ids = rng.randint(0, 4, (batch, height // 8 + 1, width // 8 + 1))
    ids = ids.repeat(8, 1).repeat(8, 2)[:, :height, :width]
    pixels = colours[ids] + rng.normal(0, 20, (batch, height, width, 3))
    return np.clip(pixels, 0, 255).astype("float32")


def run(args, **kwargs):
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300, **kwargs)


def agree_where_confident(classes, logits):
    """Share of equal classes among pixels whose top-2 logits differ by 1e-4."""
    top2 = np.sort(logits, axis=-1)[..., -2:]
    confident = top2[..., 1] - top2[..., 0] > 1e-4
    return (classes == logits.argmax(-1))[confident].mean(), confident.mean()


def write_images(directory, images):
    """Writes RGB `images` as PNGs in `directory`; returns their paths."""
    paths = [str(directory / f"{i}.png") for i in range(len(images))]
    for path, image in zip(paths, images):
        write_rgb(path, image)
    return paths


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = tf_enet.build_enet(NUM_CLASSES, stage_two_repeat=1)
    rng = np.random.RandomState(0)
    # Batch-norm statistics away from (0, 1), so an export that dropped
    # them would not match.
    for weight in model.non_trainable_weights:
        if "moving_variance" in weight.path:
            weight.assign(rng.uniform(0.5, 2.0, weight.shape))
        elif "moving_mean" in weight.path:
            weight.assign(rng.normal(0, 0.2, weight.shape))
    path = write_checkpoint(tmp_path_factory.mktemp("run"), model, run_config())
    return path, model


@pytest.fixture(scope="module")
def saved_model(checkpoint, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("exports") / "enet" / "1")
    return exporting.export_model(checkpoint[0], output, "saved_model")


def saved_model_cli(*args):
    """Runs the saved_model_cli of the Python running the tests."""
    tool = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    return run([tool, *args])


def _signature(show_output, name):
    block = show_output.split(f"signature_def['{name}']:", 1)[1]
    return block.split("signature_def[", 1)[0]


@pytest.mark.slow
def test_saved_model_cli_shows_both_signatures(saved_model):
    result = saved_model_cli("show", "--dir", saved_model, "--all")
    assert result.returncode == 0, result.stderr[-2000:]
    default = _signature(result.stdout, "serving_default")
    encoded = _signature(result.stdout, "serve_encoded")

    def flat(text):
        return " ".join(text.split())

    images = "inputs['images'] tensor_info: dtype: DT_UINT8 shape: (-1, -1, -1, 3)"
    assert flat(images) in flat(default)
    image_bytes = "inputs['image_bytes'] tensor_info: dtype: DT_STRING shape: (-1)"
    assert flat(image_bytes) in flat(encoded)
    classes = "outputs['classes'] tensor_info: dtype: DT_INT32 shape: (-1, -1, -1)"
    for block in (default, encoded):
        assert flat(classes) in flat(block)
        assert flat(
            f"outputs['probabilities'] tensor_info: dtype: DT_FLOAT "
            f"shape: (-1, -1, -1, {NUM_CLASSES})"
        ) in flat(block)


@pytest.mark.slow
def test_saved_model_cli_runs_the_default_signature(saved_model, checkpoint, tmp_path):
    # TF 2.21's saved_model_cli only literal_evals --input_exprs, which
    # refuses "np.zeros(...)"; --inputs feeds the same array from a file.
    np.save(tmp_path / "zeros.npy", np.zeros((1, 40, 56, 3), np.uint8))
    result = saved_model_cli(
        "run",
        "--dir",
        saved_model,
        "--tag_set",
        "serve",
        "--signature_def",
        "serving_default",
        "--inputs",
        f"images={tmp_path / 'zeros.npy'}",
        "--outdir",
        str(tmp_path),
        "--overwrite",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    classes = np.load(tmp_path / "classes.npy")
    probabilities = np.load(tmp_path / "probabilities.npy")
    assert classes.shape == (1, 40, 56) and classes.dtype == np.int32
    assert probabilities.shape == (1, 40, 56, NUM_CLASSES)
    np.testing.assert_allclose(probabilities.sum(-1), 1, atol=1e-5)
    logits = checkpoint[1](np.zeros((1, 40, 56, 3), "float32"), training=False).numpy()
    np.testing.assert_allclose(probabilities, tf.nn.softmax(logits).numpy(), atol=1e-5)


@pytest.mark.slow
def test_saved_model_in_a_fresh_process_without_tf_enet(saved_model, checkpoint, tmp_path):
    pixels = images(2, 37, 53, seed=1).astype(np.uint8)  # odd size on purpose
    files = []
    for i, image in enumerate(pixels):
        files.append(str(tmp_path / f"{i}.png"))
        write_rgb(files[-1], image)
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        import tensorflow as tf
        model = tf.saved_model.load({saved_model!r})
        pixels = np.load({str(tmp_path / "pixels.npy")!r})
        default = model.signatures["serving_default"](images=tf.constant(pixels))
        encoded = model.signatures["serve_encoded"](image_bytes=tf.constant(
            [open(f, "rb").read() for f in {files!r}]))
        assert "tf_enet" not in sys.modules
        np.savez({str(tmp_path / "out.npz")!r},
                 classes=default["classes"].numpy(),
                 probabilities=default["probabilities"].numpy(),
                 encoded_classes=encoded["classes"].numpy())
    """)
    np.save(tmp_path / "pixels.npy", pixels)
    result = run([sys.executable, "-c", code])
    assert result.returncode == 0, result.stderr[-2000:]
    out = np.load(tmp_path / "out.npz")
    logits = checkpoint[1](pixels.astype("float32"), training=False).numpy()
    np.testing.assert_allclose(out["probabilities"], tf.nn.softmax(logits).numpy(), atol=1e-5)
    agreement, confident = agree_where_confident(out["classes"], logits)
    assert agreement == 1.0 and confident > 0.99
    # PNG is lossless, so the decoded request predicts the same classes.
    np.testing.assert_array_equal(out["encoded_classes"], out["classes"])


@pytest.mark.slow
def test_saved_enet_runs_through_the_predictor(saved_model, checkpoint):
    predictor = inference.load_predictor(saved_model)
    assert predictor.kind == "saved_model"
    x = images(2, 29, 45, seed=2)
    np.testing.assert_allclose(
        predictor.logits(x), checkpoint[1](x, training=False).numpy(), atol=1e-4
    )


def test_saved_model_runs_through_the_predictor_with_its_config(tmp_path):
    # The pixel model exports in seconds; its logits are k * R - k**2 / 2.
    config = {**run_config(), "train": {"height": 6, "width": 8}}
    checkpoint = write_checkpoint(tmp_path / "run", pixel_model(3), config)
    output = exporting.export_model(checkpoint, str(tmp_path / "pixel" / "1"), "saved_model")
    predictor = inference.load_predictor(output)
    assert predictor.kind == "saved_model"
    # From assets/tf_enet_config.json:
    assert predictor.info.class_names == CLASSES
    assert predictor.training_size == (6, 8)
    red = np.random.RandomState(3).randint(0, 3, (2, 5, 7))
    k = np.arange(3, dtype=np.float32)
    np.testing.assert_allclose(
        predictor.logits(np.stack([red_image(r) for r in red])),
        red[..., None] * k - 0.5 * k**2,
        atol=1e-5,
    )


def tflite_ops(path):
    interpreter = Interpreter(model_path=path)
    return {op["op_name"] for op in interpreter._get_ops_details()}


def assert_builtin_ops_only(path):
    ops = tflite_ops(path)
    assert not any(op.startswith("Flex") or op == "CUSTOM" for op in ops), ops


@pytest.mark.parametrize("quantize", [None, "float16", "int8"])
def test_tflite_predictor_resizes_and_dequantizes(tmp_path, quantize):
    # The pixel model converts in a second; its logits k * R - k**2 / 2
    # are in [-2, 2] for red values 0-2, where int8 steps are ~0.016, so
    # every quantization predicts the red value exactly.
    checkpoint = write_checkpoint(tmp_path / "run", pixel_model(3), run_config())
    rng = np.random.RandomState(0)
    calibration = []
    for i in range(4):
        image = red_image(rng.randint(0, 3, (8, 8)))
        image[0, 0] = (0, 255, 0)  # pixels span [0, 255], as in photos
        calibration.append(str(tmp_path / f"calibration_{i}.png"))
        write_rgb(calibration[-1], image)
    path = exporting.export_model(
        checkpoint,
        str(tmp_path / "pixel.tflite"),
        "tflite",
        quantize=quantize,
        representative=exporting.representative_images(calibration),
    )
    assert_builtin_ops_only(path)
    predictor = inference.load_predictor(path)
    assert predictor.info.class_names == CLASSES  # from pixel.tflite.json
    red = np.random.RandomState(1).randint(0, 3, (2, 7, 13))
    x = np.stack([red_image(r) for r in red])
    k = np.arange(3, dtype=np.float32)
    expected = red[..., None] * k - 0.5 * k**2  # [batch, 7, 13, 3]
    tolerance = {None: 1e-5, "float16": 1e-2, "int8": 0.05}[quantize]
    np.testing.assert_allclose(predictor.logits(x), expected, atol=tolerance)
    np.testing.assert_array_equal(predictor.predict(x[:1]), red[:1])  # resized


@pytest.mark.slow
def test_float_tflite_enet_uses_builtin_ops_and_matches_keras(checkpoint, tmp_path):
    path = exporting.export_model(checkpoint[0], str(tmp_path / "enet.tflite"), "tflite")
    assert_builtin_ops_only(path)
    predictor = inference.load_predictor(path)
    for x in (images(1, 37, 53, seed=3), images(2, 24, 40, seed=4)):
        np.testing.assert_allclose(
            predictor.logits(x), checkpoint[1](x, training=False).numpy(), atol=1e-4
        )


@pytest.mark.slow
def test_fixed_size_tflite_matches_keras_and_resizes_other_sizes(checkpoint, tmp_path):
    path = exporting.export_model(
        checkpoint[0],
        str(tmp_path / "enet_24x40.tflite"),
        "tflite",
        input_size=(24, 40),
    )
    assert_builtin_ops_only(path)
    # The size-dependent arithmetic folded into constants.
    assert not tflite_ops(path) & {"SHAPE", "FLOOR_DIV", "FLOOR_MOD", "PACK"}
    predictor = inference.load_predictor(path)
    assert predictor.input_size == (24, 40)
    model = checkpoint[1]
    x = images(3, 24, 40, seed=8)  # run one image at a time (batch 1)
    np.testing.assert_allclose(predictor.logits(x), model(x, training=False).numpy(), atol=1e-4)
    other = images(2, 37, 53, seed=9)
    with pytest.raises(inference.ModelError, match="exported for 24x40 images"):
        predictor.logits(other)
    # Fitted inside 24x40 with the aspect kept (scale min(24/37, 40/53):
    # 24x34), shrunk with antialiasing and padded with black, as the
    # predictor does; the content's logits resized back.
    shrunk = tf.image.resize(other, (24, 34), antialias=True)
    padded = tf.pad(shrunk, [[0, 0], [0, 0], [0, 6], [0, 0]])
    content_logits = model(padded, training=False)[:, :, :34]
    resized_logits = tf.image.resize(content_logits, (37, 53)).numpy()
    classes = predictor.predict(other)
    assert classes.shape == (2, 37, 53)
    share, confident = agree_where_confident(classes, resized_logits)
    assert confident > 0.9 and share == 1.0


@pytest.mark.slow
def test_int8_tflite_is_integer_only_and_agrees_with_float(checkpoint, tmp_path):
    images = colour_blocks(8, 32, 48, seed=5)
    calibration = write_images(tmp_path, images)
    path = exporting.export_model(
        checkpoint[0],
        str(tmp_path / "enet_int8.tflite"),
        "tflite",
        quantize="int8",
        representative=exporting.representative_images(calibration),
    )
    assert_builtin_ops_only(path)
    # PReLU, comparisons and logic have no int8 XNNPack kernels; the export
    # rewrites them away (tf_enet.lite).
    ops = tflite_ops(path)
    assert not ops & {
        "PRELU",
        "EQUAL",
        "NOT_EQUAL",
        "LOGICAL_AND",
        "LOGICAL_OR",
        "LOGICAL_NOT",
        "CAST",
    }, ops
    interpreter = Interpreter(model_path=path)
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    # The normalised image keeps its own int8 step: int8 concatenation and
    # max pooling share one scale from input to output, which would hand
    # the initial block's output step back to the image if its batch norm
    # were not folded into the branches.
    ops = interpreter._get_ops_details()
    scales = {t["index"]: t["quantization"][0] for t in interpreter.get_tensor_details()}
    first = {}
    for op in ops:
        first.setdefault(op["op_name"], op)
    normalised = (np.stack(images) - PIXEL_MEAN) / PIXEL_STD
    span = max(normalised.max(), 0) - min(normalised.min(), 0)
    image_step = scales[first["CONV_2D"]["inputs"][0]]
    assert image_step == pytest.approx(span / 255, rel=0.02)
    assert image_step != scales[first["CONCATENATION"]["outputs"][0]]

    x = colour_blocks(2, 40, 56, seed=6)
    quantized = inference.load_predictor(path).logits(x)
    logits = checkpoint[1](x, training=False).numpy()
    # Dequantised logits on the float scale: a missed scale or zero point
    # would be off by far more than the quantization noise (~17% of the
    # logits' spread for this untrained model).
    assert np.abs(quantized - logits).mean() < 0.3 * logits.std()
    assert np.corrcoef(quantized.ravel(), logits.ravel())[0, 1] > 0.9
    # Where the float model is not near a tie, int8 picks the same class.
    top2 = np.sort(logits, -1)[..., -2:]
    margin = top2[..., 1] - top2[..., 0]
    clear = margin > np.median(margin)
    assert (quantized.argmax(-1) == logits.argmax(-1))[clear].mean() > 0.9


@pytest.mark.slow
def test_int8_input_export_computes_what_the_uint8_input_export_does(checkpoint, tmp_path):
    images = colour_blocks(8, 32, 48, seed=5)
    calibration = write_images(tmp_path, images)
    paths = {}
    for int8_input in ("uint8", "int8"):
        paths[int8_input] = exporting.export_model(
            checkpoint[0],
            str(tmp_path / f"enet_{int8_input}.tflite"),
            "tflite",
            quantize="int8",
            representative=exporting.representative_images(calibration),
            input_size=(32, 48),
            int8_input=int8_input,
        )
        with open(paths[int8_input] + ".json") as f:
            assert json.load(f)["export"]["int8_input"] == int8_input
    detail = Interpreter(model_path=paths["int8"]).get_input_details()[0]
    assert detail["dtype"] == np.int8
    # Pixels 0..255 as -128..127: the same values the uint8 model's own
    # input conversion produces, so the two compute the same logits.
    scale, zero_point = detail["quantization"]
    assert zero_point == -128 and scale == pytest.approx(1.0, abs=1e-4)
    detail = Interpreter(model_path=paths["uint8"]).get_input_details()[0]
    assert detail["dtype"] == np.uint8
    scale, zero_point = detail["quantization"]
    assert zero_point == 0 and scale == pytest.approx(1.0, abs=1e-4)
    # The uint8 input is converted by ops XNNPack runs (tf_enet.lite.uint8_input).
    assert tflite_ops(paths["uint8"]) - tflite_ops(paths["int8"]) == {"DEQUANTIZE", "QUANTIZE"}
    x = colour_blocks(3, 32, 48, seed=7)
    np.testing.assert_array_equal(
        inference.load_predictor(paths["int8"]).logits(x),
        inference.load_predictor(paths["uint8"]).logits(x),
    )
    # Another size: resized to the export's, with fractional pixels.
    x = colour_blocks(2, 45, 70, seed=8)
    np.testing.assert_array_equal(
        inference.load_predictor(paths["int8"]).resized_logits(x),
        inference.load_predictor(paths["uint8"]).resized_logits(x),
    )
    with pytest.raises(exporting.ExportError, match="applies to int8 exports only"):
        exporting.export_model(
            checkpoint[0], str(tmp_path / "f.tflite"), "tflite", int8_input="int8"
        )


@pytest.mark.slow
def test_int8_ranges_set_tensor_steps_without_adding_ops(checkpoint, tmp_path):
    calibration = write_images(tmp_path, colour_blocks(6, 32, 48, seed=7))
    representative = exporting.representative_images(calibration)
    paths = {
        ranges: exporting.export_model(
            checkpoint[0],
            str(tmp_path / f"{ranges}.tflite"),
            "tflite",
            quantize="int8",
            representative=representative,
            int8_ranges=ranges,
        )
        for ranges in ("mean", "minmax")
    }
    interpreters = {k: Interpreter(model_path=p) for k, p in paths.items()}
    # The ranges become quantization parameters, not extra ops (nor
    # unfolded batch norms).
    ops = {
        k: sorted(op["op_name"] for op in it._get_ops_details()) for k, it in interpreters.items()
    }
    assert ops["mean"] == ops["minmax"]
    for ranges, path in paths.items():
        with open(path + inference.SIDECAR_SUFFIX) as f:
            assert json.load(f)["export"]["int8_ranges"] == ranges
    # A ranged output's int8 step is its mean range over 255.
    model = checkpoint[1]
    layer = model.get_layer("bottleneck2_0_add")
    ((low, high),) = lite.calibrated_ranges(model, [layer.output], representative, "mean")
    ((full_low, full_high),) = lite.calibrated_ranges(
        model, [layer.output], representative, "minmax"
    )
    assert high - low < 0.95 * (full_high - full_low)  # outliers to clip
    steps = {}
    for k, it in interpreters.items():
        details = it.get_tensor_details()
        (step,) = {
            details[op["outputs"][0]]["quantization"][0]
            for op in it._get_ops_details()
            if op["op_name"] == "ADD" and "bottleneck2_0_add" in details[op["outputs"][0]]["name"]
        }
        steps[k] = step
    assert steps["mean"] == pytest.approx((high - low) / 255, rel=0.02)
    assert steps["minmax"] == pytest.approx((full_high - full_low) / 255, rel=0.02)
    with pytest.raises(exporting.ExportError, match="int8 ranges"):
        exporting.export_model(
            checkpoint[0],
            str(tmp_path / "x.tflite"),
            "tflite",
            quantize="int8",
            representative=representative,
            int8_ranges="percentile",
        )


@pytest.mark.slow
def test_onnx_matches_keras_at_odd_sizes(checkpoint, tmp_path):
    pytest.importorskip("tf2onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    path = exporting.export_model(checkpoint[0], str(tmp_path / "enet.onnx"), "onnx")
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    # 37x53 is not a multiple of 8: the size tf2onnx's FloorMod gets wrong.
    x = images(2, 37, 53, seed=7)
    logits = checkpoint[1](x, training=False).numpy()
    (out,) = session.run(None, {"images": x})
    assert out.shape == logits.shape
    np.testing.assert_allclose(out, logits, atol=1e-4)
    predictor = inference.load_predictor(path)
    assert predictor.info.class_names == CLASSES
    np.testing.assert_allclose(predictor.logits(x), logits, atol=1e-4)


def test_export_refuses_bad_requests(checkpoint, tmp_path):
    model = checkpoint[0]
    with pytest.raises(exporting.ExportError, match="calibration images"):
        exporting.export_model(model, str(tmp_path / "a.tflite"), "tflite", quantize="int8")
    with pytest.raises(exporting.ExportError, match="TFLite only"):
        exporting.export_model(model, str(tmp_path / "a"), "saved_model", quantize="float16")
    with pytest.raises(exporting.ExportError, match="Unknown format"):
        exporting.export_model(checkpoint[0], str(tmp_path / "a"), "caffe")
    with pytest.raises(exporting.ExportError, match="fixed input size applies to TFLite"):
        exporting.export_model(checkpoint[0], str(tmp_path / "a"), "onnx", input_size=(8, 8))
    with pytest.raises(exporting.ExportError, match="must be positive"):
        exporting.export_model(model, str(tmp_path / "a.tflite"), "tflite", input_size=(0, 8))
    (tmp_path / "model.tflite").write_bytes(b"")
    with pytest.raises(OSError, match="is a file; a SavedModel is a directory"):
        exporting.export_model(checkpoint[0], str(tmp_path / "model.tflite"), "saved_model")
    with pytest.raises(inference.ModelError, match="needs a Keras model"):
        exporting.export_model(str(tmp_path / "model.tflite"), str(tmp_path / "b"), "saved_model")


@pytest.mark.slow
def test_export_script_writes_a_saved_model_with_its_config(checkpoint, tmp_path):
    output = str(tmp_path / "enet" / "1")  # parent directories created
    result = run(
        [
            sys.executable,
            "export.py",
            "--model",
            checkpoint[0],
            "--format",
            "saved_model",
            "--output",
            output,
        ]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"to {output}" in result.stdout
    with open(os.path.join(output, "assets", inference.SAVED_MODEL_CONFIG)) as f:
        config = json.load(f)
    assert config["dataset"]["class_names"] == list(CLASSES)
    assert config["export"]["format"] == "saved_model"


def test_export_carries_the_training_size(checkpoint, tmp_path):
    config = {**run_config(), "train": {"height": 24, "width": 40}}
    path = write_checkpoint(tmp_path / "run", pixel_model(3), config)
    output = exporting.export_model(path, str(tmp_path / "pixel.tflite"), "tflite")
    predictor = inference.load_predictor(output)
    assert predictor.training_size == (24, 40)  # from pixel.tflite.json


@pytest.mark.slow
def test_export_script_checks_the_output_before_loading(tmp_path):
    (tmp_path / "file").write_text("a file, not a directory")
    output = tmp_path / "file" / "enet.tflite"
    result = run(
        [
            sys.executable,
            "export.py",
            "--model",
            str(tmp_path / "no_model_here"),
            "--format",
            "tflite",
            "--output",
            str(output),
        ]
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert f"--output {tmp_path / 'file'}" in errors[0]
    assert "no_model_here" not in result.stderr


def test_uint8_and_int8_inputs_quantize_any_pixel_value_alike():
    # Resized images hold fractional pixels; both inputs must take the
    # same steps (int8 = uint8 - 128), as TFLite defines quantization:
    # round(x / scale) + zero_point.
    pixels = np.concatenate(
        [np.arange(0, 255.5, 0.5), np.random.RandomState(0).uniform(0, 255, 200000)]
    ).astype(np.float32)
    scale = float(np.float32(0.99999899))  # what a calibrated export records
    as_uint8 = runtimes._quantize(pixels, {"quantization": (scale, 0), "dtype": np.uint8})
    as_int8 = runtimes._quantize(pixels, {"quantization": (scale, -128), "dtype": np.int8})
    np.testing.assert_array_equal(as_int8.astype(int), as_uint8.astype(int) - 128)
    # TFLite's own QUANTIZE kernel divides in float32 too.
    expected = np.clip(np.round(pixels / np.float32(scale)), 0, 255)
    np.testing.assert_array_equal(as_uint8, expected)


def test_onnx_without_the_extra_names_it_and_creates_nothing(tmp_path, monkeypatch):
    # None in sys.modules makes `import tf2onnx` fail, as without the extra.
    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    output = tmp_path / "exports" / "enet.onnx"
    with pytest.raises(exporting.ExportError) as caught:
        exporting.export_model("enet_camvid", str(output), "onnx")
    assert str(caught.value) == (
        "ONNX export needs tf2onnx and onnxruntime: install the [onnx] extra "
        '(in the tf_enet checkout: pip install -e ".[onnx]").'
    )
    assert not (tmp_path / "exports").exists()


@pytest.mark.slow
def test_int8_export_shows_progress_and_its_calibration_count(tmp_path):
    path = write_checkpoint(tmp_path / "run", pixel_model(3), run_config())
    images = np.random.RandomState(0).randint(0, 3, (3, 8, 8, 3)) * 80
    write_images(tmp_path, images)
    output = str(tmp_path / "pixel_int8.tflite")
    result = run(
        [
            sys.executable,
            "export.py",
            "--model",
            path,
            "--format",
            "tflite",
            "--quantize",
            "int8",
            "--representative_images",
            str(tmp_path / "*.png"),
            "--output",
            output,
        ]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"as tflite (int8, calibrated on 3 images) to {output}." in result.stdout
    # Not a terminal: Keras's progress bar writes one summary line per pass.
    assert "Calibrating int8 ranges:\n3/3" in result.stdout, result.stdout
