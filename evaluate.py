"""Scores a model on a labelled split: `python evaluate.py --split val`.

Prints per-class IoU and accuracy, mean IoU, global pixel accuracy and
class-average accuracy, all from one confusion matrix accumulated at full
label resolution with ignored pixels left out. --model takes a checkpoint
directory, a .keras file, an exported SavedModel directory or a
.tflite/.onnx file; the default is the shipped CamVid model.
"""

import json
import math
import sys
import time

from absl import app, flags

from tf_enet import data, inference
from tf_enet.training import DEFAULT_DATA_DIRS

flags.DEFINE_enum("dataset", "camvid", sorted(data.DATASETS), "Dataset layout.")
flags.DEFINE_string(
    "data_dir", None,
    "Dataset root. Default: "
    + ", ".join(f"{k}: {v}" for k, v in DEFAULT_DATA_DIRS.items()) + ".",
)
flags.DEFINE_string("split", "test", "Split to score.")
flags.DEFINE_string(
    "model", inference.DEFAULT_MODEL,
    "Checkpoint directory, .keras file, SavedModel directory or .tflite/.onnx file.",
)
flags.DEFINE_string("output_json", None, "Also write the scores to this JSON file.")
flags.DEFINE_integer("limit", None, "Score only the first N images.")
flags.DEFINE_integer(
    "batch_size", 1,
    "Images per model call; keep 1 if the split mixes image sizes (padding "
    "would change predictions).",
)
flags.DEFINE_integer(
    "height", None,
    "Run the model at this height (with --width), e.g. the training size; "
    "logits are resized back to the label size.",
)
flags.DEFINE_integer("width", None, "Run the model at this width (with --height).")
flags.DEFINE_bool(
    "jit_compile", None,
    "XLA-compile Keras/SavedModel models. Default: on from "
    f"{inference.XLA_BREAK_EVEN_IMAGES} images.",
)
FLAGS = flags.FLAGS


def _percent(value):
    return "    n/a" if math.isnan(value) else f"{100 * value:7.2f}"


def format_table(results, title):
    """The scores as a text table, percentages with two decimals."""
    names = results["class_names"]
    width = max(len("class-average accuracy"), *(len(n) for n in names))
    lines = [title, "", f"{'class':<{width}}      IoU  accuracy"]
    for name in names:
        lines.append(
            f"{name:<{width}}  {_percent(results['per_class_iou'][name])}"
            f"   {_percent(results['per_class_accuracy'][name])}"
        )
    lines.append("")
    for label, key in (
        ("mean IoU", "mean_iou"),
        ("global accuracy", "global_accuracy"),
        ("class-average accuracy", "class_accuracy"),
    ):
        lines.append(f"{label:<{width}}  {_percent(results[key])}")
    return "\n".join(lines)


def _without_nan(value):
    """NaN (a class absent from labels and predictions) as JSON null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _without_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nan(v) for v in value]
    return value


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if (FLAGS.height is None) != (FLAGS.width is None):
        raise app.UsageError("Give both --height and --width, or neither.")
    data_dir = FLAGS.data_dir or DEFAULT_DATA_DIRS[FLAGS.dataset]
    started = [time.monotonic()]
    shown = []

    def progress(done, total):
        shown.append(done)
        rate = done / max(time.monotonic() - started[0], 1e-9)
        print(f"\r[{done:>{len(str(total))}}/{total}] {rate:.1f} img/s",
              end="", file=sys.stderr, flush=True)

    try:
        dataset = data.get_dataset(FLAGS.dataset, data_dir)
        num_images = len(dataset.files(FLAGS.split)[: FLAGS.limit])
        jit = FLAGS.jit_compile
        if jit is None:
            jit = inference.auto_jit_compile(num_images)
        predictor = inference.load_predictor(FLAGS.model, jit_compile=jit)
        started[0] = time.monotonic()
        results = inference.evaluate(
            predictor, dataset, FLAGS.split, batch_size=FLAGS.batch_size,
            height=FLAGS.height, width=FLAGS.width, limit=FLAGS.limit,
            on_batch=progress,
        )
    except (inference.ModelError, data.DatasetError, ValueError) as error:
        print(("\n" if shown else "") + f"error: {error}", file=sys.stderr)
        return 1
    print(file=sys.stderr)
    size = (
        f"model input {FLAGS.height}x{FLAGS.width}, " if FLAGS.height else ""
    )
    title = (
        f"{predictor.path} ({predictor.kind}) on {FLAGS.dataset} "
        f"{FLAGS.split}: {results['num_images']} images, {size}scored at "
        f"label resolution"
    )
    print(format_table(results, title))
    if FLAGS.output_json:
        record = {
            "model": predictor.path,
            "dataset": FLAGS.dataset,
            "data_dir": data_dir,
            "height": FLAGS.height,
            "width": FLAGS.width,
            **results,
        }
        try:
            with open(FLAGS.output_json, "w", encoding="utf-8") as f:
                json.dump(_without_nan(record), f, indent=2)
                f.write("\n")
        except OSError as error:
            print(f"error: Cannot write {FLAGS.output_json}: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    app.run(main)
