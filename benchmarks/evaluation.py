"""Wall time of evaluation, of the logit adjustment's scoring pass and of TTA.

    python benchmarks/evaluation.py --data_dir data/CamVid
    python benchmarks/evaluation.py --data_dir data/CamVid --repeats 5 --skip_command
    python benchmarks/evaluation.py --data_dir data/CamVid --tta none,flip --skip_command

Three measurements on a labelled split (CamVid val by default, 101 images):

    evaluate.py      the command as users run it, `python evaluate.py
                     --dataset camvid --data_dir D --split val`, in a fresh
                     process: wall time from start to exit (median of
                     `--command_repeats`), beside a process that only
                     imports TensorFlow
    scoring pass     what `train.py` runs after the last epoch to choose the
                     logit adjustment: the trained Keras model (as
                     `Predictor.from_model`) at the training size, labels
                     resized to it, one confusion matrix per alpha
                     (`training.logit_adjustment.adjustment_scores`, 11
                     alphas), against the same pass with one confusion
                     matrix (alpha 0 only) and the model's forward pass alone.
                     Both give the same matrix for alpha 0; the script checks
                     it.
    predict, tta=T   the default predictor with each test-time augmentation
                     of `--tta`, `load_predictor(--model, tta=T).predict(image)`
                     (what predict.py and evaluate.py run with `--tta T`; for
                     the shipped model its fixed-size TFLite conversion), one
                     image per call; beside the ratio to tta=none

In-process rows are medians of `--repeats` interleaved rounds over the first
`--images` images of the split, in ms per image.
"""

import os
import statistics
import subprocess
import sys
import time

import numpy as np

# Before TensorFlow loads: its C++ notices would bury the table.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
from absl import app, flags

from tf_enet import artifacts, data, inference, logit_adjustment, metrics, presets
from tf_enet.training.logit_adjustment import adjustment_scores

import common

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", "data/CamVid", "CamVid root.")
flags.DEFINE_string("split", "val", "Split to score.")
flags.DEFINE_string("model", "enet_camvid", "Preset name or checkpoint directory.")
flags.DEFINE_integer("images", 40, "Images of the split in the in-process rows.")
flags.DEFINE_integer("repeats", 3, "Interleaved rounds of the in-process rows.")
flags.DEFINE_integer("command_repeats", 3, "Runs of the evaluate.py command.")
flags.DEFINE_bool("skip_command", False, "Time only the in-process rows.")
flags.DEFINE_list(
    "tta", list(inference.TTA_MODES), "Test-time augmentations to time with `predict`."
)
flags.register_validator(
    "tta",
    lambda values: set(values) <= set(inference.TTA_MODES),
    message=f"--tta must list some of {','.join(inference.TTA_MODES)}.",
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _wall_seconds(argv, repeats):
    def run():
        subprocess.run(argv, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)

    return common.median_seconds(run, warmup=0, repeats=repeats)


def main(argv):
    del argv
    dataset = data.get_dataset("camvid", FLAGS.data_dir)
    num_images = min(FLAGS.images, len(dataset.files(FLAGS.split)))
    model_dir = common.model_path(FLAGS.model)
    config = presets.load_config(model_dir)
    size = artifacts.ModelDescription.from_config(config).training_size
    weights = np.asarray(config["class_weights"], np.float32)
    model = keras.saving.load_model(os.path.join(model_dir, "model.keras"), compile=False)
    predictor = inference.Predictor.from_model(model, dataset.info)
    scale = dict(limit=num_images, input_size=size, resize_labels=True)
    alphas = logit_adjustment.ALPHAS
    images = [
        image.numpy()
        for image, _ in data.make_eval_dataset(
            dataset, FLAGS.split, limit=num_images, batch_size=1, height=size[0], width=size[1]
        )
    ]
    results = {}

    def forward():
        for image in images:
            predictor.logits(image)

    def one():
        results["one"] = inference.confusion_matrix_of_split(
            predictor, dataset, FLAGS.split, **scale
        )

    def offsets():
        results["offsets"] = adjustment_scores(
            predictor, dataset, weights, FLAGS.split, alphas=alphas, **scale
        )

    def predict_with(tta_predictor):
        def run():
            for image in images:
                tta_predictor.predict(image)

        return run

    runners = {
        "forward pass alone (Keras, training size)": forward,
        "scoring, alpha 0 only (1 confusion matrix)": one,
        f"scoring, {len(alphas)} alphas (the logit adjustment)": offsets,
    }
    tta_rows = {}
    for tta in FLAGS.tta:
        tta_predictor = inference.load_predictor(FLAGS.model, tta=tta)
        tta_rows[tta] = f"predict, tta={tta} ({tta_predictor.runtime})"
        runners[tta_rows[tta]] = predict_with(tta_predictor)
    times = {name: [] for name in runners}
    for run in runners.values():
        run()  # warm-up: traces the model, fills the file cache
    for _ in range(FLAGS.repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    # Alpha 0 of the offsets path counts exactly the plain argmax.
    assert results["offsets"][0.0]["mean_iou"] == metrics.scores(results["one"])["mean_iou"]

    print(common.machine_description())
    ms = {name: 1000 * statistics.median(values) / num_images for name, values in times.items()}
    none = ms.get(tta_rows.get("none"))
    rows = [
        [
            name,
            f"{value:.1f}",
            f"{value / none:.2f}x" if name in tta_rows.values() and none else "",
        ]
        for name, value in ms.items()
    ]
    common.print_table(
        [f"{FLAGS.split}, first {num_images} images at {size}", "ms/image", "vs tta=none"], rows
    )
    print(f"medians of {FLAGS.repeats} interleaved rounds after one warm-up round")
    if FLAGS.skip_command:
        return
    total = len(dataset.files(FLAGS.split))
    command = [
        sys.executable,
        "evaluate.py",
        "--dataset",
        "camvid",
        "--data_dir",
        os.path.abspath(FLAGS.data_dir),
        "--split",
        FLAGS.split,
        "--model",
        FLAGS.model,
    ]
    seconds = _wall_seconds(command, FLAGS.command_repeats)
    baseline = _wall_seconds([sys.executable, "-c", "import tensorflow"], FLAGS.command_repeats)
    print(
        f"\n{' '.join(['python'] + command[1:])}\n"
        f"  {total} images: {seconds:.1f} s wall (median of {FLAGS.command_repeats}), "
        f"{1000 * seconds / total:.0f} ms/image; `python -c 'import tensorflow'`: "
        f"{baseline:.1f} s"
    )


if __name__ == "__main__":
    app.run(main)
