"""Segmentation metrics from a confusion matrix: IoU and accuracies.

`MeanIoU` is the Keras metric training tracks; `confusion_matrix` and
`scores` are NumPy, defined in `tf_enet.confusion` (which the
TensorFlow-free evaluation imports) and named here too.
"""

import keras
import tensorflow as tf

from tf_enet.confusion import confusion_matrix, scores

__all__ = ["MeanIoU", "confusion_matrix", "scores"]


@keras.saving.register_keras_serializable(package="tf_enet")
class MeanIoU(keras.metrics.MeanIoU):
    """`keras.metrics.MeanIoU` on logits, with its confusion matrix counted faster.

    The same metric, arguments, state (`total_cm`) and result as
    `keras.metrics.MeanIoU`. For the call a segmentation training step
    makes, int labels `[...]` and logits `[..., classes]` without sample
    weights, the confusion matrix is counted with a bincount over
    `label * num_classes + argmax` in int32, a pass over the pixels, where
    Keras casts both to float and scatters them (three times the work on
    ENet's 360x480 batches). Other calls (sample weights, one-hot labels,
    `sparse_y_pred=True`, another `axis`) are Keras's own.

    Pixels whose label is `ignore_class` or outside `[0, num_classes)`, or
    whose argmax is outside `[0, num_classes)`, are not counted, as in
    Keras.

    Args:
        num_classes: int. Number of classes.
        ignore_class: int or None. Label of pixels to leave out.
        **kwargs: as `keras.metrics.MeanIoU` (`sparse_y_pred` defaults to
            False here: predictions are logits).

    Inputs:
        y_true: int `[batch, height, width]` class ids or `ignore_class`.
        y_pred: float `[batch, height, width, classes]` logits or scores.
    """

    def __init__(self, num_classes, ignore_class=None, sparse_y_pred=False, **kwargs):
        super().__init__(
            num_classes=num_classes,
            ignore_class=ignore_class,
            sparse_y_pred=sparse_y_pred,
            **kwargs,
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        keras_case = sample_weight is not None or self.sparse_y_pred or not self.sparse_y_true
        if keras_case or self.axis != -1:
            return super().update_state(y_true, y_pred, sample_weight)
        n = self.num_classes
        labels = tf.reshape(tf.cast(y_true, tf.int32), [-1])
        predictions = tf.reshape(tf.argmax(y_pred, axis=-1, output_type=tf.int32), [-1])
        valid = tf.logical_and(
            tf.logical_and(labels >= 0, labels < n),
            tf.logical_and(predictions >= 0, predictions < n),
        )
        if self.ignore_class is not None:
            valid = tf.logical_and(valid, tf.not_equal(labels, self.ignore_class))
        # Pixels left out go to an extra bin, dropped after counting. The
        # raw op takes the size as a constant, which XLA requires; the size
        # `tf.math.bincount` computes depends on the values.
        pairs = tf.where(valid, labels * n + predictions, n * n)
        counts = tf.raw_ops.DenseBincount(
            input=pairs, size=n * n + 1, weights=tf.zeros([0], tf.int32), binary_output=False
        )
        confusion = tf.reshape(counts[: n * n], [n, n])
        self.total_cm.assign_add(tf.cast(confusion, self.total_cm.dtype))
        return self.total_cm
