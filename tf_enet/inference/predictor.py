"""`Predictor`: one interface to a model of any kind, at the right scale.

A Predictor runs its model at the scale the model was trained at: each
image is scaled to fit inside the training size recorded in the model's
configuration, keeping its aspect ratio, and padded to it (a portrait
photo is not stretched to a landscape training size); the logits of the
padding are cropped off and the rest resized (bilinear) back to the image's
size before the argmax, so a 4000x3000 photo is segmented with objects at
the size the model learned them. Images of the training size's aspect
ratio are resized without padding. An explicit `input_size` resizes the
images to it as they are. A model without a recorded training size runs
at each image's own size.

A Keras model with a recorded training size runs, at that size, as its
fixed-size float32 TFLite conversion (LiteRT with XNNPack, no TensorFlow),
written beside it by train.py, export.py or `save_preset`.
`Predictor.runtime` says what runs; `load_predictor(path,
runtime="keras")` runs Keras throughout. Pre- and post-processing are
NumPy and OpenCV (`tf_enet.inference.processing`).

Test-time augmentation (`load_predictor(path, tta="flip")`, off by
default) runs each image also mirrored left-right, and with "flip+scales"
also at 1.25 times the model's size, and averages the logits of the
views; see `Predictor`.
"""

import os

import numpy as np
from absl import logging

from tf_enet.defaults import TTA_MODES, XLA_BREAK_EVEN_IMAGES
from tf_enet.inference import loading, processing, runtime_model, runtimes

# How `load_predictor` runs a Keras model: "auto" (its fixed-size TFLite
# conversion at the training size when one is beside it, Keras otherwise),
# "keras", or "tflite" (as "auto", but a missing conversion raises).
RUNTIMES = ("auto", "keras", "tflite")

# The scales "flip+scales" runs at, as factors of the model's size. On the
# CamVid val split with the shipped model, 1.25 added about a point of mean
# IoU to "flip" and 0.75 none (README, "Test-time augmentation").
TTA_SCALES = (1.0, 1.25)


def auto_jit_compile(num_images):
    """Whether XLA is worth its compile time for `num_images` of one size.

    XLA compiles one input shape only (`tf_runtimes.KerasRunner`): the
    size the model runs at; other shapes run without it.
    """
    return num_images >= XLA_BREAK_EVEN_IMAGES


