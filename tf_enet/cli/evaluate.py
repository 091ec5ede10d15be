"""Scores a trained ENet on a labelled split.

Prints per-class IoU and accuracy, mean IoU, global pixel accuracy and
class-average accuracy, all from one confusion matrix accumulated at full
label resolution with ignored pixels left out. --model takes a checkpoint
directory, a .keras file, an exported SavedModel directory, a
.tflite/.onnx file or a preset name; the default is the CamVid model
shipped in the package.

The model runs at the size it was trained at (recorded with the model) and
its logits are resized to each label's size before the argmax;
--height/--width choose another size. Models that record no training size
run at each image's own size. --tta flip (or flip+scales) scores the model
with test-time augmentation.

Examples:
  tf-enet-evaluate --dataset camvid --data_dir data/CamVid --split val
  tf-enet-evaluate --model exports/enet_camvid.tflite --output_json val.json
"""

import math
import sys

from absl import flags

from tf_enet import cli
from tf_enet.artifacts import DEFAULT_PRESET
from tf_enet.cli.progress import Progress

# Leaf module without TensorFlow; the data defaults may move beside
# tf_enet.data.DATASETS.
from tf_enet.data import DEFAULT_DATA_DIRS
from tf_enet.defaults import TTA_MODES, XLA_BREAK_EVEN_IMAGES
from tf_enet.errors import TfEnetError

FLAGS = flags.FLAGS


def define_flags():
    """Defines the command's flags; called by `main`, not at import, so
    importing this module leaves absl's global flags alone."""
    flags.DEFINE_enum("dataset", "camvid", sorted(DEFAULT_DATA_DIRS), "Dataset layout.")
    flags.DEFINE_string(
        "data_dir",
        None,
        "Dataset root. Default: "
        + ", ".join(f"{k}: {v}" for k, v in DEFAULT_DATA_DIRS.items())
        + ".",
    )
    flags.DEFINE_string(
        "split",
        None,
        "Split to score. Default: test if the dataset has a labelled one, else val.",
    )
    flags.DEFINE_string("model", DEFAULT_PRESET, cli.MODEL_HELP)
    flags.DEFINE_string(
        "output_json",
        None,
        "Also write the scores to this JSON file (its directory is created and "
        "checked before the evaluation starts).",
    )
    flags.DEFINE_integer("limit", None, "Score only the first N images.")
    flags.DEFINE_integer(
        "batch_size",
        1,
        "Images per model call (consecutive images of one size are batched).",
    )
    flags.DEFINE_integer(
        "height",
        None,
        "Run the model at this height (with --width) instead of the size it was "
        "trained at; logits are resized back to the label size.",
    )
    flags.DEFINE_integer("width", None, "Run the model at this width (with --height).")
    flags.DEFINE_enum("tta", "none", TTA_MODES, cli.TTA_HELP)
    flags.DEFINE_bool(
        "jit_compile",
        None,
        f"XLA-compile Keras/SavedModel models. Default: on from {XLA_BREAK_EVEN_IMAGES} images.",
    )


def _percent(value):
    return "    n/a" if value is None or math.isnan(value) else f"{100 * value:7.2f}"


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
    if "cityscapes" in results:
        lines += ["", *format_cityscapes(results["cityscapes"])]
    return "\n".join(lines)


def format_cityscapes(scores):
    """The Cityscapes benchmark's four figures and the category table."""
    lines = ["Cityscapes benchmark (official definitions, as the paper's Table 4)"]
    for label, key in (
        ("class IoU", "class_iou"),
        ("class iIoU", "class_iiou"),
        ("category IoU", "category_iou"),
        ("category iIoU", "category_iiou"),
    ):
        lines.append(f"  {label:<14}{_percent(scores[key])}")
    lines += ["", f"  {'category':<14}     IoU     iIoU"]
    for name, iou in scores["per_category_iou"].items():
        iiou = scores["per_category_iiou"].get(name)
        shown_iiou = "" if iiou is None else _percent(iiou)
        lines.append(f"  {name:<14}{_percent(iou)}  {shown_iiou}")
    return lines


