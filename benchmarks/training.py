"""Measures ENet's training step and the input pipeline that feeds it.

    python benchmarks/training.py --data_dir data/CamVid

Times `train_on_batch` of the full model (and the encoder stage) with the
class-weighted loss and the mIoU metric, exactly as `train.py` compiles it,
on random batches, with and without XLA; then the tf.data training pipeline
alone on real images. Prints ms per image and images per second (medians of
`--repeats` runs after `--warmup`) and how many times faster the pipeline
is than the step it feeds.
"""

import keras
import numpy as np
from absl import app, flags

import tf_enet
from tf_enet import data, training

import common

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", "data/CamVid", "CamVid root (for the pipeline).")
flags.DEFINE_integer("height", 360, "Training image height.")
flags.DEFINE_integer("width", 480, "Training image width.")
flags.DEFINE_integer("batch_size", 10, "Images per batch.")
flags.DEFINE_integer("warmup", 2, "Untimed steps first.")
flags.DEFINE_integer("repeats", 5, "Timed steps; the median is reported.")
flags.DEFINE_integer("pipeline_batches", 20, "Batches per timed pipeline run.")
flags.DEFINE_list("jit", ["off", "on"], "XLA settings to time: off, on.")
flags.DEFINE_list("stages", ["full", "encoder"], "Stages to time: full, encoder.")


def _step_seconds(stage, jit_compile, info, weights):
    config = training.TrainConfig(
        height=FLAGS.height,
        width=FLAGS.width,
        batch_size=FLAGS.batch_size,
        jit_compile=jit_compile,
    )
    builder = tf_enet.build_enet_encoder if stage == "encoder" else tf_enet.build_enet
    model = builder(info.num_classes)
    training.add_weight_decay(model, config.weight_decay)
    training.compile_model(model, config, 10, 10, weights, info)
    stride = tf_enet.model.OUTPUT_STRIDE if stage == "encoder" else 1
    rng = np.random.RandomState(0)
    images = rng.uniform(0, 255, (FLAGS.batch_size, FLAGS.height, FLAGS.width, 3))
    labels = rng.randint(
        0,
        info.num_classes + 1,
        (FLAGS.batch_size, -(-FLAGS.height // stride), -(-FLAGS.width // stride)),
    )
    images, labels = images.astype("float32"), labels.astype("int32")
    return common.median_seconds(
        lambda: model.train_on_batch(images, labels),
        warmup=FLAGS.warmup,
        repeats=FLAGS.repeats,
    )


def main(argv):
    del argv
    keras.utils.set_random_seed(0)
    dataset = data.get_dataset("camvid", FLAGS.data_dir)
    info = dataset.info
    weights = data.class_weights(data.scan(dataset, "train"), "mfb")
    print(common.machine_description())
    rows = []
    step_ms = {}
    for stage in FLAGS.stages:
        for jit in FLAGS.jit:
            seconds = _step_seconds(stage, jit == "on", info, weights)
            ms = 1000 * seconds / FLAGS.batch_size
            step_ms[(stage, jit)] = ms
            rows.append(
                [
                    f"train step, {stage}, XLA {jit}",
                    f"{FLAGS.height}x{FLAGS.width}",
                    FLAGS.batch_size,
                    f"{ms:.1f}",
                    f"{1000 / ms:.1f}",
                ]
            )

    pipeline = data.make_train_dataset(
        dataset,
        height=FLAGS.height,
        width=FLAGS.width,
        batch_size=FLAGS.batch_size,
    ).repeat()
    batches = iter(pipeline)

    def pull():
        for _ in range(FLAGS.pipeline_batches):
            images, _ = next(batches)
        images.numpy()

    seconds = common.median_seconds(pull, warmup=1, repeats=FLAGS.repeats)
    pipeline_ms = 1000 * seconds / (FLAGS.pipeline_batches * FLAGS.batch_size)
    rows.append(
        [
            "tf.data train pipeline",
            f"{FLAGS.height}x{FLAGS.width}",
            FLAGS.batch_size,
            f"{pipeline_ms:.1f}",
            f"{1000 / pipeline_ms:.1f}",
        ]
    )
    common.print_table(["path", "size", "batch", "ms/image", "images/s"], rows)
    fastest = min(v for (stage, _), v in step_ms.items() if stage == "full") if step_ms else None
    if fastest:
        print(
            f"pipeline is {fastest / pipeline_ms:.1f}x faster than the fastest "
            "full-model training step"
        )


if __name__ == "__main__":
    app.run(main)
