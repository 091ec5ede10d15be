"""Keras's epoch line, without the per-class scores of a many-class model."""

import keras
from absl import logging

from tf_enet.training.callbacks.class_scores import PER_CLASS_IOU_PREFIX

# The most classes whose val IoU the epoch line shows: every built-in
# dataset (SUN RGB-D has 37). Past it, a line would run to thousands of
# characters; history.csv and TensorBoard keep every class.
MAX_CLASSES_SHOWN = 40


class EpochLine(keras.callbacks.ProgbarLogger):
    """`keras.callbacks.ProgbarLogger`, leaving per-class val IoU out of the
    epoch line of a model of more than `max_classes` classes.

    Goes after `ClassScores` in the callback list, so the line still shows
    the means it adds (`val_global_accuracy`, `val_class_accuracy`); Keras
    then uses it instead of its own progress bar. The logs the later
    callbacks (history.csv, TensorBoard) see are not changed.

    Args:
        num_classes: int. Classes of the model.
        max_classes: int. The most classes whose val IoU the line shows.
    """

    def __init__(self, num_classes, max_classes=MAX_CLASSES_SHOWN):
        super().__init__()
        self.num_classes = num_classes
        self.hide = num_classes > max_classes

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.hide and self.verbose:
            logging.info(
                "The epoch lines leave out the val IoU of each of the %d classes; "
                "history.csv and TensorBoard have them.",
                self.num_classes,
            )

    def on_epoch_end(self, epoch, logs=None):
        if self.hide and logs:
            logs = {k: v for k, v in logs.items() if not k.startswith(PER_CLASS_IOU_PREFIX)}
        super().on_epoch_end(epoch, logs)
