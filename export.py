"""Exports a trained model for serving: `python export.py --format tflite`.

    python export.py --model checkpoints/enet_camvid --format saved_model \
        --output exports/enet_camvid/1
    python export.py --model checkpoints/enet_camvid --format tflite \
        --quantize int8 --dataset camvid --height 360 --width 480 \
        --output exports/enet_camvid_int8.tflite
    python export.py --model checkpoints/enet_camvid --format onnx \
        --output exports/enet_camvid.onnx

--model takes a checkpoint directory or a .keras file. The class names and
palette travel with the export (see tf_enet/export.py), so predict.py and
evaluate.py run every format.
"""

import sys

from absl import app, flags

from tf_enet import data, export, inference
from tf_enet.training import DEFAULT_DATA_DIRS

flags.DEFINE_string(
    "model", inference.DEFAULT_MODEL, "Checkpoint directory or .keras file."
)
flags.DEFINE_enum("format", "saved_model", list(export.FORMATS), "Export format.")
flags.DEFINE_string(
    "output", None,
    "SavedModel directory (for TF Serving: <models>/<name>/<version>), "
    ".tflite or .onnx file.",
)
flags.DEFINE_enum(
    "quantize", None, list(export.QUANTIZATIONS),
    "TFLite only: float16 weights, or int8 full-integer (uint8 pixels in, int8 "
    "logits out; needs calibration images). Default: float32.",
)
flags.DEFINE_string(
    "representative_images", None,
    "int8: calibration images (a directory, file or glob).",
)
flags.DEFINE_enum(
    "dataset", None, sorted(data.DATASETS),
    "int8: calibrate on this dataset's train split instead.",
)
flags.DEFINE_string(
    "data_dir", None,
    "With --dataset. Default: "
    + ", ".join(f"{k}: {v}" for k, v in DEFAULT_DATA_DIRS.items()) + ".",
)
flags.DEFINE_integer("num_representative", 100, "int8: calibration images used.")
flags.DEFINE_enum(
    "int8_ranges", "mean", list(export.INT8_RANGES),
    "int8: activation ranges from the calibration images. mean: the mean of "
    "each image's minimum and maximum for PReLU, add and batch norm outputs "
    "(rare outliers saturate rather than coarsen every step); minmax: the "
    "converter's overall minimum and maximum.",
)
flags.DEFINE_integer(
    "height", None,
    "TFLite: fix the model's input to this height (with --width), the size "
    "it will run at. A fixed size runs faster; predict.py and evaluate.py "
    "resize images to it. int8 calibration images are resized to it too.",
)
flags.DEFINE_integer("width", None, "TFLite: the fixed input width (with --height).")
flags.mark_flag_as_required("output")
FLAGS = flags.FLAGS


def _calibration_paths():
    """The int8 calibration image files the flags name (may be none)."""
    if FLAGS.representative_images:
        found = inference.find_images([FLAGS.representative_images])
        if not found.paths:
            raise data.DatasetError(
                f"No calibration images in {FLAGS.representative_images}."
            )
        return found.paths
    if FLAGS.dataset:
        data_dir = FLAGS.data_dir or DEFAULT_DATA_DIRS[FLAGS.dataset]
        dataset = data.get_dataset(FLAGS.dataset, data_dir)
        return [image for image, _ in dataset.files("train")]
    return []


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if (FLAGS.height is None) != (FLAGS.width is None):
        raise app.UsageError("Give both --height and --width, or neither.")
    try:
        representative = None
        if FLAGS.quantize == "int8":
            paths = _calibration_paths()[: FLAGS.num_representative]
            if paths:
                representative = export.representative_images(
                    paths, height=FLAGS.height, width=FLAGS.width
                )
        output = export.export_model(
            FLAGS.model, FLAGS.output, FLAGS.format, quantize=FLAGS.quantize,
            representative=representative,
            input_size=None if FLAGS.height is None else (FLAGS.height, FLAGS.width),
            int8_ranges=FLAGS.int8_ranges,
        )
    except (inference.ModelError, export.ExportError, data.DatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Exported {FLAGS.model} as {FLAGS.format} to {output}.")
    return 0


if __name__ == "__main__":
    app.run(main)
