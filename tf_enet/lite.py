"""A trained ENet rewritten into the ops TFLite runs fastest.

`tflite_friendly(model)` returns a copy of a trained model that computes the
same function (up to float rounding) with layers chosen for TFLite's
XNNPack delegate; `tf_enet.export.export_tflite` converts that copy. The
copy shares the original's weights and is never trained or saved.

- `MaxPoolingWithArgmax2D` / `MaxUnpooling2D` pairs become `WindowMaxPooling2D`
  / `WindowUnpooling2D`: instead of flat int32 indices the pooling passes on
  a boolean mask of each window's (first) maximum. The index arithmetic
  (int32 multiply, floor division, modulo) has no XNNPack kernel and
  TFLite's own kernels for it dominated the int8 model's time.
- For int8, every `PReLU` becomes a `DepthwisePReLU`: TFLite's int8 PRELU
  kernel runs outside XNNPack and cost several times the convolutions.
"""

import keras
import numpy as np
import tensorflow as tf

from tf_enet.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D
from tf_enet.layers.padding import pad_bottom_right


class WindowMaxPooling2D(keras.layers.Layer):
    """2x2 max pooling returning the pooled values and a window mask.

    Same pooled values as `MaxPoolingWithArgmax2D` ("valid": an odd last row
    or column is dropped). The mask, `[batch, h // 2, w // 2, 4 * channels]`
    bool, marks in the layout of `tf.nn.space_to_depth(inputs, 2)` where each
    maximum came from: exactly one of the four window positions per pooled
    value, the first in row-major order on ties, as the argmax indices do.
    `WindowUnpooling2D` places values with it.
    """

    def call(self, inputs):
        shape = tf.shape(inputs)
        height, width = shape[1] // 2 * 2, shape[2] // 2 * 2
        inputs = inputs[:, :height, :width, :]
        top_left, top_right, bottom_left, _ = tf.split(
            tf.nn.space_to_depth(inputs, 2), 4, axis=-1
        )
        pooled = tf.nn.max_pool2d(inputs, 2, 2, "VALID")
        at_top_left = tf.equal(top_left, pooled)
        at_top_right = tf.equal(top_right, pooled)
        at_bottom_left = tf.equal(bottom_left, pooled)
        before_bottom_left = tf.logical_or(at_top_left, at_top_right)
        before_bottom_right = tf.logical_or(before_bottom_left, at_bottom_left)
        mask = tf.concat(
            [
                at_top_left,
                tf.logical_and(at_top_right, tf.logical_not(at_top_left)),
                tf.logical_and(at_bottom_left, tf.logical_not(before_bottom_left)),
                tf.logical_not(before_bottom_right),
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
            keras.KerasTensor((batch, height, width, 4 * channels), dtype="bool"),
        )


class WindowUnpooling2D(keras.layers.Layer):
    """Places values at the positions a `WindowMaxPooling2D` mask marks.

    Called as `layer([inputs, mask])` or `layer([inputs, mask, reference])`,
    like `MaxUnpooling2D` with the mask in place of the argmax indices.
    """

    def call(self, inputs):
        values, mask = inputs[0], inputs[1]
        repeated = tf.concat([values] * 4, axis=-1)
        windows = repeated * tf.cast(mask, values.dtype)
        outputs = tf.nn.depth_to_space(windows, 2)
        if len(inputs) == 3:
            shape, reference = tf.shape(outputs), tf.shape(inputs[2])
            outputs = pad_bottom_right(
                outputs, reference[1] - shape[1], reference[2] - shape[2]
            )
        return outputs

    def compute_output_spec(self, inputs):
        batch, height, width, channels = inputs[0].shape
        if len(inputs) == 3:
            _, height, width, _ = inputs[2].shape
        else:
            height = None if height is None else 2 * height
            width = None if width is None else 2 * width
        return keras.KerasTensor((batch, height, width, channels), dtype=inputs[0].dtype)


class DepthwisePReLU(keras.layers.Layer):
    """A trained PReLU as ops that int8 TFLite runs inside XNNPack.

    With slopes `alpha` per channel, `prelu(x) = x + (1 - alpha) * relu(-x)`;
    when every `alpha <= 1` this is `x + relu((alpha - 1) * x)`: one
    depthwise 1x1 convolution with a fused ReLU and an add. Otherwise the
    negation and the scaling are two depthwise convolutions.

    Args:
        alpha: array `[..., channels]`, the PReLU's slopes, one per channel.
    """

    def __init__(self, alpha, **kwargs):
        super().__init__(**kwargs)
        alpha = np.asarray(alpha, np.float32)
        channels = alpha.shape[-1]
        alpha = alpha.reshape(-1)
        if alpha.size != channels:
            raise ValueError(
                "DepthwisePReLU needs one slope per channel (PReLU shared over "
                f"height and width); received {alpha.size} slopes for "
                f"{channels} channels."
            )
        self._single = bool(np.all(alpha <= 1.0))
        if self._single:
            self._kernel = tf.constant((alpha - 1.0).reshape(1, 1, channels, 1))
        else:
            self._negate = tf.constant(-np.ones((1, 1, channels, 1), np.float32))
            self._kernel = tf.constant((1.0 - alpha).reshape(1, 1, channels, 1))

    def call(self, inputs):
        def depthwise(x, kernel):
            return tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], "VALID")

        if self._single:
            return inputs + tf.nn.relu(depthwise(inputs, self._kernel))
        negative_part = tf.nn.relu(depthwise(inputs, self._negate))
        return inputs + depthwise(negative_part, self._kernel)


def tflite_friendly(model, *, int8=False):
    """A copy of `model` computing the same function in TFLite-fast ops.

    Args:
        model: keras.Model (functional), e.g. from `tf_enet.build_enet`.
        int8: bool. Also replace PReLUs (for int8 conversion only: in
            float32, XNNPack runs PRELU itself).

    Returns:
        keras.Model sharing `model`'s other layers and weights.
    """

    def replace(layer):
        if isinstance(layer, MaxPoolingWithArgmax2D):
            return WindowMaxPooling2D(name=layer.name)
        if isinstance(layer, MaxUnpooling2D):
            return WindowUnpooling2D(name=layer.name)
        if int8 and isinstance(layer, keras.layers.PReLU):
            return DepthwisePReLU(layer.get_weights()[0], name=layer.name)
        return layer

    return keras.models.clone_model(model, clone_function=replace)
