"""A trained ENet rewritten into the ops TFLite runs fastest.

`tflite_friendly(model)` returns a copy of a trained model that computes the
same function (up to float rounding) with layers chosen for TFLite's
XNNPack delegate; `tf_enet.export.export_tflite` converts that copy. The
copy shares the original's weights and is never trained or saved.

- `MaxPoolingWithArgmax2D` / `MaxUnpooling2D` pairs become `WindowMaxPooling2D`
  / `WindowUnpooling2D`: instead of flat int32 indices the pooling passes on
  a mask of each window's (first) maximum. The index arithmetic (int32
  multiply, floor division, modulo) has no XNNPack kernel and TFLite's own
  kernels for it dominated the int8 model's time. Float models compute the
  mask with arithmetic XNNPack runs, in float and in int8 alike.
- For int8, every `PReLU` becomes a `DepthwisePReLU`: TFLite's int8 PRELU
  kernel runs outside XNNPack and cost several times the convolutions.
- For int8, the input `Normalization` becomes a `ChannelAffine` (one
  depthwise convolution instead of a broadcasting subtract and multiply).
  Float models keep Keras's own arithmetic: multiplying by `1 / std`
  rounds differently from dividing by it, which can flip a near-tie in a
  max pooling window.
- For int8, the initial block's batch norm (after its concatenation) folds
  into the two branches: a bias and scaled kernel for the convolution, a
  `ChannelAffine` after the max pooling (`PooledChannelAffine`). TFLite's
  int8 concatenation and max pooling keep one scale from input to output,
  so with the batch norm after the concatenation the normalised image was
  quantized at the step of the convolution's wider output range (0.12,
  about 7 pixel levels, instead of about 0.02).
"""

import keras
import numpy as np
import tensorflow as tf

from tf_enet.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D
from tf_enet.layers.padding import pad_bottom_right


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
            raise ValueError(
                f"`resolution` must be positive or None; received {resolution!r}."
            )
        self.resolution = resolution

    def call(self, inputs):
        shape = tf.shape(inputs)
        height, width = shape[1] // 2 * 2, shape[2] // 2 * 2
        inputs = inputs[:, :height, :width, :]
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
        not_first_two = not_top_left * _below_maximum(
            pooled, top_right, self.resolution
        )
        not_first_three = not_first_two * _below_maximum(
            pooled, bottom_left, self.resolution
        )
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
        step = tf.minimum(step * _STEP_SCALE, 1.0)
    return step


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


def _per_channel_kernel(values):
    """A 1x1 depthwise kernel `[1, 1, channels, 1]` from `[channels]` values."""
    return tf.constant(np.asarray(values, np.float32).reshape(1, 1, -1, 1))


def _depthwise(inputs, kernel):
    """Multiplies each channel by its kernel entry (1x1 depthwise conv)."""
    return tf.nn.depthwise_conv2d(inputs, kernel, [1, 1, 1, 1], "VALID")


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
            self._kernel = _per_channel_kernel(alpha - 1.0)
        else:
            self._negate = _per_channel_kernel(-np.ones(channels))
            self._kernel = _per_channel_kernel(1.0 - alpha)

    def call(self, inputs):
        if self._single:
            return inputs + tf.nn.relu(_depthwise(inputs, self._kernel))
        negative_part = tf.nn.relu(_depthwise(inputs, self._negate))
        return inputs + _depthwise(negative_part, self._kernel)


class ChannelAffine(keras.layers.Layer):
    """`inputs * scale + offset` per channel, as a 1x1 depthwise convolution.

    Replaces the input `keras.layers.Normalization` in int8 models:
    XNNPack's broadcasting subtract and multiply are slow over 3 channels
    (int8 at 360x480: 19.7 -> 19.1 ms for the whole model).

    Args:
        scale: array `[channels]`.
        offset: array `[channels]`.
    """

    def __init__(self, scale, offset, **kwargs):
        super().__init__(**kwargs)
        self._kernel = _per_channel_kernel(scale)
        self._offset = tf.constant(np.asarray(offset, np.float32).reshape(-1))

    def call(self, inputs):
        return _depthwise(inputs, self._kernel) + self._offset


class PooledChannelAffine(keras.layers.Layer):
    """A pooling layer, then `ChannelAffine(scale, offset)` on its output.

    The initial block's pooling branch with its share of the batch norm.

    Args:
        pool: keras.layers.Layer, used as is (shared with its model).
        scale: array `[channels]`.
        offset: array `[channels]`.
    """

    def __init__(self, pool, scale, offset, **kwargs):
        super().__init__(**kwargs)
        self._pool = pool
        self._affine = ChannelAffine(scale, offset)

    def call(self, inputs):
        return self._affine(self._pool(inputs))

    def compute_output_spec(self, inputs):
        return self._pool.compute_output_spec(inputs)


class _Folded(keras.layers.Layer):
    """Passes its input on: stands in for a batch norm folded elsewhere."""

    def call(self, inputs, mask=None):
        return inputs


