"""Argmax pooling and unpooling as window masks, in ops XNNPack runs.

`MaxPoolingWithArgmax2D` / `MaxUnpooling2D` pairs become
`WindowMaxPooling2D` / `WindowUnpooling2D`: instead of flat int32 indices
the pooling passes on a mask of each window's (first) maximum. The index
arithmetic (int32 multiply, floor division, modulo) has no XNNPack kernel,
and TFLite's own kernels for it dominated the int8 model's time.
"""

import keras
import tensorflow as tf

from tf_enet.layers.padding import crop_to_even, pad_bottom_right


@keras.saving.register_keras_serializable(package="tf_enet.lite")
class WindowMaxPooling2D(keras.layers.Layer):
    """2x2 max pooling returning the pooled values and a window mask.

    Same pooled values as `MaxPoolingWithArgmax2D` ("valid": an odd last row
    or column is dropped). The mask, `[batch, h // 2, w // 2, 4 * channels]`,
    marks with 1s (else 0s, in the input's dtype), in the layout of
    `tf.nn.space_to_depth(inputs, 2)`, where each maximum came from: exactly
    one of the four window positions per pooled value, the first in
    row-major order on ties, as the argmax indices do. `WindowUnpooling2D`
    places values with it.

    The mask is arithmetic (subtractions, products, minima or a saturating
    relu6), which XNNPack runs in float and in int8; comparisons and logic
    run outside it.

    Args:
        resolution: float or None. None (float models): a value counts as
            the maximum when it is within `ARITHMETIC_TIE` of it, which two
            different float32 values can only be when both are below 2e-6
            in magnitude. A number (int8 models): values closer than it to
            the maximum may count as tied with it; use at most half the
            int8 step of the input, as `tflite_friendly` does. The mask is
            then one saturating product per window position, which int8
            represents exactly.
    """

    def __init__(self, resolution=None, **kwargs):
        super().__init__(**kwargs)
        if resolution is not None and not resolution > 0:
            raise ValueError(f"`resolution` must be positive or None; received {resolution!r}.")
        self.resolution = resolution

    def call(self, inputs):
        inputs = crop_to_even(inputs)
        pooled = tf.nn.max_pool2d(inputs, 2, 2, "VALID")
        if self.resolution is None:
            # XNNPack runs space_to_depth and split, not strided slices.
            top_left, top_right, bottom_left, _ = tf.split(
                tf.nn.space_to_depth(inputs, 2), 4, axis=-1
            )
        else:
            # int8: strided slices keep the input's quantization (the
            # converter would run a split of space_to_depth in float).
            top_left = inputs[:, 0::2, 0::2, :]
            top_right = inputs[:, 0::2, 1::2, :]
            bottom_left = inputs[:, 1::2, 0::2, :]
        not_top_left = _below_maximum(pooled, top_left, self.resolution)
        not_first_two = not_top_left * _below_maximum(pooled, top_right, self.resolution)
        not_first_three = not_first_two * _below_maximum(pooled, bottom_left, self.resolution)
        mask = tf.concat(
            [
                1.0 - not_top_left,
                not_top_left - not_first_two,
                not_first_two - not_first_three,
                not_first_three,
            ],
            axis=-1,
        )
        return pooled, mask

    def compute_output_spec(self, inputs):
        batch, height, width, channels = inputs.shape
        height = None if height is None else height // 2
        width = None if width is None else width // 2
        return (
            keras.KerasTensor((batch, height, width, channels), dtype=inputs.dtype),
            keras.KerasTensor((batch, height, width, 4 * channels), dtype=inputs.dtype),
        )

    def get_config(self):
        return {**super().get_config(), "resolution": self.resolution}


# Three steps of x -> min(x * 2**14, 1) take every difference >= 2**-42 to
# 1 and keep 0 at 0, with constants float16 can hold (GPU delegates may run
# float models in float16, where a single 2**42 would overflow).
_STEP_SCALE = 2.0**14
_STEPS = 3
ARITHMETIC_TIE = 2.0**-42


def _below_maximum(pooled, values, resolution=None):
    """1 where `values` is below `pooled`, 0 where equal.

    `resolution` None: exact for differences >= 2**-42. A number: 1 for
    differences >= `resolution`; `relu6` fuses into the int8 MUL, whose
    [0, 6] output range saturates, and the division by 6 maps 6 to exactly 1.
    """
    step = pooled - values
    if resolution is not None:
        return tf.nn.relu6(step * (6.0 / resolution)) * (1.0 / 6.0)
    for _ in range(_STEPS):
        # Equal to min(step * scale, 1) as step >= 0; TFLite's converter
        # fuses this clip into the multiplication (RELU_N1_TO_1), one op
        # a step instead of two.
        step = tf.minimum(tf.maximum(step * _STEP_SCALE, -1.0), 1.0)
    return step


@keras.saving.register_keras_serializable(package="tf_enet.lite")
class WindowUnpooling2D(keras.layers.Layer):
    """Places values at the positions a `WindowMaxPooling2D` mask marks.

    Called as `layer([inputs, mask])` or `layer([inputs, mask, reference])`,
    like `MaxUnpooling2D` with the mask in place of the argmax indices.
    """

    def call(self, inputs):
        values, mask = inputs[0], inputs[1]
        windows = tf.concat([values] * 4, axis=-1) * mask
        outputs = tf.nn.depth_to_space(windows, 2)
        if len(inputs) == 3:
            shape, reference = tf.shape(outputs), tf.shape(inputs[2])
            outputs = pad_bottom_right(outputs, reference[1] - shape[1], reference[2] - shape[2])
        return outputs

    def compute_output_spec(self, inputs):
        batch, height, width, channels = inputs[0].shape
        if len(inputs) == 3:
            _, height, width, _ = inputs[2].shape
        else:
            height = None if height is None else 2 * height
            width = None if width is None else 2 * width
        return keras.KerasTensor((batch, height, width, channels), dtype=inputs[0].dtype)
