"""Exporting a trained ENet: SavedModel (TF Serving), TFLite and ONNX.

Every export carries the model's configuration (class names, palette,
ignore id, training options and size) so `tf_enet.inference.load_predictor`
and the commands name and paint the classes and run the model at its
training size:

    SavedModel   <dir>/assets/tf_enet_config.json
    TFLite       <file>.tflite.json beside the model
    ONNX         <file>.onnx.json beside the model

All preprocessing is inside the exported graphs: they take RGB pixels in
[0, 255] of any height and width (a TFLite model exported with a fixed
`input_size`: of that size).

SavedModel signatures:
    serving_default: images uint8 [batch, height, width, 3]
                     -> classes int32 [batch, height, width],
                        probabilities float32 [batch, height, width, K]
    serve_encoded:   image_bytes string [batch] (PNG or JPEG files; all of
                     one request must have the same size) -> the same.
    logits:          images float32 [batch, height, width, 3]
                     -> logits float32 [batch, height, width, K]
                     (what `load_predictor` runs).
"""

import os
import tempfile

import keras
import tensorflow as tf

from tf_enet import artifacts, inference, lite
from tf_enet.calibration_images import representative_images  # noqa: F401 (its public name)
from tf_enet.data import DatasetError, decoding
from tf_enet.defaults import install_hint
from tf_enet.errors import TfEnetError
from tf_enet.model import OUTPUT_STRIDE, PIXEL_MEAN

FORMATS = artifacts.EXPORT_FORMATS
QUANTIZATIONS = artifacts.QUANTIZATIONS
INT8_RANGES = artifacts.INT8_RANGES
INT8_INPUTS = artifacts.INT8_INPUTS
ONNX_OPSET = 17


class ExportError(TfEnetError, ValueError):
    """An export cannot be made as asked; the message says why."""


def export_config(config, num_classes, **export):
    """The configuration stored with an export.

    Args:
        config: dict or None. The checkpoint's config.json; None gives a
            minimal one with generic class names.
        num_classes: int. The model's number of classes.
        **export: Facts about the export (format, quantization, source),
            stored under "export".

    Returns:
        dict, JSON-serialisable.
    """
    if config is None:
        config = {
            "format": artifacts.FORMAT,
            "model": {"num_classes": num_classes},
            "dataset": inference.generic_info(num_classes).to_dict(),
        }
    return {**config, "export": export}


def check_output(output, export_format, what="output"):
    """Creates the output's directory and checks it is writable.

    Called before the conversion (and int8 calibration), so that a finished
    export is never lost to a missing directory or a permission.

    Args:
        output: str. The SavedModel directory, .tflite or .onnx file.
        export_format: str. One of `FORMATS`.
        what: str. How errors name the output, e.g. "--output".

    Raises:
        ExportError: the format's converter is not installed (ONNX without
            the `[onnx]` extra); nothing is created then.
        OSError: naming `what` and `output`, if it cannot be written.
    """
    if export_format == "onnx":
        _import_tf2onnx()
    if export_format == "saved_model":
        if os.path.isfile(output):
            raise OSError(f"{what} {output} is a file; a SavedModel is a directory.")
        artifacts.ensure_writable_dir(output, what)
    else:
        artifacts.ensure_writable_file(output, what)
        artifacts.ensure_writable_file(output + artifacts.SIDECAR_SUFFIX, f"{what}'s configuration")


def _import_tf2onnx():
    """The tf2onnx module; ExportError naming the extra to install if missing."""
    try:
        import tf2onnx  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise ExportError(
            f"ONNX export needs tf2onnx and onnxruntime: {install_hint('onnx')}."
        ) from None
    return tf2onnx


_IMAGES = tf.TensorSpec([None, None, None, 3], tf.float32, name="images")
_PIXELS = tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")
_BYTES = tf.TensorSpec([None], tf.string, name="image_bytes")


