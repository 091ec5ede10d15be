"""Segments images or a video: `python predict.py --images data/samples/`.

For every input `<stem>.<ext>` writes into --output_dir:
    <stem>_labels.png    class ids (uint8), the input's size
    <stem>_color.png     the classes painted with the model's palette
    <stem>_overlay.jpg   the colours blended over the image (--alpha)

--images takes directories, files and glob patterns (several, or repeated);
--video writes `<stem>_overlay.mp4`. --model takes a checkpoint directory,
a .keras file, an exported SavedModel directory or a .tflite/.onnx file;
the default is the shipped CamVid model.
"""

import os
import sys
import time

import cv2
import numpy as np
from absl import app, flags

from tf_enet import data, inference

OUTPUTS = ("labels", "color", "overlay")

flags.DEFINE_multi_string(
    "images", None,
    "Image files, directories or glob patterns; repeat the flag or list files "
    "after it.",
)
flags.DEFINE_string("video", None, "A video file to segment into an overlay video.")
flags.DEFINE_string(
    "model", inference.DEFAULT_MODEL,
    "Checkpoint directory, .keras file, SavedModel directory or .tflite/.onnx file.",
)
flags.DEFINE_string("output_dir", "predictions", "Where the outputs go.")
flags.DEFINE_list("outputs", list(OUTPUTS), "Which of labels,color,overlay to write.")
flags.DEFINE_float("alpha", 0.5, "Weight of the class colours in overlays.")
flags.DEFINE_integer(
    "height", None,
    "Run the model at this height (with --width); predictions are resized back "
    "to each input's size.",
)
flags.DEFINE_integer("width", None, "Run the model at this width (with --height).")
flags.DEFINE_integer("batch_size", 4, "Images of equal size per model call.")
flags.DEFINE_bool(
    "jit_compile", None,
    "XLA-compile Keras/SavedModel models: faster per image, but compiles for "
    f"~7 s per input size. Default: on for videos and from "
    f"{inference.XLA_BREAK_EVEN_IMAGES} images.",
)
flags.register_validator(
    "outputs", lambda values: set(values) <= set(OUTPUTS),
    message=f"--outputs must list some of {','.join(OUTPUTS)}.",
)
flags.register_validator(
    "alpha", lambda value: 0 <= value <= 1, message="--alpha must be in [0, 1]."
)
FLAGS = flags.FLAGS


def _write_rgb(path, image):
    if not cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"Cannot write {path}.")


def _write(prediction, stem, palette):
    base = os.path.join(FLAGS.output_dir, stem)
    if "labels" in FLAGS.outputs:
        path = base + "_labels.png"
        if not cv2.imwrite(path, prediction.classes.astype(np.uint8)):
            raise OSError(f"Cannot write {path}.")
    if "color" in FLAGS.outputs:
        _write_rgb(base + "_color.png", data.colorize(prediction.classes, palette))
    if "overlay" in FLAGS.outputs:
        _write_rgb(
            base + "_overlay.jpg",
            inference.overlay(prediction.image, prediction.classes, palette, FLAGS.alpha),
        )


def _stems(paths):
    """Output stems, made unique when two inputs share a file stem."""
    stems, seen = {}, {}
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        count = seen.get(stem, 0)
        seen[stem] = count + 1
        stems[path] = stem if count == 0 else f"{stem}-{count + 1}"
    return stems


class _Progress:
    """A one-line progress display on stderr; notes go on their own lines."""

    def __init__(self, total, unit):
        self.total, self.unit = total, unit
        self.start = time.monotonic()
        self.open = False

    def update(self, done):
        rate = done / max(time.monotonic() - self.start, 1e-9)
        width = len(str(self.total))
        print(f"\r[{done:>{width}}/{self.total}] {rate:.1f} {self.unit}/s",
              end="", file=sys.stderr, flush=True)
        self.open = True

    def note(self, message):
        self.close()
        print(message, file=sys.stderr, flush=True)

    def close(self):
        if self.open:
            print(file=sys.stderr, flush=True)
            self.open = False


