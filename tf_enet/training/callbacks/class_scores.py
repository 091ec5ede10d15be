"""Adds per-class validation scores to the epoch logs."""

import math

import keras
from absl import logging

from tf_enet import artifacts, data
from tf_enet import metrics as metrics_lib

# The per-class val IoU in the epoch logs: "val_iou_<class name>".
PER_CLASS_IOU_PREFIX = "val_iou_"


class ClassScores(keras.callbacks.Callback):
    """Adds per-class IoU and accuracies of the validation pass to the logs.

    Reads the confusion matrix the compiled `MeanIoU` metric holds right
    after Keras's validation pass, so no second pass over the data is needed.

    A class with no pixels in the val labels and none predicted has no
    IoU (nan, left out of the mean IoU); the first epoch that has such a
    class logs a line naming it (once per class).

    Args:
        metric: the compiled `tf_enet.metrics.MeanIoU`.
        class_names: list of str, one per class.
        stage: str, named in that line ("encoder": its val labels are
            1/8 of the size, where a small class can vanish).
    """

    def __init__(self, metric, class_names, stage="full"):
        super().__init__()
        self.metric = metric
        self.class_names = class_names
        self.stage = stage
        self.last_scores = None
        self._noted_absent = set()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or artifacts.VAL_MEAN_IOU not in logs:
            return
        result = metrics_lib.scores(keras.ops.convert_to_numpy(self.metric.total_cm))
        self.last_scores = result
        absent = []
        for class_id, (name, iou) in enumerate(zip(self.class_names, result["per_class_iou"])):
            logs[PER_CLASS_IOU_PREFIX + name] = float(iou)
            if math.isnan(iou) and name not in self._noted_absent:
                absent.append(class_id)
        if absent:
            self._noted_absent.update(self.class_names[c] for c in absent)
            where = (
                "the encoder stage's val labels (1/8 of the size)"
                if self.stage == "encoder"
                else "the val labels"
            )
            logging.info(
                "val IoU of %s is nan: no pixels of %s in %s and none predicted; "
                "val mean IoU averages the other classes.",
                data.name_classes(self.class_names, absent),
                "it" if len(absent) == 1 else "them",
                where,
            )
        logs["val_global_accuracy"] = result["global_accuracy"]
        logs["val_class_accuracy"] = result["class_accuracy"]
