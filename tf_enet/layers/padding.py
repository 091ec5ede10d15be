"""Shape layers that let ENet take images of any size."""

import keras
import tensorflow as tf


def pad_bottom_right(inputs, pad_height, pad_width):
    """Zero-pads `[batch, h, w, c]` by dynamic amounts, keeping `c` static.

    `tf.pad` with computed paddings loses the static channel count, which
    TFLite's convolutions need; reshaping to a shape whose last entry is a
    constant restores it without ops TFLite lacks.
    """
    shape = tf.shape(inputs)
    outputs = tf.pad(inputs, [[0, 0], [0, pad_height], [0, pad_width], [0, 0]])
    return tf.reshape(
        outputs,
        [shape[0], shape[1] + pad_height, shape[2] + pad_width, inputs.shape[-1]],
    )


def crop_to_even(inputs):
    """`[batch, h, w, c]` without an odd last row or column, as 2x2 pooling drops them.

    A size known to be even when traced is left as it is, with no slice.
    """
    height, width = inputs.shape[1], inputs.shape[2]
    if height is not None and width is not None and height % 2 == 0 and width % 2 == 0:
        return inputs
    shape = tf.shape(inputs)
    return inputs[:, : shape[1] // 2 * 2, : shape[2] // 2 * 2, :]


@keras.saving.register_keras_serializable(package="tf_enet")
class PadToMultiple(keras.layers.Layer):
    """Zero-pads height and width at the bottom and right to a multiple.

    ENet halves the resolution three times, so its input must be a multiple
    of 8; this layer pads any image up to one, and `CropToReference` cuts the
    logits back to the original size.

    Args:
        multiple: int. Height and width are padded up to a multiple of this.

    Input shape:
        4D tensor `[batch, height, width, channels]`.

    Output shape:
        `[batch, ceil(height / multiple) * multiple,
        ceil(width / multiple) * multiple, channels]`.
    """

    def __init__(self, multiple=8, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(multiple, int) or multiple < 1:
            raise ValueError(f"`multiple` must be a positive integer; received {multiple!r}.")
        self.multiple = multiple
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def call(self, inputs):
        height, width = inputs.shape[1], inputs.shape[2]
        if height is not None and width is not None:
            # A size known when traced (a fixed-size export, a training
            # crop) pads by constants, or not at all, and keeps it known.
            pad_height, pad_width = -height % self.multiple, -width % self.multiple
            if not pad_height and not pad_width:
                return inputs
            return tf.pad(inputs, [[0, 0], [0, pad_height], [0, pad_width], [0, 0]])
        shape = tf.shape(inputs)
        pad_height = -shape[1] % self.multiple
        pad_width = -shape[2] % self.multiple
        return pad_bottom_right(inputs, pad_height, pad_width)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape

        def padded(size):
            return None if size is None else -(-size // self.multiple) * self.multiple

        return (batch, padded(height), padded(width), channels)

    def get_config(self):
        config = super().get_config()
        config.update({"multiple": self.multiple})
        return config


@keras.saving.register_keras_serializable(package="tf_enet")
class CropToReference(keras.layers.Layer):
    """Crops `[inputs, reference]` to the reference's height and width.

    Keeps the top-left corner, undoing `PadToMultiple`.

    Input shape:
        List of two 4D tensors: `[batch, H', W', channels]` with `H' >= H`,
        `W' >= W`, and the reference `[batch, H, W, any]`.

    Output shape:
        `[batch, H, W, channels]`.
    """

    def call(self, inputs):
        values, reference = inputs
        if None not in values.shape[1:3] and values.shape[1:3] == reference.shape[1:3]:
            return values  # nothing to crop, known when traced
        shape = tf.shape(reference)
        return values[:, : shape[1], : shape[2], :]

    def compute_output_shape(self, input_shape):
        values_shape, reference_shape = input_shape
        return (
            values_shape[0],
            reference_shape[1],
            reference_shape[2],
            values_shape[3],
        )


@keras.saving.register_keras_serializable(package="tf_enet")
class ChannelPadding(keras.layers.Layer):
    """Appends zero channels up to `channels`.

    The main branch of ENet's downsampling bottleneck: max pooling keeps the
    channel count, zero padding matches it to the extension branch.

    Args:
        channels: int. Number of output channels; at least the input's.

    Input shape:
        4D tensor `[batch, height, width, in_channels]`.

    Output shape:
        `[batch, height, width, channels]`.
    """

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"`channels` must be a positive integer; received {channels!r}.")
        self.channels = channels
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def build(self, input_shape):
        if input_shape[-1] > self.channels:
            raise ValueError(
                f"ChannelPadding to {self.channels} channels received an input "
                f"with {input_shape[-1]} channels."
            )

    def call(self, inputs):
        extra = self.channels - inputs.shape[-1]
        return tf.pad(inputs, [[0, 0], [0, 0], [0, 0], [0, extra]])

    def compute_output_shape(self, input_shape):
        return (*input_shape[:3], self.channels)

    def get_config(self):
        config = super().get_config()
        config.update({"channels": self.channels})
        return config
