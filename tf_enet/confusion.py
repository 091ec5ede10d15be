"""Confusion matrices and the scores of the paper's tables, in NumPy.

The one place tf_enet counts (true class, predicted class) pairs and turns
them into IoU and accuracies: evaluation, the logit adjustment and the
training callbacks (through `tf_enet.metrics`) use it. No TensorFlow.
"""

import numpy as np


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
