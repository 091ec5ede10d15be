"""The runtimes a Predictor runs without TensorFlow: LiteRT and onnxruntime.

Each runner is a callable mapping float32 images `[batch, height, width, 3]`
(RGB in [0, 255]) to float32 logits `[batch, height, width, num_classes]`,
with a `num_classes` attribute, a `runtime` attribute naming what runs the
model (one of `RUNTIME_NAMES`) and, when the model only takes one size, an
`input_size` attribute. Keras models and SavedModels run in
`tf_enet.inference.tf_runtimes`, which needs TensorFlow.

`FixedSizeRunner` runs a Keras model's fixed-size TFLite conversion (see
`tf_enet.exporting.write_runtime_model`) for images of that size and the
Keras model, loaded when first needed, for other sizes.
"""

import os

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from tf_enet.defaults import install_hint
from tf_enet.inference.loading import (
    ModelError,
    check_tflite_file,
    first_line,
    invalid_model,
)

RUNTIME_NAMES = ("keras", "keras_xla", "saved_model", "saved_model_xla", "tflite", "onnx")


def _quantize(values, detail):
    """TFLite's quantization, `round(values / scale) + zero_point`, clipped.

    The zero point is added after rounding, as TFLite does: then a uint8
    and an int8 input of the same scale (zero points differing by 128) get
    the same steps for any pixel value, a resized image's fractional ones
    included (adding the zero point first moved float32 ties). Float32
    throughout: this runs on every image.
    """
    scale, zero_point = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    values = np.round(np.asarray(values, np.float32) / np.float32(scale)) + zero_point
    return np.clip(values, info.min, info.max).astype(detail["dtype"])


class TFLiteRunner:
    """Runs a .tflite model, resizing its input to each batch's shape.

    A model exported with a fixed input size (`input_size`, batch 1) takes
    only images of that size, run one at a time.

    Quantized (uint8/int8) inputs are quantized here and quantized outputs
    dequantized, so callers always see float pixels and float logits.

    Args:
        path: str. The .tflite file.

    Attributes:
        path: str. `path`.
        input_size: (height, width) of a fixed-size model, else None.

    Raises:
        ModelError: the file is not a valid TFLite model or not a
            segmentation model.
    """

    runtime = "tflite"

    def __init__(self, path):
        check_tflite_file(path)
        try:
            self._interpreter = Interpreter(model_path=path, num_threads=os.cpu_count())
        except Exception as err:  # ValueError, RuntimeError, codec errors.
            raise invalid_model(path, "tflite", first_line(err)) from None
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
        self.path = path
        batch, height, width, _ = (int(v) for v in inputs[0]["shape_signature"])
        # export_tflite(..., input_size=...) fixes the input to [1, h, w, 3].
        self.input_size = None if height < 0 or width < 0 else (height, width)
        self._single_image = batch == 1
        if self.input_size is not None and self._single_image:
            # A fixed-size model allocates (and applies XNNPack) now, while
            # loading, instead of in the first prediction.
            self._interpreter.allocate_tensors()
            self._shape = (1, height, width, 3)

    def __call__(self, images):
        if self.input_size is not None and tuple(images.shape[1:3]) != self.input_size:
            raise ModelError(
                f"{self.path} was exported for {self.input_size[0]}x"
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


class FixedSizeRunner:
    """Runs one image size with a fixed-size model, other sizes with another.

    For a Keras model with a known run size (its training size): images of
    that size go to its fixed-size TFLite conversion, which XNNPack runs
    fastest on CPUs; images of any other size go to the Keras model, loaded
    on the first call that needs it.

    Args:
        fixed: callable runner with an `input_size`, e.g. a `TFLiteRunner`
            of a fixed-size conversion.
        load_other: callable taking no arguments and returning the runner
            of every other size, e.g. a `KerasRunner`.

    Attributes:
        size: (height, width) that `fixed` runs.
        runtime: str. The runtime of `size` (`fixed.runtime`).
    """

    # Takes any size (the Predictor then runs the training size).
    input_size = None

    def __init__(self, fixed, load_other):
        self.fixed = fixed
        self.size = tuple(fixed.input_size)
        self.num_classes = fixed.num_classes
        self.runtime = fixed.runtime
        self._load_other = load_other
        self._other = None

    @property
    def other(self):
        """The runner of every other size (loaded on first use)."""
        if self._other is None:
            self._other = self._load_other()
        return self._other

    def __call__(self, images):
        if tuple(images.shape[1:3]) == self.size:
            return self.fixed(images)
        return self.other(images)


class OnnxRunner:
    """Runs an .onnx model exported by export.py with onnxruntime.

    Args:
        path: str. The .onnx file.

    Raises:
        ModelError: onnxruntime is missing, or the file is not a valid ONNX
            model or not a segmentation model.
    """

    input_size = None
    runtime = "onnx"

    def __init__(self, path):
        try:
            import onnxruntime
        except ImportError:
            raise ModelError(
                f"Running {path} needs onnxruntime: {install_hint('onnx')}, or pip "
                f"install onnxruntime."
            ) from None
        try:
            self._session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own types.
            raise invalid_model(path, "onnx", _onnx_reason(err)) from None
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


def _onnx_reason(error):
    line = first_line(error)
    if "INVALID_PROTOBUF" in line or "Protobuf parsing failed" in line:
        return "it does not parse as an ONNX protobuf (a corrupt or truncated file)."
    # "[ONNXRuntimeError] : 10 : INVALID_GRAPH : Load model from x failed:..."
    return line.split(" failed:", 1)[-1].strip() or line
