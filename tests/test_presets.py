"""The shipped presets: names, errors, contents, and the model they load."""

import json
import os
import zipfile

import cv2
import h5py
import keras
import numpy as np
import pytest

import tf_enet
from tf_enet import artifacts, exporting, inference, presets

from inference_helpers import pixel_model, red_image, run_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Each shipped preset, with the record of its training run in checkpoints/.
SHIPPED = ("enet_camvid", "enet_camvid_trainval")
SAMPLES = os.path.join(ROOT, "data", "samples")
PRESETS_DIR = os.path.dirname(os.path.abspath(presets.__file__))


def run_dir(preset):
    """The record of the training run a shipped preset came from."""
    return os.path.join(ROOT, "checkpoints", preset)


def _h5_groups_and_values(keras_file):
    """Top-level groups of the weights file and the number of stored values."""
    with zipfile.ZipFile(keras_file) as archive:
        with archive.open("model.weights.h5") as f, h5py.File(f, "r") as h5:
            values = []
            h5.visititems(
                lambda _, item: values.append(item.size) if isinstance(item, h5py.Dataset) else None
            )
            groups = {name for name in h5 if len(h5[name]) > 0}
            return groups, sum(values)


def _rgb(path):
    return cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)


def test_list_presets_names_every_shipped_directory():
    shipped = sorted(
        name
        for name in os.listdir(PRESETS_DIR)
        if os.path.isdir(os.path.join(PRESETS_DIR, name)) and name != "__pycache__"
    )
    assert tf_enet.list_presets() == SHIPPED
    assert list(tf_enet.list_presets()) == shipped
    for name in shipped:
        height, width = (presets.load_config(name)["train"][k] for k in ("height", "width"))
        assert sorted(os.listdir(presets.preset_path(name))) == [
            "config.json",
            "model.keras",
            f"model_{height}x{width}.tflite",
            f"model_{height}x{width}.tflite.json",
        ]


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"Unknown preset 'enet_cityscapes'.*enet_camvid"):
        presets.preset_path("enet_cityscapes")
    with pytest.raises(ValueError, match=r"Unknown preset 'enet'.*enet_camvid"):
        tf_enet.ENet.from_preset("enet")


def test_preset_directory_without_config_names_the_missing_file(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"")
    with pytest.raises(ValueError, match=r"has no config\.json"):
        presets.preset_path(tmp_path)


def test_corrupt_preset_model_is_one_line_naming_the_file(tmp_path):
    (tmp_path / "model.keras").write_bytes(os.urandom(1000))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match=r"model\.keras is not a valid Keras model file") as info:
        tf_enet.ENet.from_preset(str(tmp_path))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("preset", SHIPPED)
def test_preset_config_has_what_running_needs(preset):
    config = presets.load_config(preset)
    assert config["format"] == artifacts.FORMAT
    assert config["dataset"]["class_names"][:4] == ["Sky", "Building", "Pole", "Road"]
    assert len(config["dataset"]["class_names"]) == len(config["dataset"]["palette"]) == 11
    assert (config["train"]["height"], config["train"]["width"]) == (360, 480)


def test_the_train_val_preset_records_its_protocol():
    # Its figures on val are training figures: the config says so, and the
    # run kept the last epoch (a rule fixed before training), not the best.
    config = presets.load_config("enet_camvid_trainval")
    assert config["splits"]["splits"] == ["train", "val"]
    assert config["train"]["select"] == "last"
    assert config["init_from"]["model"] == "enet_camvid"
    with open(os.path.join(run_dir("enet_camvid_trainval"), "done.json")) as f:
        done = json.load(f)
    assert done["selection"] == "last" and done["epoch"] == done["epochs"] == 20
    # Same classes, palette and input as the model it continues.
    for key in ("dataset", "input", "model"):
        assert config[key] == presets.load_config("enet_camvid")[key]


@pytest.mark.parametrize("preset", SHIPPED)
def test_shipped_preset_holds_inference_weights_only(preset):
    path = presets.model_file(preset)
    groups, values = _h5_groups_and_values(path)
    # No "optimizer" group: only the layers' variables.
    assert groups == {"layers"}
    # Every stored value is one of the network's weights (including the
    # batch norms' moving statistics): 11 classes, the shipped options.
    options = presets.load_config(preset)["model"]
    assert values == tf_enet.build_enet(**options).count_params()
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        assert not json.loads(archive.read("config.json")).get("compile_config")
    assert os.path.getsize(path) < 1.6e6


@pytest.mark.parametrize("preset", SHIPPED)
def test_shipped_tflite_is_the_preset_model_converted_at_its_training_size(preset):
    preset = presets.preset_path(preset)
    tflite = os.path.join(preset, "model_360x480.tflite")
    # Its configuration names the very model.keras it was converted from.
    assert (
        inference.runtime_model.find_runtime_model(presets.model_file(preset), (360, 480)) == tflite
    ), "rewrite the preset's conversion with tf_enet.presets.save_preset"
    with open(tflite + ".json") as f:
        described = json.load(f)
    assert {k: v for k, v in described.items() if k != "export"} == presets.load_config(preset)
    # Float32 weights, uncompressed: about 4 bytes per parameter.
    assert os.path.getsize(tflite) < 1.6e6


