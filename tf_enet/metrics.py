"""Segmentation metrics from a confusion matrix: IoU and accuracies."""

import keras
import numpy as np
import tensorflow as tf


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


def confusion_matrix(labels, predictions, num_classes, ignore_index):
    """Counts (true class, predicted class) pairs, ignored pixels excluded.

    Labels outside `[0, num_classes)` (the ignore id among them) are
    excluded as well.

    Args:
        labels: int array-like `[...]` of class ids or `ignore_index`.
        predictions: int array-like of the same shape, predicted ids.
        num_classes: int. Number of classes.
        ignore_index: int. Label of pixels to leave out.

    Returns:
        np.ndarray int64 `[num_classes, num_classes]`; rows are true
        classes, columns predictions.

    Raises:
        ValueError: if shapes differ or a prediction is outside
            `[0, num_classes)` (it would be counted in the wrong cell).
    """
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    if labels.shape != predictions.shape:
        raise ValueError(
            f"labels and predictions must have the same shape; received "
            f"{labels.shape} and {predictions.shape}."
        )
    labels = labels.reshape(-1).astype(np.int64, copy=False)
    predictions = predictions.reshape(-1).astype(np.int64, copy=False)
    outside = (predictions < 0) | (predictions >= num_classes)
    if outside.any():
        values = np.unique(predictions[outside])
        raise ValueError(
            f"predictions must be class ids in [0, {num_classes}); received {values[:10].tolist()}."
        )
    valid = (labels != ignore_index) & (labels >= 0) & (labels < num_classes)
    pairs = labels[valid] * num_classes + predictions[valid]
    counts = np.bincount(pairs, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64, copy=False)


def scores(confusion):
    """The metrics of the paper's tables, from one confusion matrix.

    A class that appears neither in the labels nor in the predictions has
    no IoU (NaN) and is left out of the mean; likewise for its accuracy
    when it has no labelled pixel.

    Args:
        confusion: array-like `[num_classes, num_classes]`, rows true
            classes, columns predictions.

    Returns:
        dict with `per_class_iou` (np.ndarray float64 `[num_classes]`),
        `mean_iou`, `global_accuracy` (correct pixels / labelled pixels),
        `class_accuracy` (mean over classes of per-class recall) and
        `per_class_accuracy`.
    """
    confusion = np.asarray(confusion, np.float64)
    true_positives = np.diag(confusion)
    labelled = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    union = labelled + predicted - true_positives
    with np.errstate(divide="ignore", invalid="ignore"):
        per_class_iou = np.where(union > 0, true_positives / union, np.nan)
        per_class_accuracy = np.where(labelled > 0, true_positives / labelled, np.nan)
    total = confusion.sum()
    return {
        "per_class_iou": per_class_iou,
        "mean_iou": _nanmean(per_class_iou),
        "global_accuracy": float(true_positives.sum() / total) if total else float("nan"),
        "class_accuracy": _nanmean(per_class_accuracy),
        "per_class_accuracy": per_class_accuracy,
    }


def _nanmean(values):
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")
