"""A trained ENet rewritten into the ops TFLite runs fastest.

`tflite_friendly(model)` returns a copy of a trained model that computes the
same function (up to float rounding; for int8, up to the activation ranges
it sets) with layers chosen for TFLite's XNNPack delegate;
`tf_enet.exporting.export_tflite` converts that copy. The copy shares the
original's weights and is never trained or saved.

- `MaxPoolingWithArgmax2D` / `MaxUnpooling2D` pairs become `WindowMaxPooling2D`
  / `WindowUnpooling2D`: instead of flat int32 indices the pooling passes on
  a mask of each window's (first) maximum. The index arithmetic (int32
  multiply, floor division, modulo) has no XNNPack kernel and TFLite's own
  kernels for it dominated the int8 model's time. Float models compute the
  mask with arithmetic XNNPack runs, in float and in int8 alike.
- A strided `Conv2DTranspose` with "same" padding becomes
  `DepthToSpaceConv2D`: a convolution at the input's resolution to
  `stride * stride * filters` channels, then `depth_to_space` (ENet's 2x2
  `fullconv` a 1x1 convolution, the decoder's 3x3 stride-2 ones a 2x2
  convolution of the input padded at the top and left). The same sums;
  XNNPack runs the two ops faster than TFLite's transposed convolution,
  float and int8. A batch norm and a ReLU that follow fold into it.
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
- For int8 with `ranges="mean"` (the default), the outputs of the PReLUs,
  adds and batch norms carry their int8 range (`Int8Range`): the mean over
  the calibration images of each image's minimum and maximum. TFLite's
  calibration takes the overall minimum and maximum, which a few outlier
  pixels set: 2-3x wider on the trained CamVid model, and every step as
  much coarser. Values beyond the range saturate, as they would in any
  int8 model. In float this copy then also clips and rounds to those steps.
"""

import keras
import numpy as np
import tensorflow as tf

from tf_enet import artifacts
from tf_enet.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D
from tf_enet.layers.padding import crop_to_even, pad_bottom_right


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
        if bias is not None:
            self._bias = tf.constant(np.tile(np.asarray(bias, np.float32), block * block))
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
            scale, offset = _batch_norm_affine(batch_norm)
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


class Int8Range(keras.layers.Layer):
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
        super().__init__(**kwargs)
        self._layer = layer
        self.minimum = float(minimum)
        self.maximum = float(maximum)

    def call(self, inputs, mask=None):
        return tf.quantization.fake_quant_with_min_max_args(
            self._layer(inputs), min=self.minimum, max=self.maximum
        )


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
            model.get_layer(f"initial_block_{part}") for part in ("conv", "pool", "concat", "bn")
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
    scale, offset = _batch_norm_affine(bn)
    filters = conv.filters
    folded = keras.layers.Conv2D.from_config({**conv.get_config(), "use_bias": True})
    folded.build(conv.input.shape)
    kernel = keras.ops.convert_to_numpy(conv.kernel)
    folded.set_weights([kernel * scale[:filters], offset[:filters]])
    return {
        conv.name: folded,
        pool.name: PooledChannelAffine(pool, scale[filters:], offset[filters:], name=pool.name),
        bn.name: _Folded(name=bn.name),
    }


def _batch_norm_affine(bn):
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