class Predictor:
    """Segments images with a loaded model of any kind.

    Built by `load_predictor` (or `Predictor.from_model` for a Keras model
    in memory). Images are RGB, float or uint8, in [0, 255]; all
    normalisation happens inside the models.

    Test-time augmentation (`tta`) changes what `content_logits`,
    `resized_logits` and `predict` return, not how images reach the
    model's size (letterboxing, batching: as without it):

        "none"         each image once (the default).
        "flip"         the image and its left-right mirror, in one batch;
                       the mirror's logits are flipped back. 2 model runs.
        "flip+scales"  both also at 1.25 times the model's size
                       (`TTA_SCALES`): the image is fitted into the larger
                       size and run in overlapping windows of the model's
                       size (`processing.window_starts`), their logits
                       averaged where they overlap, then resized to the
                       content's size at scale 1. 10 model runs for a
                       CamVid image (4 windows per view at 1.25).

    The views' logits are averaged, not their softmax probabilities: the
    mean is linear, so it commutes with the bilinear resizing around it
    and stays logits for every caller (argmax, logit offsets). Averaging
    probabilities scored 0.05 to 0.1 mIoU points higher on the CamVid val
    split (shipped model, every set of views tried), but a softmax over
    360x480x11 logits costs 60 to 90 ms in NumPy on a 2-core CPU, more than
    the model run itself (about 25 ms); the mean of logits costs 2 ms.

    Windows rather than a larger model input keep every call at the model's
    size: the fixed-size TFLite conversion a Keras model runs as cannot be
    resized (XNNPack refuses), so any scale runs on it, without TensorFlow.

    Args:
        runner: callable mapping float32 images `[batch, height, width, 3]`
            to float32 logits `[batch, height, width, num_classes]` (see
            `tf_enet.inference.runtimes`).
        info: DatasetInfo. Class names, palette and ignore id.
        config: dict or None. The model's configuration; its "train" entry
            gives `training_size`.
        path: str. The model's path, for messages.
        kind: str. The kind of model file: "keras", "saved_model", "tflite"
            or "onnx". What runs it is `runtime` (a Keras model may run as
            TFLite).
        tta: str, one of `TTA_MODES`. Test-time augmentation, as above.

    Raises:
        ValueError: unknown `tta`.
    """

    def __init__(self, runner, info, config=None, path="<in memory>", kind="keras", tta="none"):
        if tta not in TTA_MODES:
            raise ValueError(f"Unknown tta {tta!r}; expected one of {TTA_MODES}.")
        self.runner = runner
        self.info = info
        self.config = config
        self.path = path
        self.kind = kind
        self.tta = tta

    @classmethod
    def from_model(cls, model, info=None, config=None, *, jit_compile=False, tta="none"):
        """A Predictor of a Keras model in memory (needs TensorFlow).

        Args:
            model: keras.Model mapping images to logits.
            info: DatasetInfo or None (generic class names).
            config: dict or None. A configuration as train.py writes it.
            jit_compile: bool. XLA-compile the model call at the first
                input shape it sees.
            tta: str, one of `TTA_MODES`. Test-time augmentation.

        Returns:
            Predictor.
        """
        from tf_enet.inference import tf_runtimes

        runner = tf_runtimes.KerasRunner(model, jit_compile)
        if info is None:
            info = loading.generic_info(runner.num_classes)
        return cls(runner, info, config, path=model.name, kind="keras", tta=tta)

    @property
    def num_classes(self):
        return self.info.num_classes

    @property
    def runtime(self):
        """What runs the model at its default size: a `runtimes.RUNTIME_NAMES` name.

        "tflite" for a Keras model run as its fixed-size TFLite conversion
        (images of other sizes then run in Keras: see `runtime_at`).
        """
        return getattr(self.runner, "runtime", self.kind)

    def runtime_at(self, image_size, input_size=None):
        """What runs the model for images of `image_size` (see `model_size`).

        Returns:
            str. A `runtimes.RUNTIME_NAMES` name.
        """
        runner = self.runner
        if isinstance(runner, runtimes.FixedSizeRunner):
            if self.model_size(image_size, input_size) != runner.size:
                return runner.other.runtime
        return self.runtime

    @property
    def input_size(self):
        """(height, width) the model was exported for, or None (any size)."""
        return getattr(self.runner, "input_size", None)

    @property
    def training_size(self):
        """(height, width) the model was trained at, or None if unrecorded."""
        return loading.training_size(self.config)

    def model_size(self, image_size, input_size=None):
        """The size the model runs at for images of `image_size`.

        The first of: `input_size`, the exported fixed size (`input_size`
        property), the training size, `image_size`.

        Args:
            image_size: (height, width) of the images.
            input_size: (height, width) or None. An explicit choice.

        Returns:
            (int, int).
        """
        for size in (input_size, self.input_size, self.training_size, image_size):
            if size is not None:
                return tuple(int(v) for v in size)
        raise ValueError("`image_size` must be given.")

    def logits(self, images):
        """Runs the model on images as they are (no test-time augmentation).

        Args:
            images: array-like `[batch, height, width, 3]`, RGB in [0, 255].

        Returns:
            np.ndarray float32 `[batch, height, width, num_classes]`.
        """
        return self.runner(_check_images(images))

    def content_logits(self, images, *, input_size=None):
        """Logits of the images' content, run at `model_size`.

        With an explicit `input_size` the images are resized to it. Else, at
        the training or exported size, each image is fitted into it with
        its aspect ratio kept and padded (`processing.letterbox`), and the
        padding's logits cropped off. With test-time augmentation (`tta`),
        the mean of the views' logits (see `Predictor`).

        Args:
            images: array-like `[batch, height, width, 3]`, RGB in [0, 255].
            input_size: (height, width) or None. See `model_size`.

        Returns:
            np.ndarray float32 `[batch, content_height, content_width,
            num_classes]`, of the images' aspect ratio.
        """
        images = _check_images(images)
        size = tuple(images.shape[1:3])
        model_size = self.model_size(size, input_size)
        if input_size is not None:
            # Resized as they are: the content fills the model's input.
            box = processing.Letterbox(model_size, model_size)
        else:
            box = processing.fit_size(size, model_size)
        if self.tta == "none":
            return self._letterboxed_logits(images, box, box.input_size)
        count = len(images)
        views = np.concatenate([images, images[:, :, ::-1]])  # [2 * batch, height, width, 3]
        scales = TTA_SCALES if self.tta == "flip+scales" else (1.0,)
        view_logits = []
        for scale in scales:
            scaled = processing.scale_letterbox(box, scale)
            logits = self._letterboxed_logits(views, scaled, box.input_size)
            logits = processing.resize_logits(logits, box.content_size)
            view_logits += [logits[:count], logits[count:, :, ::-1]]
        return np.mean(view_logits, axis=0, dtype=np.float32)

    def _letterboxed_logits(self, images, box, window):
        """Logits of `images` fitted into `box`, run in windows of size `window`.

        Windows overlapping at a pixel (`processing.window_starts`) average
        their logits there; an input of the window's size runs whole.

        Returns:
            np.ndarray float32 `[batch, *box.content_size, num_classes]`.
        """
        inputs = processing.letterbox(images, box)  # [batch, *box.input_size, 3]
        height, width = window
        tops = processing.window_starts(box.input_size[0], height)
        lefts = processing.window_starts(box.input_size[1], width)
        if len(tops) == len(lefts) == 1:
            return processing.unletterbox(self.runner(inputs), box)
        total = np.zeros((len(images), *box.input_size, self.num_classes), np.float32)
        count = np.zeros((1, *box.input_size, 1), np.float32)
        for top in tops:
            for left in lefts:
                window = (slice(None), slice(top, top + height), slice(left, left + width))
                total[window] += self.runner(np.ascontiguousarray(inputs[window]))
                count[window] += 1
        return processing.unletterbox(total / count, box)

    def resized_logits(self, images, *, input_size=None, output_size=None):
        """Logits of the model run at `model_size`, resized to `output_size`.

        Args:
            images: array-like `[batch, height, width, 3]`, RGB in [0, 255].
            input_size: (height, width) or None. See `content_logits`.
            output_size: (height, width) or None (the images' size).

        Returns:
            np.ndarray float32 `[batch, out_height, out_width, num_classes]`.
        """
        images = _check_images(images)
        logits = self.content_logits(images, input_size=input_size)
        return processing.resize_logits(logits, output_size or images.shape[1:3])

    def predict(self, images, *, input_size=None, output_size=None):
        """Predicts class ids: the model at `model_size`, logits resized back.

        See `content_logits` for how images reach the model's size (bilinear,
        antialiased when shrinking, aspect ratio kept); the logits are
        resized (bilinear) to `output_size` one image at a time, then the
        argmax is taken.

        Args:
            images: array-like `[batch, height, width, 3]`, RGB in [0, 255].
            input_size: (height, width) or None. Run the model at this size
                instead (see `model_size`).
            output_size: (height, width) or None. Size of the class map;
                None keeps the images' own size.

        Returns:
            np.ndarray int32 `[batch, out_height, out_width]`.
        """
        images = _check_images(images)
        logits = self.content_logits(images, input_size=input_size)
        return processing.classes_at(logits, tuple(output_size or images.shape[1:3]))


