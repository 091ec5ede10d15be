"""The default predictor's runtime: a Keras model run as fixed-size TFLite.

A Keras model with a training size runs at that size as its float32 TFLite
conversion (shipped in a preset, or converted once and cached), with the
Keras model's labels; other sizes run in Keras; `runtime="keras"` and a
failed conversion run Keras throughout.
"""

import json
import logging
import os

import cv2
import keras
import numpy as np
import pytest

from tf_enet import exporting, inference
from tf_enet.inference import loading, runtimes

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


def _cached(cache_dir):
    folder = os.path.join(cache_dir, loading.TFLITE_CACHE_SUBDIR)
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


@pytest.fixture
def no_conversion(monkeypatch):
    """Makes any conversion fail the test."""

    def convert(*args, **kwargs):
        raise AssertionError("converted, but a conversion was expected to be found")

    monkeypatch.setattr(runtimes, "write_fixed_size_tflite", convert)


def test_default_predictor_runs_the_shipped_tflite_with_the_keras_labels(tmp_path, no_conversion):
    predictor = inference.load_predictor(cache_dir=str(tmp_path))
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
    # The preset's conversion ran: nothing converted, nothing cached.
    assert _cached(str(tmp_path)) == []


@pytest.mark.slow
@pytest.mark.skipif(
    not os.path.isdir(os.path.join(CAMVID, "val")),
    reason="needs CamVid's val split (data/CamVid or TF_ENET_CAMVID)",
)
def test_labels_differ_from_keras_only_at_float_ties_over_camvid_val(tmp_path):
    predictor = inference.load_predictor(cache_dir=str(tmp_path))
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


def test_a_checkpoint_of_the_preset_model_runs_the_shipped_conversion(tmp_path, no_conversion):
    run = tmp_path / "run"
    run.mkdir()
    preset = inference.resolve_model_path("enet_camvid")[1]
    for name in ("model.keras", "config.json"):
        (run / name).write_bytes(open(os.path.join(os.path.dirname(preset), name), "rb").read())
    predictor = inference.load_predictor(str(run), cache_dir=str(tmp_path / "cache"))
    assert predictor.runtime == "tflite"
    assert predictor.runner.fixed.path == os.path.join(
        os.path.dirname(preset), "model_360x480.tflite"
    )


def test_a_checkpoint_is_converted_once_then_found_in_the_cache(tmp_path, monkeypatch):
    checkpoint = _trained_at(tmp_path / "run", (8, 8))
    cache = str(tmp_path / "cache")
    predictor = inference.load_predictor(checkpoint, cache_dir=cache)
    assert predictor.runtime == "tflite"
    digest = loading.file_sha256(os.path.join(checkpoint, "model.keras"))
    assert _cached(cache) == [
        f"{digest[:32]}_v2_model_8x8.tflite",
        f"{digest[:32]}_v2_model_8x8.tflite.json",
    ]
    with open(os.path.join(cache, "tflite", _cached(cache)[1])) as f:
        assert json.load(f)["export"]["source_sha256"] == digest
    np.testing.assert_array_equal(predictor.predict(red_image(RED)[None])[0], RED)

    # A second process finds the conversion and never loads the Keras model.
    def fail(*args, **kwargs):
        raise AssertionError("loaded or converted the Keras model")

    monkeypatch.setattr(runtimes, "write_fixed_size_tflite", fail)
    monkeypatch.setattr(loading, "load_keras_model", fail)
    again = inference.load_predictor(checkpoint, cache_dir=cache)
    assert again.runtime == "tflite"
    assert again.runner.fixed.path == os.path.join(cache, "tflite", _cached(cache)[0])
    assert again.info.class_names == predictor.info.class_names
    np.testing.assert_array_equal(again.predict(red_image(RED)[None])[0], RED)


def test_other_sizes_run_in_keras_loaded_when_first_needed(tmp_path):
    checkpoint = _trained_at(tmp_path / "run", (8, 8))
    cache = str(tmp_path / "cache")
    inference.load_predictor(checkpoint, cache_dir=cache)  # converts
    predictor = inference.load_predictor(checkpoint, cache_dir=cache)
    assert predictor.runtime_at((16, 16)) == "tflite"  # resized to 8x8
    assert predictor.runner._other is None  # Keras not loaded yet
    assert predictor.runtime_at((16, 16), input_size=(12, 12)) == "keras"
    red = np.tile([0, 1, 2], (12, 4))  # 12x12
    labels = predictor.predict(red_image(red)[None], input_size=(12, 12))
    np.testing.assert_array_equal(labels[0], red)