@pytest.mark.slow
@pytest.mark.parametrize("preset", SHIPPED)
def test_shipped_tflite_equals_a_fresh_conversion(tmp_path, preset):
    model, config, _ = inference.load_keras_model(preset)
    fresh = exporting.export_tflite(
        model, str(tmp_path / "fresh.tflite"), config, input_size=(360, 480)
    )
    shipped = inference.runtimes.TFLiteRunner(
        os.path.join(presets.preset_path(preset), "model_360x480.tflite")
    )
    fresh = inference.runtimes.TFLiteRunner(fresh)
    for sample in sorted(os.listdir(SAMPLES)):
        image = _rgb(os.path.join(SAMPLES, sample))[None].astype(np.float32)
        # The same converter gives the same logits; a change of tf_enet.lite
        # may reorder float sums (logits span about +-30), never the labels.
        np.testing.assert_allclose(shipped(image), fresh(image), atol=1e-4)
        np.testing.assert_array_equal(np.argmax(shipped(image), -1), np.argmax(fresh(image), -1))


@pytest.mark.parametrize("preset", SHIPPED)
def test_run_directory_and_preset_ship_one_model(preset):
    # The run's model and the preset are the same file (one blob in git).
    for name in ("model.keras", "config.json"):
        with (
            open(os.path.join(run_dir(preset), name), "rb") as a,
            open(os.path.join(presets.preset_path(preset), name), "rb") as b,
        ):
            assert a.read() == b.read(), (
                f"checkpoints/{preset}/{name} and the {preset} preset differ; "
                "rewrite the preset with tf_enet.presets.save_preset"
            )


@pytest.mark.parametrize("preset", SHIPPED)
def test_run_directory_holds_no_training_state(preset):
    assert not os.path.exists(os.path.join(run_dir(preset), "backup"))
    assert not os.path.exists(os.path.join(run_dir(preset), "encoder", "backup"))
    assert not os.path.exists(os.path.join(run_dir(preset), "encoder", "model.keras"))


@pytest.mark.parametrize("preset", SHIPPED)
def test_from_preset_labels_equal_the_run_model(preset):
    model = tf_enet.ENet.from_preset(preset)
    assert type(model) is tf_enet.ENet
    reference = keras.saving.load_model(os.path.join(run_dir(preset), "model.keras"), compile=False)
    image = _rgb(os.path.join(SAMPLES, "0016E5_07959.jpg"))[None].astype(np.float32)
    labels = np.argmax(model(image, training=False), axis=-1)[0]  # [360, 480]
    np.testing.assert_array_equal(labels, np.argmax(reference(image, training=False), axis=-1)[0])
    # Read off the image: sky above the trees, the building on the left, the
    # parked car on the right, the road at the bottom.
    assert labels[40, 300] == 0  # Sky
    assert labels[100, 100] == 1  # Building
    assert labels[215, 385] == 8  # Car
    assert labels[330, 240] == 3  # Road


def test_a_preset_fine_tunes_in_a_build_enet_model_with_the_fused_batch_norm():
    # As the from_preset docstring says: same weights, same logits, and
    # tf_enet's batch norms where the preset file holds Keras's.
    preset = tf_enet.ENet.from_preset("enet_camvid")
    model = tf_enet.build_enet(11)
    copied = tf_enet.transfer_weights(preset, model)
    assert len(copied) == len([layer for layer in model.layers if layer.weights])
    assert any(type(layer) is keras.layers.BatchNormalization for layer in preset.layers)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(type(layer) is tf_enet.layers.BatchNormalization for layer in norms)
    image = _rgb(os.path.join(SAMPLES, "0016E5_07959.jpg"))[None].astype(np.float32)
    np.testing.assert_array_equal(model(image, training=False), preset(image, training=False))


def test_save_preset_drops_the_optimizer_and_round_trips(tmp_path):
    model = tf_enet.build_enet(3)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)  # as after a training step
    plain = tmp_path / "plain.keras"
    model.save(plain)
    assert _h5_groups_and_values(plain)[0] == {"layers", "optimizer"}  # what is dropped

    config = {"format": artifacts.FORMAT, "dataset": {"class_names": ["a", "b", "c"]}}
    presets.save_preset(model, config, str(tmp_path / "preset"))
    groups, values = _h5_groups_and_values(tmp_path / "preset" / "model.keras")
    assert groups == {"layers"} and values == model.count_params()
    assert presets.load_config(str(tmp_path / "preset")) == config
    loaded = tf_enet.ENet.from_preset(str(tmp_path / "preset"))
    images = np.random.RandomState(0).uniform(0, 255, (1, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(
        loaded(images, training=False), model(images, training=False), atol=1e-6
    )


def test_save_preset_writes_the_conversion_predictors_run(tmp_path):
    model = pixel_model(3)
    config = {**run_config(), "train": {"height": 8, "width": 8}}
    presets.save_preset(model, config, str(tmp_path / "preset"))
    assert sorted(os.listdir(tmp_path / "preset")) == [
        "config.json",
        "model.keras",
        "model_8x8.tflite",
        "model_8x8.tflite.json",
    ]
    predictor = inference.load_predictor(str(tmp_path / "preset"))
    # The preset's own conversion runs.
    assert predictor.runtime == "tflite"
    assert predictor.runner.fixed.path == str(tmp_path / "preset" / "model_8x8.tflite")
    red = np.tile([0, 1, 2, 1], (8, 2))
    np.testing.assert_array_equal(predictor.predict(red_image(red)[None])[0], red)


def test_save_preset_needs_the_dataset_description(tmp_path):
    with pytest.raises(ValueError, match=r'"dataset" entry'):
        presets.save_preset(keras.Sequential(), {"model": {}}, str(tmp_path))
