"""`SegmentImages`: a Beam pipeline segmenting every image of a corpus.

    import apache_beam as beam
    from tf_enet.beam import SegmentImages

    with beam.Pipeline(options=options) as pipeline:
        pipeline | SegmentImages(["gs://bucket/frames/*.jpg"], "gs://bucket/labels")

writes, through Beam's file systems (local, `gs://`, `s3://`, ... as the
installed Beam supports them), what `tf-enet-predict` writes for each
image, byte for byte (`tf_enet.inference.encode_prediction`), and one
`SUMMARY_FILE`:

    {"model": ..., "images": 345,
     "classes": [{"id": 0, "name": "Sky", "pixels": 1234}, ...],
     "unreadable": [{"path": ..., "error": ...}],   # files that failed to decode
     "skipped": [...]}                              # non-image files of directories

Inputs are glob patterns (Beam's syntax: `*` within a directory, `**`
across) or directories. As in `tf-enet-predict`, a directory gives its
image files (`.png`, `.jpg`, `.jpeg`, `.bmp`; others are skipped, hidden
files ignored), a pattern every file it matches: one that is not an image
is listed as unreadable, and never fails the pipeline. Output names are
`<stem>_labels.png` and so on, `<stem>-2_...` for the second input with
the same file stem (in the order of the inputs, each one's files sorted),
as `tf-enet-predict` names them.

Every file is written under a temporary name and renamed when complete, so
a rerun into the same directory replaces the outputs and an interrupted
run leaves no partial file under an output's name.
"""

import json
import os
import typing
import uuid

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

from tf_enet import artifacts, inference
from tf_enet.beam.handler import ENetModelHandler, local_model_path
from tf_enet.data import base as data_base

SUMMARY_FILE = "summary.json"
# Temporary files are "<TEMP_PREFIX><name>.tmp-<hex>" beside their target.
TEMP_PREFIX = "."
_TEMP_MARK = ".tmp-"
_SKIPPED = "skipped"
_UNREADABLE = "unreadable"


def input_patterns(inputs):
    """File patterns of command-line inputs: a directory becomes `<dir>/*`.

    Args:
        inputs: iterable of str. Directories (local ones, or any path ending
            with "/") and glob patterns or files.

    Returns:
        list of (pattern, is_directory).
    """
    patterns = []
    for item in inputs:
        is_directory = item.endswith("/") or (
            FileSystems.get_scheme(item) in (None, "file") and os.path.isdir(item)
        )
        pattern = item.rstrip("/") + "/*" if is_directory else item
        patterns.append((pattern, is_directory))
    return patterns


def check_inputs(inputs):
    """Checks that every input matches a file, before a pipeline starts.

    Args:
        inputs: sequence of str, as `input_patterns` takes.

    Raises:
        OSError: naming the first input that matches nothing.
    """
    if not inputs:
        raise OSError("--images: no input given; expected files, directories or patterns.")
    for item, (pattern, _) in zip(inputs, input_patterns(inputs)):
        try:
            found = FileSystems.match([pattern], limits=[1])[0].metadata_list
        except Exception as err:  # BeamIOError, or a file system's own errors.
            raise OSError(f"--images {item}: cannot list it ({_first_line(err)}).") from None
        if not found:
            raise OSError(f"--images {item}: matches no file.")


def check_output_dir(output_dir):
    """Creates `output_dir` if missing and checks a file can be written there.

    A local directory is checked as predict.py checks its own
    (`artifacts.ensure_writable_dir`: a file in the way is named as such).

    Raises:
        OSError: naming the directory and the reason.
    """
    if FileSystems.get_scheme(output_dir) is None:
        artifacts.ensure_writable_dir(output_dir, "--output_dir")
        return
    probe = FileSystems.join(output_dir, f"{TEMP_PREFIX}probe{_TEMP_MARK}{uuid.uuid4().hex}")
    try:
        if not FileSystems.exists(output_dir):
            FileSystems.mkdirs(output_dir)
        write_file(probe, b"")
        FileSystems.delete([probe])
    except Exception as err:  # BeamIOError, OSError, a file system's own errors.
        raise OSError(
            f"--output_dir {output_dir}: cannot write there ({_first_line(err)})."
        ) from None


