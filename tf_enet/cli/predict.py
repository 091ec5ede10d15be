"""Segments images or a video with a trained ENet.

For every input `<stem>.<ext>` writes into --output_dir:
    <stem>_labels.png    class ids, the input's size (16-bit PNG past 256 classes)
    <stem>_color.png     the classes painted with the model's palette
    <stem>_overlay.jpg   the colours blended over the image (--alpha)

--images takes directories, files and glob patterns (several, or repeated);
--video writes `<stem>_overlay.mp4`. --model takes a checkpoint directory,
a .keras file, an exported SavedModel directory, a .tflite/.onnx file or a
preset name; the default is the CamVid model shipped in the package.

The model runs at the size it was trained at (recorded with the model,
e.g. 360x480 for CamVid) and its predictions are resized back to each
input's size, so large photos are segmented at the scale the model learned;
--height/--width choose another size. Models that record no training size
run at each input's own size. --tta flip (or flip+scales) adds test-time
augmentation: slower, a little more accurate (see the README).

Examples:
  tf-enet-predict --images data/samples/ --output_dir predictions
  tf-enet-predict --video street.mp4 --model exports/enet_camvid.tflite
"""

import os
import sys
import time

from absl import flags

from tf_enet import cli
from tf_enet.artifacts import DEFAULT_PRESET
from tf_enet.cli.progress import Progress
from tf_enet.defaults import OUTPUTS, TTA_MODES, XLA_BREAK_EVEN_IMAGES
from tf_enet.errors import TfEnetError

FLAGS = flags.FLAGS


def define_flags():
    """Defines the command's flags; called by `main`, not at import, so
    importing this module leaves absl's global flags alone."""
    flags.DEFINE_multi_string(
        "images",
        None,
        "Image files, directories (not searched below) or glob patterns ('**' for "
        "any depth, quoted); repeat the flag or list files after it.",
    )
    flags.DEFINE_string("video", None, "A video file to segment into an overlay video.")
    flags.DEFINE_string("model", DEFAULT_PRESET, cli.MODEL_HELP)
    flags.DEFINE_string(
        "output_dir",
        "predictions",
        "Where the outputs go (created, and checked before the model runs).",
    )
    flags.DEFINE_list("outputs", list(OUTPUTS), "Which of labels,color,overlay to write.")
    flags.DEFINE_float("alpha", 0.5, "Weight of the class colours in overlays.")
    flags.DEFINE_integer(
        "height",
        None,
        "Run the model at this height (with --width) instead of the size it was "
        "trained at; predictions are resized back to each input's size.",
    )
    flags.DEFINE_integer("width", None, "Run the model at this width (with --height).")
    flags.DEFINE_integer("batch_size", 4, "Images of equal size per model call.")
    flags.DEFINE_enum("tta", "none", TTA_MODES, cli.TTA_HELP)
    flags.DEFINE_bool(
        "jit_compile",
        None,
        "XLA-compile where a Keras or SavedModel model runs (a Keras model with a "
        "training size runs as TFLite at that size): faster per image, but compiles "
        f"once per input size. Default: on from {XLA_BREAK_EVEN_IMAGES} images or "
        "video frames.",
    )
    flags.register_validator(
        "outputs",
        lambda values: set(values) <= set(OUTPUTS),
        message=f"--outputs must list some of {','.join(OUTPUTS)}.",
    )
    flags.register_validator(
        "alpha", lambda value: 0 <= value <= 1, message="--alpha must be in [0, 1]."
    )


def _note(message):
    """An error or note on its own line, also while a bar is shown."""
    sys.stdout.flush()
    prefix = "\n" if sys.stdout.isatty() else ""
    print(prefix + message, file=sys.stderr, flush=True)


def predict_images(predictor, paths, output_dir, *, outputs, alpha, batch_size, input_size):
    """Writes the outputs of every path; returns how many failed."""
    from tf_enet import inference  # pylint: disable=import-outside-toplevel

    stems = inference.output_stems(paths)
    progress = Progress(len(paths), "image")
    start = time.monotonic()
    done = failed = 0
    for result in inference.predict_files(
        predictor, paths, batch_size=batch_size, input_size=input_size
    ):
        done += 1
        try:
            if result.error is not None:
                raise OSError(result.error)
            inference.write_prediction(
                result,
                output_dir,
                stems[result.path],
                predictor.info.palette,
                outputs=outputs,
                alpha=alpha,
            )
        except OSError as err:
            _note(f"error: {err}")
            failed += 1
        progress.update(done)
    # The bar's time per image leaves out the first batch (and images of one
    # batch arrive together), so the summary gives the whole time.
    seconds = time.monotonic() - start
    print(
        f"Segmented {done - failed} of {done} images into {output_dir}/ in "
        f"{seconds:.2f} s ({1000 * seconds / max(done, 1):.0f} ms/image with "
        "reading and writing)."
    )
    return failed


