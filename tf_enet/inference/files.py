"""Predicting image files and videos, and writing what predict.py shows.

Every option is an argument; `predict.py` maps its flags onto them.

For an input `<stem>.<ext>`, `write_prediction` writes:

    <stem>_labels.png    class ids, the input's size: 8-bit for models of at
                         most 256 classes, 16-bit beyond (never wrapped)
    <stem>_color.png     the classes painted with the model's palette
    <stem>_overlay.jpg   the colours blended over the image (`alpha`)

and `predict_video` writes an overlay video.
"""

import collections
import dataclasses
import glob
import os

import cv2
import numpy as np

from tf_enet import data as data_lib
from tf_enet.defaults import OUTPUTS

VIDEO_CODEC = "mp4v"


def overlay(image, classes, palette, alpha=0.5):
    """Blends the colours of a label map over its image.

    Args:
        image: np.ndarray uint8 `[height, width, 3]`, RGB.
        classes: np.ndarray int `[height, width]`.
        palette: sequence of (R, G, B).
        alpha: float in [0, 1]. Weight of the colours.

    Returns:
        np.ndarray uint8 `[height, width, 3]`, RGB.
    """
    colors = data_lib.colorize(classes, palette)
    return cv2.addWeighted(np.asarray(image, np.uint8), 1 - alpha, colors, alpha, 0)


@dataclasses.dataclass(frozen=True)
class ImageList:
    """Image files found from command-line inputs, by `find_images`.

    Args:
        paths: list of str. Files to predict, in the order given
            (directories sorted).
        skipped: list of str. Files in the given directories that are not
            images.
        unmatched: list of str. Inputs that are neither a file, a
            directory nor a glob matching anything.
        subdirectories: list of str. Directories inside the given
            directories, which are not searched.
    """

    paths: list
    skipped: list
    unmatched: list
    subdirectories: list = dataclasses.field(default_factory=list)


def find_images(inputs):
    """Expands files, directories and glob patterns into image files.

    A directory contributes its image files (`.png`, `.jpg`, `.jpeg`,
    `.bmp`, not recursively); its other files are listed as skipped, its
    directories as not searched. Glob patterns follow `glob.glob` with
    `recursive=True`: `**` matches directories at any depth
    (`photos/**/*.jpg`). Files named explicitly are kept whatever their
    extension, so a file that is not an image fails when read, with its
    name.

    Args:
        inputs: iterable of str.

    Returns:
        ImageList.
    """
    paths, skipped, unmatched, subdirectories = [], [], [], []
    for item in inputs:
        if os.path.isdir(item):
            for entry in sorted(os.scandir(item), key=lambda e: e.name):
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    subdirectories.append(entry.path)
                    continue
                if not entry.is_file():
                    continue
                ext = os.path.splitext(entry.name)[1].lower()
                (paths if ext in data_lib.base.IMAGE_EXTENSIONS else skipped).append(entry.path)
        elif os.path.isfile(item):
            paths.append(item)
        elif glob.has_magic(item):
            matches = sorted(p for p in glob.glob(item, recursive=True) if os.path.isfile(p))
            if matches:
                paths.extend(matches)
            else:
                unmatched.append(item)
        else:
            unmatched.append(item)
    unique = list(dict.fromkeys(paths))  # A file given twice runs once.
    return ImageList(unique, skipped, unmatched, subdirectories)


@dataclasses.dataclass(frozen=True)
class FilePrediction:
    """The result for one file of `predict_files`.

    Args:
        path: str. The input file.
        image: np.ndarray uint8 `[height, width, 3]` RGB, or None on error.
        classes: np.ndarray int32 `[height, width]`, or None on error.
        error: str or None. Why the file could not be used.
    """

    path: str
    image: np.ndarray = None
    classes: np.ndarray = None
    error: str = None


