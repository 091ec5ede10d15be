"""Logit adjustment for models trained with a class-weighted loss.

A cross-entropy weighted by `w` is minimised by logits shifted by about
`log(w)` per class (Menon et al. 2021, "Long-tail learning via logit
adjustment", arXiv 2007.07314): the weights that make a rare class learn at
all then also make the argmax predict it far beyond where it is. Subtracting
`alpha * log(w)` from the logits undoes part of that shift: `alpha = 0` keeps
the weighted model, `alpha = 1` gives the unweighted posterior's argmax.
`alpha` is chosen on the training split (the mean IoU peaks between the two
ends; `tf_enet.training.logit_adjustment` scores the candidates) and folded
into the bias of the model's last convolution, so every export and runtime
sees the adjusted logits at no cost.

A class with weight 0 (median frequency balancing gives it to a class with
no pixels in the training split) has no weighting bias to undo: its logits
are left as trained, as for a weight of 1.
"""

import numpy as np

from tf_enet import confusion
from tf_enet.inference import evaluation

# 0, 0.1, ..., 1.
ALPHAS = tuple(i / 10 for i in range(11))
LOGITS_LAYER = "fullconv"


def best_alpha(scores):
    """The alpha with the highest mean IoU; the smallest one on ties.

    Args:
        scores: dict alpha -> `tf_enet.metrics.scores` (from
            `tf_enet.training.logit_adjustment.adjustment_scores`).

    Returns:
        float.
    """
    return max(sorted(scores), key=lambda alpha: (scores[alpha]["mean_iou"], -alpha))


def logits_bias(model, layer=LOGITS_LAYER):
    """The bias of `layer`, whose output are the model's logits.

    ENet's `fullconv`; the cropping after it does not change values.

    Args:
        model: keras.Model.
        layer: str. Name of the layer.

    Returns:
        The bias variable, `[num_classes]`.

    Raises:
        ValueError: the model has no such layer with a bias.
    """
    try:
        target = model.get_layer(layer)
    except ValueError:
        raise ValueError(
            f"Model {model.name!r} has no layer {layer!r} to hold the logit "
            "adjustment; it applies to full ENet models."
        ) from None
    bias = getattr(target, "bias", None)
    if bias is None:
        raise ValueError(f"Layer {layer!r} of {model.name!r} has no bias.")
    return bias


def fold_adjustment(model, class_weights, alpha, layer=LOGITS_LAYER):
    """Subtracts `alpha * log(class_weights)` from the logits, in place.

    The offset goes into `logits_bias(model, layer)`.

    Args:
        model: keras.Model.
        class_weights: float array-like `[num_classes]`, non-negative;
            classes weighing 0 are left as trained.
        alpha: float. Adjustment strength.
        layer: str. Name of the layer whose bias holds the logits' offsets.

    Raises:
        ValueError: the model has no such layer with a bias, or the weights
            are negative, not finite or not one per class.
    """
    bias = logits_bias(model, layer)
    offsets = log_weights(class_weights, int(bias.shape[0]))
    bias.assign(bias.numpy() - np.float32(alpha) * offsets)


def log_weights(class_weights, num_classes):
    """The logits' offsets per unit of alpha: `log(w)`, 0 where `w` is 0.

    Args:
        class_weights: float array-like `[num_classes]`, non-negative.
        num_classes: int.

    Returns:
        np.ndarray float32 `[num_classes]`.

    Raises:
        ValueError: the weights are negative, not finite or not one per class.
    """
    weights = np.asarray(class_weights, np.float32)
    if weights.shape != (num_classes,) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(
            f"Logit adjustment needs {num_classes} finite, non-negative class "
            f"weights; received {list(np.ravel(class_weights))!r}."
        )
    if not np.any(weights > 0):
        raise ValueError("Logit adjustment needs at least one positive class weight.")
    return np.log(np.where(weights > 0, weights, 1.0)).astype(np.float32)


