"""The conversion a Keras model runs as: written where the model is written.

A Keras model whose configuration records its training size runs, in
`tf_enet.inference.load_predictor`, as its fixed-size float32 TFLite
conversion at that size (LiteRT with XNNPack, no TensorFlow), found beside
the model file as `artifacts.runtime_model_name(size)`. train.py writes it
at the end of a run, `tf_enet.presets.save_preset` with a preset, and
export.py when asked for that file (`--format tflite --height H --width W
--output <dir>/model_HxW.tflite`); loading never converts.
"""

import os

from tf_enet import artifacts, exporting, inference


def write_runtime_model(model_path, model=None):
    """Writes the fixed-size float32 TFLite conversion beside a Keras model.

    The conversion's configuration records the digest of the model file
    (`["export"]["source_sha256"]`), so a later model written over it is
    never run as its earlier conversion.

    Args:
        model_path: str. A checkpoint directory or a `.keras` file, with its
            configuration beside it.
        model: keras.Model or None. The model loaded from `model_path`, if
            at hand; else it is loaded.

    Returns:
        str (the .tflite file written), or None when the configuration
        records no training size (such a model runs in Keras at each
        image's size).

    Raises:
        ModelError: the model or its configuration cannot be read.
        ExportError: the conversion failed.
        OSError: the file cannot be written.
    """
    kind, model_file, config_file = inference.resolve_model_path(model_path)
    if kind != "keras":
        raise inference.ModelError(
            f"{model_path} is a {inference.loading.KIND_NAMES[kind]}; only a Keras "
            f"model has a TFLite conversion to write."
        )
    size = None if config_file is None else inference.training_size(_read(config_file))
    if size is None:
        return None
    config = inference.read_config(config_file)
    if model is None:
        model = inference.load_keras_model(model_path)[0]
    output = inference.runtime_model.runtime_model_path(model_file, size)
    return exporting.export_tflite(
        model,
        output,
        config,
        input_size=size,
        source=os.path.basename(model_file),
        source_sha256=inference.runtime_model.file_sha256(model_file),
    )


def _read(config_file):
    try:
        return artifacts.read_json(config_file)
    except (OSError, ValueError) as err:
        raise inference.ModelError(
            f"Cannot read model configuration {config_file}: {err}"
        ) from None
