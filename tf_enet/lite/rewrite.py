"""`tflite_friendly`: a trained ENet rewritten into the ops TFLite runs fastest.

The rewrite passes, each a map from layer name to its replacement, applied
by one `keras.models.clone_model`:

- argmax poolings and unpoolings become window masks (`pooling`);
- strided transposed convolutions become convolutions and
  `depth_to_space`, with a batch norm and ReLU after them folded in
  (`convolutions.DepthToSpaceConv2D`);
- for int8: PReLUs become depthwise convolutions, the input normalisation
  a per-channel affine, the initial block's batch norm folds into its two
  branches, and with `ranges="mean"` activation ranges are set
  (`calibration`).

Folded layers become `Folded`, which passes its input on. The initial block's batch
norm folds for int8 only: TFLite's int8 concatenation and max pooling keep
one scale from input to output, so with the batch norm after the
concatenation the normalised image was quantized at the step of the
convolution's wider output range (0.12, about 7 pixel levels, instead of
about 0.02). Float models keep Keras's arithmetic there and in the
normalisation: multiplying by `1 / std` rounds differently from dividing
by it, which can flip a near-tie in a max pooling window.
"""

import keras
import numpy as np

from tf_enet.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D
from tf_enet.lite.calibration import Int8Range, calibrated_ranges, pooling_resolution
from tf_enet.lite.convolutions import (
    ChannelAffine,
    DepthToSpaceConv2D,
    DepthwisePReLU,
    PooledChannelAffine,
    batch_norm_affine,
)
from tf_enet.lite.pooling import WindowMaxPooling2D, WindowUnpooling2D


@keras.saving.register_keras_serializable(package="tf_enet.lite")
class Folded(keras.layers.Layer):
    """Passes its input on: stands in for a layer folded into another.

    Unlike `keras.layers.Identity` it takes the `mask` argument the
    replaced layer (a batch norm) was called with in the model's graph.
    """

    def call(self, inputs, mask=None):
        return inputs


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
            `calibration.calibrated_ranges`); required when `int8`.
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
        resolutions = {
            layer.name: pooling_resolution(*bounds) for layer, bounds in zip(pools, found)
        }
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
            return affine_normalization(layer) or layer
        return layer

    def replace(layer):
        rewritten = rewrite(layer)
        if layer.name in clipped:
            return Int8Range(rewritten, *clipped[layer.name], name=layer.name)
        return rewritten

    return keras.models.clone_model(model, clone_function=replace)


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
    scale, offset = batch_norm_affine(bn)
    filters = conv.filters
    folded = keras.layers.Conv2D.from_config({**conv.get_config(), "use_bias": True})
    folded.build(conv.input.shape)
    kernel = keras.ops.convert_to_numpy(conv.kernel)
    folded.set_weights([kernel * scale[:filters], offset[:filters]])
    return {
        conv.name: folded,
        pool.name: PooledChannelAffine(pool, scale[filters:], offset[filters:], name=pool.name),
        bn.name: Folded(name=bn.name),
    }


def _depth_to_space_rewrites(model):
    """Replacements turning `model`'s transposed convolutions into `DepthToSpaceConv2D`.

    A batch norm that alone reads a transposed convolution's output folds
    into it, and so does a plain ReLU that alone reads the result: after
    the rearrangement they would be passes over the upsampled tensor
    (TFLite's converter folds them into a `TRANSPOSE_CONV`, not across a
    `DEPTH_TO_SPACE`).

    Returns:
        dict: layer name -> replacement layer (`Folded` for the folded
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
                replacements[folded.name] = Folded(name=folded.name)
    return replacements


def affine_normalization(layer):
    """`layer` as a ChannelAffine, or None if it is not per channel."""
    if layer.invert or tuple(layer.axis) not in ((-1,), (3,)):
        return None
    mean = np.reshape(keras.ops.convert_to_numpy(layer.mean), [-1])
    variance = np.reshape(keras.ops.convert_to_numpy(layer.variance), [-1])
    # What keras.layers.Normalization divides by.
    scale = 1.0 / np.maximum(np.sqrt(variance), keras.backend.epsilon())
    return ChannelAffine(scale, -mean * scale, name=layer.name)


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