def _depth_to_space_rewrites(model):
    """Replacements turning `model`'s transposed convolutions into `DepthToSpaceConv2D`.

    A batch norm that alone reads a transposed convolution's output folds
    into it, and so does a plain ReLU that alone reads the result: after
    the rearrangement they would be passes over the upsampled tensor
    (TFLite's converter folds them into a `TRANSPOSE_CONV`, not across a
    `DEPTH_TO_SPACE`).

    Returns:
        dict: layer name -> replacement layer (`_Folded` for the folded
        batch norms and ReLUs).
    """
    readers = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        for tensor in keras.tree.flatten(layer.input):
            readers.setdefault(id(tensor), []).append(layer)
    outputs = {id(tensor) for tensor in keras.tree.flatten(model.outputs)}

    def sole_reader(layer, kind):
        found = readers.get(id(layer.output), [])
        if len(found) == 1 and isinstance(found[0], kind) and id(layer.output) not in outputs:
            return found[0]
        return None

    replacements = {}
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Conv2DTranspose):
            continue
        bn = relu = None
        # Only what follows a linear output folds in (an own activation comes first).
        if layer.activation is keras.activations.linear:
            bn = sole_reader(layer, keras.layers.BatchNormalization)
            if bn is not None and bn.axis not in (-1, 3):
                bn = None
            relu = sole_reader(bn or layer, keras.layers.ReLU)
            if relu is not None and (
                relu.max_value is not None or relu.negative_slope or relu.threshold
            ):
                relu = None  # not a plain ReLU
        rewritten = DepthToSpaceConv2D.from_transposed(layer, bn, relu is not None)
        if rewritten is None:
            continue
        replacements[layer.name] = rewritten
        for folded in (bn, relu):
            if folded is not None:
                replacements[folded.name] = _Folded(name=folded.name)
    return replacements


def _affine_normalization(layer):
    """`layer` as a ChannelAffine, or None if it is not per channel."""
    if layer.invert or tuple(layer.axis) not in ((-1,), (3,)):
        return None
    mean = np.reshape(keras.ops.convert_to_numpy(layer.mean), [-1])
    variance = np.reshape(keras.ops.convert_to_numpy(layer.variance), [-1])
    # What keras.layers.Normalization divides by.
    scale = 1.0 / np.maximum(np.sqrt(variance), keras.backend.epsilon())
    return ChannelAffine(scale, -mean * scale, name=layer.name)


RANGES = artifacts.INT8_RANGES


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
    return _resolutions(layers, found)


def _resolutions(layers, found):
    return {
        layer.name: float(max(high - low, 1e-6) / 255 / 4)
        for layer, (low, high) in zip(layers, found)
    }


def _ranged_layers(model, skip):
    """The layers whose outputs get `Int8Range`: PReLUs, adds, batch norms.

    Not a batch norm right after a transposed convolution (folded into it:
    by `DepthToSpaceConv2D`, or by the converter when nothing sits between
    them), nor those in `skip`.
    """
    kinds = (keras.layers.PReLU, keras.layers.Add, keras.layers.BatchNormalization)
    transposed = {
        id(layer.output)
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2DTranspose)
    }
    return [
        layer
        for layer in model.layers
        if isinstance(layer, kinds)
        and layer.name not in skip
        and not (
            isinstance(layer, keras.layers.BatchNormalization) and id(layer.input) in transposed
        )
    ]


def tflite_friendly(model, *, int8=False, representative=None, ranges="mean"):
    """A copy of `model` computing the same function in TFLite-fast ops.

    Args:
        model: keras.Model (functional), e.g. from `tf_enet.build_enet`.
        int8: bool. For int8 conversion: pooling masks at the resolution
            of the calibrated int8 steps, PReLUs and the normalisation
            replaced, the initial block's batch norm folded, and with
            `ranges="mean"` activation ranges set (in float, XNNPack runs
            PRELU itself, and the rest stays exact).
        representative: the int8 calibration data (see
            `pooling_resolutions`); required when `int8`.
        ranges: int8 only. "mean": the outputs of PReLUs, adds and batch
            norms get `Int8Range`s, the mean over the calibration images of
            each image's minimum and maximum. "minmax": TFLite's calibration
            sets every range (the overall minimum and maximum); the copy is
            then the same function as `model`.

    Returns:
        keras.Model sharing `model`'s other layers and weights.
    """
    resolutions, folded, clipped = {}, {}, {}
    if int8:
        if representative is None:
            raise ValueError("int8 needs the `representative` calibration data.")
        folded = _folded_initial_block(model)
        pools = [layer for layer in model.layers if isinstance(layer, MaxPoolingWithArgmax2D)]
        ranged = _ranged_layers(model, folded) if ranges == "mean" else []
        found = calibrated_ranges(
            model,
            [layer.input for layer in pools] + [layer.output for layer in ranged],
            representative,
            ranges,
        )
        resolutions = _resolutions(pools, found[: len(pools)])
        clipped = {layer.name: bounds for layer, bounds in zip(ranged, found[len(pools) :])}

    upsampling = _depth_to_space_rewrites(model)

    def rewrite(layer):
        if layer.name in folded:
            return folded[layer.name]
        if layer.name in upsampling:
            return upsampling[layer.name]
        if isinstance(layer, MaxPoolingWithArgmax2D):
            return WindowMaxPooling2D(resolutions.get(layer.name), name=layer.name)
        if isinstance(layer, MaxUnpooling2D):
            return WindowUnpooling2D(name=layer.name)
        if int8 and isinstance(layer, keras.layers.PReLU):
            return DepthwisePReLU(layer.get_weights()[0], name=layer.name)
        if int8 and isinstance(layer, keras.layers.Normalization):
            return _affine_normalization(layer) or layer
        return layer

    def replace(layer):
        rewritten = rewrite(layer)
        if layer.name in clipped:
            return Int8Range(rewritten, *clipped[layer.name], name=layer.name)
        return rewritten

    return keras.models.clone_model(model, clone_function=replace)


