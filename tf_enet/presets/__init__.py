"""Pretrained models shipped inside the package, by name (presets).

    import tf_enet
    tf_enet.list_presets()                          # ("enet_camvid",)
    model = tf_enet.ENet.from_preset("enet_camvid")  # a keras.Model
    config = tf_enet.presets.load_config("enet_camvid")
    config["dataset"]["class_names"], config["dataset"]["palette"]

A preset is a directory in the run format of `tf_enet.artifacts`, holding
only what the trained model needs to run:

    model.keras    the architecture and inference weights (no optimizer
                   state), stored compressed
    config.json    the training run's configuration: the dataset's class
                   names, palette and ignore id, the input normalisation,
                   the architecture options and the training size
                   (`["train"]["height"]`, `["train"]["width"]`)
    model_HxW.tflite (+ .json)
                   the model converted to float32 TFLite at the training
                   size (H x W), with its configuration, which records the
                   digest of model.keras: what `load_predictor` runs at
                   that size, without TensorFlow

so `tf_enet.inference.load_predictor(preset_path(name))` reads it like a
training run's directory. Wherever a preset is asked for by name, a path to
such a directory works too (as keras-hub's `from_preset` takes both).
"""

import os
import tempfile
import zipfile

from tf_enet import artifacts

# The registry and the directories live with the rest of the format in
# `tf_enet.artifacts`, which model loading imports without this package.
PRESETS = artifacts.PRESETS
PRESET_FILES = artifacts.PRESET_FILES
DEFAULT_PRESET = artifacts.DEFAULT_PRESET
list_presets = artifacts.list_presets
preset_path = artifacts.preset_path


def model_file(preset):
    """The `model.keras` file of a preset (a name or a directory)."""
    return os.path.join(preset_path(preset), artifacts.MODEL_FILE)


def load_config(preset):
    """The configuration of a preset (a name or a directory).

    Returns:
        dict in the `tf_enet.artifacts.FORMAT` schema: "dataset" (class
        names, palette, ignore id), "input", "model" and "train".

    Raises:
        ValueError: unknown preset, or its `config.json` is unreadable.
    """
    path = os.path.join(preset_path(preset), artifacts.CONFIG_FILE)
    try:
        return artifacts.read_json(path)
    except (OSError, ValueError) as err:
        raise ValueError(f"Cannot read preset configuration {path}: {err}") from None


def save_preset(model, config, preset_dir):
    """Writes a preset: the model without optimizer state, and its config.

    The model is saved uncompiled, so no optimizer variables, loss or
    metrics travel with it, and its `.keras` archive is recompressed
    (Keras stores it uncompressed); it loads with `keras.saving.load_model`
    as any `.keras` file. When the configuration records the training size,
    the model's fixed-size float32 TFLite conversion at that size is
    written beside it (`tf_enet.conversions.write_runtime_model`).

    Args:
        model: keras.Model. The trained model.
        config: dict. Its configuration (`config.json` of its training run).
        preset_dir: str. The directory to write; created if missing, its
            `model.keras` and `config.json` replaced.

    Raises:
        ValueError: `config` lacks the "dataset" description a preset needs
            to run.
    """
    import keras

    if not isinstance(config, dict) or not isinstance(config.get("dataset"), dict):
        raise ValueError(
            'save_preset needs the model\'s configuration with its "dataset" '
            f"entry (class names, palette, ignore id); received {config!r:.80}."
        )
    os.makedirs(preset_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # Reloaded uncompiled, the model has no optimizer left to save.
        saved = os.path.join(tmp, "saved.keras")
        model.save(saved)
        uncompiled = os.path.join(tmp, artifacts.MODEL_FILE)
        keras.saving.load_model(saved, compile=False).save(uncompiled)
        artifacts.write_atomically(
            os.path.join(preset_dir, artifacts.MODEL_FILE),
            lambda path: _recompress(uncompiled, path),
        )
    artifacts.write_json(os.path.join(preset_dir, artifacts.CONFIG_FILE), config)
    # TensorFlow is loaded here only: presets are read without it.
    from tf_enet import conversions

    conversions.write_runtime_model(preset_dir, model)


def _recompress(source, target):
    """Copies a zip archive with every member deflated."""
    with (
        zipfile.ZipFile(source) as src,
        zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as dst,
    ):
        for info in src.infolist():
            member = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            member.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(member, src.read(info))
