"""Convolutions standing in for layers TFLite runs slowly, and their folds.

- A strided `Conv2DTranspose` with "same" padding becomes
  `DepthToSpaceConv2D`: a convolution at the input's resolution to
  `stride * stride * filters` channels, then `depth_to_space`. The same
  sums; XNNPack runs the two ops faster than TFLite's transposed
  convolution, float and int8. A batch norm and a ReLU that follow fold
  into it.
- For int8, `DepthwisePReLU` replaces `PReLU`: TFLite's int8 PRELU kernel
  runs outside XNNPack and cost several times the convolutions.
- For int8, `ChannelAffine` replaces the input `Normalization`, and
  `PooledChannelAffine` carries the pooling branch's share of the initial
  block's batch norm.

The layers hold their values as constants, not weights: they are built
from a trained model's weights and never trained. Their configurations
hold the values (as `keras.layers.Normalization` holds its mean and
variance), so `from_config(get_config())` rebuilds the same function.
"""

import keras
import numpy as np
import tensorflow as tf


def batch_norm_affine(bn):
    """`(scale, offset)`, `[channels]` each: `bn` at inference is `x * scale + offset`.

    What `keras.layers.BatchNormalization` computes with its moving
    statistics: `(x - mean) / sqrt(variance + epsilon) * gamma + beta`.
    """
    variance = keras.ops.convert_to_numpy(bn.moving_variance)
    mean = keras.ops.convert_to_numpy(bn.moving_mean)
    scale = 1.0 / np.sqrt(variance + bn.epsilon)
    if bn.scale:
        scale = scale * keras.ops.convert_to_numpy(bn.gamma)
    offset = -mean * scale
    if bn.center:
        offset = offset + keras.ops.convert_to_numpy(bn.beta)
    return scale, offset


@keras.saving.register_keras_serializable(package="tf_enet.lite")
class DepthToSpaceConv2D(keras.layers.Layer):
    """A strided transposed convolution as a convolution and depth_to_space.

    A transposed convolution with strides `s` and "same" padding makes an
    output `s` times the input's size in which output pixel `(s * i + a,
    s * j + b)` sums `inputs[i + dy, j + dx] @ kernel[ty, tx].T` over the
    kernel taps `ty` with `a + p - ty` a multiple of `s` (`dy = (a + p -
    ty) / s`, `p = (k - s) // 2` for a `k x k` kernel; likewise for `b, tx,
    dx`). That is one convolution of the input (zero-padded by the offsets
    `dy, dx`) to `s * s * filters` channels, one group per output position
    `(a, b)` in `tf.nn.depth_to_space`'s layout, then
    `tf.nn.depth_to_space(s)`: the same sums, computed at the input's
    resolution. ENet's `fullconv` (2x2, stride 2) becomes a 1x1
    convolution; its upsampling bottlenecks' 3x3 stride-2 transposed
    convolutions become a 2x2 convolution of the input padded by one row
    and column at the top and left.

    Args:
        kernel: array `[k, k, filters, channels]`, a
            `keras.layers.Conv2DTranspose` kernel.
        bias: array `[filters]` or None.
        activation: applied before the rearrangement, so elementwise
            activations only (e.g. "relu").
        strides: int, the transposed convolution's strides `s` (at least
            2); None takes the kernel size.

    Input shape:
        `[batch, height, width, channels]`.

    Output shape:
        `[batch, s * height, s * width, filters]`.

    Raises:
        ValueError: for a kernel that is not square, or strides below 2.
    """

    def __init__(self, kernel, bias=None, activation=None, strides=None, **kwargs):
        super().__init__(**kwargs)
        kernel = np.asarray(kernel, np.float32)
        size, size_width, filters, channels = kernel.shape
        if size != size_width:
            raise ValueError(
                f"DepthToSpaceConv2D needs a square kernel; received shape {kernel.shape}."
            )
        block = size if strides is None else int(strides)
        if block < 2:
            raise ValueError(f"DepthToSpaceConv2D needs strides of at least 2; received {block}.")
        self.kernel = kernel
        self.bias = None if bias is None else np.asarray(bias, np.float32)
        self.block = block
        self.filters = filters
        # Input offset dy of each (output position a, kernel tap t) that
        # meet; offset 0 always occurs (a = 0, t = p).
        pad = max(size - block, 0) // 2
        taps = [
            (a, t, (a + pad - t) // block)
            for a in range(block)
            for t in range(size)
            if (a + pad - t) % block == 0
        ]
        first = min(offset for _, _, offset in taps)
        last = max(offset for _, _, offset in taps)
        self._padding = (-first, last)
        span = last - first + 1
        weights = np.zeros((span, span, channels, block, block, filters), np.float32)
        for a, ty, dy in taps:
            for b, tx, dx in taps:
                weights[dy - first, dx - first, :, a, b, :] = kernel[ty, tx].T
        self._kernel = tf.constant(weights.reshape(span, span, channels, block * block * filters))
        self._bias = None
        if self.bias is not None:
            self._bias = tf.constant(np.tile(self.bias, block * block))
        self.activation = keras.activations.get(activation)

    @classmethod
    def from_transposed(cls, layer, batch_norm=None, relu=False):
        """`layer` as a DepthToSpaceConv2D, or None if not the same function.

        Args:
            layer: keras.layers.Layer.
            batch_norm: a `keras.layers.BatchNormalization` (channels last)
                applied to `layer`'s output alone, folded into the kernel
                and bias (its inference computation); None for none.
            relu: bool. A plain ReLU follows (after `batch_norm`, if any)
                and is applied before the rearrangement.

        Returns:
            DepthToSpaceConv2D named like `layer`, sharing nothing with it
            (its weights copied), or None unless `layer` is a
            `Conv2DTranspose` on channels-last inputs with a square kernel,
            strides of at least 2 (equal in both directions), "same"
            padding (or "valid" with the kernel equal to the strides), no
            dilation and no output padding, and with no activation of its
            own when `batch_norm` or `relu` is given.
        """
        if not (
            isinstance(layer, keras.layers.Conv2DTranspose)
            and layer.data_format == "channels_last"
            and layer.kernel_size[0] == layer.kernel_size[1]
            and layer.strides[0] == layer.strides[1] >= 2
            and (layer.padding == "same" or tuple(layer.kernel_size) == tuple(layer.strides))
            and tuple(layer.dilation_rate) == (1, 1)
            and layer.output_padding is None
        ):
            return None
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        bias = keras.ops.convert_to_numpy(layer.bias) if layer.use_bias else None
        activation = layer.activation
        if batch_norm is not None or relu:
            if layer.activation is not keras.activations.linear:
                return None
            activation = "relu" if relu else None
        if batch_norm is not None:
            scale, offset = batch_norm_affine(batch_norm)
            kernel = kernel * scale[:, None]
            bias = offset if bias is None else bias * scale + offset
        return cls(kernel, bias, activation, strides=layer.strides[0], name=layer.name)

    def call(self, inputs):
        before, after = self._padding
        if before or after:
            inputs = tf.pad(inputs, [[0, 0], [before, after], [before, after], [0, 0]])
        outputs = tf.nn.conv2d(inputs, self._kernel, 1, "VALID")
        if self._bias is not None:
            outputs = tf.nn.bias_add(outputs, self._bias)
        return tf.nn.depth_to_space(self.activation(outputs), self.block)

    def get_config(self):
        return {
            **super().get_config(),
            "kernel": self.kernel.tolist(),
            "bias": None if self.bias is None else self.bias.tolist(),
            "activation": keras.activations.serialize(self.activation),
            "strides": self.block,
        }

    def compute_output_spec(self, inputs):
        batch, height, width, _ = inputs.shape
        height = None if height is None else self.block * height
        width = None if width is None else self.block * width
        return keras.KerasTensor((batch, height, width, self.filters), dtype=inputs.dtype)


def _per_channel_kernel(values):
    """A 1x1 depthwise kernel `[1, 1, channels, 1]` from `[channels]` values."""
    return tf.constant(np.asarray(values, np.float32).reshape(1, 1, -1, 1))


def _depthwise(inputs, kernel):
    """Multiplies each channel by its kernel entry (1x1 depthwise conv)."""
    return tf.nn.depthwise_conv2d(inputs, kernel, [1, 1, 1, 1], "VALID")


@keras.saving.register_keras_serializable(package="tf_enet.lite")
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
        self.alpha = alpha
        self._single = bool(np.all(alpha <= 1.0))
        if self._single:
            self._kernel = _per_channel_kernel(alpha - 1.0)
        else:
            self._negate = _per_channel_kernel(-np.ones(channels))
            self._kernel = _per_channel_kernel(1.0 - alpha)

    def call(self, inputs):
        if self._single:
            return inputs + tf.nn.relu(_depthwise(inputs, self._kernel))
        negative_part = tf.nn.relu(_depthwise(inputs, self._negate))
        return inputs + _depthwise(negative_part, self._kernel)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha.tolist()}