def predict_files(predictor, paths, *, batch_size=1, input_size=None):
    """Predicts image files, batching images of equal size.

    Images are decoded one at a time and gathered per size; a batch runs
    when `batch_size` images of one size are waiting. At most `batch_size`
    images wait in all: when one more would, the oldest partial batch
    runs, so a folder of many sizes holds no more images in memory than
    one batch. Results therefore come in batches, not in the order of
    `paths`.

    Args:
        predictor: Predictor.
        paths: iterable of str.
        batch_size: int. Images per model call.
        input_size: (height, width) or None. The size the model runs at;
            None: the model's training size (see `Predictor.model_size`).
            The classes always have the image's own size.

    Yields:
        FilePrediction, one per path; unreadable files carry `error`.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer; received {batch_size!r}.")
    waiting = collections.OrderedDict()  # (height, width) -> [(path, image)]

    def run(batch):
        images = np.stack([image for _, image in batch])
        classes = predictor.predict(images, input_size=input_size)
        for (path, image), labels in zip(batch, classes):
            yield FilePrediction(path, image, labels)

    for path in paths:
        try:
            image = data_lib.decode_image_file(path)
        except data_lib.DatasetError as err:
            yield FilePrediction(path, error=str(err))
            continue
        batch = waiting.setdefault(image.shape[:2], [])
        batch.append((path, image))
        if len(batch) == batch_size:
            del waiting[image.shape[:2]]
            yield from run(batch)
        elif sum(map(len, waiting.values())) > batch_size:
            yield from run(waiting.popitem(last=False)[1])
    for batch in waiting.values():
        yield from run(batch)


def output_stems(paths):
    """Output stems of input files, made unique when two share a file stem.

    Args:
        paths: sequence of str.

    Returns:
        dict path -> stem: "a" for ".../a.png", then "a-2", "a-3", ...
    """
    stems, seen = {}, {}
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        count = seen.get(stem, 0)
        seen[stem] = count + 1
        stems[path] = stem if count == 0 else f"{stem}-{count + 1}"
    return stems


# Output name -> (file name suffix, OpenCV encoder extension).
OUTPUT_SUFFIXES = {
    "labels": ("_labels.png", ".png"),
    "color": ("_color.png", ".png"),
    "overlay": ("_overlay.jpg", ".jpg"),
}


def encode_prediction(prediction, palette, *, outputs=OUTPUTS, alpha=0.5):
    """Encodes the outputs of one prediction as file contents.

    What `write_prediction` writes, for writers that put bytes elsewhere
    (object stores, Beam's file systems).

    Args:
        prediction: FilePrediction without error.
        palette: sequence of (R, G, B), one per class.
        outputs: sequence of names from `OUTPUTS`.
        alpha: float in [0, 1]. Weight of the class colours in the overlay.

    Returns:
        dict file name suffix (e.g. "_labels.png") -> bytes, in `OUTPUTS`
        order.

    Raises:
        ValueError: an unknown output name.
    """
    unknown = set(outputs) - set(OUTPUTS)
    if unknown:
        raise ValueError(f"Unknown outputs {sorted(unknown)}; expected some of {OUTPUTS}.")
    images = {}
    if "labels" in outputs:
        images["labels"] = label_image(prediction.classes, len(palette))
    if "color" in outputs:
        colors = data_lib.colorize(prediction.classes, palette)
        images["color"] = cv2.cvtColor(colors, cv2.COLOR_RGB2BGR)
    if "overlay" in outputs:
        blended = overlay(prediction.image, prediction.classes, palette, alpha)
        images["overlay"] = cv2.cvtColor(blended, cv2.COLOR_RGB2BGR)
    encoded = {}
    for name, image in images.items():
        suffix, extension = OUTPUT_SUFFIXES[name]
        ok, data = cv2.imencode(extension, image)
        if not ok:
            raise ValueError(f"OpenCV cannot encode the {name} output as {extension}.")
        encoded[suffix] = data.tobytes()
    return encoded


def label_image(classes, num_classes):
    """Class ids as the pixels of a label PNG: uint8, or uint16 past 256 classes.

    Args:
        classes: int np.ndarray `[height, width]` of ids in `[0, num_classes)`.
        num_classes: int. The model's classes (at most 65536).

    Returns:
        np.ndarray uint8 (`num_classes <= 256`) or uint16 `[height, width]`.

    Raises:
        ValueError: more than 65536 classes, which no PNG holds.
    """
    if num_classes > 1 << 16:
        raise ValueError(f"A label PNG holds at most 65536 classes; the model has {num_classes}.")
    return classes.astype(np.uint8 if num_classes <= 1 << 8 else np.uint16)


def write_prediction(prediction, output_dir, stem, palette, *, outputs=OUTPUTS, alpha=0.5):
    """Writes the outputs of one prediction (see the module docstring).

    Args:
        prediction: FilePrediction without error.
        output_dir: str. An existing directory.
        stem: str. Output file names start with it.
        palette: sequence of (R, G, B), one per class.
        outputs: sequence of names from `OUTPUTS`.
        alpha: float in [0, 1]. Weight of the class colours in the overlay.

    Returns:
        list of str. The files written.

    Raises:
        ValueError: an unknown output name.
        OSError: a file cannot be written.
    """
    encoded = encode_prediction(prediction, palette, outputs=outputs, alpha=alpha)
    written = []
    for suffix, content in encoded.items():
        path = os.path.join(output_dir, stem + suffix)
        try:
            with open(path, "wb") as file:
                file.write(content)
        except OSError as err:
            raise OSError(f"Cannot write {path}: {err.strerror}.") from None
        written.append(path)
    return written


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What `video_info` reads from a video file's header.

    Args:
        num_frames: int. Frame count as the container states it (may be 0
            or approximate).
        fps: float. Frames per second (25 when the file does not say).
        height: int. Frame height.
        width: int. Frame width.
    """

    num_frames: int
    fps: float
    height: int
    width: int


def video_info(path):
    """Opens a video and reads its frame count, rate and size.

    Raises:
        OSError: the file is missing, is an image (OpenCV would read it as
            a one-frame video), or OpenCV cannot decode it.
    """
    if not os.path.isfile(path):
        raise OSError(f"{path}: no such video file.")
    if os.path.splitext(path)[1].lower() in data_lib.base.IMAGE_EXTENSIONS:
        raise OSError(f"{path} is an image, not a video; segment it with --images.")
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise OSError(f"Cannot open video {path}: OpenCV cannot decode it.")
        return VideoInfo(
            num_frames=int(capture.get(cv2.CAP_PROP_FRAME_COUNT)),
            fps=capture.get(cv2.CAP_PROP_FPS) or 25.0,
            height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        )
    finally:
        capture.release()


def predict_video(
    predictor,
    path,
    output_path,
    *,
    batch_size=4,
    alpha=0.5,
    input_size=None,
    on_frames=None,
):
    """Segments a video into an overlay video (codec `VIDEO_CODEC`).

    Args:
        predictor: Predictor.
        path: str. The input video.
        output_path: str. The overlay video to write (e.g. `.mp4`).
        batch_size: int. Frames per model call.
        alpha: float in [0, 1]. Weight of the class colours.
        input_size: (height, width) or None. See `predict_files`.
        on_frames: callable `(frames_done)` or None, called after each batch.

    Returns:
        int. The number of frames written (0 if none could be read).

    Raises:
        OSError: the input cannot be opened or the output not written.
    """
    info = video_info(path)
    capture = cv2.VideoCapture(path)
    writer = cv2.VideoWriter(
        output_path,
        cv2.VideoWriter_fourcc(*VIDEO_CODEC),
        info.fps,
        (info.width, info.height),
    )
    done = 0
    try:
        if not writer.isOpened():
            raise OSError(f"Cannot write video {output_path}.")
        palette = predictor.info.palette
        while True:
            frames = []
            while len(frames) < batch_size:
                ok, frame = capture.read()
                if not ok:
                    break
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            if not frames:
                break
            images = np.stack(frames)  # [batch, height, width, 3] RGB
            classes = predictor.predict(images, input_size=input_size)
            for image, labels in zip(images, classes):
                blended = overlay(image, labels, palette, alpha)
                writer.write(cv2.cvtColor(blended, cv2.COLOR_RGB2BGR))
            done += len(frames)
            if on_frames is not None:
                on_frames(done)
    finally:
        capture.release()
        writer.release()
    return done
