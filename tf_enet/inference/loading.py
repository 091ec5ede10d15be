"""Finding and reading saved models: paths, kinds, configurations.

`resolve_model_path` says what a path holds; `read_config` reads the
configuration saved with a model (`tf_enet.artifacts` names the files);
`load_keras_model` loads a Keras ENet in safe mode, so a model file can
never run code. Corrupt files are reported as such, per kind.
`tf_enet.inference.runtime_model` finds the fixed-size TFLite conversion
written beside a Keras model file.

Nothing here imports TensorFlow, except `load_keras_model`, which loads
Keras when it is called.
"""

import importlib.util
import os
import zipfile

from absl import logging
from ai_edge_litert import schema_py_generated as schema

from tf_enet import artifacts
from tf_enet import data as data_lib
from tf_enet.defaults import install_hint
from tf_enet.errors import TfEnetError

# The shipped CamVid model (a preset inside the package), from any directory.
DEFAULT_MODEL = artifacts.DEFAULT_PRESET
# Ignore id of models without a configuration (class ids stay below it).
GENERIC_IGNORE_INDEX = 255
# The file identifier every TFLite flatbuffer carries at bytes 4-8.
TFLITE_IDENTIFIER = b"TFL3"

KIND_NAMES = {
    "keras": "Keras model (.keras)",
    "saved_model": "SavedModel",
    "tflite": "TFLite model",
    "onnx": "ONNX model",
}
_EXPECTED = (
    "a checkpoint directory (model.keras + config.json), a .keras file, "
    "a SavedModel directory, a .tflite/.onnx file or a preset name ("
    + ", ".join(artifacts.list_presets())
    + ")"
)


class ModelError(TfEnetError, ValueError):
    """A model path, file or configuration cannot be used; names the file."""


def invalid_model(path, kind, reason):
    """The ModelError for a file that is not a valid model of its kind.

    Args:
        path: str. The model file or directory.
        kind: str. A key of `KIND_NAMES`.
        reason: str. What is wrong, one line.

    Returns:
        ModelError.
    """
    return ModelError(f"{path} is not a valid {KIND_NAMES[kind]}: {reason}")


