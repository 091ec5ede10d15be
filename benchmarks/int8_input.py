"""Times the two ways an int8 TFLite model can take uint8 pixels.

    python benchmarks/int8_input.py [--height 360 --width 480 --threads 2]

The converter's own `inference_input_type=tf.uint8` puts a uint8 -> int8
`QUANTIZE` first, which XNNPack does not run (TFLite's own kernel); the
flatbuffer rewrite of `tf_enet.lite.uint8_input` puts a uint8 -> float32
`DEQUANTIZE` and a float32 -> int8 `QUANTIZE` there, which XNNPack runs.
Both are timed on ENet's input stage alone (a per-channel affine, as the
int8 export's normalisation), where they differ and nothing else does:
median ms per image with LiteRT's interpreter.
"""

import numpy as np
import tensorflow as tf
from absl import app, flags
from ai_edge_litert.interpreter import Interpreter

from tf_enet import lite

import common

FLAGS = flags.FLAGS
flags.DEFINE_integer("height", 360, "Image height.")
flags.DEFINE_integer("width", 480, "Image width.")
flags.DEFINE_integer("threads", 2, "Interpreter threads.")
flags.DEFINE_integer("repeats", 200, "Timed calls; the median is reported.")


def input_stage(shape, input_type):
    """ENet's int8 input normalisation converted with `input_type` (None: float32)."""
    kernel = tf.constant(np.array([0.02, 0.02, 0.02], np.float32).reshape(1, 1, 3, 1))
    function = tf.function(
        lambda x: tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], "VALID") - 2.0,
        input_signature=[tf.TensorSpec(shape, tf.float32)],
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [function.get_concrete_function()], function
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    calibration = np.random.RandomState(0).uniform(0, 255, (4, *shape)).astype("float32")
    converter.representative_dataset = lambda: ([image] for image in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if input_type is not None:
        converter.inference_input_type = input_type
    converter.inference_output_type = tf.int8
    return converter.convert()


def main(argv):
    del argv
    shape = (1, FLAGS.height, FLAGS.width, 3)
    models = {
        "converter's uint8 input (QUANTIZE uint8 -> int8)": input_stage(shape, tf.uint8),
        "lite.uint8_input (DEQUANTIZE, QUANTIZE from float32)": lite.uint8_input(
            input_stage(shape, None)
        ),
    }
    pixels = np.random.RandomState(1).randint(0, 256, shape).astype(np.uint8)
    print(common.machine_description())
    rows = []
    for name, content in models.items():
        interpreter = Interpreter(model_content=content, num_threads=FLAGS.threads)
        interpreter.allocate_tensors()
        index = interpreter.get_input_details()[0]["index"]

        def run(interpreter=interpreter, index=index):
            interpreter.set_tensor(index, pixels)
            interpreter.invoke()

        seconds = common.median_seconds(run, warmup=20, repeats=FLAGS.repeats)
        rows.append((name, f"{1000 * seconds:.3f}"))
    common.print_table(["input", "ms per image"], rows)


if __name__ == "__main__":
    app.run(main)
