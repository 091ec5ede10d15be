"""Breaks ENet's inference time down by stage (where the time goes).

    python benchmarks/profile_stages.py --height 360 --width 480

Times XLA-compiled prefixes of the network ending after each stage of the
paper's Table 1 (initial block, stages 1-5, final full convolution); each
stage's cost is the difference between consecutive prefixes. FLOPs per
stage come from TensorFlow's profiler, so each row also shows how close
that stage runs to this machine's matrix-product rate.
"""

import numpy as np
import tensorflow as tf
import keras
from absl import app, flags

import common
import tf_enet

FLAGS = flags.FLAGS
flags.DEFINE_integer("height", 360, "Image height.")
flags.DEFINE_integer("width", 480, "Image width.")
flags.DEFINE_integer("repeats", 10, "Timed calls; the median is reported.")
flags.DEFINE_bool("jit_compile", True, "XLA (True) or the oneDNN graph (False).")

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
    images = np.random.RandomState(0).uniform(
        0, 255, (1, FLAGS.height, FLAGS.width, 3)
    ).astype("float32")
    peak = common.matmul_flops_per_second()
    spec = tf.TensorSpec([1, FLAGS.height, FLAGS.width, 3], tf.float32)
    rows, previous_ms, previous_flops = [], 0.0, 0
    for name, layer in STAGE_ENDS:
        prefix = keras.Model(model.input, model.get_layer(layer).output)
        function = tf.function(
            lambda x, m=prefix: m(x, training=False), jit_compile=FLAGS.jit_compile
        )
        flops = common.count_flops(
            tf.function(lambda x, m=prefix: m(x, training=False)), spec
        )
        ms = 1000 * common.median_seconds(
            lambda: tf.nest.map_structure(lambda t: t.numpy(), function(images)),
            warmup=3, repeats=FLAGS.repeats,
        )
        stage_ms, stage_flops = ms - previous_ms, flops - previous_flops
        rows.append([
            name, f"{stage_ms:.1f}", f"{stage_flops / 1e9:.3f}",
            f"{100 * (stage_flops / peak) * 1000 / max(stage_ms, 1e-3):.0f}%",
        ])
        previous_ms, previous_flops = ms, flops
    print(common.machine_description())
    print(f"{FLAGS.height}x{FLAGS.width}, batch 1, "
          f"{'XLA' if FLAGS.jit_compile else 'oneDNN graph'}; total {previous_ms:.1f} ms")
    common.print_table(["stage", "ms", "GFLOP", "of matmul rate"], rows)


if __name__ == "__main__":
    app.run(main)
