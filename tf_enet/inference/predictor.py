"""`Predictor`: one interface to a model of any kind, at the right scale.

A Predictor runs its model at the scale the model was trained at: images
are resized (bilinear, antialiased when shrinking) to the training size
recorded in the model's configuration, and the logits are resized
(bilinear) back to each image's size before the argmax, so a 4000x3000
photo is segmented with objects at the size the model learned them. A
model without a recorded training size runs at each image's own size.

A Keras model with a recorded training size runs, at that size, as a
fixed-size float32 TFLite model (XNNPack), the fastest CPU runtime, with
the Keras model's labels: converted once per model file and size, and
cached (a preset ships its conversion). `Predictor.runtime` says what
runs; `load_predictor(path, runtime="keras")` runs Keras throughout.
"""

import os

import numpy as np
import tensorflow as tf
from absl import logging

from tf_enet.inference import loading, runtimes

# How `load_predictor` runs a Keras model: "auto" (a fixed-size TFLite
# conversion at the training size, Keras otherwise or if the conversion
# fails), "keras", or "tflite" (as "auto", but a failed conversion raises).
RUNTIMES = ("auto", "keras", "tflite")

# XLA runs ENet faster per image but compiles once per input shape, which
# pays off from about this many images of one size (measured with
# benchmarks/inference.py).
XLA_BREAK_EVEN_IMAGES = 60


def auto_jit_compile(num_images):
    """Whether XLA is worth its compile time for `num_images` of one size."""
    return num_images >= XLA_BREAK_EVEN_IMAGES


@tf.function(
    input_signature=[
        tf.TensorSpec([None, None, None, None], tf.float32),
        tf.TensorSpec([2], tf.int32),
    ]
)
def _resize_argmax(logits, size):
    """Class ids of `logits` resized (bilinear) to `size`."""
    resized = tf.image.resize(logits, size, method="bilinear")
    return tf.argmax(resized, axis=-1, output_type=tf.int32)  # [batch, h, w]


def resize_images(images, size):
    """Resizes images (bilinear; antialiased when shrinking) for the model.

    Args:
        images: float32 array-like `[batch, height, width, 3]`.
        size: (height, width).

    Returns:
        np.ndarray float32 `[batch, size[0], size[1], 3]`; `images` itself
        when it has that size already.
    """
    images = np.asarray(images, np.float32)
    if tuple(images.shape[1:3]) == tuple(size):
        return images
    return tf.image.resize(images, size, method="bilinear", antialias=True).numpy()


def resize_logits(logits, size):
    """Resizes logits (bilinear) to `size`, e.g. an image's or a label's size.

    Args:
        logits: float32 array-like `[batch, height, width, num_classes]`.
        size: (height, width).

    Returns:
        np.ndarray float32 `[batch, size[0], size[1], num_classes]`.
    """
    logits = np.asarray(logits, np.float32)
    if tuple(logits.shape[1:3]) == tuple(size):
        return logits
    return tf.image.resize(logits, size, method="bilinear").numpy()


