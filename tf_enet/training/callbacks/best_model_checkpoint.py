"""Keeps the best (or the last) model of a run, written atomically."""

import math
import os

import keras

from tf_enet import artifacts
from tf_enet.training.failures import writing


class BestModelCheckpoint(keras.callbacks.Callback):
    """Keeps the model with the best `monitor` value, written atomically.

    The best value survives restarts through `best.json` beside the model.
    Keras's `ModelCheckpoint(save_best_only=True)` writes the model file in
    place, so a process killed while saving leaves a broken best model; this
    callback writes it to a temporary name and renames it.

    Args:
        path: str. The model file (`.keras`).
        monitor: str. The log entry to maximise.
        write: bool. False on the workers that must not write files; they
            still track the best value.
        keep: str. "best": the epoch with the best `monitor` value;
            "last": every epoch's model replaces the previous one, so the
            file holds the last epoch (a selection rule fixed in advance,
            for runs whose val split is trained on). `best` is then the
            last epoch's `monitor` value, or -inf before one is logged.
    """

    def __init__(self, path, monitor=artifacts.VAL_MEAN_IOU, write=True, keep="best"):
        super().__init__()
        if keep not in ("best", "last"):
            raise ValueError(f"`keep` must be 'best' or 'last'; received {keep!r}.")
        self.path = path
        self.record_path = os.path.join(os.path.dirname(path), artifacts.BEST_FILE)
        self.monitor = monitor
        self.write = write
        self.keep = keep
        self.best = -math.inf

    def on_train_begin(self, logs=None):
        if os.path.exists(self.record_path) and os.path.exists(self.path):
            record = artifacts.read_json(self.record_path)
            record = {artifacts.renamed_metric(k): v for k, v in record.items()}
            # null: an earlier best value that was not a number.
            self.best = record.get(self.monitor)
            if self.best is None:
                self.best = -math.inf

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if self.keep == "best" and (value is None or not value > self.best):
            return
        if value is not None:
            self.best = float(value)
        if not self.write:
            return
        with writing(self.path):
            artifacts.write_atomically(self.path, self.model.save)
        record = {k: float(v) for k, v in logs.items() if k.startswith("val_")}
        record.update({"epoch": epoch + 1, "selection": self.keep})
        if value is not None:
            record[self.monitor] = self.best
        with writing(self.record_path):
            artifacts.write_json(self.record_path, record)