def choose_split(dataset, requested):
    """The split to score: `requested`, or test, else val, if labelled.

    Raises:
        tf_enet.data.DatasetError: naming the splits the dataset has, if
            `requested` is not one of them or (None) neither default is.
    """
    from tf_enet import data  # pylint: disable=import-outside-toplevel

    available = dataset.splits()
    if requested is not None:
        if requested not in available:
            raise data.DatasetError(
                f"{dataset.data_dir} has no {requested!r} split; it has "
                f"{', '.join(available) or 'none'}: pass one of them as --split."
            )
        return requested
    for split in ("test", "val"):
        # Some datasets publish their test split without labels.
        if split in available and all(mask for _, mask in dataset.files(split)):
            return split
    raise data.DatasetError(
        f"{dataset.data_dir} has no labelled test or val split to score; it has "
        f"{', '.join(available) or 'none'}: pass one of them as --split."
    )


def _main(argv):
    from tf_enet import artifacts  # pylint: disable=import-outside-toplevel

    if FLAGS.output_json:
        try:
            # Before the evaluation, so its result cannot be lost.
            artifacts.ensure_writable_file(FLAGS.output_json, "--output_json")
        except OSError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    from tf_enet import data, inference  # pylint: disable=import-outside-toplevel

    data_dir = FLAGS.data_dir or DEFAULT_DATA_DIRS[FLAGS.dataset]
    progress = []

    def on_batch(done, total):
        if not progress:
            progress.append(Progress(total, "image"))
        progress[0].update(done)

    try:
        # A folder dataset's held-out val split as the model's training held it out.
        options = inference.dataset_options(inference.read_model_config(FLAGS.model), FLAGS.dataset)
        dataset = data.get_dataset(FLAGS.dataset, data_dir, **options)
        split = choose_split(dataset, FLAGS.split)
        num_images = len(dataset.files(split)[: FLAGS.limit])
        jit = FLAGS.jit_compile
        if jit is None:
            jit = inference.auto_jit_compile(num_images)
        with cli.filtered_stderr():
            predictor = inference.load_predictor(FLAGS.model, jit_compile=jit, tta=FLAGS.tta)
        cli.check_input_size(predictor, FLAGS.height, FLAGS.width)
        results = inference.evaluate(
            predictor,
            dataset,
            split,
            batch_size=FLAGS.batch_size,
            height=FLAGS.height,
            width=FLAGS.width,
            limit=FLAGS.limit,
            on_batch=on_batch,
        )
    except (TfEnetError, ValueError) as error:
        print(("\n" if progress else "") + f"error: {error}", file=sys.stderr)
        return 1
    size = results["input_size"]
    runtime = _runtime_description(predictor, size)
    size = f"model input {size[0]}x{size[1]}" if size else "model at image size"
    tta = "" if FLAGS.tta == "none" else f", test-time augmentation {FLAGS.tta}"
    title = (
        f"{predictor.path} ({runtime}) on {FLAGS.dataset} "
        f"{split}: {results['num_images']} images, {size}{tta}, scored at "
        f"label resolution"
    )
    print(format_table(results, title))
    if FLAGS.output_json:
        record = {
            "model": predictor.path,
            "dataset": FLAGS.dataset,
            "data_dir": data_dir,
            "dataset_options": options,
            "height": FLAGS.height,
            "width": FLAGS.width,
            "tta": FLAGS.tta,
            **results,
        }
        try:
            # NaN (a class absent from labels and predictions) becomes null.
            artifacts.write_json(FLAGS.output_json, record)
        except OSError as error:
            print(f"error: {error}; the scores are printed above.", file=sys.stderr)
            return 1
    return 0


def _runtime_description(predictor, size):
    """The model's kind and, when another runtime runs it, which.

    A Keras model at its training size runs as its fixed-size TFLite
    conversion (`inference.load_predictor`), at any other size in Keras.
    """
    runtime = predictor.runtime_at(size, size) if size else predictor.runtime
    if runtime == predictor.kind:
        return predictor.kind
    if runtime.endswith("_xla"):
        return f"{predictor.kind}, compiled with XLA"
    if runtime == "tflite":
        return f"{predictor.kind}, run as its fixed-size TFLite conversion"
    return f"{predictor.kind}, run by {runtime}"


def main():
    """The `tf-enet-evaluate` command."""
    define_flags()
    cli.run(_main, load_tensorflow=False)
