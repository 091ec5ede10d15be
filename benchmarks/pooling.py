"""Compares the argmax pooling/unpooling layers with TensorFlow's reference.

    python benchmarks/pooling.py

The reference is the classic pair: `tf.nn.max_pool_with_argmax`, then
`tf.scatter_nd` into zeros. Both run as `tf.function` graphs (the
reference cannot be XLA-compiled: `MaxPoolWithArgmax` has no XLA kernel),
ours also with XLA, on the tensors ENet pools (stage 1.0 and 2.0 inputs at
360x480, batch 10). Forward pooling + unpooling, median ms per call.
"""

import numpy as np
import tensorflow as tf
from absl import app, flags

from tf_enet.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D

import common

FLAGS = flags.FLAGS
flags.DEFINE_integer("batch_size", 10, "Batch size.")
flags.DEFINE_integer("repeats", 20, "Timed calls; the median is reported.")

SHAPES = ((180, 240, 16), (90, 120, 64))


def reference(x):
    pooled, argmax = tf.nn.max_pool_with_argmax(
        x, 2, 2, padding="VALID", include_batch_in_index=True
    )
    flat = tf.scatter_nd(
        tf.reshape(argmax, [-1, 1]),
        tf.reshape(pooled, [-1]),
        [tf.size(x, out_type=tf.int64)],
    )
    return tf.reshape(flat, tf.shape(x))


def main(argv):
    del argv
    pool, unpool = MaxPoolingWithArgmax2D(), MaxUnpooling2D()

    def ours(x):
        pooled, argmax = pool(x)
        return unpool([pooled, argmax])

    paths = {
        "reference (max_pool_with_argmax + scatter_nd)": tf.function(reference),
        "tf_enet layers, graph": tf.function(ours),
        "tf_enet layers, XLA": tf.function(ours, jit_compile=True),
    }
    print(common.machine_description())
    rows = []
    for height, width, channels in SHAPES:
        x = tf.constant(
            np.random.RandomState(0)
            .normal(size=(FLAGS.batch_size, height, width, channels))
            .astype("float32")
        )
        expected = reference(x).numpy()
        for name, function in paths.items():
            np.testing.assert_array_equal(function(x).numpy(), expected)
            ms = 1000 * common.median_seconds(
                lambda function=function, x=x: function(x).numpy(),
                warmup=3,
                repeats=FLAGS.repeats,
            )
            rows.append([name, f"{FLAGS.batch_size}x{height}x{width}x{channels}", f"{ms:.2f}"])
    common.print_table(["path (pool + unpool)", "input", "ms"], rows)


if __name__ == "__main__":
    app.run(main)