def first_line(error):
    """The first line of an exception's message (or its type name)."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def default_palette(num_classes):
    """Distinct colours for classes without a palette (the PASCAL VOC map).

    Class `c` gets colour `c + 1` of the VOC colour map, skipping its black,
    which `colorize` uses for ignored pixels.

    Returns:
        tuple of `num_classes` (R, G, B) int triples.
    """
    palette = []
    for index in range(1, num_classes + 1):
        rgb = [0, 0, 0]
        value = index
        for shift in range(7, -1, -1):
            for channel in range(3):
                rgb[channel] |= ((value >> channel) & 1) << shift
            value >>= 3
        palette.append(tuple(rgb))
    return tuple(palette)


def generic_info(num_classes):
    """DatasetInfo of a model without configuration: `class_0`, ..."""
    return data_lib.DatasetInfo(
        name="unknown",
        class_names=tuple(f"class_{c}" for c in range(num_classes)),
        palette=default_palette(num_classes),
        ignore_index=max(GENERIC_IGNORE_INDEX, num_classes),
    )


def read_config(path):
    """Reads a tf_enet configuration (config.json or an export's copy).

    Returns:
        dict with at least a valid "dataset" entry.

    Raises:
        ModelError: naming the file if it is unreadable or lacks the
            dataset description.
    """
    try:
        config = artifacts.read_json(path)
    except (OSError, ValueError) as err:
        raise ModelError(f"Cannot read model configuration {path}: {err}") from None
    if not isinstance(config, dict) or not isinstance(config.get("dataset"), dict):
        raise ModelError(
            f'Model configuration {path} has no "dataset" entry (class names, '
            f"palette, ignore id); expected train.py's config.json format."
        )
    try:
        data_lib.DatasetInfo.from_dict(config["dataset"])
    except (KeyError, TypeError, ValueError) as err:
        raise ModelError(
            f'Model configuration {path} has an invalid "dataset" entry: {err}'
        ) from None
    return config


def training_size(config):
    """The (height, width) a model was trained at, from its configuration.

    Args:
        config: dict or None.

    Returns:
        (int, int), or None when the configuration does not record it
        (see `artifacts.ModelDescription`).
    """
    return artifacts.ModelDescription.from_config(config).training_size


def dataset_options(config, dataset):
    """The `tf_enet.data.get_dataset` options a model was trained with.

    A folder dataset without a `val` folder holds out a share of its train
    images as "val" (`val_fraction`); opening it with the fraction recorded
    in the model's configuration holds out the same images, so a model is
    never scored on images it was trained on.

    Args:
        config: dict or None. The model's configuration.
        dataset: str. The dataset kind to open, e.g. "folder".

    Returns:
        dict of keyword arguments; empty when the configuration records
        none for this kind of dataset.
    """
    described = artifacts.ModelDescription.from_config(config)
    if described.dataset == dataset == "folder" and described.val_fraction is not None:
        return {"val_fraction": described.val_fraction}
    return {}


def read_model_config(path):
    """The configuration saved with a model, without loading the model.

    Args:
        path: str. Any model path `resolve_model_path` takes.

    Returns:
        dict, or None when the model has no configuration.

    Raises:
        ModelError: the path is not a model, or its configuration is
            unreadable.
    """
    _, _, config_file = resolve_model_path(path)
    return None if config_file is None else read_config(config_file)


def resolve_model_path(path):
    """Finds what kind of model `path` is.

    A shipped preset's name (`tf_enet.list_presets()`, e.g. "enet_camvid")
    stands for its directory inside the package, unless a file or
    directory of that name exists.

    Returns:
        (kind, model_file, config_file): kind is one of "keras",
        "saved_model", "tflite", "onnx"; config_file is None when there
        is none.

    Raises:
        ModelError: the path is missing or of no known kind.
    """
    path = os.fspath(path)
    if not os.path.exists(path) and path in artifacts.PRESETS:
        path = artifacts.preset_path(path)
    if not os.path.exists(path):
        raise ModelError(f"Model {path} not found; expected {_EXPECTED}.")
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "saved_model.pb")):
            config = os.path.join(path, "assets", artifacts.SAVED_MODEL_CONFIG)
            return "saved_model", path, _existing(config)
        model_file = os.path.join(path, artifacts.MODEL_FILE)
        if os.path.exists(model_file):
            config = os.path.join(path, artifacts.CONFIG_FILE)
            return "keras", model_file, _existing(config)
        encoder = os.path.join(path, artifacts.ENCODER_DIR, artifacts.MODEL_FILE)
        if os.path.exists(encoder):
            raise ModelError(
                f"{path} holds only the encoder stage of a training run ({encoder}, "
                "1/8-size logits); finish the run with train.py --stages full (or "
                "both) in that --checkpoint_dir, and use the directory then."
            )
        raise ModelError(
            f"{path} is a directory without {artifacts.MODEL_FILE} or "
            f"saved_model.pb; expected {_EXPECTED}."
        )
    ext = os.path.splitext(path)[1].lower()
    if ext == ".keras":
        beside = os.path.join(os.path.dirname(path), artifacts.CONFIG_FILE)
        return "keras", path, _existing(beside)
    if ext in (".tflite", ".onnx"):
        return ext[1:], path, _existing(path + artifacts.SIDECAR_SUFFIX)
    raise ModelError(
        f"Model {path} has an unknown file type {ext or '(none)'!r}; expected {_EXPECTED}."
    )


def _existing(path):
    return path if os.path.exists(path) else None


def check_tflite_file(path):
    """Refuses a file that is not a TFLite flatbuffer, before TFLite reads it.

    Raises:
        ModelError: the file is unreadable or lacks the "TFL3" identifier.
    """
    try:
        with open(path, "rb") as f:
            header = f.read(8)
    except OSError as err:
        raise ModelError(f"Cannot read {path}: {err.strerror}.") from None
    if header[4:8] != TFLITE_IDENTIFIER:
        raise invalid_model(
            path,
            "tflite",
            "it lacks the TFLite flatbuffer identifier "
            '"TFL3" (a corrupt or truncated file, or another format).',
        )
    damage = tflite_structure_error(path)
    if damage is not None:
        raise invalid_model(path, "tflite", damage)


def tflite_structure_error(path):
    """Why a TFLite file's flatbuffer cannot be read, or None if it can.

    TFLite's interpreter does not verify a file before reading it: a
    truncated or damaged model crashes the process (or exhausts memory)
    instead of raising. Reading the whole flatbuffer with LiteRT's Python
    schema first turns such damage into an exception.

    Args:
        path: str. A file that starts with the TFLite identifier.

    Returns:
        str or None.
    """
    try:
        with open(path, "rb") as f:
            schema.ModelT.InitFromPackedBuf(bytearray(f.read()), 0)
    except Exception as err:  # struct.error, TypeError, IndexError, ...
        return f"its flatbuffer cannot be read (a truncated or damaged file): {first_line(err)}"
    return None


def load_keras_model(path):
    """Loads a Keras ENet (checkpoint directory or .keras) in safe mode.

    Args:
        path: str. A checkpoint directory or a `.keras` file.

    Returns:
        (model, config, info): the `keras.Model`, its configuration dict
        (None without one) and its DatasetInfo (generic without one).

    Raises:
        ModelError: naming the file if it is not a valid Keras file, not a
            segmentation model or disagrees with its configuration.
    """
    kind, model_file, config_file = resolve_model_path(path)
    require_tensorflow(model_file)
    # Keras is imported here, not at the top: the rest of tf_enet.inference
    # runs without TensorFlow. tf_enet's model and loss register the
    # layers, model class and loss that .keras files name.
    import keras

    import tf_enet.losses  # noqa: F401
    import tf_enet.model  # noqa: F401

    if kind != "keras":
        raise ModelError(
            f"{path} is a {kind} model; this needs a Keras model (a checkpoint "
            f"directory or a .keras file)."
        )
    if not zipfile.is_zipfile(model_file):
        raise invalid_model(
            model_file,
            "keras",
            "it is not a zip archive (a corrupt or truncated file, or another format).",
        )
    try:
        model = keras.saving.load_model(model_file, compile=False, safe_mode=True)
    except Exception as err:  # Keras raises many types for a bad file.
        raise invalid_model(
            model_file,
            "keras",
            f"{_first_sentence(err)} (loaded in safe mode, so no code stored in the file runs)",
        ) from None
    if not isinstance(model, keras.Model):
        raise ModelError(f"{model_file} holds a {type(model).__name__}, not a model.")
    _check_segmentation_model(model, model_file)
    num_classes = int(model.outputs[0].shape[-1])
    config, info = config_and_info(config_file, num_classes, model_file)
    return model, config, info


def require_tensorflow(model_file, context="", alternative="run its .tflite conversion"):
    """Refuses, in one line naming the extra, a model that needs TensorFlow without it.

    Args:
        model_file: str. The Keras model or SavedModel, named in the message.
        context: str. When it runs in TensorFlow, e.g. " at another size
            than 360x480" (the size of its TFLite conversion).
        alternative: str. What runs without TensorFlow instead.

    Raises:
        ModelError: TensorFlow or Keras is not installed.
    """
    missing = [name for name in ("tensorflow", "keras") if not _installed(name)]
    if missing:
        raise ModelError(
            f"{model_file}{context} runs in TensorFlow, which is not installed "
            f"({', '.join(missing)} missing): {install_hint('train')}, or {alternative}."
        )


def _installed(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


def _first_sentence(error):
    """Keras errors go on to advise `safe_mode=False`, which tf_enet never uses."""
    line = first_line(error)
    sentence, dot, _ = line.partition(". ")
    return sentence + dot.strip()


def _check_segmentation_model(model, model_file):
    inputs, outputs = model.inputs, model.outputs
    in_shape = tuple(inputs[0].shape) if len(inputs) == 1 else None
    out_shape = tuple(outputs[0].shape) if len(outputs) == 1 else None
    if (
        in_shape is None
        or out_shape is None
        or len(in_shape) != 4
        or in_shape[-1] != 3
        or len(out_shape) != 4
        or out_shape[-1] is None
    ):
        received = f"{[tuple(t.shape) for t in inputs]} to {[tuple(t.shape) for t in outputs]}"
        raise ModelError(
            f"{model_file} is not an ENet segmentation model: it maps "
            f"{received}; expected [batch, height, width, 3] images to "
            f"[batch, height, width, classes] logits."
        )


def config_and_info(config_file, num_classes, model_file):
    """Reads the configuration and checks it against the model's classes.

    Args:
        config_file: str or None. The configuration beside the model.
        num_classes: int. The classes the model outputs.
        model_file: str. The model, for messages.

    Returns:
        (config, info): the configuration dict (None without a file) and
        its DatasetInfo (generic without a file).

    Raises:
        ModelError: the configuration is unreadable or lists another number
            of classes.
    """
    if config_file is None:
        logging.warning(
            "No configuration beside %s; naming its %d classes class_0... with a generic palette.",
            model_file,
            num_classes,
        )
        return None, generic_info(num_classes)
    config = read_config(config_file)
    info = data_lib.DatasetInfo.from_dict(config["dataset"])
    if info.num_classes != num_classes:
        raise ModelError(
            f"{model_file} outputs {num_classes} classes but its configuration "
            f"{config_file} lists {info.num_classes} ({info.name}); they must "
            f"come from the same run."
        )
    return config, info