def uint8_input(flatbuffer):
    """A float-input int8 TFLite model with a uint8 input instead.

    TFLite's converter gives a uint8 input to a full-integer int8 model
    with a uint8 -> int8 `QUANTIZE` op, which XNNPack does not run (TFLite's
    own single-threaded kernel: about 0.6 ms for a 360x480 image on 2 CPU
    cores, as long as the int8 input stage itself). This takes the model
    converted with a float32 input, whose first op is a float32 -> int8
    `QUANTIZE` that XNNPack runs, and puts a uint8 -> float32 `DEQUANTIZE`
    (which XNNPack runs too) in front of it. The input is then uint8 with
    the scale of the int8 values and their zero point plus 128, as the
    converter makes it; each pixel `q` becomes `scale * (q - zero_point)`
    and back to the same int8 value, so the outputs equal those of the
    converter's uint8-input model. The converter offers no such option,
    so the rewrite edits the flatbuffer (TFLite's schema object API).

    Args:
        flatbuffer: bytes, a TFLite model with one float32 input read only
            by a `QUANTIZE` to int8.

    Returns:
        bytes, the model with a uint8 input.

    Raises:
        ValueError: `flatbuffer` is not such a model.
    """
    # Imported here: TFLite's schema modules load only for an export.
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    graph = model.subgraphs[0]
    readers = [op for op in graph.operators if graph.inputs[0] in op.inputs]
    if not (
        len(graph.inputs) == 1
        and graph.tensors[graph.inputs[0]].type == schema.TensorType.FLOAT32
        and len(readers) == 1
        and flatbuffer_utils.opcode_to_name(model, readers[0].opcodeIndex) == "QUANTIZE"
        and graph.tensors[readers[0].outputs[0]].type == schema.TensorType.INT8
    ):
        raise ValueError(
            "uint8_input needs an int8 TFLite model with one float32 input read "
            "only by a QUANTIZE to int8."
        )
    (quantize,) = readers
    index = graph.inputs[0]
    pixels = graph.tensors[index]
    int8 = graph.tensors[quantize.outputs[0]].quantization
    floats = schema.TensorT()
    floats.shape = list(pixels.shape)
    floats.shapeSignature = None if pixels.shapeSignature is None else list(pixels.shapeSignature)
    floats.type = schema.TensorType.FLOAT32
    floats.name = b"images_float32"
    floats.buffer = 0  # the empty buffer: computed, not stored
    graph.tensors.append(floats)
    quantize.inputs = [len(graph.tensors) - 1]
    pixels.type = schema.TensorType.UINT8
    pixels.quantization = schema.QuantizationParametersT()
    pixels.quantization.scale = [float(int8.scale[0])]
    pixels.quantization.zeroPoint = [int(int8.zeroPoint[0]) + 128]
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.DEQUANTIZE
    code.version = 1  # version 1: a uint8 input
    model.operatorCodes.append(code)
    dequantize = schema.OperatorT()
    dequantize.opcodeIndex = len(model.operatorCodes) - 1
    dequantize.inputs, dequantize.outputs = [index], [len(graph.tensors) - 1]
    graph.operators.insert(0, dequantize)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
