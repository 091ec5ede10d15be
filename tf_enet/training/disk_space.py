"""What a run will write to its checkpoint directory, checked against free space.

Measured on runs of this package: a backup (`backup/latest.weights.h5`:
weights and Adam's two moments) takes about 3.8 times the weights' float32
size, and so does the best model saved with its optimizer; TensorBoard's
validation images (4 photos and 8 colour masks, PNG) take about 0.65 times
the raw size of the 4 photos per validated epoch. The estimate rounds both
up: per stage, 4 times the weights for each of the best model, its
temporary copy while it is replaced, and the two backups (`double_checkpoint`
keeps the previous one), plus the raw size of 4 validation images per
validated epoch.
"""

import os
import shutil

from tf_enet import artifacts
from tf_enet.training.errors import TrainingError
from tf_enet.training.failures import completed_epochs

# Bytes written per float32 weight by a model file or backup (rounded up).
BYTES_PER_WEIGHT_SAVED = 4 * 4
# Model files and backups a stage holds at its peak.
FILES_PER_STAGE = 4
# Images PredictionImages writes per validated epoch.
LOGGED_IMAGES = 4
# history.csv, JSON files, TensorBoard scalars.
SMALL_FILES_BYTES = 1 << 20
_MB = 1 << 20


def _size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, name)) for name in files)
    return total


def estimate(config, stages, num_weights, validated_epochs):
    """Bytes the rest of a run will add to its checkpoint directory.

    Args:
        config: TrainConfig.
        stages: iterable of str, the stages the run trains ("encoder",
            "full").
        num_weights: int. Weights of the full network (an upper bound for
            the encoder's).
        validated_epochs: callable (stage, epochs) -> list of int, the
            epochs that validate (and log images).

    Returns:
        dict of int: "models" (model files and backups), "logs"
        (TensorBoard), "total"; what the directory holds already of a
        stage counts as written.
    """
    models = logs = 0
    image_bytes = min(LOGGED_IMAGES, config.batch_size) * config.height * config.width * 3
    for stage in stages:
        stage_dir = config.checkpoint_dir
        epochs = config.epochs
        if stage == "encoder":
            stage_dir = os.path.join(config.checkpoint_dir, artifacts.ENCODER_DIR)
            epochs = config.encoder_epochs
        if os.path.exists(os.path.join(stage_dir, artifacts.DONE_FILE)):
            continue
        written = sum(
            _size(os.path.join(stage_dir, name))
            for name in (artifacts.MODEL_FILE, artifacts.BACKUP_DIR)
            if os.path.exists(os.path.join(stage_dir, name))
        )
        models += max(0, FILES_PER_STAGE * BYTES_PER_WEIGHT_SAVED * num_weights - written)
        done = completed_epochs(stage_dir)
        logs += image_bytes * len([e for e in validated_epochs(stage, epochs) if e > done])
    return {"models": models, "logs": logs, "total": models + logs + SMALL_FILES_BYTES}


def check_free_space(config, needed):
    """Refuses to start a run its checkpoint directory has no room for.

    Args:
        config: TrainConfig.
        needed: dict from `estimate`.

    Raises:
        TrainingError: one line with the free space, the estimate and its
            parts.
    """
    free = shutil.disk_usage(config.checkpoint_dir).free
    if free >= needed["total"]:
        return
    raise TrainingError(
        f"--checkpoint_dir {config.checkpoint_dir} has {free / _MB:.0f} MB free, but "
        f"this run writes about {needed['total'] / _MB:.0f} MB there (models and "
        f"backups {needed['models'] / _MB:.0f} MB, TensorBoard images "
        f"{needed['logs'] / _MB:.0f} MB). Free some space or choose another "
        "--checkpoint_dir (a larger --validation_freq logs fewer images)."
    )
