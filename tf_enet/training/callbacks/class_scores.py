"""Adds per-class validation scores to the epoch logs."""

import keras

from tf_enet import artifacts
from tf_enet import metrics as metrics_lib


class ClassScores(keras.callbacks.Callback):
    """Adds per-class IoU and accuracies of the validation pass to the logs.

    Reads the confusion matrix the compiled `MeanIoU` metric holds right
    after Keras's validation pass, so no second pass over the data is needed.
    """

    def __init__(self, metric, class_names):
        super().__init__()
        self.metric = metric
        self.class_names = class_names
        self.last_scores = None

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or artifacts.VAL_MEAN_IOU not in logs:
            return
        result = metrics_lib.scores(keras.ops.convert_to_numpy(self.metric.total_cm))
        self.last_scores = result
        for name, iou in zip(self.class_names, result["per_class_iou"]):
            logs[f"val_iou_{name}"] = float(iou)
        logs["val_global_accuracy"] = result["global_accuracy"]
        logs["val_class_accuracy"] = result["class_accuracy"]
