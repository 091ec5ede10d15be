"""Pre- and post-processing of a Predictor, in NumPy and OpenCV.

Images are resized to the model's size as `tf.image.resize(images, size,
"bilinear", antialias=True)` resizes them (TensorFlow's scale-and-translate
with a triangle kernel widened by the shrink factor), logits back to each
image's size as `tf.image.resize(logits, size, "bilinear")` does (OpenCV's
bilinear interpolation with half-pixel centres, the same formula), so the
TensorFlow-free runtime gives the labels the TensorFlow path gave; the sums
run in another order, so values may differ in the last float32 bits.

When a model runs at its training size, `fit_size` keeps each image's
aspect ratio: the image is scaled to fit inside the training size and
padded (`letterbox`); the logits of the padding are cropped off
(`unletterbox`) before they are resized back to the image.

Test-time augmentation runs an image at a larger scale (`scale_letterbox`)
in windows of the model's size (`window_starts`).
"""

import dataclasses
import math

import cv2
import numpy as np

# OpenCV's resize takes at most this many channels (CV_CN_MAX).
_OPENCV_MAX_CHANNELS = 512


def _spans(in_size, out_size, antialias):
    """Start indices and weights of TensorFlow's scale-and-translate resampling.

    Follows `ComputeSpansCore` in TensorFlow's `scale_and_translate_op.cc`
    with the triangle kernel (radius 1), scale `out_size / in_size` and no
    translation, in float32 as there.

    Returns:
        (starts int64 [out_size], weights float32 [out_size, span]).
    """
    scale = np.float32(out_size) / np.float32(in_size)
    inv_scale = np.float32(1.0) / scale
    kernel_scale = max(inv_scale, np.float32(1.0)) if antialias else np.float32(1.0)
    span = min(2 * int(math.ceil(kernel_scale)) + 1, in_size)
    sample = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * inv_scale
    start = np.ceil(sample - kernel_scale - np.float32(0.5)).astype(np.int64)
    end = np.floor(sample + kernel_scale - np.float32(0.5)).astype(np.int64)
    start = np.clip(start, 0, in_size - 1)
    end = np.clip(end, 0, in_size - 1) + 1
    source = start[:, None] + np.arange(span)[None, :]  # [out, span]
    position = (source.astype(np.float32) + np.float32(0.5) - sample[:, None]) / kernel_scale
    weights = np.maximum(np.float32(0.0), np.float32(1.0) - np.abs(position))
    weights = np.where(source < end[:, None], weights, np.float32(0.0)).astype(np.float32)
    totals = weights.sum(axis=1, keepdims=True)
    weights = np.where(totals > 0, weights / np.where(totals > 0, totals, 1), 0)
    return start, weights.astype(np.float32)


def _resample(values, axis, out_size, antialias):
    """Resamples one axis of a float32 array with `_spans`' weights."""
    in_size = values.shape[axis]
    start, weights = _spans(in_size, out_size, antialias)
    values = np.moveaxis(values, axis, 0)
    result = np.zeros((out_size,) + values.shape[1:], np.float32)
    for k in range(weights.shape[1]):
        index = np.minimum(start + k, in_size - 1)
        weight = weights[:, k].reshape((-1,) + (1,) * (values.ndim - 1))
        result += weight * values[index]
    return np.moveaxis(result, 0, axis)


def resize_images(images, size, antialias=True):
    """Resizes images (bilinear; antialiased when shrinking) for the model.

    As `tf.image.resize(images, size, "bilinear", antialias=antialias)`.

    Args:
        images: float32 array-like `[batch, height, width, 3]`.
        size: (height, width).
        antialias: bool. Widen the kernel when shrinking (False: as the
            tf.data pipeline resizes images during training).

    Returns:
        np.ndarray float32 `[batch, size[0], size[1], 3]`; `images` itself
        when it has that size already.
    """
    images = np.asarray(images, np.float32)
    height, width = (int(v) for v in size)
    if tuple(images.shape[1:3]) == (height, width):
        return images
    # Height first, then width, as TensorFlow's kernel gathers.
    resized = _resample(images, 1, height, antialias)
    return np.ascontiguousarray(_resample(resized, 2, width, antialias))


def resize_labels(labels, size):
    """Resizes a label map (nearest neighbour, half-pixel centres).

    As `tf.image.resize(labels[..., None], size, "nearest")`.

    Args:
        labels: int np.ndarray `[height, width]`.
        size: (height, width).

    Returns:
        np.ndarray `[size[0], size[1]]`, `labels`' dtype.
    """
    rows, cols = (
        np.minimum(
            np.floor((np.arange(out, dtype=np.float32) + np.float32(0.5)) * np.float32(n / out)),
            n - 1,
        ).astype(np.int64)
        for out, n in zip((int(size[0]), int(size[1])), labels.shape)
    )
    return labels[rows[:, None], cols[None, :]]


