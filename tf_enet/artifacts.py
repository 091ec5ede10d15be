"""The run and export format: file names, the config schema, JSON I/O.

Every file tf_enet writes or reads beside a model is named here, and every
JSON file goes through `write_json`, so the format has one owner (as
keras-hub's `preset_utils` owns a preset's files).

A training run's directory (`train.py --checkpoint_dir`):

    config.json     `FORMAT`: every option, the dataset's classes, palette
                    and ignore id, the class weights, the input normalisation
    model.keras     the best full model
    best.json       its epoch, validation scores and logit adjustment
    done.json       written when a stage has finished
    history.csv     per-epoch losses and scores
    backup/         weights and optimizer state of the last epoch (resume)
    encoder/        the same files for the encoder stage
    logs/           TensorBoard

An export (`export.py`) carries the same configuration: a SavedModel in
`assets/tf_enet_config.json`, a single-file model (`.tflite`, `.onnx`) in
`<file>.json` beside it.

All JSON is strict (RFC 8259): a non-finite float (a mean IoU over a split
without labelled pixels, say) is written as `null`.
"""

import dataclasses
import json
import math
import os
import uuid

FORMAT = "tf_enet/1"
CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
BEST_FILE = "best.json"
DONE_FILE = "done.json"
HISTORY_FILE = "history.csv"
BACKUP_DIR = "backup"
ENCODER_DIR = "encoder"
LOGS_DIR = "logs"
# Everything a training run writes into its directory; `--overwrite` removes
# these, and nothing else, before starting another run there.
RUN_FILES = (
    CONFIG_FILE,
    MODEL_FILE,
    BEST_FILE,
    DONE_FILE,
    HISTORY_FILE,
    BACKUP_DIR,
    ENCODER_DIR,
    LOGS_DIR,
)


def runtime_model_name(size):
    """File name of a Keras model's fixed-size TFLite conversion: `model_HxW.tflite`.

    Written beside `MODEL_FILE` by train.py, export.py and `save_preset`,
    at the training size; what `tf_enet.inference.load_predictor` runs.

    Args:
        size: (height, width).
    """
    return f"model_{int(size[0])}x{int(size[1])}.tflite"


# Where an exported SavedModel keeps the configuration.
SAVED_MODEL_CONFIG = "tf_enet_config.json"
# The configuration of a single-file model: "<model path>.json".
SIDECAR_SUFFIX = ".json"
# What `export.py` writes: formats, TFLite quantizations, the int8
# activation ranges (see `tf_enet.lite.calibrated_ranges`) and input types.
EXPORT_FORMATS = ("saved_model", "tflite", "onnx")
QUANTIZATIONS = ("float16", "int8")
INT8_RANGES = ("mean", "minmax")
INT8_INPUTS = ("uint8", "int8")

# The pretrained models shipped in the package (`tf_enet.presets`): name ->
# description. Each name is a directory of this module's presets/ folder.
PRESETS = {
    "enet_camvid": (
        "ENet trained on CamVid (11 classes, 360x480 images): 67.9 mean IoU on the val split."
    ),
    "enet_camvid_trainval": (
        "enet_camvid continued for 20 epochs on CamVid train+val, the last epoch kept "
        "(val is training data: no held-out figure)."
    ),
}
PRESET_FILES = (MODEL_FILE, CONFIG_FILE)
# What prediction, evaluation and export use when no model is named.
DEFAULT_PRESET = "enet_camvid"

# The one name of the mean intersection over union, in logs, JSON and
# tables; the validation value carries Keras's "val_" prefix.
MEAN_IOU = "mean_iou"
VAL_MEAN_IOU = "val_" + MEAN_IOU
# Names earlier versions wrote for the same value (best.json, history.csv).
_OLD_MEAN_IOU_NAMES = {
    "miou": MEAN_IOU,
    "val_miou": VAL_MEAN_IOU,
    "best_val_miou": "best_" + VAL_MEAN_IOU,
}


def renamed_metric(name):
    """The current name of a metric name an earlier version wrote.

    Args:
        str. A key of `best.json`/`done.json` or a `history.csv` column.

    Returns:
        str. `name` with "miou" spelled as `MEAN_IOU`; other names unchanged.
    """
    return _OLD_MEAN_IOU_NAMES.get(name, name)


