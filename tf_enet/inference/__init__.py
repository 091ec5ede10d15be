"""Running trained ENet models: load any saved kind, predict, evaluate.

    from tf_enet import inference
    predictor = inference.load_predictor("checkpoints/enet_camvid")
    classes = predictor.predict(images)      # int32 [batch, height, width]
    results = inference.evaluate(predictor, dataset, "val")

`load_predictor` takes any of:

    checkpoint directory   train.py's: model.keras + config.json
    <name>.keras           a Keras model; classes from a config.json beside it
    SavedModel directory   export.py's; classes in assets/tf_enet_config.json
    <name>.tflite          export.py's; classes in <name>.tflite.json
    <name>.onnx            export.py's; classes in <name>.onnx.json (needs
                           onnxruntime: the `[onnx]` extra)
    preset name            a model shipped in the package, e.g. "enet_camvid"
                           (the default: `load_predictor()`)

Without a configuration the classes are named `class_0`, `class_1`, ... and
painted with a generic palette. Keras files load in safe mode, so a model
file can never run code. A model runs at the size it was trained at (the
configuration records it; images keep their aspect ratio, padded to it)
and its logits are resized to each image's size. A Keras model with a
training size runs at that size as the fixed-size TFLite conversion written
beside it (presets ship it; train.py and export.py write it);
`Predictor.runtime` says what runs, and `load_predictor(path,
runtime="keras")` keeps Keras. `load_predictor(path, tta="flip")` adds
test-time augmentation (off by default; see `Predictor`).

Running .tflite and .onnx files, presets and checkpoint directories with
their conversion needs no TensorFlow: this package imports it only to load
a Keras model or a SavedModel.

Modules:
    loading      resolving model paths, reading configurations, Keras files
    runtime_model  the TFLite conversion beside a Keras model file
    processing   resizing images and logits, aspect-ratio letterboxing
    runtimes     the TFLite (LiteRT) and ONNX runners
    tf_runtimes  the Keras and SavedModel runners (TensorFlow)
    predictor    `Predictor` and `load_predictor`
    files        image files and videos: finding, predicting, writing
    evaluation   the evaluation loop over a split, and `evaluate`
"""

from tf_enet.artifacts import (
    CONFIG_FILE,
    MODEL_FILE,
    SAVED_MODEL_CONFIG,
    SIDECAR_SUFFIX,
)
from tf_enet.inference.evaluation import confusion_matrix_of_split, evaluate, split_logits
from tf_enet.inference.files import (
    OUTPUT_SUFFIXES,
    OUTPUTS,
    FilePrediction,
    ImageList,
    VideoInfo,
    encode_prediction,
    find_images,
    output_stems,
    overlay,
    predict_files,
    predict_video,
    video_info,
    write_prediction,
)
from tf_enet.inference.loading import (
    DEFAULT_MODEL,
    GENERIC_IGNORE_INDEX,
    ModelError,
    dataset_options,
    default_palette,
    generic_info,
    load_keras_model,
    read_config,
    read_model_config,
    resolve_model_path,
    training_size,
)
from tf_enet.inference.predictor import (
    RUNTIMES,
    TTA_MODES,
    TTA_SCALES,
    XLA_BREAK_EVEN_IMAGES,
    Predictor,
    auto_jit_compile,
    load_predictor,
)
from tf_enet.inference.processing import resize_images, resize_logits

__all__ = [
    "RUNTIMES",
    "CONFIG_FILE",
    "DEFAULT_MODEL",
    "FilePrediction",
    "GENERIC_IGNORE_INDEX",
    "ImageList",
    "MODEL_FILE",
    "ModelError",
    "OUTPUTS",
    "OUTPUT_SUFFIXES",
    "Predictor",
    "SAVED_MODEL_CONFIG",
    "SIDECAR_SUFFIX",
    "TTA_MODES",
    "TTA_SCALES",
    "VideoInfo",
    "XLA_BREAK_EVEN_IMAGES",
    "auto_jit_compile",
    "confusion_matrix_of_split",
    "dataset_options",
    "default_palette",
    "encode_prediction",
    "evaluate",
    "find_images",
    "generic_info",
    "load_keras_model",
    "load_predictor",
    "output_stems",
    "overlay",
    "predict_files",
    "predict_video",
    "read_config",
    "read_model_config",
    "resize_images",
    "resize_logits",
    "resolve_model_path",
    "split_logits",
    "training_size",
    "video_info",
    "write_prediction",
]