def _archive(model, endpoints):
    """A `keras.export.ExportArchive` of `model` with `(name, fn, spec)`s."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, fn, spec in endpoints:
        archive.add_endpoint(name, fn, [spec])
    return archive


def _serving_endpoints(model):
    # Nested tf.functions trace ENet once and share it between endpoints.
    @tf.function(input_signature=[_IMAGES])
    def logits(images):
        return {"logits": model(images, training=False)}

    @tf.function(input_signature=[_PIXELS])
    def serve(images):
        scores = logits(tf.cast(images, tf.float32))["logits"]
        return {
            "classes": tf.argmax(scores, axis=-1, output_type=tf.int32),
            "probabilities": tf.nn.softmax(scores, axis=-1),
        }

    @tf.function(input_signature=[_BYTES])
    def serve_encoded(image_bytes):
        images = tf.map_fn(
            decoding.decode_rgb,
            image_bytes,
            fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
        )  # [batch, height, width, 3]; fails if the sizes differ
        return serve(images)

    return [
        ("serving_default", serve, _PIXELS),
        ("serve_encoded", serve_encoded, _BYTES),
        ("logits", logits, _IMAGES),
    ]


def export_saved_model(model, output_dir, config=None, *, source=None):
    """Writes a SavedModel for TF Serving (see the module docstring).

    Args:
        model: keras.Model. An ENet from `build_enet` or a checkpoint.
        output_dir: str. The SavedModel directory (created or replaced).
        config: dict or None. The checkpoint's configuration.
        source: str or None. Where the model came from, recorded.

    Returns:
        str. `output_dir`.
    """
    num_classes = int(model.outputs[0].shape[-1])
    _archive(model, _serving_endpoints(model)).write_out(output_dir, verbose=False)
    # A plain file in assets/: TF Serving ignores it, load_predictor reads it.
    artifacts.write_json(
        os.path.join(output_dir, "assets", artifacts.SAVED_MODEL_CONFIG),
        export_config(
            config,
            num_classes,
            format="saved_model",
            source=source,
            signatures=["serving_default", "serve_encoded", "logits"],
        ),
    )
    return output_dir


def export_tflite(
    model,
    output_path,
    config=None,
    *,
    quantize=None,
    representative=None,
    input_size=None,
    source=None,
    source_sha256=None,
    int8_ranges="mean",
    int8_input="uint8",
):
    """Converts to TFLite with builtin ops only (no Flex delegate needed).

    By default the input is dynamic (`resize_tensor_input` to any image
    size). With `input_size` the model takes exactly one image of that size:
    the padding arithmetic and dilated convolutions then fold into constants
    and fused ops, so XNNPack runs the whole graph in a few partitions
    (faster; `load_predictor` resizes images to that size and the logits
    back).

    Float32 by default; "float16" halves the weights; "int8" quantizes
    weights and activations (full integer): the input is then uint8 pixels
    (scale ~1, zero point 0, so pixels pass unchanged) and the output int8
    logits, dequantized by `load_predictor`. The uint8 pixels become int8
    through float32 (`tf_enet.lite.uint8_input`), in ops XNNPack runs,
    rather than by the converter's uint8 to int8 op, which it does not.
    With `int8_input="int8"` the input is int8 instead (scale ~1, zero
    point -128: pixel - 128) and needs no conversion at all
    (`load_predictor` quantizes either input).

    The converted model is `tf_enet.lite.tflite_friendly(model)`: the same
    function in the ops XNNPack runs (window masks instead of argmax
    indices, transposed convolutions as convolutions and depth_to_space;
    for int8, PReLU as depthwise convolutions, and activation ranges set
    as `int8_ranges` says).

    Args:
        model: keras.Model.
        output_path: str. The .tflite file; the configuration goes to
            `<output_path>.json`.
        config: dict or None. The checkpoint's configuration.
        quantize: None, "float16" or "int8".
        representative: callable from `representative_images`; needed for
            "int8". Calibrate at `input_size` when it is given.
        input_size: (height, width) or None. Fix the input to
            `[1, height, width, 3]`.
        source: str or None. Where the model came from, recorded.
        source_sha256: str or None. The model file's digest (`tf_enet.conversions`).
        int8_ranges: "mean" or "minmax" (int8). How the activations' int8
            ranges come from the calibration images: the mean of each
            image's minimum and maximum for the PReLU, add and batch norm
            outputs (outliers then saturate instead of coarsening every
            step), or TFLite's overall minimum and maximum for all (see
            `tf_enet.lite.tflite_friendly`).
        int8_input: "uint8" or "int8" (int8). The input's type.

    Returns:
        str. `output_path`.

    Raises:
        ExportError: unknown quantization, `int8_ranges` or `int8_input`, int8 without
            calibration images, an invalid `input_size`, or a failed
            conversion.
    """
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ExportError(f"Unknown quantization {quantize!r}; expected one of {QUANTIZATIONS}.")
    if int8_ranges not in INT8_RANGES:
        raise ExportError(f"Unknown int8 ranges {int8_ranges!r}; expected one of {INT8_RANGES}.")
    if int8_input not in INT8_INPUTS:
        raise ExportError(f"Unknown int8 input {int8_input!r}; expected one of {INT8_INPUTS}.")
    if int8_input != "uint8" and quantize != "int8":
        raise ExportError(
            f"An int8 input ({int8_input}) applies to int8 exports only (--quantize "
            f"int8); received {'float16 quantization' if quantize else 'a float32 export'}."
        )
    if quantize == "int8" and representative is None:
        raise ExportError(
            "int8 quantization needs calibration images: give "
            "--representative_images or --dataset/--data_dir."
        )
    spec = _IMAGES
    if input_size is not None:
        input_size = _check_input_size(input_size)
        spec = tf.TensorSpec([1, *input_size, 3], tf.float32, name="images")
    num_classes = int(model.outputs[0].shape[-1])
    model = lite.tflite_friendly(
        model,
        int8=quantize == "int8",
        representative=representative,
        ranges=int8_ranges,
    )
    with tempfile.TemporaryDirectory() as tmp:
        # What TFLiteConverter.from_keras_model does, without its printing.
        archive = _archive(model, [("serve", lambda images: model(images, training=False), spec)])
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        flatbuffer = _convert(converter, quantize, representative, int8_input)

    def write(tmp_path):
        with open(tmp_path, "wb") as f:
            f.write(flatbuffer)

    artifacts.write_atomically(output_path, write)
    artifacts.write_json(
        output_path + artifacts.SIDECAR_SUFFIX,
        export_config(
            config,
            num_classes,
            format="tflite",
            quantize=quantize or "none",
            input_size=None if input_size is None else list(input_size),
            source=source,
            **({} if source_sha256 is None else {"source_sha256": source_sha256}),
            **(
                {"int8_ranges": int8_ranges, "int8_input": int8_input} if quantize == "int8" else {}
            ),
        ),
    )
    return output_path


def _check_input_size(input_size):
    try:
        height, width = (int(v) for v in input_size)
    except (TypeError, ValueError):
        raise ExportError(
            f"`input_size` must be (height, width); received {input_size!r}."
        ) from None
    if height < 1 or width < 1:
        raise ExportError(f"`input_size` must be positive; received {input_size!r}.")
    return height, width


def _convert(converter, quantize, representative, int8_input="uint8"):
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        # A float32 input, rewritten to uint8 after the conversion (see
        # `tf_enet.lite.uint8_input`).
        if int8_input == "int8":
            converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    try:
        flatbuffer = converter.convert()
        if quantize == "int8" and int8_input == "uint8":
            flatbuffer = lite.uint8_input(flatbuffer)
        return flatbuffer
    except DatasetError:
        raise
    except Exception as err:  # The converter raises several error types.
        raise ExportError(f"TFLite conversion failed: {err}") from None


class _PaddedForOnnx(keras.Model):
    """Pads images to a multiple of 8 outside ENet, for tf2onnx.

    tf2onnx 1.17 converts TensorFlow's integer FloorMod as a truncating
    remainder, so `PadToMultiple`'s `-height % 8` turns negative and the
    ONNX graph crops instead of padding. Padding here with non-negative
    arithmetic leaves ENet's own padding at zero. The padding holds the
    mean pixel, which ENet's normalisation maps to the 0 its own padding
    would add, so the logits equal the Keras model's.
    """

    def __init__(self, model, mean):
        super().__init__(name=f"{model.name}_onnx")
        self.enet = model
        self.mean = tuple(float(m) for m in mean)

    def call(self, images):
        shape = tf.shape(images)
        pad_height = (OUTPUT_STRIDE - shape[1] % OUTPUT_STRIDE) % OUTPUT_STRIDE
        pad_width = (OUTPUT_STRIDE - shape[2] % OUTPUT_STRIDE) % OUTPUT_STRIDE
        mean = tf.constant(self.mean, tf.float32)
        padded = tf.pad(images - mean, [[0, 0], [0, pad_height], [0, pad_width], [0, 0]]) + mean
        logits = self.enet(padded, training=False)
        return logits[:, : shape[1], : shape[2], :]


def export_onnx(model, output_path, config=None, *, source=None, input_size=None):
    """Converts to ONNX with tf2onnx (opset 17), for onnxruntime.

    Input `images` float32 `[batch, height, width, 3]` RGB in [0, 255] of
    any size (or of `input_size`); output float32 logits
    `[batch, height, width, K]`.

    Args:
        model: keras.Model.
        output_path: str. The .onnx file; the configuration goes to
            `<output_path>.json`.
        config: dict or None. The checkpoint's configuration.
        source: str or None. Where the model came from, recorded.
        input_size: (height, width) or None. Fix the input to one image
            of this size: static shapes throughout, which onnxruntime-web
            runs best (see `tf_enet.web`).

    Returns:
        str. `output_path`.

    Raises:
        ExportError: tf2onnx is not installed or the conversion failed.
    """
    tf2onnx = _import_tf2onnx()
    mean = PIXEL_MEAN
    if config is not None:
        mean = config.get("input", {}).get("mean", PIXEL_MEAN)
    height, width = (None, None) if input_size is None else _check_input_size(input_size)
    batch = None if input_size is None else 1
    spec = (tf.TensorSpec([batch, height, width, 3], tf.float32, name="images"),)

    def write(tmp_path):
        try:
            tf2onnx.convert.from_keras(
                _PaddedForOnnx(model, mean),
                input_signature=spec,
                opset=ONNX_OPSET,
                output_path=tmp_path,
            )
        except Exception as err:  # tf2onnx raises many error types.
            raise ExportError(f"ONNX conversion failed: {err}") from None

    artifacts.write_atomically(output_path, write)
    num_classes = int(model.outputs[0].shape[-1])
    artifacts.write_json(
        output_path + artifacts.SIDECAR_SUFFIX,
        export_config(
            config,
            num_classes,
            format="onnx",
            opset=ONNX_OPSET,
            source=source,
            input_size=None if input_size is None else [height, width],
        ),
    )
    return output_path


def export_model(
    model_path,
    output,
    export_format,
    *,
    quantize=None,
    representative=None,
    input_size=None,
    int8_ranges="mean",
    int8_input="uint8",
):
    """Loads a Keras checkpoint and exports it.

    Args:
        model_path: str. A checkpoint directory or a .keras file.
        output: str. The SavedModel directory, .tflite or .onnx file.
        export_format: str. One of `FORMATS`.
        quantize: None, "float16" or "int8" (TFLite only).
        representative: callable from `representative_images` (int8).
        input_size: (height, width) or None. TFLite only: fix the input size
            (see `export_tflite`).
        int8_ranges: "mean" or "minmax" (int8; see `export_tflite`).
        int8_input: "uint8" or "int8" (int8; see `export_tflite`).

    Returns:
        str. `output`.

    Raises:
        ModelError: the model cannot be loaded.
        ExportError: invalid options or a failed conversion.
        OSError: the output cannot be written (checked before the work).
    """
    if export_format not in FORMATS:
        raise ExportError(f"Unknown format {export_format!r}; expected one of {FORMATS}.")
    if quantize is not None and export_format != "tflite":
        raise ExportError(
            f"Quantization ({quantize}) applies to TFLite only; received format {export_format!r}."
        )
    if input_size is not None and export_format != "tflite":
        raise ExportError(
            f"A fixed input size applies to TFLite only; received format {export_format!r}."
        )
    check_output(output, export_format)
    model, config, _ = inference.load_keras_model(model_path)
    source = os.fspath(model_path)
    model_file = inference.resolve_model_path(model_path)[1]
    if export_format == "saved_model":
        return export_saved_model(model, output, config, source=source)
    if export_format == "tflite":
        return export_tflite(
            model,
            output,
            config,
            quantize=quantize,
            representative=representative,
            input_size=input_size,
            source=source,
            source_sha256=inference.runtime_model.file_sha256(model_file),
            int8_ranges=int8_ranges,
            int8_input=int8_input,
        )
    return export_onnx(model, output, config, source=source)
