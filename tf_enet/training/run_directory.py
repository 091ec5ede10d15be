"""The run directory: its configuration, resume checks and bookkeeping.

The file names and the JSON format belong to `tf_enet.artifacts`.
"""

import csv
import os
import shutil

from tf_enet import artifacts
from tf_enet.model import PIXEL_MEAN, PIXEL_STD
from tf_enet.training import fine_tuning
from tf_enet.training.config import RESUMABLE_CHANGES, TrainConfig
from tf_enet.training.errors import TrainingError


def run_config(config, dataset, weights, init_from=None):
    """The JSON written beside the model: all evaluation and prediction need.

    Args:
        config: TrainConfig.
        dataset: tf_enet.data.SegmentationDataset. Its classes and how its
            splits were formed (a held-out val split lists its images).
        weights: float array-like `[num_classes]`. The class weights.
        init_from: dict or None. The model the run started from
            (`fine_tuning.load_source`'s record), kept under "init_from".

    Returns:
        dict, JSON-serialisable (`artifacts.FORMAT`).
    """
    info = dataset.info
    extra = {} if init_from is None else {"init_from": init_from}
    return {
        **extra,
        "format": artifacts.FORMAT,
        "train": config.to_dict(),
        "model": {"num_classes": info.num_classes, **config.model_options},
        "dataset": info.to_dict(),
        "splits": dataset.split_info(),
        "class_weighting": config.class_weighting,
        "class_weights": [float(w) for w in weights],
        "input": {
            "channels": "RGB",
            "range": [0, 255],
            "mean": list(PIXEL_MEAN),
            "std": list(PIXEL_STD),
            "normalized_inside_model": True,
        },
    }


def check_checkpoint_dir(config, overwrite):
    """Refuses to mix a different run into an existing checkpoint directory.

    Returns:
        bool. Whether the directory holds this run (resume it); False for a
        new directory, or for a different run when `overwrite` is set.

    Raises:
        TrainingError: the directory holds a different run (or files
            without a config.json) and `overwrite` is False.
    """
    _refuse_to_replace_a_trained_model(config)
    path = os.path.join(config.checkpoint_dir, artifacts.CONFIG_FILE)
    if not os.path.exists(path):
        leftovers = [
            name
            for name in ("model.keras", "backup", "encoder")
            if os.path.exists(os.path.join(config.checkpoint_dir, name))
        ]
        if leftovers and not overwrite:
            raise TrainingError(
                f"{config.checkpoint_dir} holds {', '.join(leftovers)} but no "
                f"{artifacts.CONFIG_FILE}; it is not a tf_enet run this command can "
                "resume. Choose another --checkpoint_dir."
            )
        return False
    try:
        previous = artifacts.read_json(path)["train"]
    except (OSError, ValueError, KeyError) as error:
        raise TrainingError(f"Cannot read {path}: {error}") from None
    current = config.to_dict()
    # Options added to TrainConfig after the run started count as unchanged
    # while they keep their default.
    defaults = TrainConfig(dataset=current["dataset"]).to_dict()
    changed = sorted(
        key
        for key in set(previous) | set(current)
        if key not in RESUMABLE_CHANGES and previous.get(key, defaults.get(key)) != current.get(key)
    )
    if "stages" in changed and not overwrite and _same_run_other_stages(config, previous):
        changed.remove("stages")
    if changed and not overwrite:
        details = ", ".join(
            f"{key}: {previous.get(key)!r} -> {current.get(key)!r}" for key in changed
        )
        raise TrainingError(
            f"{config.checkpoint_dir} holds a different run ({details}). "
            "Run the same command to resume it, choose another "
            "--checkpoint_dir, or pass --overwrite to start over there."
        )
    return not changed


# What a training run writes beside its model, and a copied model lacks.
_HISTORY_FILES = (
    artifacts.HISTORY_FILE,
    artifacts.BEST_FILE,
    artifacts.DONE_FILE,
    artifacts.BACKUP_DIR,
    artifacts.ENCODER_DIR,
)


