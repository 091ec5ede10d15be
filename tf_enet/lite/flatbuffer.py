"""Editing a converted TFLite flatbuffer where the converter has no option.

`uint8_input` is the one such edit. The converter's own
`inference_input_type=tf.uint8` gives a full-integer int8 model a uint8
input through a uint8 -> int8 `QUANTIZE` op that XNNPack does not run
(TFLite's own single-threaded kernel runs it). Measured with
`benchmarks/int8_input.py` (ENet's input stage at 360x480, 2 threads,
LiteRT, a shared 2-core machine): 1.79 ms with the converter's uint8
input against 1.03 ms with this edit; on the whole int8 CamVid model
the edit took 7.40 to 6.38 ms per image (docs/performance.md), about
14%, which is why it stays. `--int8_input int8` needs no
edit (the converter's `inference_input_type=tf.int8`).

The edit reads and writes the flatbuffer with LiteRT's schema object API
(`ai_edge_litert.schema_py_generated`, `ai_edge_litert.tools
.flatbuffer_utils`), the schema that the runtime loading the file ships.
"""

from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils


def uint8_input(flatbuffer):
    """A float-input int8 TFLite model with a uint8 input instead.

    TFLite's converter gives a uint8 input to a full-integer int8 model
    with a uint8 -> int8 `QUANTIZE` op, which XNNPack does not run (see
    the module's docstring for what that costs). This takes the model
    converted with a float32 input, whose first op is a float32 -> int8
    `QUANTIZE` that XNNPack runs, and puts a uint8 -> float32 `DEQUANTIZE`
    (which XNNPack runs too) in front of it. The input is then uint8 with
    the scale of the int8 values and their zero point plus 128, as the
    converter makes it; each pixel `q` becomes `scale * (q - zero_point)`
    and back to the same int8 value, so the outputs equal those of the
    converter's uint8-input model. The converter offers no such option,
    so the rewrite edits the flatbuffer (TFLite's schema object API).

    Args:
        flatbuffer: bytes, a TFLite model with one float32 input read only
            by a `QUANTIZE` to int8.

    Returns:
        bytes, the model with a uint8 input.

    Raises:
        ValueError: `flatbuffer` is not such a model.
    """
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    graph = model.subgraphs[0]
    readers = [op for op in graph.operators if graph.inputs[0] in op.inputs]
    if not (
        len(graph.inputs) == 1
        and graph.tensors[graph.inputs[0]].type == schema.TensorType.FLOAT32
        and len(readers) == 1
        and flatbuffer_utils.opcode_to_name(model, readers[0].opcodeIndex) == "QUANTIZE"
        and graph.tensors[readers[0].outputs[0]].type == schema.TensorType.INT8
    ):
        raise ValueError(
            "uint8_input needs an int8 TFLite model with one float32 input read "
            "only by a QUANTIZE to int8."
        )
    (quantize,) = readers
    index = graph.inputs[0]
    pixels = graph.tensors[index]
    int8 = graph.tensors[quantize.outputs[0]].quantization
    floats = schema.TensorT()
    floats.shape = list(pixels.shape)
    floats.shapeSignature = None if pixels.shapeSignature is None else list(pixels.shapeSignature)
    floats.type = schema.TensorType.FLOAT32
    floats.name = b"images_float32"
    floats.buffer = 0  # the empty buffer: computed, not stored
    graph.tensors.append(floats)
    quantize.inputs = [len(graph.tensors) - 1]
    pixels.type = schema.TensorType.UINT8
    pixels.quantization = schema.QuantizationParametersT()
    pixels.quantization.scale = [float(int8.scale[0])]
    pixels.quantization.zeroPoint = [int(int8.zeroPoint[0]) + 128]
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.DEQUANTIZE
    code.version = 1  # version 1: a uint8 input
    model.operatorCodes.append(code)
    dequantize = schema.OperatorT()
    dequantize.opcodeIndex = len(model.operatorCodes) - 1
    dequantize.inputs, dequantize.outputs = [index], [len(graph.tensors) - 1]
    graph.operators.insert(0, dequantize)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