def test_a_changed_model_file_is_converted_again(tmp_path):
    cache = str(tmp_path / "cache")
    checkpoint = _trained_at(tmp_path / "run", (8, 8))
    np.testing.assert_array_equal(
        inference.load_predictor(checkpoint, cache_dir=cache).predict(red_image(RED)[None])[0],
        RED,
    )
    # Retrained in place: class j now scores what class (j + 1) % 3 did, so
    # a red value r is now class (r - 1) % 3.
    model = pixel_model(3)
    conv = model.get_layer("logits")
    kernel, bias = conv.get_weights()
    conv.set_weights([kernel[..., [1, 2, 0]], bias[[1, 2, 0]]])
    _trained_at(tmp_path / "run", (8, 8), model)
    predictor = inference.load_predictor(checkpoint, cache_dir=cache)
    assert predictor.runtime == "tflite"
    assert len(_cached(cache)) == 4  # two conversions, each with its .json
    np.testing.assert_array_equal(predictor.predict(red_image(RED)[None])[0], (RED - 1) % 3)


def test_a_stale_conversion_beside_the_model_is_ignored(tmp_path):
    checkpoint = _trained_at(tmp_path / "run", (8, 8))
    beside = os.path.join(checkpoint, "model_8x8.tflite")
    runtimes.write_fixed_size_tflite(pixel_model(3), beside, (8, 8), None, "0" * 64, "model.keras")
    predictor = inference.load_predictor(checkpoint, cache_dir=str(tmp_path / "cache"))
    assert predictor.runner.fixed.path != beside
    assert len(_cached(str(tmp_path / "cache"))) == 2


def test_a_failed_conversion_runs_keras_and_says_so(tmp_path, monkeypatch, caplog):
    checkpoint = _trained_at(tmp_path / "run", (8, 8))

    def fail(*args, **kwargs):
        raise exporting.ExportError("TFLite conversion failed: unsupported op")

    monkeypatch.setattr(runtimes, "write_fixed_size_tflite", fail)
    with caplog.at_level(logging.WARNING):
        predictor = inference.load_predictor(checkpoint, cache_dir=str(tmp_path / "cache"))
    assert predictor.runtime == "keras"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "model.keras in Keras" in warnings[0]
    assert "unsupported op" in warnings[0]
    np.testing.assert_array_equal(predictor.predict(red_image(RED)[None])[0], RED)
    with pytest.raises(
        inference.ModelError, match=r"model\.keras cannot run as TFLite.*unsupported op"
    ):
        inference.load_predictor(checkpoint, runtime="tflite", cache_dir=str(tmp_path / "cache"))


def test_an_unwritable_cache_runs_the_conversion_from_memory(tmp_path):
    checkpoint = _trained_at(tmp_path / "run", (8, 8))
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache directory would go")
    predictor = inference.load_predictor(checkpoint, cache_dir=str(blocked))
    assert predictor.runtime == "tflite"
    np.testing.assert_array_equal(predictor.predict(red_image(RED)[None])[0], RED)


def test_runtime_keras_never_converts(tmp_path, no_conversion):
    checkpoint = _trained_at(tmp_path / "run", (8, 8))
    predictor = inference.load_predictor(checkpoint, runtime="keras")
    assert predictor.runtime == "keras"
    assert isinstance(predictor.runner, runtimes.KerasRunner)
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


def test_a_damaged_cached_conversion_is_converted_again(tmp_path, caplog):
    checkpoint = _trained_at(tmp_path / "run", (8, 8))
    cache = str(tmp_path / "cache")
    inference.load_predictor(checkpoint, cache_dir=cache)
    converted = os.path.join(cache, "tflite", _cached(cache)[0])
    _damage(converted, "truncated")
    with caplog.at_level(logging.WARNING):
        again = inference.load_predictor(checkpoint, cache_dir=cache)
    assert "flatbuffer cannot be read" in caplog.text
    assert again.runtime == "tflite"
    assert loading.tflite_structure_error(converted) is None  # written anew
    np.testing.assert_array_equal(again.predict(red_image(RED)[None])[0], RED)
