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
                           onnxruntime)

Without a configuration the classes are named `class_0`, `class_1`, ... and
painted with a generic palette. Keras files load in safe mode, so a model
file can never run code.
"""

import collections
import dataclasses
import glob
import json
import os
import warnings

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tf_enet import data as data_lib
from tf_enet import metrics as metrics_lib

DEFAULT_MODEL = os.path.join("checkpoints", "enet_camvid")
CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
# Where export.py stores the configuration inside a SavedModel.
SAVED_MODEL_CONFIG = "tf_enet_config.json"
# Sidecar of a single-file model (.tflite, .onnx): "<model path>.json".
SIDECAR_SUFFIX = ".json"
# Ignore id of models without a configuration (class ids stay below it).
GENERIC_IGNORE_INDEX = 255
# On 2 CPU cores, XLA runs 360x480 ENet in 33 ms instead of 53 ms, but its
# first call for every new input shape takes ~3.3 s instead of ~2.0 s: it
# pays off from about 60 images of one size (see `auto_jit_compile`).
XLA_BREAK_EVEN_IMAGES = 60

_EXPECTED = (
    "a checkpoint directory (model.keras + config.json), a .keras file, "
    "a SavedModel directory or a .tflite/.onnx file"
)


class ModelError(ValueError):
    """A model path, file or configuration cannot be used; names the file."""


def auto_jit_compile(num_images):
    """Whether XLA is worth its compile time for `num_images` of one size."""
    return num_images >= XLA_BREAK_EVEN_IMAGES


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
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as err:
        raise ModelError(f"Cannot read model configuration {path}: {err}") from None
    if not isinstance(config, dict) or not isinstance(config.get("dataset"), dict):
        raise ModelError(
            f"Model configuration {path} has no \"dataset\" entry (class names, "
            f"palette, ignore id); expected train.py's config.json format."
        )
    try:
        data_lib.DatasetInfo.from_dict(config["dataset"])
    except (KeyError, TypeError, ValueError) as err:
        raise ModelError(
            f"Model configuration {path} has an invalid \"dataset\" entry: "
            f"{err}"
        ) from None
    return config


def resolve_model_path(path):
    """Finds what kind of model `path` is.

    Returns:
        (kind, model_file, config_file): kind is one of "keras",
        "saved_model", "tflite", "onnx"; config_file is None when there
        is none.

    Raises:
        ModelError: the path is missing or of no known kind.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        if os.path.normpath(path) == DEFAULT_MODEL:
            raise ModelError(
                f"The pretrained CamVid model {DEFAULT_MODEL} is not there "
                f"(yet); pass --model with {_EXPECTED}."
            )
        raise ModelError(f"Model {path} not found; expected {_EXPECTED}.")
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "saved_model.pb")):
            config = os.path.join(path, "assets", SAVED_MODEL_CONFIG)
            return "saved_model", path, config if os.path.exists(config) else None
        model_file = os.path.join(path, MODEL_FILE)
        if os.path.exists(model_file):
            return "keras", model_file, _existing(os.path.join(path, CONFIG_FILE))
        raise ModelError(
            f"{path} is a directory without {MODEL_FILE} or saved_model.pb; "
            f"expected {_EXPECTED}."
        )
    ext = os.path.splitext(path)[1].lower()
    if ext == ".keras":
        beside = os.path.join(os.path.dirname(path), CONFIG_FILE)
        return "keras", path, _existing(beside)
    if ext in (".tflite", ".onnx"):
        return ext[1:], path, _existing(path + SIDECAR_SUFFIX)
    raise ModelError(
        f"Model {path} has an unknown file type {ext or '(none)'!r}; "
        f"expected {_EXPECTED}."
    )


def _existing(path):
    return path if os.path.exists(path) else None


