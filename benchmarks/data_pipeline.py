"""Measures the training input pipeline alone, in images per second.

    python benchmarks/data_pipeline.py --data_dir data/CamVid

Builds `make_train_dataset` (decode, label mapping, augmentation, batching)
and pulls batches without a model, so the figure is the ceiling the data
side puts on training speed. Prints the median over `--repeats` timed runs
of `--steps` batches each, after `--warmup` batches.
"""

import statistics
import time

from absl import app, flags

from tf_enet import data

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "camvid", "camvid, cityscapes or folder.")
flags.DEFINE_string("data_dir", "data/CamVid", "Dataset root directory.")
flags.DEFINE_string("split", "train", "Split to read.")
flags.DEFINE_integer("batch_size", 10, "Images per batch.")
flags.DEFINE_integer("height", 360, "Training image height.")
flags.DEFINE_integer("width", 480, "Training image width.")
flags.DEFINE_integer("label_stride", 1, "Mask subsampling factor.")
flags.DEFINE_boolean("augment", True, "Random scale, crop and flip.")
flags.DEFINE_integer("steps", 50, "Batches per timed run.")
flags.DEFINE_integer("warmup", 10, "Batches pulled before timing.")
flags.DEFINE_integer("repeats", 3, "Timed runs; the median is reported.")


def main(argv):
    del argv
    dataset = data.get_dataset(FLAGS.dataset, FLAGS.data_dir)
    train = data.make_train_dataset(
        dataset,
        FLAGS.split,
        height=FLAGS.height,
        width=FLAGS.width,
        batch_size=FLAGS.batch_size,
        label_stride=FLAGS.label_stride,
        augment=FLAGS.augment,
    )
    batches = iter(train.repeat())
    for _ in range(FLAGS.warmup):
        next(batches)
    rates = []
    for run in range(FLAGS.repeats):
        start = time.perf_counter()
        for _ in range(FLAGS.steps):
            images, _ = next(batches)
        # Make sure the last batch is materialised before stopping the clock.
        images.numpy()
        elapsed = time.perf_counter() - start
        rates.append(FLAGS.steps * FLAGS.batch_size / elapsed)
        print(f"run {run + 1}: {rates[-1]:.1f} images/s")
    print(
        f"{FLAGS.dataset} {FLAGS.split} {FLAGS.height}x{FLAGS.width} batch "
        f"{FLAGS.batch_size}: median {statistics.median(rates):.1f} images/s"
    )


if __name__ == "__main__":
    app.run(main)