def _check_images(images):
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"Expected images of shape [batch, height, width, 3]; received {images.shape}."
        )
    return images


def load_predictor(path=loading.DEFAULT_MODEL, *, jit_compile=False, runtime="auto", tta="none"):
    """Loads a model of any kind for prediction.

    A Keras model (checkpoint directory, .keras file or preset) whose
    configuration records its training size runs, at that size, as the
    fixed-size float32 TFLite model written beside it (`model_HxW.tflite`,
    by train.py at the end of a run, by export.py and by `save_preset`):
    the same labels, several times faster on CPUs, without TensorFlow.
    The Keras model itself is then loaded only if images run at another
    size. Without that file, Keras runs (TensorFlow needed) and the log
    says how to write it. Nothing is converted here.

    Args:
        path: str. A checkpoint directory (model.keras + config.json), a
            .keras file, a SavedModel directory, a .tflite/.onnx file or a
            preset name (see `tf_enet.inference`); by default the shipped
            CamVid preset.
        jit_compile: bool. XLA-compile Keras and SavedModel models where
            they run, for the first input shape only (see
            `auto_jit_compile`).
        runtime: str, one of `RUNTIMES`. For Keras models: "auto" (as
            above), "keras" (Keras at every size) or "tflite" (as "auto",
            but a model without its conversion raises). Other kinds run
            as they are and take "auto" only.
        tta: str, one of `TTA_MODES`. Test-time augmentation: "none",
            "flip" or "flip+scales" (see `Predictor`); it runs on every
            runtime, the fixed-size TFLite conversion included.

    Returns:
        Predictor. Its `runtime` says what runs the model.

    Raises:
        ModelError: naming the file if the path is missing, not a valid
            model of its kind, or disagrees with its configuration; with
            `runtime="tflite"`, if the model has no conversion beside it.
        ValueError: unknown `runtime` or `tta`, or "keras"/"tflite" for a
            model that is not a Keras model.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"Unknown runtime {runtime!r}; expected one of {RUNTIMES}.")
    path = os.fspath(path)
    kind, model_file, config_file = loading.resolve_model_path(path)
    if kind == "keras":
        if runtime != "keras":
            predictor = _runtime_model_predictor(
                path,
                model_file,
                config_file,
                jit_compile=jit_compile,
                strict=runtime == "tflite",
                tta=tta,
            )
            if predictor is not None:
                return predictor
        loading.require_tensorflow(model_file)
        from tf_enet.inference import tf_runtimes

        model, config, info = loading.load_keras_model(path)
        runner = tf_runtimes.KerasRunner(model, jit_compile)
        return Predictor(runner, info, config, model_file, kind, tta)
    if runtime != "auto":
        raise ValueError(
            f"runtime={runtime!r} applies to Keras models; {model_file} is a "
            f"{loading.KIND_NAMES[kind]} and runs as one (runtime='auto')."
        )
    if kind == "saved_model":
        loading.require_tensorflow(model_file)
        from tf_enet.inference import tf_runtimes

        runner = tf_runtimes.SavedModelRunner(model_file, jit_compile)
    elif kind == "tflite":
        runner = runtimes.TFLiteRunner(model_file)
    else:
        runner = runtimes.OnnxRunner(model_file)
    config, info = loading.config_and_info(config_file, runner.num_classes, model_file)
    return Predictor(runner, info, config, model_file, kind, tta)


def _runtime_model_predictor(path, model_file, config_file, *, jit_compile, strict, tta):
    """A Predictor running the fixed-size TFLite conversion beside a Keras model.

    Returns:
        Predictor, or None when the configuration records no training size
        or no conversion is beside the model (`strict` raises instead; else
        the log says how to write it).
    """
    config = None if config_file is None else loading.read_config(config_file)
    size = loading.training_size(config)
    if size is None:
        if strict:
            raise loading.ModelError(
                f"{model_file} has no training size in its configuration "
                f"({config_file or 'none beside it'}), so there is no size to "
                f"run it at as TFLite; use runtime='auto' or 'keras'."
            )
        return None
    found = runtime_model.find_runtime_model(model_file, size)
    if found is None:
        hint = runtime_model.runtime_model_hint(model_file, size)
        if strict:
            raise loading.ModelError(f"{model_file} has no TFLite conversion beside it: {hint}")
        logging.info("Running %s in Keras (TensorFlow). For the fast path: %s", model_file, hint)
        return None

    def load_keras():
        # Before tf_runtimes imports TensorFlow: one line saying why it is needed.
        loading.require_tensorflow(
            model_file,
            context=f" at another size than {size[0]}x{size[1]} (its TFLite conversion's)",
            alternative=f"run it at {size[0]}x{size[1]}, the size it runs at by default",
        )
        from tf_enet.inference import tf_runtimes

        return tf_runtimes.KerasRunner(loading.load_keras_model(path)[0], jit_compile)

    try:
        fixed = runtimes.TFLiteRunner(found)
    except loading.ModelError as err:
        if strict:
            raise
        logging.warning("Running %s in Keras: %s", model_file, err)
        return None
    runner = runtimes.FixedSizeRunner(fixed, load_keras)
    config, info = loading.config_and_info(config_file, runner.num_classes, model_file)
    return Predictor(runner, info, config, model_file, "keras", tta)
