"""The default predictor's runtime: a Keras model run as fixed-size TFLite.

A Keras model with a training size runs at that size as the float32 TFLite
conversion written beside it (shipped in a preset, written by train.py,
export.py and `save_preset` through `conversions.write_runtime_model`),
with the Keras model's labels; other sizes run in Keras; `runtime="keras"`,
a missing or stale conversion run Keras throughout. Loading never converts.
"""

import json
import logging
import os

import cv2
import keras
import numpy as np
import pytest

from tf_enet import conversions, exporting, inference
from tf_enet.inference import loading, runtime_model, tf_runtimes

from inference_helpers import pixel_model, red_image, run_config, write_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(REPO, "data", "samples")
# The real CamVid copy (`python -m tf_enet.data.download camvid`), for the
# slow comparison over its val split; TF_ENET_CAMVID points elsewhere.
CAMVID = os.environ.get("TF_ENET_CAMVID", os.path.join(REPO, "data", "CamVid"))
# The pixel model predicts each pixel's red value (0, 1 or 2).
RED = np.tile([0, 1, 2, 1], (8, 2))  # 8x8


def _samples():
    """The real CamVid frames of data/samples, RGB uint8 [1, 360, 480, 3]."""
    return [
        cv2.cvtColor(cv2.imread(os.path.join(SAMPLES, name)), cv2.COLOR_BGR2RGB)[None]
        for name in sorted(os.listdir(SAMPLES))
    ]


def _trained_at(directory, size, model=None):
    """A checkpoint of the pixel model whose configuration records `size`."""
    config = {**run_config(), "train": {"height": size[0], "width": size[1]}}
    return write_checkpoint(directory, model or pixel_model(3), config)


@pytest.fixture
def no_conversion(monkeypatch):
    """Makes any conversion fail the test."""

    def convert(*args, **kwargs):
        raise AssertionError("converted while loading")

    monkeypatch.setattr(exporting, "export_tflite", convert)


def test_default_predictor_runs_the_shipped_tflite_with_the_keras_labels(no_conversion):
    predictor = inference.load_predictor()
    keras_predictor = inference.load_predictor(runtime="keras")
    assert predictor.runtime == "tflite" and keras_predictor.runtime == "keras"
    assert predictor.runner.size == predictor.training_size == (360, 480)
    assert predictor.info == keras_predictor.info
    samples = _samples()
    assert len(samples) == 4
    for image in samples:
        labels = predictor.predict(image)
        # Equal on every pixel of every sample (no ties broken differently).
        np.testing.assert_array_equal(labels, keras_predictor.predict(image))


@pytest.mark.slow
@pytest.mark.skipif(
    not os.path.isdir(os.path.join(CAMVID, "val")),
    reason="needs CamVid's val split (data/CamVid or TF_ENET_CAMVID)",
)
def test_labels_differ_from_keras_only_at_float_ties_over_camvid_val():
    predictor = inference.load_predictor()
    keras_predictor = inference.load_predictor(runtime="keras")
    names = sorted(os.listdir(os.path.join(CAMVID, "val")))
    assert len(names) == 101
    differing = 0
    for name in names:
        image = cv2.imread(os.path.join(CAMVID, "val", name))
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)[None].astype(np.float32)
        logits = keras_predictor.logits(image)  # [1, 360, 480, 11]
        fast = np.argmax(predictor.logits(image), -1)
        where = fast != np.argmax(logits, -1)
        differing += int(where.sum())
        # Only where Keras's two best classes are within float rounding
        # (about 1e-6 of logits of magnitude ~10): a tie either way.
        top_two = np.sort(logits[where], axis=-1)[:, -2:]
        assert np.all(top_two[:, 1] - top_two[:, 0] < 1e-5), name
    # Measured: 2 of the 17.4 million pixels (XLA differs from Keras as often).
    assert differing <= 10


def test_a_checkpoint_without_its_conversion_runs_keras_and_says_how(tmp_path, caplog):
    checkpoint = _trained_at(tmp_path / "run", (8, 8))
    caplog.set_level("INFO", logger="absl")  # other tests may raise absl's level
    predictor = inference.load_predictor(checkpoint)
    assert predictor.runtime == "keras"
    model_file = os.path.join(checkpoint, "model.keras")
    assert (
        f"tf-enet-export --model {model_file} --format tflite --height 8 --width 8 "
        f"--output {os.path.join(checkpoint, 'model_8x8.tflite')}"
    ) in caplog.text
    assert not os.path.exists(os.path.join(checkpoint, "model_8x8.tflite"))
    with pytest.raises(inference.ModelError, match=r"has no TFLite conversion beside it"):
        inference.load_predictor(checkpoint, runtime="tflite")


def test_the_written_conversion_runs_without_loading_keras(tmp_path, monkeypatch):
    checkpoint = _trained_at(tmp_path / "run", (8, 8))
    written = conversions.write_runtime_model(checkpoint)
    assert written == os.path.join(checkpoint, "model_8x8.tflite")
    digest = runtime_model.file_sha256(os.path.join(checkpoint, "model.keras"))
    with open(written + ".json") as f:
        export = json.load(f)["export"]
    assert export["source_sha256"] == digest and export["input_size"] == [8, 8]

    def fail(*args, **kwargs):
        raise AssertionError("loaded or converted the Keras model")

    monkeypatch.setattr(exporting, "export_tflite", fail)
    monkeypatch.setattr(loading, "load_keras_model", fail)
    predictor = inference.load_predictor(checkpoint)
    assert predictor.runtime == "tflite"
    assert predictor.runner.fixed.path == written
    np.testing.assert_array_equal(predictor.predict(red_image(RED)[None])[0], RED)