def _refuse_to_replace_a_trained_model(config):
    """Refuses a --checkpoint_dir whose model this run would replace or delete.

    A run writes its best model over `model.keras` in its directory, and
    `--overwrite` deletes it: neither may happen to the model being
    fine-tuned, nor to a model with no training history beside it (a
    preset or a copied model, which no rerun can bring back).

    Raises:
        TrainingError: `--init_from` lies inside `--checkpoint_dir`, or the
            directory holds `model.keras` without a training history.
    """
    directory = os.path.abspath(config.checkpoint_dir)
    if config.init_from:
        root = os.path.realpath(directory)
        source = os.path.realpath(fine_tuning.source_path(config.init_from))
        if os.path.commonpath([root, source]) == root:
            raise TrainingError(
                f"--init_from {config.init_from} lies inside --checkpoint_dir "
                f"{config.checkpoint_dir}, where this run writes its own model; "
                "choose another --checkpoint_dir for the fine-tuned run."
            )
    model = os.path.join(directory, artifacts.MODEL_FILE)
    history = [n for n in _HISTORY_FILES if os.path.exists(os.path.join(directory, n))]
    if os.path.exists(model) and not history:
        has_config = os.path.exists(os.path.join(directory, artifacts.CONFIG_FILE))
        raise TrainingError(
            f"{config.checkpoint_dir} holds a trained model ({artifacts.MODEL_FILE}"
            f"{'' if has_config else ' but no ' + artifacts.CONFIG_FILE}) without "
            "the training history of a run (no history.csv or backup), e.g. a "
            "copied preset; training there would replace it. To fine-tune "
            f"it, pass --init_from {config.checkpoint_dir} and another "
            "--checkpoint_dir."
        )


def _same_run_other_stages(config, previous):
    """Whether `config` runs other stages of the same two-stage run.

    The paper's two stages may run as two commands, `--stages encoder` and
    then `--stages full` in the same directory: the full stage starts from
    the encoder the first one trained. So a change of `--stages` is the same
    run unless the directory contradicts it: a full network trained without
    an encoder cannot gain one, and `--stages full` needs a finished encoder
    stage when the run has one (`both` finishes it first). A finished stage
    run again only says it is complete.

    Raises:
        TrainingError: `--stages full` while the run's encoder stage has not
            finished.
    """
    directory = config.checkpoint_dir
    encoder_done = os.path.exists(
        os.path.join(directory, artifacts.ENCODER_DIR, artifacts.DONE_FILE)
    )
    full_started = any(
        os.path.exists(os.path.join(directory, name))
        for name in (artifacts.MODEL_FILE, artifacts.BACKUP_DIR)
    )
    if config.stages in ("encoder", "both") and full_started and not encoder_done:
        return False  # a full network trained without this encoder
    had_encoder = previous.get("stages") in ("encoder", "both")
    if config.stages == "full" and had_encoder and not encoder_done:
        raise TrainingError(
            f"The encoder stage in {directory} has not finished, so --stages full "
            "has no trained encoder to start from. Run --stages both to finish it "
            "and then train the full network, or --stages encoder to finish it first."
        )
    return True


def remove_run_files(checkpoint_dir):
    for name in artifacts.RUN_FILES:
        path = os.path.join(checkpoint_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)


def check_shared_directory(config_path, config):
    """A non-chief worker checks it sees the chief's files."""
    # Paths may differ between machines; everything else must match.
    local = {"data_dir", "checkpoint_dir", "verbose"}
    current = {k: v for k, v in config.to_dict().items() if k not in local}
    try:
        chiefs = artifacts.read_json(config_path)["train"]
        same = {k: v for k, v in chiefs.items() if k not in local} == current
    except (OSError, ValueError, KeyError):
        same = False
    if not same:
        raise TrainingError(
            f"This worker does not see the chief's {config_path} for this "
            "run: with --strategy=multi_worker every worker needs the same "
            "flags and a --checkpoint_dir on storage all workers share "
            "(the chief writes it, the others resume from it)."
        )


def trim_history(path, backup_dir):
    """Drops history rows of epochs the backup does not hold.

    A process killed after writing an epoch's row but before backing the
    epoch up repeats that epoch when resumed; its old row would be doubled.
    """
    metadata = os.path.join(backup_dir, "training_metadata.json")
    if not (os.path.exists(path) and os.path.exists(metadata)):
        return
    restored = artifacts.read_json(metadata)["epoch"]
    rows = csv_rows(path)
    if not rows or "epoch" not in rows[0]:
        return
    column = rows[0].index("epoch")
    kept = [rows[0]] + [r for r in rows[1:] if int(r[column]) < restored]
    if len(kept) == len(rows):
        return

    def write(tmp_path):
        with open(tmp_path, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(kept)

    artifacts.write_atomically(path, write)


def csv_rows(path):
    """The rows of a CSV file, or [] if it does not exist."""
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))