def _folded_initial_block(model):
    """Replacements folding `initial_block_bn` into the block's branches.

    Returns:
        dict: layer name -> replacement layer; empty if `model` has no
        initial block of a bias-free convolution and a pooling layer
        concatenated (in that order, on channels) into a batch norm.
    """
    try:
        conv, pool, concat, bn = (
            model.get_layer(f"initial_block_{part}")
            for part in ("conv", "pool", "concat", "bn")
        )
    except ValueError:
        return {}
    if not (
        len(concat.input) == 2
        and concat.input[0] is conv.output
        and concat.input[1] is pool.output
        and bn.input is concat.output
        and concat.axis in (-1, 3)
        and isinstance(conv, keras.layers.Conv2D)
        and not conv.use_bias
        and isinstance(bn, keras.layers.BatchNormalization)
        and bn.axis in (-1, 3)
    ):
        return {}
    # What keras.layers.BatchNormalization computes at inference.
    variance = keras.ops.convert_to_numpy(bn.moving_variance)
    mean = keras.ops.convert_to_numpy(bn.moving_mean)
    scale = 1.0 / np.sqrt(variance + bn.epsilon)
    if bn.scale:
        scale = scale * keras.ops.convert_to_numpy(bn.gamma)
    offset = -mean * scale
    if bn.center:
        offset = offset + keras.ops.convert_to_numpy(bn.beta)
    filters = conv.filters
    folded = keras.layers.Conv2D.from_config(
        {**conv.get_config(), "use_bias": True}
    )
    folded.build(conv.input.shape)
    kernel = keras.ops.convert_to_numpy(conv.kernel)
    folded.set_weights([kernel * scale[:filters], offset[:filters]])
    return {
        conv.name: folded,
        pool.name: PooledChannelAffine(
            pool, scale[filters:], offset[filters:], name=pool.name
        ),
        bn.name: _Folded(name=bn.name),
    }


def _affine_normalization(layer):
    """`layer` as a ChannelAffine, or None if it is not per channel."""
    if layer.invert or tuple(layer.axis) not in ((-1,), (3,)):
        return None
    mean = np.reshape(keras.ops.convert_to_numpy(layer.mean), [-1])
    variance = np.reshape(keras.ops.convert_to_numpy(layer.variance), [-1])
    # What keras.layers.Normalization divides by.
    scale = 1.0 / np.maximum(np.sqrt(variance), keras.backend.epsilon())
    return ChannelAffine(scale, -mean * scale, name=layer.name)


def pooling_resolutions(model, representative):
    """A `WindowMaxPooling2D` resolution per argmax pooling layer, for int8.

    A quarter of the int8 step that calibration on `representative` gives
    each pooling input (its range, widened to include 0, over 255 steps):
    a margin of 2 over the half step that one-step differences can round
    to in the subtraction.

    Args:
        model: keras.Model with `MaxPoolingWithArgmax2D` layers.
        representative: callable returning an iterable of `[images]` lists,
            as `tf_enet.export.representative_images` makes.

    Returns:
        dict: layer name -> float.
    """
    layers = [l for l in model.layers if isinstance(l, MaxPoolingWithArgmax2D)]
    if not layers:
        return {}
    probe = keras.Model(model.inputs, [layer.input for layer in layers])
    low = np.zeros(len(layers))
    high = np.zeros(len(layers))
    for (images,) in representative():
        for i, values in enumerate(probe(images, training=False)):
            values = keras.ops.convert_to_numpy(values)
            low[i] = min(low[i], values.min())
            high[i] = max(high[i], values.max())
    return {
        layer.name: float(max(span, 1e-6) / 255 / 4)
        for layer, span in zip(layers, high - low)
    }


def tflite_friendly(model, *, int8=False, representative=None):
    """A copy of `model` computing the same function in TFLite-fast ops.

    Args:
        model: keras.Model (functional), e.g. from `tf_enet.build_enet`.
        int8: bool. For int8 conversion: pooling masks at the resolution
            of the calibrated int8 steps, PReLUs and the normalisation
            replaced, and the initial block's batch norm folded (in float,
            XNNPack runs PRELU itself, and the rest stays exact).
        representative: the int8 calibration data (see
            `pooling_resolutions`); required when `int8`.

    Returns:
        keras.Model sharing `model`'s other layers and weights.
    """
    resolutions, folded = {}, {}
    if int8:
        if representative is None:
            raise ValueError("int8 needs the `representative` calibration data.")
        resolutions = pooling_resolutions(model, representative)
        folded = _folded_initial_block(model)

    def replace(layer):
        if layer.name in folded:
            return folded[layer.name]
        if isinstance(layer, MaxPoolingWithArgmax2D):
            return WindowMaxPooling2D(resolutions.get(layer.name), name=layer.name)
        if isinstance(layer, MaxUnpooling2D):
            return WindowUnpooling2D(name=layer.name)
        if int8 and isinstance(layer, keras.layers.PReLU):
            return DepthwisePReLU(layer.get_weights()[0], name=layer.name)
        if int8 and isinstance(layer, keras.layers.Normalization):
            return _affine_normalization(layer) or layer
        return layer

    return keras.models.clone_model(model, clone_function=replace)