def load_keras_model(path):
    """Loads a Keras ENet (checkpoint directory or .keras) in safe mode.

    Args:
        path: str. A checkpoint directory or a `.keras` file.

    Returns:
        (model, config, info): the `keras.Model`, its configuration dict
        (None without one) and its DatasetInfo (generic without one).

    Raises:
        ModelError: naming the file if it is not a Keras segmentation model
            or disagrees with its configuration.
    """
    kind, model_file, config_file = resolve_model_path(path)
    if kind != "keras":
        raise ModelError(
            f"{path} is a {kind} model; this needs a Keras model (a checkpoint "
            f"directory or a .keras file)."
        )
    try:
        model = keras.saving.load_model(model_file, compile=False, safe_mode=True)
    except Exception as err:  # Keras raises many types for a bad file.
        raise ModelError(
            f"Cannot load {model_file} as a Keras model (safe mode, so no "
            f"code stored in the file runs): {_first_sentence(err)}"
        ) from None
    if not isinstance(model, keras.Model):
        raise ModelError(f"{model_file} holds a {type(model).__name__}, not a model.")
    _check_segmentation_model(model, model_file)
    num_classes = int(model.outputs[0].shape[-1])
    config, info = _config_and_info(config_file, num_classes, model_file)
    return model, config, info


def _first_line(error):
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _first_sentence(error):
    """Keras errors go on to advise `safe_mode=False`, which tf_enet never uses."""
    line = _first_line(error)
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
        received = (
            f"{[tuple(t.shape) for t in inputs]} to "
            f"{[tuple(t.shape) for t in outputs]}"
        )
        raise ModelError(
            f"{model_file} is not an ENet segmentation model: it maps "
            f"{received}; expected [batch, height, width, 3] images to "
            f"[batch, height, width, classes] logits."
        )


