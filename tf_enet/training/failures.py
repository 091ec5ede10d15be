"""Errors during training as one line: the file, the cause, how to resume.

A run that stops mid-way loses nothing finished: the best model and the
backup of the last completed epoch are written atomically or in two copies,
so the same command resumes. What a user needs is which file failed and
why; the callbacks that write wrap their writes in `writing(path)`, and
`explain` turns what `fit` raised into a `TrainingError` saying so.
"""

import contextlib
import os

from tf_enet import artifacts
from tf_enet import data as data_lib
from tf_enet.training.errors import TrainingError

# Keras's BackupAndRestore keeps the number of completed epochs here.
BACKUP_METADATA = "training_metadata.json"


class WriteError(TrainingError):
    """Writing a run's file failed.

    Args:
        path: str. The file or directory being written.
        reason: str. Why, e.g. "No space left on device".
    """

    def __init__(self, path, reason):
        super().__init__(f"Cannot write {path}: {reason}.")
        self.path = path
        self.reason = reason


def _reason(error):
    """The cause in a few words: the OS's reason, or the first line."""
    if getattr(error, "strerror", None):
        return error.strerror
    text = getattr(error, "message", None) or str(error)
    return (text.splitlines() or [type(error).__name__])[0]


@contextlib.contextmanager
def writing(path):
    """Names `path` in any `OSError` raised within (a full disk, say).

    Raises:
        WriteError: the block raised an OSError.
    """
    try:
        yield
    except OSError as error:
        raise WriteError(path, _reason(error)) from None


def completed_epochs(stage_dir):
    """Epochs of a stage its backup holds (0 without a backup)."""
    path = os.path.join(stage_dir, artifacts.BACKUP_DIR, BACKUP_METADATA)
    try:
        return int(artifacts.read_json(path)["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def explain(error, dataset, stage, stage_dir, epochs):
    """The one-line `TrainingError` for what stopped a stage's `fit`.

    Args:
        error: the exception `fit` raised: a `WriteError`, another
            `OSError`, or a `tf.errors.OpError` from the input pipeline (a
            data file damaged or removed during the run).
        dataset: tf_enet.data.SegmentationDataset. Rescanned to find a
            damaged file (its scan cache notices changed files).
        stage: str. "encoder" or "full".
        stage_dir: str. Where the stage writes.
        epochs: int. The stage's epochs.

    Returns:
        TrainingError.
    """
    done = completed_epochs(stage_dir)
    resume = (
        "nothing finished is lost: run the same command to resume the "
        f"{stage} stage from epoch {done + 1} of {epochs}."
    )
    if isinstance(error, WriteError):
        return TrainingError(f"{error} Free space (or fix the cause); {resume}")
    if isinstance(error, OSError):
        where = error.filename or stage_dir
        return TrainingError(f"Cannot write {where}: {_reason(error)}. Fix the cause; {resume}")
    damaged = _damaged_data(dataset)
    if damaged:
        return TrainingError(
            f"A data file changed during training: {damaged} Restore or remove it; {resume}"
        )
    return TrainingError(f"Training stopped: {_reason(error)}; {resume}")


def _damaged_data(dataset):
    """The first problem a rescan of the dataset finds, or None."""
    for split in ("train", "val"):
        try:
            data_lib.scan(dataset, split)
        except data_lib.DatasetError as problem:
            lines = [line.strip() for line in str(problem).splitlines() if line.strip()]
            return lines[1] if len(lines) > 1 else lines[0]
    return None
