"""Class weights that counter the imbalance of segmentation labels.

Two schemes from the literature, computed from a `ScanResult`:

- "enet" (Paszke et al. 2016, Sec. 5.2): `w(c) = 1 / ln(1.02 + p(c))`, where
  `p(c)` is the share of class `c` among all labelled pixels. The 1.02 bounds
  the weights to [1, 50] as `p` goes from 1 to 0.
- "mfb", median frequency balancing (Eigen & Fergus, ICCV 2015, used by
  SegNet on CamVid): `freq(c)` is the pixels of `c` over the labelled pixels
  of the images in which `c` appears; `w(c) = median(freq) / freq(c)`.
- "none": all ones.

A class with no pixels in the split (`check_trainable` warns about it) has
no frequency. Its weight never multiplies a loss term, since no pixel has
that label; what it is set to matters only to code reading the weights
themselves (the logit adjustment). "mfb" gives it exactly 0.0, "enet" its
cap `1 / ln(1.02)`, "none" 1.0: all finite, none NaN.
"""

import numpy as np

METHODS = ("mfb", "enet", "none")
# The constant of ENet's weighting; it caps weights at 1 / ln(1.02) ~ 50.5.
_ENET_C = 1.02


def class_weights(stats, method):
    """Computes per-class loss weights.

    Args:
        stats: ScanResult of the training split.
        method: str. One of "mfb", "enet", "none".

    Returns:
        np.ndarray float32 [num_classes], finite and non-negative. A class
        with no pixels in the split gets exactly 0.0 under "mfb" (its
        frequency is undefined), `1 / ln(1.02)` (about 50.50, the largest
        weight) under "enet" and 1.0 under "none"; every class with pixels
        gets a positive weight.

    Raises:
        ValueError: for an unknown `method`, or a split without labelled
            pixels.
    """
    if method not in METHODS:
        raise ValueError(
            f"Unknown class weighting method {method!r}; expected one of {', '.join(METHODS)}."
        )
    num_classes = stats.num_classes
    if method == "none":
        return np.ones(num_classes, np.float32)
    counts = np.asarray(stats.pixel_counts, np.float64)
    if counts.sum() == 0:
        raise ValueError(
            f"Split {stats.split!r} has no labelled pixels; class weights "
            f"{method!r} need some (use method 'none')."
        )
    if method == "enet":
        share = counts / counts.sum()
        return (1.0 / np.log(_ENET_C + share)).astype(np.float32)

    seen = counts > 0
    freq = np.zeros(num_classes)
    freq[seen] = counts[seen] / np.asarray(stats.image_pixel_counts)[seen]
    weights = np.zeros(num_classes)
    weights[seen] = np.median(freq[seen]) / freq[seen]
    return weights.astype(np.float32)