def _config_and_info(config_file, num_classes, model_file):
    """Reads the configuration and checks it against the model's classes."""
    if config_file is None:
        logging.warning(
            "No configuration beside %s; naming its %d classes class_0... "
            "with a generic palette.", model_file, num_classes,
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


class Predictor:
    """Segments images with a loaded model of any kind.

    Built by `load_predictor`. Images are RGB, float or uint8, in [0, 255];
    all preprocessing happens inside the models.

    Args:
        runner: callable mapping float32 images `[batch, height, width, 3]`
            to float32 logits `[batch, height, width, num_classes]`.
        info: DatasetInfo. Class names, palette and ignore id.
        config: dict or None. The model's configuration.
        path: str. The model's path, for messages.
        kind: str. "keras", "saved_model", "tflite" or "onnx".
    """

    def __init__(self, runner, info, config, path, kind):
        self.runner = runner
        self.info = info
        self.config = config
        self.path = path
        self.kind = kind

    @property
    def num_classes(self):
        return self.info.num_classes

    @property
    def input_size(self):
        """(height, width) the model was exported for, or None (any size)."""
        return getattr(self.runner, "input_size", None)

    def logits(self, images):
        """Runs the model.

        Args:
            images: array-like `[batch, height, width, 3]`, RGB in [0, 255].

        Returns:
            np.ndarray float32 `[batch, height, width, num_classes]`.
        """
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(
                f"Expected images of shape [batch, height, width, 3]; received "
                f"{images.shape}."
            )
        return self.runner(images)

    def predict(self, images, *, input_size=None, output_size=None):
        """Predicts class ids, optionally at another resolution.

        Args:
            images: array-like `[batch, height, width, 3]`, RGB in [0, 255].
            input_size: (height, width) or None. Images are resized
                (bilinear) to this size before the model; None uses the
                model's fixed input size if it has one (`input_size`).
            output_size: (height, width) or None. Logits are resized
                (bilinear) to this size before the argmax; None keeps the
                images' own size.

        Returns:
            np.ndarray int32 `[batch, out_height, out_width]`.
        """
        images = np.asarray(images, np.float32)
        size = tuple(images.shape[1:3])
        output_size = tuple(output_size) if output_size is not None else size
        if input_size is None:
            input_size = self.input_size
        if input_size is not None and tuple(input_size) != size:
            images = tf.image.resize(images, input_size, method="bilinear").numpy()
        logits = self.logits(images)  # [batch, h, w, num_classes]
        if tuple(logits.shape[1:3]) != output_size:
            logits = tf.image.resize(logits, output_size, method="bilinear")
        return tf.argmax(logits, axis=-1, output_type=tf.int32).numpy()


def load_predictor(path=DEFAULT_MODEL, *, jit_compile=False):
    """Loads a model of any kind for prediction.

    Args:
        path: str. See the module docstring for the kinds.
        jit_compile: bool. XLA-compile Keras and SavedModel models; exact
            and faster per image, but compiles once per input shape (see
            `auto_jit_compile`).

    Returns:
        Predictor.

    Raises:
        ModelError: naming the file if the path is missing, not a model, or
            disagrees with its configuration.
    """
    path = os.fspath(path)
    kind, model_file, config_file = resolve_model_path(path)
    if kind == "keras":
        model, config, info = load_keras_model(path)
        runner = _keras_runner(model, jit_compile)
        return Predictor(runner, info, config, model_file, kind)
    loaders = {
        "saved_model": lambda: _SavedModelRunner(model_file, jit_compile),
        "tflite": lambda: _TFLiteRunner(model_file),
        "onnx": lambda: _OnnxRunner(model_file),
    }
    runner = loaders[kind]()
    config, info = _config_and_info(config_file, runner.num_classes, model_file)
    return Predictor(runner, info, config, model_file, kind)


def _keras_runner(model, jit_compile):
    spec = tf.TensorSpec([None, None, None, 3], tf.float32)
    call = tf.function(
        lambda images: model(images, training=False),
        input_signature=[spec],
        jit_compile=jit_compile,
    )
    return lambda images: call(images).numpy()


class _SavedModelRunner:
    """Runs the `logits` function of a SavedModel written by export.py."""

    def __init__(self, path, jit_compile):
        try:
            loaded = tf.saved_model.load(path)
        except Exception as err:  # TensorFlow raises many types here.
            raise ModelError(
                f"Cannot load SavedModel {path}: {_first_line(err)}"
            ) from None
        function = getattr(loaded, "logits", None)
        if function is None:
            raise ModelError(
                f"SavedModel {path} has no `logits` function, so export.py did "
                f"not write it; export the Keras model with export.py."
            )
        spec = tf.TensorSpec([None, None, None, 3], tf.float32)
        concrete = function.get_concrete_function(spec)
        self.num_classes = int(concrete.structured_outputs["logits"].shape[-1])
        self._loaded = loaded  # Keeps the variables alive.
        self._call = tf.function(
            lambda images: function(images)["logits"],
            input_signature=[spec],
            jit_compile=jit_compile,
        )

    def __call__(self, images):
        return self._call(tf.constant(images)).numpy()


def _quantize(values, detail):
    scale, zero_point = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    values = np.round(values / scale + zero_point)
    return np.clip(values, info.min, info.max).astype(detail["dtype"])


class _TFLiteRunner:
    """Runs a .tflite model, resizing its input to each batch's shape.

    A model exported with a fixed input size (`input_size`, batch 1) takes
    only images of that size, run one at a time.

    Quantized (uint8/int8) inputs are quantized here and quantized outputs
    dequantized, so callers always see float pixels and float logits.
    """

    def __init__(self, path):
        with warnings.catch_warnings():
            # tf.lite.Interpreter warns that it moves to ai_edge_litert.
            warnings.simplefilter("ignore")
            try:
                self._interpreter = tf.lite.Interpreter(
                    model_path=path, num_threads=os.cpu_count()
                )
            except (ValueError, RuntimeError) as err:
                raise ModelError(
                    f"Cannot load {path} as a TFLite model: {_first_line(err)}"
                ) from None
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if (
            len(inputs) != 1
            or len(outputs) != 1
            or len(inputs[0]["shape"]) != 4
            or inputs[0]["shape"][-1] != 3
            or len(outputs[0]["shape"]) != 4
        ):
            raise ModelError(
                f"{path} is not an ENet segmentation model: expected one "
                f"[batch, height, width, 3] input and one [batch, height, "
                f"width, classes] output."
            )
        self.num_classes = int(outputs[0]["shape"][-1])
        self._input_index = inputs[0]["index"]
        self._shape = None
        self._path = path
        batch, height, width, _ = (int(v) for v in inputs[0]["shape_signature"])
        # export_tflite(..., input_size=...) fixes the input to [1, h, w, 3].
        self.input_size = None if height < 0 or width < 0 else (height, width)
        self._single_image = batch == 1

    def __call__(self, images):
        if self.input_size is not None and tuple(images.shape[1:3]) != self.input_size:
            raise ModelError(
                f"{self._path} was exported for {self.input_size[0]}x"
                f"{self.input_size[1]} images; received "
                f"{images.shape[1]}x{images.shape[2]}. Predictor.predict "
                f"resizes images to it."
            )
        if self._single_image and len(images) != 1:
            return np.concatenate([self(image[None]) for image in images])
        interpreter = self._interpreter
        if self._shape != images.shape:
            interpreter.resize_tensor_input(self._input_index, list(images.shape))
            interpreter.allocate_tensors()
            self._shape = images.shape
        detail = interpreter.get_input_details()[0]
        if detail["dtype"] != np.float32:
            images = _quantize(images, detail)
        interpreter.set_tensor(self._input_index, images)
        interpreter.invoke()
        detail = interpreter.get_output_details()[0]
        logits = interpreter.get_tensor(detail["index"])
        if detail["dtype"] != np.float32:
            scale, zero_point = detail["quantization"]
            logits = (logits.astype(np.float32) - zero_point) * scale
        return logits


class _OnnxRunner:
    """Runs an .onnx model exported by export.py with onnxruntime."""

    def __init__(self, path):
        try:
            import onnxruntime  # pylint: disable=import-outside-toplevel
        except ImportError:
            raise ModelError(
                f"Running {path} needs onnxruntime: pip install onnxruntime."
            ) from None
        try:
            self._session = onnxruntime.InferenceSession(
                path, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own types.
            raise ModelError(
                f"Cannot load {path} as an ONNX model: {_first_line(err)}"
            ) from None
        inputs = self._session.get_inputs()
        outputs = self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1 or len(outputs[0].shape) != 4:
            raise ModelError(
                f"{path} is not an ENet segmentation model: expected one input "
                f"and one [batch, height, width, classes] output."
            )
        self.num_classes = int(outputs[0].shape[-1])
        self._input_name = inputs[0].name

    def __call__(self, images):
        return self._session.run(None, {self._input_name: images})[0]


def overlay(image, classes, palette, alpha=0.5):
    """Blends the colours of a label map over its image.

    Args:
        image: np.ndarray uint8 `[height, width, 3]`, RGB.
        classes: np.ndarray int `[height, width]`.
        palette: sequence of (R, G, B).
        alpha: float in [0, 1]. Weight of the colours.

    Returns:
        np.ndarray uint8 `[height, width, 3]`, RGB.
    """
    colors = data_lib.colorize(classes, palette).astype(np.float32)
    blended = (1 - alpha) * image.astype(np.float32) + alpha * colors
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class ImageList:
    """Image files found from command-line inputs, by `find_images`.

    Args:
        paths: list of str. Files to predict, in the order given
            (directories sorted).
        skipped: list of str. Files in the given directories that are not
            images.
        unmatched: list of str. Inputs that are neither a file, a
            directory nor a glob matching anything.
    """

    paths: list
    skipped: list
    unmatched: list


def find_images(inputs):
    """Expands files, directories and glob patterns into image files.

    A directory contributes its image files (`.png`, `.jpg`, `.jpeg`,
    `.bmp`, not recursively); its other files are listed as skipped. Files
    named explicitly are kept whatever their extension, so a file that is
    not an image fails when read, with its name.

    Args:
        inputs: iterable of str.

    Returns:
        ImageList.
    """
    paths, skipped, unmatched = [], [], []
    for item in inputs:
        if os.path.isdir(item):
            for entry in sorted(os.scandir(item), key=lambda e: e.name):
                if not entry.is_file() or entry.name.startswith("."):
                    continue
                ext = os.path.splitext(entry.name)[1].lower()
                (paths if ext in data_lib.base.IMAGE_EXTENSIONS else skipped).append(
                    entry.path
                )
        elif os.path.isfile(item):
            paths.append(item)
        elif glob.has_magic(item):
            matches = sorted(p for p in glob.glob(item) if os.path.isfile(p))
            if matches:
                paths.extend(matches)
            else:
                unmatched.append(item)
        else:
            unmatched.append(item)
    unique = list(dict.fromkeys(paths))  # A file given twice runs once.
    return ImageList(unique, skipped, unmatched)


@dataclasses.dataclass(frozen=True)
class FilePrediction:
    """The result for one file of `predict_files`.

    Args:
        path: str. The input file.
        image: np.ndarray uint8 `[height, width, 3]` RGB, or None on error.
        classes: np.ndarray int32 `[height, width]`, or None on error.
        error: str or None. Why the file could not be used.
    """

    path: str
    image: np.ndarray = None
    classes: np.ndarray = None
    error: str = None


def predict_files(predictor, paths, *, batch_size=1, input_size=None):
    """Predicts image files, batching images of equal size.

    Images are decoded one at a time and gathered per size; a batch runs
    when `batch_size` images of one size are waiting, and the remaining
    partial batches at the end. Results therefore come in batches, not in
    the order of `paths`.

    Args:
        predictor: Predictor.
        paths: iterable of str.
        batch_size: int. Images per model call.
        input_size: (height, width) or None. See `Predictor.predict`; the
            classes always have the image's own size.

    Yields:
        FilePrediction, one per path; unreadable files carry `error`.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"`batch_size` must be a positive integer; received {batch_size!r}."
        )
    waiting = collections.OrderedDict()  # (height, width) -> [(path, image)]

    def run(batch):
        images = np.stack([image for _, image in batch])
        classes = predictor.predict(images, input_size=input_size)
        for (path, image), labels in zip(batch, classes):
            yield FilePrediction(path, image, labels)

    for path in paths:
        try:
            image = data_lib.decode_image_file(path)
        except data_lib.DatasetError as err:
            yield FilePrediction(path, error=str(err))
            continue
        batch = waiting.setdefault(image.shape[:2], [])
        batch.append((path, image))
        if len(batch) == batch_size:
            del waiting[image.shape[:2]]
            yield from run(batch)
    for batch in waiting.values():
        yield from run(batch)


def evaluate(
    predictor,
    dataset,
    split="test",
    *,
    batch_size=1,
    height=None,
    width=None,
    limit=None,
    on_batch=None,
):
    """Scores a model on a labelled split at full label resolution.

    One confusion matrix is accumulated over the whole split, ignored pixels
    excluded, and every score derives from it. With `height` and `width`,
    images are resized (bilinear) to that size for the model and the logits
    resized (bilinear) back to the label size before the argmax.

    Batches of images of different sizes are padded (images with 0, labels
    with the ignore id), which changes predictions near the padding; keep
    `batch_size=1` for such datasets.

    Args:
        predictor: Predictor.
        dataset: tf_enet.data.SegmentationDataset.
        split: str. Split to evaluate.
        batch_size: int. Images per model call.
        height: int or None. Model input height.
        width: int or None. Model input width.
        limit: int or None. Evaluate only the first `limit` images.
        on_batch: callable `(images_done, images_total)` or None, called
            after each batch (for progress display).

    Returns:
        dict: `split`, `num_images`, `class_names`, `confusion_matrix`
        (list of lists, rows true classes), `per_class_iou` and
        `per_class_accuracy` (dicts class name -> float, NaN for classes
        absent from labels and predictions), `mean_iou`,
        `global_accuracy`, `class_accuracy`.

    Raises:
        ModelError: the model's class count differs from the dataset's.
        DatasetError: the split is missing, unlabelled or has bad files.
    """
    info = dataset.info
    if predictor.num_classes != info.num_classes:
        raise ModelError(
            f"{predictor.path} outputs {predictor.num_classes} classes but "
            f"{info.name} ({dataset.data_dir}) has {info.num_classes}; "
            f"evaluate it on the dataset it was trained on."
        )
    if predictor.info.class_names != info.class_names:
        logging.warning(
            "%s names its classes %s, the dataset %s; scoring by class id.",
            predictor.path, list(predictor.info.class_names), list(info.class_names),
        )
    total = len(dataset.files(split)[:limit])
    batches = data_lib.make_eval_dataset(
        dataset, split, batch_size=batch_size, height=height, width=width,
        limit=limit,
    )
    confusion = np.zeros((info.num_classes, info.num_classes), np.int64)
    done = 0
    for images, labels in batches:
        labels = labels.numpy()  # [batch, label_height, label_width]
        classes = predictor.predict(images.numpy(), output_size=labels.shape[1:3])
        confusion += metrics_lib.confusion_matrix(
            labels, classes, info.num_classes, info.ignore_index
        )
        done += len(labels)
        if on_batch is not None:
            on_batch(done, total)
    result = metrics_lib.scores(confusion)
    names = list(info.class_names)
    return {
        "split": split,
        "num_images": done,
        "class_names": names,
        "confusion_matrix": confusion.tolist(),
        "per_class_iou": dict(zip(names, map(float, result["per_class_iou"]))),
        "per_class_accuracy": dict(
            zip(names, map(float, result["per_class_accuracy"]))
        ),
        "mean_iou": result["mean_iou"],
        "global_accuracy": result["global_accuracy"],
        "class_accuracy": result["class_accuracy"],
    }
