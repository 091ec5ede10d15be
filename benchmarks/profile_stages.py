"""Breaks ENet's inference time down by stage (where the time goes).

    python benchmarks/profile_stages.py --height 360 --width 480
    python benchmarks/profile_stages.py --path tflite_int8

Times prefixes of the network ending after each stage of the paper's
Table 1 (initial block, stages 1-5, final full convolution); each stage's
cost is the difference between consecutive prefixes. `--path`: `xla` or
`graph` (`tf.function` with or without XLA), or `tflite_float32` /
`tflite_int8` (each prefix exported for the fixed image size, as
`export.py --height --width` does, and run by XNNPack with `--threads`).
FLOPs per stage come from TensorFlow's profiler, so each row also shows how
close that stage runs to this machine's float32 matrix-product rate.
"""

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

import tf_enet

import common

PATHS = ("xla", "graph", "tflite_float32", "tflite_int8")

FLAGS = flags.FLAGS
flags.DEFINE_integer("height", 360, "Image height.")
flags.DEFINE_integer("width", 480, "Image width.")
flags.DEFINE_integer("repeats", 20, "Timed calls; the median is reported.")
flags.DEFINE_enum("path", "xla", PATHS, "What runs the prefixes.")
flags.DEFINE_integer("threads", os.cpu_count(), "TFLite threads.")

STAGE_ENDS = (
    ("initial block", "initial_block_activation"),
    ("stage 1 (downsampling 1.0 + 4)", "bottleneck1_4_activation"),
    ("stage 2 (2.0 + 8)", "bottleneck2_8_dilated_activation"),
    ("stage 3 (8)", "bottleneck3_8_dilated_activation"),
    ("stage 4 (upsampling 4.0 + 2)", "bottleneck4_2_activation"),
    ("stage 5 (upsampling 5.0 + 1)", "bottleneck5_1_activation"),
    ("fullconv + crop", "logits"),
)


def main(argv):
    del argv
    model = tf_enet.build_enet(11)
    images = (
        np.random.RandomState(0)
        .uniform(0, 255, (1, FLAGS.height, FLAGS.width, 3))
        .astype("float32")
    )
    peak = common.matmul_flops_per_second()
    spec = tf.TensorSpec([1, FLAGS.height, FLAGS.width, 3], tf.float32)
    rows, previous_ms, previous_flops = [], 0.0, 0
    for name, layer in STAGE_ENDS:
        prefix = keras.Model(model.input, model.get_layer(layer).output)
        run = _runner(prefix, images)
        flops = common.count_flops(tf.function(lambda x, m=prefix: m(x, training=False)), spec)
        ms = 1000 * common.median_seconds(run, warmup=3, repeats=FLAGS.repeats)
        stage_ms, stage_flops = ms - previous_ms, flops - previous_flops
        rows.append(
            [
                name,
                f"{stage_ms:.1f}",
                f"{stage_flops / 1e9:.3f}",
                f"{100 * (stage_flops / peak) * 1000 / max(stage_ms, 1e-3):.0f}%",
            ]
        )
        previous_ms, previous_flops = ms, flops
    print(common.machine_description())
    print(f"{FLAGS.height}x{FLAGS.width}, batch 1, {FLAGS.path}; total {previous_ms:.1f} ms")
    common.print_table(["stage", "ms", "GFLOP", "of matmul rate"], rows)


def _runner(prefix, images):
    """A call running `prefix` on `images` the way `--path` says."""
    if FLAGS.path in ("xla", "graph"):
        function = tf.function(lambda x: prefix(x, training=False), jit_compile=FLAGS.path == "xla")
        return lambda: tf.nest.map_structure(lambda t: t.numpy(), function(images))
    with tempfile.TemporaryDirectory() as workdir:
        interpreter = common.tflite_interpreter(
            prefix,
            os.path.join(workdir, "prefix.tflite"),
            FLAGS.path.removeprefix("tflite_"),
            images.shape[1:3],
            fixed=True,
            threads=FLAGS.threads,
        )
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], images.astype(detail["dtype"]))
    return interpreter.invoke


if __name__ == "__main__":
    app.run(main)