def _positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _size(value):
    """(height, width) from a [height, width] of positive ints, else None."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(map(_positive_int, value)):
        return tuple(value)
    return None


@dataclasses.dataclass(frozen=True)
class ModelDescription:
    """What a configuration says about running its model, typed.

    Read from a run's `config.json` (train.py writes the training options
    under "train") or an export's description (the same, plus "export").
    Unrecorded or malformed entries are None.

    Args:
        training_size: (height, width) the model was trained at
            (`["train"]["height"]`, `["train"]["width"]`).
        dataset: str. The dataset kind trained on (`["train"]["dataset"]`).
        val_fraction: float. The share of a folder dataset's training
            images held out as val (`["train"]["val_fraction"]`).
        input_size: (height, width) an export takes, if fixed
            (`["export"]["input_size"]`).
        quantization: str. An export's quantization, "none", "float16" or
            "int8" (`["export"]["quantize"]`).
        source_sha256: str. The digest of the Keras model file an export
            was converted from (`["export"]["source_sha256"]`).
    """

    training_size: tuple = None
    dataset: str = None
    val_fraction: float = None
    input_size: tuple = None
    quantization: str = None
    source_sha256: str = None

    @classmethod
    def from_config(cls, config):
        """The description of a configuration dict (None: all unrecorded)."""
        config = config if isinstance(config, dict) else {}
        train = config.get("train") if isinstance(config.get("train"), dict) else {}
        export = config.get("export") if isinstance(config.get("export"), dict) else {}
        fraction = train.get("val_fraction")
        return cls(
            training_size=_size([train.get("height"), train.get("width")]),
            dataset=train.get("dataset") if isinstance(train.get("dataset"), str) else None,
            val_fraction=fraction if isinstance(fraction, (int, float)) else None,
            input_size=_size(export.get("input_size")),
            quantization=export.get("quantize"),
            source_sha256=export.get("source_sha256"),
        )


def read_description(path):
    """The `ModelDescription` of a configuration file.

    Raises:
        OSError: the file cannot be read.
        ValueError: it is not JSON.
    """
    return ModelDescription.from_config(read_json(path))


def list_presets():
    """The names of the shipped presets.

    Returns:
        tuple of str, sorted.
    """
    return tuple(sorted(PRESETS))


def preset_path(preset):
    """The directory of a preset.

    Args:
        preset: str or path-like. A shipped preset's name (see
            `list_presets`) or a directory holding `model.keras` and
            `config.json`.

    Returns:
        str. The preset's directory.

    Raises:
        ValueError: `preset` is neither a shipped name nor such a directory;
            the message lists the shipped names.
    """
    preset = os.fspath(preset)
    if preset in PRESETS:
        return os.path.join(os.path.dirname(os.path.abspath(__file__)), "presets", preset)
    if os.path.isdir(preset):
        missing = [name for name in PRESET_FILES if not os.path.isfile(os.path.join(preset, name))]
        if not missing:
            return preset
        raise ValueError(
            f"Preset directory {preset} has no {' or '.join(missing)}; a "
            f"preset holds {' and '.join(PRESET_FILES)}."
        )
    raise ValueError(
        f"Unknown preset {preset!r}; the shipped presets are: "
        f"{', '.join(list_presets())} (or pass a directory holding "
        f"{' and '.join(PRESET_FILES)})."
    )


def write_atomically(path, write):
    """Calls `write(tmp_path)` and renames the result to `path` in one step.

    The directory is created if missing. A reader never sees a half-written
    file, and a failed `write` leaves `path` as it was.

    Args:
        path: str. The file to write.
        write: callable taking the temporary path (in the same directory,
            with the same extension) and creating the file there.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    # `write` creates the file, so it gets the permissions of any new file
    # (mkstemp's would be 0600: unreadable to a server running as another user).
    tmp_path = os.path.join(directory, f".tmp-{uuid.uuid4().hex}{suffix}")
    try:
        write(tmp_path)
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


def to_strict_json(value):
    """`value` with every non-finite float replaced by None (JSON null).

    Args:
        value: nested dicts, lists and tuples of JSON-compatible values;
            NumPy scalars are converted with `.item()`.

    Returns:
        The same structure, serialisable with `allow_nan=False`.
    """
    if isinstance(value, dict):
        return {str(k): to_strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_strict_json(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path, value):
    """Writes `value` as strict, indented JSON to `path`, atomically.

    Args:
        path: str. The file; its directory is created if missing.
        value: JSON-compatible structure; non-finite floats become null.
    """
    text = json.dumps(to_strict_json(value), indent=2, sort_keys=True, allow_nan=False) + "\n"

    def write(tmp_path):
        with open(tmp_path, "w", encoding="utf-8") as f:
            f.write(text)

    write_atomically(path, write)


def read_json(path):
    """The JSON value in `path` (NaN written by earlier versions reads as NaN).

    Raises:
        OSError: the file cannot be read.
        ValueError: it is not JSON.
    """
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def ensure_writable_file(path, what):
    """Creates the directory of `path` and checks a file can be written there.

    Called before long work whose result goes to `path`, so that the result
    is never lost to a missing directory or a permission.

    Args:
        path: str. The output file.
        what: str. The option or role named in errors, e.g. "--output_json".

    Raises:
        OSError: with a message naming `what` and `path` and the reason.
    """
    ensure_writable_dir(os.path.dirname(os.path.abspath(path)), what)
    if os.path.isdir(path):
        raise OSError(f"{what} {path} is a directory; expected a file path.")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise OSError(f"{what} {path} exists and is not writable.")


def ensure_writable_dir(path, what):
    """Creates directory `path` if missing and checks files can be made in it.

    Args:
        path: str. The output directory.
        what: str. The option or role named in errors, e.g. "--output_dir".

    Raises:
        OSError: with a message naming `what` and `path` and the reason.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise OSError(f"{what} {path} is a file, not a directory.")
    try:
        os.makedirs(path, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OSError(f"{what} {path}: a part of the path is a file, not a directory.") from None
    except OSError as error:
        raise OSError(f"{what} {path}: cannot create the directory ({error.strerror}).") from None
    probe = os.path.join(path, f".tmp-{uuid.uuid4().hex}")
    try:
        with open(probe, "w", encoding="utf-8"):
            pass
        os.remove(probe)
    except OSError as error:
        raise OSError(f"{what} {path}: cannot write there ({error.strerror}).") from None