class Predictor:
    """Segments images with a loaded model of any kind.

    Built by `load_predictor` (or `Predictor.from_model` for a Keras model
    in memory). Images are RGB, float or uint8, in [0, 255]; all
    preprocessing happens inside the models.

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
    """

    def __init__(self, runner, info, config=None, path="<in memory>", kind="keras"):
        self.runner = runner
        self.info = info
        self.config = config
        self.path = path
        self.kind = kind

    @classmethod
    def from_model(cls, model, info=None, config=None, *, jit_compile=False):
        """A Predictor of a Keras model in memory.

        Args:
            model: keras.Model mapping images to logits.
            info: DatasetInfo or None (generic class names).
            config: dict or None. A configuration as train.py writes it.
            jit_compile: bool. XLA-compile the model call.

        Returns:
            Predictor.
        """
        runner = runtimes.KerasRunner(model, jit_compile)
        if info is None:
            info = loading.generic_info(runner.num_classes)
        return cls(runner, info, config, path=model.name, kind="keras")

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
        """Runs the model on images as they are.

        Args:
            images: array-like `[batch, height, width, 3]`, RGB in [0, 255].

        Returns:
            np.ndarray float32 `[batch, height, width, num_classes]`.
        """
        return self.runner(_check_images(images))

    def resized_logits(self, images, *, input_size=None, output_size=None):
        """Logits of the model run at `model_size`, resized to `output_size`.

        Args:
            images: array-like `[batch, height, width, 3]`, RGB in [0, 255].
            input_size: (height, width) or None. See `model_size`.
            output_size: (height, width) or None (the images' size).

        Returns:
            np.ndarray float32 `[batch, out_height, out_width, num_classes]`.
        """
        images = _check_images(images)
        size = tuple(images.shape[1:3])
        model_size = self.model_size(size, input_size)
        logits = self.runner(resize_images(images, model_size))
        return resize_logits(logits, output_size or size)

    def predict(self, images, *, input_size=None, output_size=None):
        """Predicts class ids: the model at `model_size`, logits resized back.

        Images are resized (bilinear, antialiased when shrinking) to the
        model's size, which by default is the training size (see
        `model_size`); the logits are resized (bilinear) to `output_size`
        one image at a time, then the argmax is taken.

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
        size = tuple(images.shape[1:3])
        output_size = tuple(output_size or size)
        logits = self.runner(resize_images(images, self.model_size(size, input_size)))
        if tuple(logits.shape[1:3]) == output_size:
            return np.argmax(logits, axis=-1).astype(np.int32)
        target = tf.constant(output_size, tf.int32)
        # One image at a time bounds the memory of full-size logits.
        return np.concatenate(
            [_resize_argmax(logits[i : i + 1], target).numpy() for i in range(len(logits))]
        )


def _check_images(images):
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"Expected images of shape [batch, height, width, 3]; received {images.shape}."
        )
    return images


def load_predictor(
    path=loading.DEFAULT_MODEL, *, jit_compile=False, runtime="auto", cache_dir=None
):
    """Loads a model of any kind for prediction.

    A Keras model (checkpoint directory, .keras file or preset) whose
    configuration records its training size runs, at that size, as a
    fixed-size float32 TFLite model: the same labels, several times
    faster on CPUs. The conversion is found beside the model file or in a
    preset (which ship it), or in the cache; otherwise it is made (several
    seconds, once per model file) and cached under `cache_dir`. The Keras
    model itself is then loaded only if images run at another size. If
    the conversion fails, a warning is logged and Keras runs.

    Args:
        path: str. A checkpoint directory (model.keras + config.json), a
            .keras file, a SavedModel directory, a .tflite/.onnx file or a
            preset name (see `tf_enet.inference`); by default the shipped
            CamVid preset.
        jit_compile: bool. XLA-compile Keras and SavedModel models where
            they run; exact and faster per image, but compiles once per
            input shape (see `auto_jit_compile`).
        runtime: str, one of `RUNTIMES`. For Keras models: "auto" (as
            above), "keras" (Keras at every size) or "tflite" (as "auto",
            but a model without a training size or a failed conversion
            raises). Other kinds run as they are and take "auto" only.
        cache_dir: str or None. Where conversions are cached; defaults to
            `$TF_ENET_CACHE`, else `~/.cache/tf_enet`.

    Returns:
        Predictor. Its `runtime` says what runs the model.

    Raises:
        ModelError: naming the file if the path is missing, not a valid
            model of its kind, or disagrees with its configuration; with
            `runtime="tflite"`, if the model cannot run as TFLite.
        ValueError: unknown `runtime`, or "keras"/"tflite" for a model that
            is not a Keras model.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"Unknown runtime {runtime!r}; expected one of {RUNTIMES}.")
    path = os.fspath(path)
    kind, model_file, config_file = loading.resolve_model_path(path)
    if kind == "keras":
        if runtime != "keras":
            predictor = _fixed_size_predictor(
                path,
                model_file,
                config_file,
                jit_compile=jit_compile,
                strict=runtime == "tflite",
                cache_dir=cache_dir,
            )
            if predictor is not None:
                return predictor
        model, config, info = loading.load_keras_model(path)
        runner = runtimes.KerasRunner(model, jit_compile)
        return Predictor(runner, info, config, model_file, kind)
    if runtime != "auto":
        raise ValueError(
            f"runtime={runtime!r} applies to Keras models; {model_file} is a "
            f"{loading.KIND_NAMES[kind]} and runs as one (runtime='auto')."
        )
    if kind == "saved_model":
        runner = runtimes.SavedModelRunner(model_file, jit_compile)
    elif kind == "tflite":
        runner = runtimes.TFLiteRunner(model_file)
    else:
        runner = runtimes.OnnxRunner(model_file)
    config, info = loading.config_and_info(config_file, runner.num_classes, model_file)
    return Predictor(runner, info, config, model_file, kind)


def _fixed_size_predictor(path, model_file, config_file, *, jit_compile, strict, cache_dir):
    """A Predictor running a Keras model's fixed-size TFLite conversion.

    Returns:
        Predictor, or None when the configuration records no training size
        (`strict` raises instead). A failed conversion gives a Predictor
        running Keras (`strict` raises instead).
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
    model_sha256 = loading.file_sha256(model_file)
    found = loading.find_fixed_size_tflite(model_file, size, model_sha256, cache_dir)
    if found is not None:
        fixed = runtimes.TFLiteRunner(found)

        def load_keras():
            model = loading.load_keras_model(path)[0]
            return runtimes.KerasRunner(model, jit_compile)

    else:
        model, config, info = loading.load_keras_model(path)
        keras_runner = runtimes.KerasRunner(model, jit_compile)
        cache_path = loading.tflite_cache_path(model_sha256, size, cache_dir)
        logging.info(
            "Converting %s to TFLite at %dx%d (once; cached as %s).",
            model_file,
            size[0],
            size[1],
            cache_path,
        )
        try:
            fixed = runtimes.cached_fixed_size_tflite(
                model,
                cache_path,
                size,
                config,
                model_sha256,
                os.path.basename(model_file),
            )
        except Exception as err:  # The converter raises many error types.
            reason = loading.first_line(err)
            if strict:
                raise loading.ModelError(
                    f"{model_file} cannot run as TFLite: its conversion at "
                    f"{size[0]}x{size[1]} failed: {reason}"
                ) from None
            logging.warning(
                "Running %s in Keras: its TFLite conversion at %dx%d failed: %s",
                model_file,
                size[0],
                size[1],
                reason,
            )
            return Predictor(keras_runner, info, config, model_file, "keras")

        def load_keras():
            return keras_runner

    runner = runtimes.FixedSizeRunner(fixed, load_keras)
    config, info = loading.config_and_info(config_file, runner.num_classes, model_file)
    return Predictor(runner, info, config, model_file, "keras")
