"""Max unpooling: the inverse scatter of `MaxPoolingWithArgmax2D`."""

import keras
import tensorflow as tf

from tf_enet.layers.padding import pad_bottom_right


@keras.saving.register_keras_serializable(package="tf_enet")
class MaxUnpooling2D(keras.layers.Layer):
    """Places every value at its argmax position, zeros elsewhere.

    Undoes a 2x2, stride-2 `MaxPoolingWithArgmax2D`: the value at pooled
    position `(i, j, c)` goes back to the input position its `argmax` names,
    within the 2x2 window `(2i..2i+1, 2j..2j+1)`; the other three positions of
    the window are zero. Equivalent to scattering into zeros with
    `tf.scatter_nd`, but built from comparisons, `concat` and
    `depth_to_space`, so it compiles with XLA and converts to TFLite builtin
    ops.

    Called as `layer([inputs, argmax])` the output is twice the size of
    `inputs`; as `layer([inputs, argmax, reference])`, where `reference` is
    the tensor that was pooled, the output takes the reference's height and
    width (needed when that size was odd).

    Reference: Paszke et al., "ENet: A Deep Neural Network Architecture for
    Real-Time Semantic Segmentation", 2016 (max unpooling with the encoder's
    indices on the upsampling path).

    Input shape:
        `inputs`: 4D tensor `[batch, h, w, channels]`.
        `argmax`: int tensor of the same shape, indices as returned by
        `MaxPoolingWithArgmax2D` (`(y * W + x) * channels + c`).
        `reference` (optional): 4D tensor `[batch, H, W, any]`.

    Output shape:
        `[batch, 2 * h, 2 * w, channels]`, or `[batch, H, W, channels]`
        with a reference.
    """

    def call(self, inputs):
        if len(inputs) not in (2, 3):
            raise ValueError(
                "MaxUnpooling2D expects [inputs, argmax] or "
                f"[inputs, argmax, reference]; received {len(inputs)} tensors."
            )
        values, argmax = inputs[0], tf.cast(inputs[1], tf.int32)
        reference = inputs[2] if len(inputs) == 3 else None
        shape = tf.shape(values)
        pooled_height, pooled_width = shape[1], shape[2]
        channels = values.shape[-1]
        if reference is None:
            height, width = 2 * pooled_height, 2 * pooled_width
        else:
            height, width = tf.shape(reference)[1], tf.shape(reference)[2]

        position = argmax // channels  # y * width + x
        rows = tf.range(pooled_height, dtype=tf.int32)[:, None, None]  # [h, 1, 1]
        columns = tf.range(pooled_width, dtype=tf.int32)[None, :, None]  # [1, w, 1]
        row_offset = position // width - 2 * rows
        column_offset = position % width - 2 * columns
        window_position = 2 * row_offset + column_offset  # 0..3, row-major
        zeros = tf.zeros_like(values)
        windows = tf.concat(
            [tf.where(tf.equal(window_position, k), values, zeros) for k in range(4)],
            axis=-1,
        )  # [batch, h, w, 4 * channels]
        outputs = tf.nn.depth_to_space(windows, 2)  # [batch, 2h, 2w, channels]
        known = reference is not None and None not in (*reference.shape[1:3], *values.shape[1:3])
        if known and tuple(reference.shape[1:3]) == (2 * values.shape[1], 2 * values.shape[2]):
            reference = None  # an even size, known when traced: nothing to pad
        if reference is not None:
            outputs = pad_bottom_right(
                outputs, height - 2 * pooled_height, width - 2 * pooled_width
            )
        return outputs

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape[0]
        if len(input_shape) == 3:
            _, height, width, _ = input_shape[2]
            return (batch, height, width, channels)
        return (
            batch,
            None if height is None else 2 * height,
            None if width is None else 2 * width,
            channels,
        )