def predict_video(predictor, path, output_dir, *, total, alpha, batch_size, input_size):
    """Writes `<stem>_overlay.mp4`; returns 0 on success, else 1."""
    from tf_enet import inference  # pylint: disable=import-outside-toplevel

    stem = os.path.splitext(os.path.basename(path))[0]
    output = os.path.join(output_dir, f"{stem}_overlay.mp4")
    progress = Progress(total or None, "frame")
    start = time.monotonic()
    done = inference.predict_video(
        predictor,
        path,
        output,
        batch_size=batch_size,
        alpha=alpha,
        input_size=input_size,
        on_frames=lambda frames: progress.update(frames, finalize=False),
    )
    progress.update(done, finalize=True)
    seconds = max(time.monotonic() - start, 1e-9)
    print(f"Wrote {done} frames to {output} ({done / seconds:.1f} frames/s).")
    if not done:
        print(f"error: No frame could be read from {path}.", file=sys.stderr)
    return 0 if done else 1


def _main(argv):
    inputs = list(FLAGS.images or []) + argv[1:]
    if FLAGS.video and argv[1:]:
        print(
            f"error: --video takes one video file; received also {' '.join(argv[1:])} "
            f"(one command per video).",
            file=sys.stderr,
        )
        return 2
    if bool(inputs) == bool(FLAGS.video):
        print(
            "error: give either --images (files, directories, globs) or --video.", file=sys.stderr
        )
        return 2
    from tf_enet import artifacts  # pylint: disable=import-outside-toplevel

    # The directories this run creates, deepest first.
    created, path = [], os.path.abspath(FLAGS.output_dir)
    while not os.path.exists(path):
        created.append(path)
        path = os.path.dirname(path)
    try:
        # Before any model runs, so no result is lost to the output path.
        artifacts.ensure_writable_dir(FLAGS.output_dir, "--output_dir")
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        return _segment(inputs)
    finally:
        # A run that wrote nothing leaves no empty directory of its making.
        for path in created:
            if os.path.isdir(path) and not os.listdir(path):
                os.rmdir(path)


def _segment(inputs):
    """Segments `inputs` (or --video) into --output_dir; the exit status."""
    from tf_enet import inference  # pylint: disable=import-outside-toplevel

    input_size = (FLAGS.height, FLAGS.width) if FLAGS.height else None
    options = dict(batch_size=FLAGS.batch_size, input_size=input_size)
    try:
        inference.resolve_model_path(FLAGS.model)  # Fails fast on a bad path.
        if FLAGS.video:
            video = inference.video_info(FLAGS.video)
            jit = FLAGS.jit_compile
            if jit is None:
                jit = inference.auto_jit_compile(video.num_frames)
            with cli.filtered_stderr():
                predictor = inference.load_predictor(FLAGS.model, jit_compile=jit, tta=FLAGS.tta)
            cli.check_input_size(predictor, FLAGS.height, FLAGS.width)
            return predict_video(
                predictor,
                FLAGS.video,
                FLAGS.output_dir,
                total=video.num_frames,
                alpha=FLAGS.alpha,
                **options,
            )
        found = inference.find_images(inputs)
        for path in found.skipped:
            print(f"note: skipping {path}: not an image file.", file=sys.stderr)
        for path in found.subdirectories:
            print(
                f"note: skipping {path}: directories inside --images directories are "
                f"not searched; a pattern such as '{os.path.join(path, '**', '*.jpg')}' is.",
                file=sys.stderr,
            )
        for item in found.unmatched:
            print(f"error: {item}: no such file or directory.", file=sys.stderr)
        if not found.paths:
            print("error: No images to segment.", file=sys.stderr)
            return 1
        jit = FLAGS.jit_compile
        if jit is None:
            jit = inference.auto_jit_compile(len(found.paths))
        with cli.filtered_stderr():
            predictor = inference.load_predictor(FLAGS.model, jit_compile=jit, tta=FLAGS.tta)
        cli.check_input_size(predictor, FLAGS.height, FLAGS.width)
        failed = predict_images(
            predictor,
            found.paths,
            FLAGS.output_dir,
            outputs=FLAGS.outputs,
            alpha=FLAGS.alpha,
            **options,
        )
    except (TfEnetError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 1 if failed or found.unmatched else 0


def main():
    """The `tf-enet-predict` command."""
    define_flags()
    cli.run(_main, load_tensorflow=False, takes_arguments=True)
