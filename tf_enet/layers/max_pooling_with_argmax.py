"""2x2 max pooling that also returns where each maximum came from."""

import keras
import tensorflow as tf

from tf_enet.layers.padding import crop_to_even


@keras.saving.register_keras_serializable(package="tf_enet")
class MaxPoolingWithArgmax2D(keras.layers.Layer):
    """2x2, stride-2 max pooling returning the pooled values and their argmax.

    The indices follow `tf.nn.max_pool_with_argmax` with
    `include_batch_in_index=False`: the maximum at `(y, x, c)` of an input of
    width `W` and `C` channels has index `(y * W + x) * C + c`, and ties go to
    the first position in row-major order. Unlike that op, this layer is built
    from `space_to_depth`, element-wise comparisons and integer arithmetic
    only, so it compiles with XLA and converts to TFLite builtin ops.

    Pooling is "valid": an odd last row or column is dropped, as in
    `tf.nn.max_pool2d(..., padding="VALID")`. Pass the pooled tensor's input
    to `MaxUnpooling2D` as its `reference` to restore such a size.

    Reference: Paszke et al., "ENet: A Deep Neural Network Architecture for
    Real-Time Semantic Segmentation", 2016 (max pooling with kept indices on
    the downsampling path).

    Input shape:
        4D tensor `[batch, height, width, channels]`.

    Output shape:
        Tuple `(pooled, argmax)`, both `[batch, height // 2, width // 2,
        channels]`; `argmax` is int32.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def call(self, inputs):
        shape = tf.shape(inputs)
        height, width = shape[1], shape[2]
        channels = inputs.shape[-1]
        pooled_height, pooled_width = height // 2, width // 2
        inputs = crop_to_even(inputs)
        # [batch, h, w, 4 * channels], window positions (0,0) (0,1) (1,0) (1,1)
        windows = tf.nn.space_to_depth(inputs, 2)
        top_left, top_right, bottom_left, bottom_right = tf.split(windows, 4, axis=-1)
        pooled = tf.maximum(tf.maximum(top_left, top_right), tf.maximum(bottom_left, bottom_right))
        in_top_row = tf.logical_or(tf.equal(top_left, pooled), tf.equal(top_right, pooled))
        in_right_column = tf.where(
            in_top_row,
            tf.not_equal(top_left, pooled),
            tf.not_equal(bottom_left, pooled),
        )
        row_offset = 1 - tf.cast(in_top_row, tf.int32)
        column_offset = tf.cast(in_right_column, tf.int32)

        rows = tf.range(pooled_height, dtype=tf.int32)[:, None, None]  # [h, 1, 1]
        columns = tf.range(pooled_width, dtype=tf.int32)[None, :, None]  # [1, w, 1]
        channel_ids = tf.range(channels, dtype=tf.int32)  # [channels]
        window_origin = (2 * rows * width + 2 * columns) * channels + channel_ids
        argmax = window_origin + row_offset * (width * channels) + column_offset * channels
        return pooled, argmax

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        shape = (
            batch,
            None if height is None else height // 2,
            None if width is None else width // 2,
            channels,
        )
        return shape, shape

    def compute_output_spec(self, inputs):
        pooled_shape, argmax_shape = self.compute_output_shape(inputs.shape)
        return (
            keras.KerasTensor(pooled_shape, dtype=inputs.dtype),
            keras.KerasTensor(argmax_shape, dtype="int32"),
        )
