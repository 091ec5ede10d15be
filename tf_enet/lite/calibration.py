"""int8 calibration: activation ranges and pooling resolutions.

TFLite's calibration takes each tensor's overall minimum and maximum over
the calibration images, which a few outlier pixels set: 2-3x wider on the
trained CamVid model, and every int8 step as much coarser. With
`ranges="mean"` (the export's default), the outputs of the PReLUs, adds
and batch norms carry their range (`Int8Range`): the mean over the
calibration images of each image's minimum and maximum. Values beyond the
range saturate, as they would in any int8 model. The argmax poolings'
window masks resolve a quarter of their input's int8 step
(`pooling_resolutions`).
"""

import keras
import numpy as np
import tensorflow as tf

from tf_enet import artifacts
from tf_enet.layers import MaxPoolingWithArgmax2D

RANGES = artifacts.INT8_RANGES


@keras.saving.register_keras_serializable(package="tf_enet.lite")
class Int8Range(keras.layers.Wrapper):
    """A layer, then its output's int8 range fixed to `[minimum, maximum]`.

    `tf.quantization.fake_quant_with_min_max_args`: the TFLite converter
    quantizes the output over this range instead of the calibrated one. In
    float it clips to the range and rounds to its 255 steps, as int8 does.

    Args:
        layer: keras.layers.Layer, used as is (shared with its model).
        minimum: float <= 0.
        maximum: float >= 0.
    """

    def __init__(self, layer, minimum, maximum, **kwargs):
        super().__init__(layer, **kwargs)
        self.minimum = float(minimum)
        self.maximum = float(maximum)

    def call(self, inputs, mask=None):
        return tf.quantization.fake_quant_with_min_max_args(
            self.layer(inputs), min=self.minimum, max=self.maximum
        )

    def get_config(self):
        return {**super().get_config(), "minimum": self.minimum, "maximum": self.maximum}


def calibrated_ranges(model, tensors, representative, ranges="minmax"):
    """The range of each tensor over the calibration images.

    Args:
        model: keras.Model whose graph holds `tensors`.
        tensors: list of KerasTensors of `model`.
        representative: callable returning an iterable of `[images]` lists,
            as `tf_enet.exporting.representative_images` makes.
        ranges: "minmax", the overall minimum and maximum (what TFLite's
            calibration takes), or "mean", the mean over the calibration
            images (or batches) of each one's minimum and maximum.

    Returns:
        list of (low, high) float pairs, widened to include 0 (as TFLite
        does), one per tensor.
    """
    if ranges not in RANGES:
        raise ValueError(f"`ranges` must be one of {RANGES}; received {ranges!r}.")
    if not tensors:
        return []
    probe = keras.Model(model.inputs, list(tensors))
    lows, highs = [], []
    for inputs in representative():  # [images], as probe.inputs
        values = [keras.ops.convert_to_numpy(v) for v in probe(inputs, training=False)]
        lows.append([v.min() for v in values])
        highs.append([v.max() for v in values])
    if not lows:
        raise ValueError("The calibration data `representative` yielded no images.")
    lows, highs = np.array(lows), np.array(highs)
    if ranges == "mean":
        low, high = lows.mean(axis=0), highs.mean(axis=0)
    else:
        low, high = lows.min(axis=0), highs.max(axis=0)
    return [(float(min(lo, 0.0)), float(max(hi, 0.0))) for lo, hi in zip(low, high)]


def pooling_resolutions(model, representative, ranges="minmax"):
    """A `WindowMaxPooling2D` resolution per argmax pooling layer, for int8.

    A quarter of the int8 step that calibration on `representative` gives
    each pooling input (its range over 255 steps): a margin of 2 over the
    half step that one-step differences can round to in the subtraction.

    Args:
        model: keras.Model with `MaxPoolingWithArgmax2D` layers.
        representative: callable returning an iterable of `[images]` lists,
            as `tf_enet.exporting.representative_images` makes.
        ranges: "minmax" or "mean", as for `calibrated_ranges`; "mean" for
            inputs that carry those ranges (or it errs small, which is safe).

    Returns:
        dict: layer name -> float.
    """
    layers = [layer for layer in model.layers if isinstance(layer, MaxPoolingWithArgmax2D)]
    if not layers:
        return {}
    found = calibrated_ranges(model, [layer.input for layer in layers], representative, ranges)
    return {layer.name: pooling_resolution(*bounds) for layer, bounds in zip(layers, found)}


def pooling_resolution(low, high):
    """A quarter of the int8 step of a tensor in `[low, high]` (255 steps)."""
    return float(max(high - low, 1e-6) / 255 / 4)
