"""Batch normalization whose training step is one fused TensorFlow op."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tf_enet")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization`, trained with TensorFlow's fused kernel.

    The same layer, with the same arguments, weights and results, except
    how a training call is computed. Keras 3 builds a training call from
    separate ops (the moments, then scale and shift), and their gradient
    from as many more; each is a pass over the activations. Here a training
    call on a 4D float32 tensor normalized over its last axis runs
    `tf.raw_ops.FusedBatchNormV3` (oneDNN's kernel on CPUs, cuDNN's on
    GPUs), whose gradient is one op too: ENet's training step takes about a
    fifth less time (docs/performance.md). Inference calls, and training
    calls the fused kernel does not cover (a mask, renorm, `synchronized`,
    no `center` or `scale`, another axis, rank or dtype), are Keras's own.

    It has Keras's class name on purpose: a weights file (`save_weights`,
    the training backups) keys each layer by its class name, so files
    written with either class load into the other, and a run interrupted
    under an earlier version resumes. Saved models name it
    `tf_enet>BatchNormalization`.

    The moving statistics are updated as Keras updates them, with the
    biased batch variance (`sum((x - mean)^2) / n`):
    `moving = moving * momentum + batch * (1 - momentum)`. The fused kernel
    returns the Bessel-corrected variance (divided by `n - 1`), which is
    scaled back by `(n - 1) / n` first.

    Reference: Ioffe & Szegedy, "Batch Normalization", 2015; ENet puts it
    after every convolution (Paszke et al. 2016, Sec. 3).

    Args:
        **kwargs: as `keras.layers.BatchNormalization`.

    Input shape:
        Any; the fused path needs `[batch, height, width, channels]` with
        `axis=-1`.

    Output shape:
        Same as the input.
    """

    def _fused(self, inputs, training, mask):
        return (
            training
            and self.trainable
            and mask is None
            and not self.renorm
            and not self.synchronized
            and self.center
            and self.scale
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and inputs.dtype == tf.float32
            and self.moving_mean.dtype == "float32"
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fused(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        empty = tf.constant([], tf.float32)
        outputs, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=inputs,
            scale=tf.convert_to_tensor(self.gamma),
            offset=tf.convert_to_tensor(self.beta),
            mean=empty,
            variance=empty,
            epsilon=self.epsilon,
            exponential_avg_factor=1.0,
            data_format="NHWC",
            is_training=True,
        )
        count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], tf.float32)
        variance = variance * tf.math.divide_no_nan(count - 1.0, count)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
        )
        return outputs