def resize_logits(logits, size):
    """Resizes logits (bilinear, half-pixel centres) to `size`.

    As `tf.image.resize(logits, size, "bilinear")`: OpenCV's bilinear
    interpolation computes the same two-tap formula.

    Args:
        logits: float32 array-like `[batch, height, width, num_classes]`.
        size: (height, width).

    Returns:
        np.ndarray float32 `[batch, size[0], size[1], num_classes]`.
    """
    logits = np.asarray(logits, np.float32)
    height, width = (int(v) for v in size)
    if tuple(logits.shape[1:3]) == (height, width):
        return logits
    if logits.shape[-1] > _OPENCV_MAX_CHANNELS:
        resized = _resample(logits, 1, height, antialias=False)
        return np.ascontiguousarray(_resample(resized, 2, width, antialias=False))
    return np.stack(
        [
            cv2.resize(logit, (width, height), interpolation=cv2.INTER_LINEAR).reshape(
                height, width, logits.shape[-1]
            )
            for logit in logits
        ]
    )


def classes_at(logits, size):
    """Class ids of `logits` resized (bilinear) to `size`, one image at a time.

    One image at a time bounds the memory of full-size logits.

    Args:
        logits: float32 np.ndarray `[batch, height, width, num_classes]`.
        size: (height, width).

    Returns:
        np.ndarray int32 `[batch, size[0], size[1]]`.
    """
    return np.stack(
        [
            np.argmax(resize_logits(logit[None], size)[0], axis=-1).astype(np.int32)
            for logit in logits
        ]
    )


@dataclasses.dataclass(frozen=True)
class Letterbox:
    """Where an image lies inside a model input it was fitted into.

    Args:
        input_size: (height, width) of the model input.
        content_size: (height, width) of the scaled image inside it, placed
            at the top-left corner; the rest is padding.
    """

    input_size: tuple
    content_size: tuple


def fit_size(image_size, input_size):
    """The largest size of `image_size`'s aspect ratio inside `input_size`.

    Args:
        image_size: (height, width) of the image.
        input_size: (height, width) of the model input.

    Returns:
        Letterbox. `content_size` equals `input_size` when the aspect
        ratios agree to within a pixel.
    """
    image_h, image_w = (int(v) for v in image_size)
    input_h, input_w = (int(v) for v in input_size)
    scale = min(input_h / image_h, input_w / image_w)
    content = (
        min(input_h, max(1, round(image_h * scale))),
        min(input_w, max(1, round(image_w * scale))),
    )
    if abs(content[0] - input_h) <= 1 and abs(content[1] - input_w) <= 1:
        content = (input_h, input_w)
    return Letterbox((input_h, input_w), content)


def letterbox(images, box):
    """Resizes images into `box.content_size` and pads them to `box.input_size`.

    The padding is black (0), the value of the zero padding the model's
    convolutions see at every border.

    Args:
        images: float32 np.ndarray `[batch, height, width, 3]`.
        box: Letterbox.

    Returns:
        np.ndarray float32 `[batch, input_height, input_width, 3]`.
    """
    resized = resize_images(images, box.content_size)
    if box.content_size == box.input_size:
        return resized
    padded = np.zeros((len(images), *box.input_size, 3), np.float32)
    padded[:, : box.content_size[0], : box.content_size[1]] = resized
    return padded


def unletterbox(logits, box):
    """The logits of the image's content, without the padding of `letterbox`.

    Args:
        logits: np.ndarray `[batch, input_height, input_width, classes]`.
        box: Letterbox.

    Returns:
        np.ndarray `[batch, content_height, content_width, classes]`.
    """
    return logits[:, : box.content_size[0], : box.content_size[1]]


def scale_letterbox(box, scale):
    """`box` with its content scaled by `scale`, padded to at least its input.

    The input grows with a content larger than `box.input_size`, which then
    runs in windows of that size (`window_starts`).

    Args:
        box: Letterbox.
        scale: float. Factor of the content size.

    Returns:
        Letterbox. `box` itself when `scale` is 1.
    """
    if scale == 1:
        return box
    content = tuple(max(1, round(v * scale)) for v in box.content_size)
    return Letterbox(tuple(max(c, i) for c, i in zip(content, box.input_size)), content)


def window_starts(size, window):
    """Where windows of length `window` start to cover `size`, evenly spread.

    The fewest windows that cover it, the first at 0 and the last ending at
    `size`; neighbours overlap by equal amounts (within a pixel).

    Args:
        size: int. Length to cover, at least `window`.
        window: int. Length of a window.

    Returns:
        list of int, ascending; `[0]` when `size == window`.
    """
    count = math.ceil(size / window)
    if count == 1:
        return [0]
    return [round(i * (size - window) / (count - 1)) for i in range(count)]