def test_export_of_the_training_size_writes_the_same_conversion(tmp_path):
    checkpoint = _trained_at(tmp_path / "run", (8, 8))
    output = os.path.join(checkpoint, "model_8x8.tflite")
    exporting.export_model(checkpoint, output, "tflite", input_size=(8, 8))
    predictor = inference.load_predictor(checkpoint)
    assert predictor.runtime == "tflite" and predictor.runner.fixed.path == output


def test_a_model_without_training_size_writes_no_conversion(tmp_path):
    checkpoint = write_checkpoint(tmp_path / "run", pixel_model(3), run_config())
    assert conversions.write_runtime_model(checkpoint) is None
    assert sorted(os.listdir(checkpoint)) == ["config.json", "model.keras"]


def test_other_sizes_run_in_keras_loaded_when_first_needed(tmp_path):
    checkpoint = _trained_at(tmp_path / "run", (8, 8))
    conversions.write_runtime_model(checkpoint)
    predictor = inference.load_predictor(checkpoint)
    assert predictor.runtime_at((16, 16)) == "tflite"  # resized to 8x8
    assert predictor.runner._other is None  # Keras not loaded yet
    assert predictor.runtime_at((16, 16), input_size=(12, 12)) == "keras"
    red = np.tile([0, 1, 2], (12, 4))  # 12x12
    labels = predictor.predict(red_image(red)[None], input_size=(12, 12))
    np.testing.assert_array_equal(labels[0], red)


def test_a_conversion_of_an_earlier_model_file_is_not_run(tmp_path, caplog):
    checkpoint = _trained_at(tmp_path / "run", (8, 8))
    conversions.write_runtime_model(checkpoint)
    # Retrained in place: class j now scores what class (j + 1) % 3 did, so
    # a red value r is now class (r - 1) % 3.
    model = pixel_model(3)
    conv = model.get_layer("logits")
    kernel, bias = conv.get_weights()
    conv.set_weights([kernel[..., [1, 2, 0]], bias[[1, 2, 0]]])
    _trained_at(tmp_path / "run", (8, 8), model)
    with caplog.at_level(logging.WARNING):
        predictor = inference.load_predictor(checkpoint)
    assert predictor.runtime == "keras"
    assert "converted from an earlier model.keras" in caplog.text
    assert "tf-enet-export --model" in caplog.text
    np.testing.assert_array_equal(predictor.predict(red_image(RED)[None])[0], (RED - 1) % 3)


def test_runtime_keras_never_converts(tmp_path, no_conversion):
    checkpoint = _trained_at(tmp_path / "run", (8, 8))
    predictor = inference.load_predictor(checkpoint, runtime="keras")
    assert predictor.runtime == "keras"
    assert isinstance(predictor.runner, tf_runtimes.KerasRunner)
    assert inference.load_predictor(checkpoint, runtime="keras", jit_compile=True).runtime == (
        "keras_xla"
    )


def test_a_model_without_training_size_runs_keras(tmp_path, no_conversion):
    checkpoint = write_checkpoint(tmp_path / "run", pixel_model(3), run_config())
    assert inference.load_predictor(checkpoint).runtime == "keras"
    with pytest.raises(inference.ModelError, match=r"model\.keras has no training size"):
        inference.load_predictor(checkpoint, runtime="tflite")


def test_runtime_is_checked(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown runtime 'xla'"):
        inference.load_predictor(runtime="xla")
    tflite = os.path.join(
        os.path.dirname(inference.resolve_model_path("enet_camvid")[1]), "model_360x480.tflite"
    )
    assert inference.load_predictor(tflite).runtime == "tflite"
    with pytest.raises(ValueError, match=r"runtime='keras' applies to Keras models"):
        inference.load_predictor(tflite, runtime="keras")


def test_keras_model_in_memory_keeps_keras():
    predictor = inference.Predictor.from_model(pixel_model(3))
    assert predictor.runtime == "keras"
    assert isinstance(predictor.runner.model, keras.Model)


def _damage(path, how):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    if how == "truncated":
        data = data[: len(data) // 3]
    else:  # every 997th byte flipped, the identifier kept
        for i in range(16, len(data), 997):
            data[i] ^= 0xFF
    with open(path, "wb") as f:
        f.write(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "flipped"])
def test_a_damaged_tflite_file_is_one_error_not_a_crash(tmp_path, how):
    # TFLite's interpreter reads a damaged flatbuffer without checking it
    # and crashes the process; the loader reads it first and says so.
    path = str(tmp_path / "model.tflite")
    shipped = os.path.join(REPO, "tf_enet", "presets", "enet_camvid", "model_360x480.tflite")
    with open(shipped, "rb") as source, open(path, "wb") as target:
        target.write(source.read())
    _damage(path, how)
    with pytest.raises(inference.ModelError, match=r"is not a valid .*flatbuffer cannot be read"):
        inference.load_predictor(path)


def test_a_damaged_conversion_beside_the_model_is_not_run(tmp_path, caplog):
    checkpoint = _trained_at(tmp_path / "run", (8, 8))
    converted = conversions.write_runtime_model(checkpoint)
    _damage(converted, "truncated")
    with caplog.at_level(logging.WARNING):
        again = inference.load_predictor(checkpoint)
    assert "flatbuffer cannot be read" in caplog.text
    assert again.runtime == "keras"
    np.testing.assert_array_equal(again.predict(red_image(RED)[None])[0], RED)