def offset_confusion_matrices(predictor, dataset, split, offsets, **options):
    """One confusion matrix per offset vector, from one pass over a split.

    Counts `argmax(logits + o)` for every offset vector `o` (e.g.
    `-alpha * log_weights(...)`), exactly, from the logits of
    `tf_enet.inference.split_logits`; only pixels whose top logits are
    closer than the offsets' range are ranked again (`offset_argmax`), so
    many offsets cost little more than one.

    Args:
        predictor: tf_enet.inference.Predictor, or a keras.Model.
        dataset: tf_enet.data.SegmentationDataset.
        split: str. Split to count.
        offsets: sequence of float array-like `[num_classes]`.
        **options: for `split_logits`: `limit`, `sample`, `seed`,
            `batch_size`, `input_size`, `resize_labels`, `on_batch`.

    Returns:
        np.ndarray int64 `[len(offsets), num_classes, num_classes]`; rows
        are true classes, columns predictions.

    Raises:
        ValueError: an offset vector is not one value per class; and as
            `split_logits`.
    """
    info = dataset.info
    num_classes = info.num_classes
    offsets = [np.asarray(o, np.float32) for o in offsets]
    for i, o in enumerate(offsets):
        if o.shape != (num_classes,):
            raise ValueError(
                f"`offsets[{i}]` must hold {num_classes} per-class offsets; "
                f"received shape {o.shape}."
            )
    offset_range = _offset_range(offsets)
    matrices = np.zeros((len(offsets), num_classes, num_classes), np.int64)

    def count(labels, classes):
        return confusion.confusion_matrix(labels, classes, num_classes, info.ignore_index)

    for _, logits, labels in evaluation.split_logits(predictor, dataset, split, **options):
        flat = logits.reshape(-1, num_classes)
        labels = labels.reshape(-1)
        top, close = _top_and_close(flat, offset_range)
        # Pixels not close to a tie keep their top class under every
        # offset: counted once, the close ones once per offset.
        far = np.ones(labels.size, bool)
        far[close] = False
        far_counts = count(labels[far], top[far])
        candidates, close_labels = flat[close], labels[close]
        for i, o in enumerate(offsets):
            matrices[i] += far_counts + count(close_labels, np.argmax(candidates + o, axis=-1))
    return matrices


def offset_argmax(logits, offsets):
    """`argmax(logits + o, axis=-1)` for each offset vector `o`, exactly.

    A pixel's prediction can only change with `o` where another class's
    logit comes within `max(o) - min(o)` of its top logit. So the argmax of
    the logits is taken once, and only those close pixels (with a margin
    for float32 rounding) are ranked again for each `o`; the others keep
    their top class. Ties resolve as `np.argmax` resolves them (the first
    class), since every tie is among the close pixels.

    Args:
        logits: float32 np.ndarray `[..., num_classes]`.
        offsets: sequence of float32 array-like `[num_classes]`.

    Returns:
        list of int64 np.ndarray `[...]`, one per offset vector.
    """
    flat = logits.reshape(-1, logits.shape[-1])
    offsets = [np.asarray(o, np.float32) for o in offsets]
    top, close = _top_and_close(flat, _offset_range(offsets))
    candidates = flat[close]
    results = []
    for o in offsets:
        classes = top.copy()
        classes[close] = np.argmax(candidates + o, axis=-1)
        results.append(classes.reshape(logits.shape[:-1]))
    return results


def _offset_range(offsets):
    """(span, largest): the widest `max(o) - min(o)` and largest `|o|`, or None."""
    if not offsets:
        return None
    span = max(float(o.max() - o.min()) for o in offsets)
    return span, max(float(np.abs(o).max()) for o in offsets)


def _top_and_close(flat, offset_range):
    """The argmax of `[pixels, classes]` logits, and which pixels offsets can change.

    Args:
        flat: float32 np.ndarray `[pixels, classes]`.
        offset_range: `_offset_range` of the offsets, or None.

    Returns:
        (top, close): int64 `[pixels]` argmax, and the int64 indices of the
        pixels where another class's logit is within the offsets' range
        (plus a float32 rounding margin) of the top one; none without
        offsets.
    """
    top = np.argmax(flat, axis=-1)
    if offset_range is None:
        return top, np.zeros(0, np.int64)
    span, largest = offset_range
    top_logit = np.take_along_axis(flat, top[:, None], axis=-1)[:, 0]
    # Rounding of `logits + o` in float32 is far below this margin.
    margin = span + 1e-4 * (1.0 + np.abs(top_logit) + largest)
    within = flat >= (top_logit - margin)[:, None]
    # Classes within the margin, the top one included. (Not a matrix-vector
    # product: OpenBLAS's threads then spin beside TensorFlow's and slowed
    # the next forward pass and this loop by about 60 ms per image.)
    close = np.flatnonzero(np.count_nonzero(within, axis=-1) > 1)
    return top, close
