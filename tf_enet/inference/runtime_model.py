"""The fixed-size TFLite conversion a Keras model runs as, beside its file.

train.py (at the end of a run), export.py and `save_preset` write it (see
`tf_enet.conversions`); `load_predictor` finds it here and runs it without
TensorFlow. Nothing here converts.
"""

import hashlib
import os

from absl import logging

from tf_enet import artifacts
from tf_enet.inference import loading


def file_sha256(path):
    """The SHA-256 hex digest of a file's bytes.

    Raises:
        ModelError: the file cannot be read.
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as err:
        raise loading.ModelError(f"Cannot read {path}: {err.strerror}.") from None
    return digest.hexdigest()


def runtime_model_path(model_file, size):
    """Where the fixed-size TFLite conversion of a Keras model file goes.

    Args:
        model_file: str. The `.keras` file.
        size: (height, width). The model's training size.

    Returns:
        str. `artifacts.runtime_model_name(size)` beside `model_file`.
    """
    return os.path.join(os.path.dirname(model_file), artifacts.runtime_model_name(size))


def runtime_model_hint(model_file, size):
    """The command that writes a Keras model's fixed-size TFLite conversion.

    Args:
        model_file: str. The `.keras` file.
        size: (height, width). The model's training size.

    Returns:
        str. One sentence naming the tf-enet-export command.
    """
    return (
        f"write {artifacts.runtime_model_name(size)} beside it with tf-enet-export "
        f"--model {model_file} --format tflite --height {size[0]} --width {size[1]} "
        f"--output {runtime_model_path(model_file, size)}"
    )


def find_runtime_model(model_file, size):
    """The fixed-size float32 TFLite conversion written beside a Keras model.

    train.py (at the end of a run), export.py and `save_preset` write it
    as `artifacts.runtime_model_name(size)` with its configuration, which
    records the digest of the model file it was converted from. A
    conversion of another model file (the run went on, or the model was
    replaced) is logged and not used; a damaged one is refused when
    `runtimes.TFLiteRunner` opens it.

    Args:
        model_file: str. The `.keras` file.
        size: (height, width). The model's training size.

    Returns:
        str (the .tflite file) or None.
    """
    path = runtime_model_path(model_file, size)
    if not os.path.exists(path):
        return None
    try:
        with open(path, "rb") as f:
            identified = f.read(8)[4:8] == loading.TFLITE_IDENTIFIER
        source = artifacts.read_description(path + artifacts.SIDECAR_SUFFIX).source_sha256
    except (OSError, ValueError):
        identified, source = False, None
    if not identified or source is None:
        logging.warning("Ignoring %s: not a conversion written by tf_enet.", path)
        return None
    if source != file_sha256(model_file):
        logging.warning(
            "Ignoring %s: it was converted from an earlier %s. %s",
            path,
            os.path.basename(model_file),
            runtime_model_hint(model_file, size),
        )
        return None
    return path
