"""The TensorFlow runtimes of a Predictor: Keras models and SavedModels.

Each runner is a callable mapping float32 images `[batch, height, width, 3]`
(RGB in [0, 255]) to float32 logits `[batch, height, width, num_classes]`,
as the TensorFlow-free runners of `tf_enet.inference.runtimes`.
"""

import tensorflow as tf

from tf_enet.inference.loading import ModelError, first_line, invalid_model

_IMAGES = tf.TensorSpec([None, None, None, 3], tf.float32)


class KerasRunner:
    """Runs a `keras.Model` in inference mode, traced once for any size.

    With `jit_compile`, XLA compiles the call for the first input shape
    only; every other shape runs traced without XLA. XLA compiles once per
    shape and keeps every compilation, so a folder of many image sizes
    would otherwise compile (and hold in memory) one program per size.

    Args:
        model: keras.Model mapping images to logits.
        jit_compile: bool. XLA-compile the call at the first input shape.
    """

    input_size = None

    def __init__(self, model, jit_compile=False):
        self.model = model
        self.num_classes = int(model.outputs[0].shape[-1])
        self.runtime = "keras_xla" if jit_compile else "keras"
        self._call = _OneShapeXla(lambda images: model(images, training=False), jit_compile)

    def __call__(self, images):
        return self._call(images)


class _OneShapeXla:
    """A function traced for any shape, XLA-compiled for the first shape only.

    Args:
        function: callable mapping float32 images to logits tensors.
        jit_compile: bool. Whether to compile the first shape with XLA.
    """

    def __init__(self, function, jit_compile):
        self._traced = tf.function(function, input_signature=[_IMAGES])
        self._compiled = tf.function(function, jit_compile=True) if jit_compile else None
        self._compiled_shape = None

    def __call__(self, images):
        images = tf.constant(images, tf.float32)
        if self._compiled is not None:
            if self._compiled_shape is None:
                self._compiled_shape = tuple(images.shape)
            if tuple(images.shape) == self._compiled_shape:
                return self._compiled(images).numpy()
        return self._traced(images).numpy()


class SavedModelRunner:
    """Runs the `logits` function of a SavedModel written by export.py.

    Args:
        path: str. The SavedModel directory.
        jit_compile: bool. XLA-compile the call at the first input shape
            (see `KerasRunner`).

    Raises:
        ModelError: the directory is not a valid SavedModel, or not one
            export.py wrote.
    """

    input_size = None

    def __init__(self, path, jit_compile=False):
        try:
            loaded = tf.saved_model.load(path)
        except Exception as err:  # TensorFlow raises many types here.
            raise invalid_model(path, "saved_model", _saved_model_reason(err)) from None
        function = getattr(loaded, "logits", None)
        if function is None:
            raise ModelError(
                f"SavedModel {path} has no `logits` function, so export.py did "
                f"not write it; export the Keras model with export.py."
            )
        concrete = function.get_concrete_function(_IMAGES)
        self.num_classes = int(concrete.structured_outputs["logits"].shape[-1])
        self.runtime = "saved_model_xla" if jit_compile else "saved_model"
        self._loaded = loaded  # Keeps the variables alive.
        self._call = _OneShapeXla(lambda images: function(images)["logits"], jit_compile)

    def __call__(self, images):
        return self._call(images)


def _saved_model_reason(error):
    line = first_line(error)
    if "saved_model.pb" in line and ("parse" in line or "corrupt" in line):
        return "its saved_model.pb does not parse (a corrupt or truncated file)."
    return line