def remove_temporary_files(output_dir):
    """Deletes the temporary files an interrupted run left in `output_dir`.

    Returns:
        int. How many were deleted.
    """
    pattern = FileSystems.join(output_dir, f"{TEMP_PREFIX}*{_TEMP_MARK}*")
    stale = [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    if stale:
        FileSystems.delete(stale)
    return len(stale)


def write_file(path, content):
    """Writes `content` to `path` on any Beam file system, all or nothing.

    The bytes go to a temporary name beside `path`, renamed to `path` once
    complete, replacing a file of that name (on object stores a rename is
    a copy then a delete).

    Args:
        path: str.
        content: bytes.
    """
    directory, name = FileSystems.split(path)
    temporary = FileSystems.join(directory, f"{TEMP_PREFIX}{name}{_TEMP_MARK}{uuid.uuid4().hex}")
    try:
        with FileSystems.create(temporary, compression_type=CompressionTypes.UNCOMPRESSED) as file:
            file.write(content)
        FileSystems.rename([temporary], [path])
    except BaseException:
        if FileSystems.exists(temporary):
            FileSystems.delete([temporary])
        raise


def read_summary(output_dir):
    """Reads the `SUMMARY_FILE` a pipeline wrote into `output_dir`.

    Returns:
        dict, as the module docstring shows.
    """
    path = FileSystems.join(output_dir, SUMMARY_FILE)
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as file:
        return json.loads(file.read().decode("utf-8"))


def _first_line(error):
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


# Beam infers element types from `process`, and reads a generator that also
# yields TaggedOutput as the wrong type for GroupByKey: state them instead.
@beam.typehints.with_output_types(typing.Tuple[str, typing.Tuple[int, str]])
class _MatchFiles(beam.DoFn):
    """(index, (pattern, is_directory)) -> (stem, (index, path)); skipped paths."""

    def process(self, element):
        index, (pattern, is_directory) = element
        for metadata in FileSystems.match([pattern])[0].metadata_list:
            path = metadata.path
            name = os.path.basename(path)
            if is_directory:
                if name.startswith("."):
                    continue
                if os.path.splitext(name)[1].lower() not in data_base.IMAGE_EXTENSIONS:
                    yield beam.pvalue.TaggedOutput(_SKIPPED, path)
                    continue
            yield _stem(path), (index, path)


def _unique_stems(element):
    """(stem, [(index, path)]) -> (path, output stem), as `tf-enet-predict` names them."""
    _, found = element
    paths = list(dict.fromkeys(path for _, path in sorted(found)))
    yield from inference.output_stems(paths).items()


@beam.typehints.with_output_types(typing.Tuple[typing.Tuple[str, str], np.ndarray])
class _DecodeImage(beam.DoFn):
    """(path, stem) -> ((path, stem), image RGB uint8); unreadable (path, error)."""

    def process(self, element):
        path, _ = element
        try:
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as file:
                content = file.read()
            image = data_base.decode_image_bytes(content, path)
        except data_base.DatasetError as err:
            yield beam.pvalue.TaggedOutput(_UNREADABLE, (path, str(err)))
            return
        except Exception as err:  # BeamIOError, OSError: a file gone or unreadable.
            yield beam.pvalue.TaggedOutput(_UNREADABLE, (path, f"Cannot read {path}: {err}"))
            return
        yield element, image


class _WriteOutputs(beam.DoFn):
    """((path, stem), PredictionResult) -> class pixel counts, writing the outputs."""

    def __init__(self, output_dir, palette, num_classes, outputs, alpha):
        self.output_dir = output_dir
        self.palette = palette
        self.num_classes = num_classes
        self.outputs = outputs
        self.alpha = alpha

    def process(self, element):
        (path, stem), result = element
        prediction = inference.FilePrediction(path, result.example, result.inference)
        encoded = inference.encode_prediction(
            prediction, self.palette, outputs=self.outputs, alpha=self.alpha
        )
        for suffix, content in encoded.items():
            write_file(FileSystems.join(self.output_dir, stem + suffix), content)
        yield np.bincount(result.inference.ravel(), minlength=self.num_classes).astype(np.int64)


class _SumPixels(beam.CombineFn):
    """Per-class pixel counts -> (images, total pixels per class)."""

    def __init__(self, num_classes):
        self.num_classes = num_classes

    def create_accumulator(self):
        return 0, np.zeros(self.num_classes, np.int64)

    def add_input(self, accumulator, counts):
        return accumulator[0] + 1, accumulator[1] + counts

    def merge_accumulators(self, accumulators):
        images, totals = self.create_accumulator()
        for count, pixels in accumulators:
            images, totals = images + count, totals + pixels
        return images, totals

    def extract_output(self, accumulator):
        return accumulator


def _write_summary(_, output_dir, model, class_names, totals, unreadable, skipped):
    images, pixels = totals
    summary = {
        "model": model,
        "images": int(images),
        "classes": [
            {"id": i, "name": name, "pixels": int(count)}
            for i, (name, count) in enumerate(zip(class_names, pixels))
        ],
        "unreadable": [{"path": path, "error": error} for path, error in sorted(unreadable)],
        "skipped": sorted(skipped),
    }
    path = FileSystems.join(output_dir, SUMMARY_FILE)
    write_file(path, (json.dumps(summary, indent=2) + "\n").encode("utf-8"))
    return path


class SegmentImages(beam.PTransform):
    """Segments the images of file patterns into `output_dir` (see the module docstring).

    The model is loaded once here (so a bad model fails before the pipeline
    runs) for its class names and palette, and once per worker process by
    `ENetModelHandler`.

    Args:
        inputs: sequence of str. Glob patterns, files or directories (see
            `input_patterns`).
        output_dir: str. A directory on any Beam file system.
        model: str. See `ENetModelHandler`.
        outputs: sequence of names from `tf_enet.inference.OUTPUTS`.
        alpha: float in [0, 1]. Weight of the class colours in overlays.
        input_size: (height, width) or None. See `ENetModelHandler`.
        batch_size: int. Most images per model call.
        large_model: bool. See `ENetModelHandler`.

    Returns (when applied to a pipeline):
        PCollection of one str: the path of the summary written.

    Raises:
        tf_enet.inference.ModelError: the model cannot be loaded.
        ValueError: unknown outputs, or `alpha` outside [0, 1].
    """

    def __init__(
        self,
        inputs,
        output_dir,
        *,
        model=inference.DEFAULT_MODEL,
        outputs=inference.OUTPUTS,
        alpha=0.5,
        input_size=None,
        batch_size=4,
        large_model=False,
    ):
        super().__init__()
        unknown = set(outputs) - set(inference.OUTPUTS)
        if unknown:
            raise ValueError(
                f"Unknown outputs {sorted(unknown)}; expected some of {inference.OUTPUTS}."
            )
        if not 0 <= alpha <= 1:
            raise ValueError(f"`alpha` must be in [0, 1]; received {alpha}.")
        self.inputs = list(inputs)
        self.output_dir = output_dir
        self.model = model
        self.outputs = tuple(outputs)
        self.alpha = alpha
        self.handler = ENetModelHandler(
            model, input_size=input_size, max_batch_size=batch_size, large_model=large_model
        )
        self.info = inference.load_predictor(local_model_path(model)).info

    def expand(self, pbegin):
        matched = (
            pbegin
            | "Patterns" >> beam.Create(list(enumerate(input_patterns(self.inputs))))
            | "Match" >> beam.ParDo(_MatchFiles()).with_outputs(_SKIPPED, main="files")
        )
        decoded = (
            matched.files
            | "GroupByStem" >> beam.GroupByKey()
            | "OutputStems" >> beam.FlatMap(_unique_stems)
            | "Decode" >> beam.ParDo(_DecodeImage()).with_outputs(_UNREADABLE, main="images")
        )
        totals = (
            decoded.images
            | "Segment" >> RunInference(KeyedModelHandler(self.handler))
            | "Write"
            >> beam.ParDo(
                _WriteOutputs(
                    self.output_dir,
                    tuple(self.info.palette),
                    self.info.num_classes,
                    self.outputs,
                    self.alpha,
                )
            )
            | "SumPixels" >> beam.CombineGlobally(_SumPixels(self.info.num_classes))
        )
        unreadable = decoded.unreadable | "ListUnreadable" >> beam.combiners.ToList()
        skipped = matched.skipped | "ListSkipped" >> beam.combiners.ToList()
        return (
            pbegin
            | "Start" >> beam.Create([None])
            | "WriteSummary"
            >> beam.Map(
                _write_summary,
                self.output_dir,
                self.model,
                tuple(self.info.class_names),
                totals=beam.pvalue.AsSingleton(totals),
                unreadable=beam.pvalue.AsSingleton(unreadable),
                skipped=beam.pvalue.AsSingleton(skipped),
            )
        )
