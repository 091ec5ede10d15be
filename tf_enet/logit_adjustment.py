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