@keras.saving.register_keras_serializable(package="tf_enet.lite")
class ChannelAffine(keras.layers.Layer):
    """`inputs * scale + offset` per channel, as a 1x1 depthwise convolution.

    Replaces the input `keras.layers.Normalization` in int8 models:
    XNNPack's broadcasting subtract and multiply are slow over 3 channels
    (they took 3% of the int8 model's time at 360x480).

    Args:
        scale: array `[channels]`.
        offset: array `[channels]`.
    """

    def __init__(self, scale, offset, **kwargs):
        super().__init__(**kwargs)
        self.scale = np.asarray(scale, np.float32).reshape(-1)
        self.offset = np.asarray(offset, np.float32).reshape(-1)
        self._kernel = _per_channel_kernel(self.scale)
        self._offset = tf.constant(self.offset)

    def call(self, inputs):
        return _depthwise(inputs, self._kernel) + self._offset

    def get_config(self):
        return {
            **super().get_config(),
            "scale": self.scale.tolist(),
            "offset": self.offset.tolist(),
        }


@keras.saving.register_keras_serializable(package="tf_enet.lite")
class PooledChannelAffine(keras.layers.Wrapper):
    """A pooling layer, then `ChannelAffine(scale, offset)` on its output.

    The initial block's pooling branch with its share of the batch norm.

    Args:
        layer: keras.layers.Layer, the pooling, used as is (shared with its
            model).
        scale: array `[channels]`.
        offset: array `[channels]`.
    """

    def __init__(self, layer, scale, offset, **kwargs):
        super().__init__(layer, **kwargs)
        self.affine = ChannelAffine(scale, offset)

    def call(self, inputs):
        return self.affine(self.layer(inputs))

    def compute_output_spec(self, inputs):
        return self.layer.compute_output_spec(inputs)

    def get_config(self):
        return {
            **super().get_config(),
            "scale": self.affine.scale.tolist(),
            "offset": self.affine.offset.tolist(),
        }
