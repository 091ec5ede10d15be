"""Exports a trained ENet for serving: SavedModel, TFLite, ONNX or a web page.

--model takes a checkpoint directory or a .keras file. The class names,
palette and training size travel with the export (see
tf_enet.exporting), so tf-enet-predict and tf-enet-evaluate run every
format. The output's directory is created and checked before the export
starts.

Examples:
  tf-enet-export --format saved_model --output exports/enet_camvid/1
  tf-enet-export --format tflite --quantize int8 --dataset camvid
      --height 360 --width 480 --output exports/enet_camvid_int8.tflite
  tf-enet-export --format onnx --output exports/enet_camvid.onnx
  tf-enet-export --format web --output site/   (see tf_enet.web)
"""

import sys

from absl import flags

from tf_enet import artifacts, cli
from tf_enet.artifacts import DEFAULT_PRESET

# Leaf module without TensorFlow; the data defaults may move beside
# tf_enet.data.DATASETS.
from tf_enet.data import DEFAULT_DATA_DIRS
from tf_enet.errors import TfEnetError

# "web": a static site that segments in the browser (tf_enet.web).
WEB_FORMAT = "web"
FORMATS = artifacts.EXPORT_FORMATS + (WEB_FORMAT,)
QUANTIZATIONS = artifacts.QUANTIZATIONS
INT8_RANGES = artifacts.INT8_RANGES
INT8_INPUTS = artifacts.INT8_INPUTS

FLAGS = flags.FLAGS


def define_flags():
    """Defines the command's flags; called by `main`, not at import, so
    importing this module leaves absl's global flags alone."""
    flags.DEFINE_string(
        "model",
        DEFAULT_PRESET,
        "Checkpoint directory, .keras file or preset name (the default: the shipped CamVid model).",
    )
    flags.DEFINE_enum("format", "saved_model", list(FORMATS), "Export format.")
    flags.DEFINE_string(
        "output",
        None,
        "SavedModel directory (for TF Serving: <models>/<name>/<version>), .tflite or .onnx "
        "file, or the web page's folder.",
    )
    flags.DEFINE_string(
        "web_runtime",
        None,
        "web: a local copy of onnxruntime-web (its npm tarball or unpacked package folder) "
        "for machines without internet. Default: the pinned version, downloaded once from "
        "the npm registry and cached under $TF_ENET_CACHE.",
    )
    flags.DEFINE_enum(
        "quantize",
        None,
        list(QUANTIZATIONS),
        "TFLite only: float16 weights, or int8 full-integer (uint8 pixels in, int8 "
        "logits out; needs calibration images). Default: float32.",
    )
    flags.DEFINE_string(
        "representative_images",
        None,
        "int8: calibration images (a directory, file or glob).",
    )
    flags.DEFINE_enum(
        "dataset",
        None,
        sorted(DEFAULT_DATA_DIRS),
        "int8: calibrate on this dataset's train split instead.",
    )
    flags.DEFINE_string(
        "data_dir",
        None,
        "With --dataset. Default: "
        + ", ".join(f"{k}: {v}" for k, v in DEFAULT_DATA_DIRS.items())
        + ".",
    )
    flags.DEFINE_integer("num_representative", 100, "int8: calibration images used.")
    flags.DEFINE_enum(
        "int8_ranges",
        "mean",
        list(INT8_RANGES),
        "int8: activation ranges from the calibration images. mean: the mean of "
        "each image's minimum and maximum for PReLU, add and batch norm outputs "
        "(rare outliers saturate rather than coarsen every step); minmax: the "
        "converter's overall minimum and maximum.",
    )
    flags.DEFINE_enum(
        "int8_input",
        "uint8",
        list(INT8_INPUTS),
        "int8: the input's type. uint8: pixels as they are; int8: pixel - 128 "
        "(zero point -128), which skips the uint8 input's conversion (slightly "
        "faster; predict.py and evaluate.py quantize either).",
    )
    flags.DEFINE_integer(
        "height",
        None,
        "TFLite: fix the model's input to this height (with --width), the size "
        "it will run at. A fixed size runs faster; tf-enet-predict and "
        "tf-enet-evaluate resize images to it. int8 calibration images are "
        "resized to it too.",
    )
    flags.DEFINE_integer("width", None, "TFLite: the fixed input width (with --height).")
    flags.mark_flag_as_required("output")


def _calibration_paths():
    """The int8 calibration image files the flags name (may be none)."""
    from tf_enet import data, inference  # pylint: disable=import-outside-toplevel

    if FLAGS.representative_images:
        found = inference.find_images([FLAGS.representative_images])
        if not found.paths:
            raise data.DatasetError(f"No calibration images in {FLAGS.representative_images}.")
        return found.paths
    if FLAGS.dataset:
        data_dir = FLAGS.data_dir or DEFAULT_DATA_DIRS[FLAGS.dataset]
        dataset = data.get_dataset(FLAGS.dataset, data_dir)
        return [image for image, _ in dataset.files("train")]
    return []


def _with_progress(representative, count):
    """`representative` showing a progress bar over each pass of its images.

    The int8 export reads the calibration images once for its activation
    ranges and once in the converter, each pass with its own bar.
    """
    import keras  # pylint: disable=import-outside-toplevel

    def generate():
        print("Calibrating int8 ranges:", flush=True)
        progress = keras.utils.Progbar(
            count, verbose=1 if sys.stdout.isatty() else 2, unit_name="image"
        )
        for done, images in enumerate(representative(), 1):
            yield images
            progress.update(done)

    return generate


def _main(argv):
    from tf_enet import exporting  # pylint: disable=import-outside-toplevel

    if FLAGS.format == WEB_FORMAT:
        return _export_web()
    try:
        exporting.check_output(FLAGS.output, FLAGS.format, what="--output")
        representative = None
        paths = []
        if FLAGS.quantize == "int8":
            paths = _calibration_paths()[: FLAGS.num_representative]
            if paths:
                representative = _with_progress(
                    exporting.representative_images(paths, height=FLAGS.height, width=FLAGS.width),
                    len(paths),
                )
        # The converters' C++ notices (the int8 quantizer prints one line
        # on every conversion) go to file descriptor 2 directly.
        with cli.filtered_stderr():
            output = exporting.export_model(
                FLAGS.model,
                FLAGS.output,
                FLAGS.format,
                quantize=FLAGS.quantize,
                representative=representative,
                input_size=None if FLAGS.height is None else (FLAGS.height, FLAGS.width),
                int8_ranges=FLAGS.int8_ranges,
                int8_input=FLAGS.int8_input,
            )
    except (TfEnetError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    calibration = f" (int8, calibrated on {len(paths)} images)" if paths else ""
    print(f"Exported {FLAGS.model} as {FLAGS.format}{calibration} to {output}.")
    return 0


def _export_web():
    from tf_enet import web  # pylint: disable=import-outside-toplevel

    if FLAGS.quantize or FLAGS.height is not None:
        print(
            "error: --quantize, --height and --width apply to TFLite; a web export runs the "
            "model in float32 at its training size.",
            file=sys.stderr,
        )
        return 2
    try:
        with cli.filtered_stderr():
            output = web.export_web(FLAGS.model, FLAGS.output, runtime_source=FLAGS.web_runtime)
    except (TfEnetError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Exported {FLAGS.model} as a web page to {output}; view it with:")
    print(f"  python -m http.server -d {output}   and open http://localhost:8000/")
    return 0


def main():
    """The `tf-enet-export` command."""
    define_flags()
    cli.run(_main)