def predict_images(predictor, paths, input_size):
    """Writes the outputs of every path; returns how many failed."""
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    stems = _stems(paths)
    progress = _Progress(len(paths), "img")
    done = failed = 0
    for result in inference.predict_files(
        predictor, paths, batch_size=FLAGS.batch_size, input_size=input_size
    ):
        done += 1
        try:
            if result.error is not None:
                raise OSError(result.error)
            _write(result, stems[result.path], predictor.info.palette)
        except OSError as err:
            progress.note(f"error: {err}")
            failed += 1
        progress.update(done)
    progress.close()
    print(f"Segmented {done - failed} of {done} images into {FLAGS.output_dir}/.")
    return failed


def predict_video(path, input_size):
    """Writes `<stem>_overlay.mp4`; returns 0 on success, else 1."""
    capture = cv2.VideoCapture(path)
    if not os.path.isfile(path) or not capture.isOpened():
        print(f"error: Cannot open video {path}.", file=sys.stderr)
        return 1
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    jit = FLAGS.jit_compile
    if jit is None:
        jit = inference.auto_jit_compile(total)
    predictor = inference.load_predictor(FLAGS.model, jit_compile=jit)
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    stem = os.path.splitext(os.path.basename(path))[0]
    output = os.path.join(FLAGS.output_dir, f"{stem}_overlay.mp4")
    writer = cv2.VideoWriter(
        output, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height)
    )
    if not writer.isOpened():
        print(f"error: Cannot write video {output}.", file=sys.stderr)
        return 1
    palette = predictor.info.palette
    progress = _Progress(total, "frames")
    done = 0
    try:
        while True:
            frames = []
            while len(frames) < FLAGS.batch_size:
                ok, frame = capture.read()
                if not ok:
                    break
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            if not frames:
                break
            images = np.stack(frames)  # [batch, height, width, 3] RGB
            classes = predictor.predict(images, input_size=input_size)
            for image, labels in zip(images, classes):
                blended = inference.overlay(image, labels, palette, FLAGS.alpha)
                writer.write(cv2.cvtColor(blended, cv2.COLOR_RGB2BGR))
            done += len(frames)
            progress.total = max(total, done)
            progress.update(done)
    finally:
        capture.release()
        writer.release()
    progress.close()
    seconds = max(time.monotonic() - progress.start, 1e-9)
    print(f"Wrote {done} frames to {output} ({done / seconds:.1f} frames/s).")
    if not done:
        print(f"error: No frame could be read from {path}.", file=sys.stderr)
    return 0 if done else 1


def main(argv):
    inputs = list(FLAGS.images or []) + argv[1:]
    if bool(inputs) == bool(FLAGS.video):
        raise app.UsageError("Give either --images (files, directories, globs) or --video.")
    if (FLAGS.height is None) != (FLAGS.width is None):
        raise app.UsageError("Give both --height and --width, or neither.")
    input_size = (FLAGS.height, FLAGS.width) if FLAGS.height else None
    try:
        inference.resolve_model_path(FLAGS.model)  # Fails fast on a bad path.
        if FLAGS.video:
            return predict_video(FLAGS.video, input_size)
        found = inference.find_images(inputs)
        for path in found.skipped:
            print(f"note: skipping {path}: not an image file.", file=sys.stderr)
        for item in found.unmatched:
            print(f"error: {item}: no such file or directory.", file=sys.stderr)
        if not found.paths:
            print("error: No images to segment.", file=sys.stderr)
            return 1
        jit = FLAGS.jit_compile
        if jit is None:
            jit = inference.auto_jit_compile(len(found.paths))
        predictor = inference.load_predictor(FLAGS.model, jit_compile=jit)
        failed = predict_images(predictor, found.paths, input_size)
    except (inference.ModelError, data.DatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 1 if failed or found.unmatched else 0


if __name__ == "__main__":
    app.run(main)
