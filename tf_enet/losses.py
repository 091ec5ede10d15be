"""Class-weighted cross-entropy for semantic segmentation."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tf_enet")
class WeightedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Softmax cross-entropy per pixel, weighted by the pixel's class.

    Normalisation: the weighted sum over all pixels of the batch divided by
    the sum of their weights, `sum_i w[y_i] * ce_i / sum_i w[y_i]`, as
    PyTorch's `CrossEntropyLoss(weight=...)` and Torch's
    `SpatialCrossEntropyCriterion` (the paper's) compute it. Pixels labelled
    `ignore_index` (and any label outside `[0, num_classes)`) weigh 0, so
    they neither add loss nor count in the denominator; a batch with no
    labelled pixel has loss 0.

    Under a `tf.distribute` strategy with several replicas, the denominator
    is summed over all of them, so each replica returns its share of the
    global batch's loss and the replicas' losses (and gradients, which Keras
    adds up) sum to the loss of the global batch. Keras does not rescale a
    loss that is already a scalar, so no `1 / num_replicas` is applied.

    Args:
        class_weights: list of float or None. One weight per class (e.g.
            from `tf_enet.data.class_weights`); None weighs every class 1.
        num_classes: int. Number of classes; needed when `class_weights` is
            None, checked against it otherwise.
        ignore_index: int. Label of pixels to ignore.
        name: str. Name of the loss.

    Inputs:
        y_true: int `[batch, height, width]` class ids or `ignore_index`.
        y_pred: float `[batch, height, width, num_classes]` logits.
    """

    def __init__(
        self,
        class_weights=None,
        num_classes=None,
        ignore_index=255,
        name="weighted_sparse_categorical_crossentropy",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if class_weights is None and num_classes is None:
            raise ValueError("Give `class_weights` or `num_classes`.")
        if class_weights is not None:
            class_weights = [float(w) for w in class_weights]
            if num_classes is not None and num_classes != len(class_weights):
                raise ValueError(
                    f"`class_weights` has {len(class_weights)} entries for "
                    f"num_classes={num_classes}."
                )
            if any(w < 0 for w in class_weights):
                raise ValueError(f"`class_weights` must be non-negative; received {class_weights}.")
            num_classes = len(class_weights)
        self.class_weights = class_weights
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def call(self, y_true, y_pred):
        labels = tf.cast(y_true, tf.int32)
        if labels.shape.rank == 4:
            labels = tf.squeeze(labels, -1)
        logits = tf.cast(y_pred, tf.float32)
        valid = tf.logical_and(
            tf.not_equal(labels, self.ignore_index),
            tf.logical_and(labels >= 0, labels < self.num_classes),
        )
        safe_labels = tf.where(valid, labels, 0)
        # -log softmax(logits)[label] = logsumexp(logits) - logits[label]:
        # the same value and gradient as
        # `tf.nn.sparse_softmax_cross_entropy_with_logits`, whose CPU kernel
        # takes longer than these three element-wise passes.
        depth = logits.shape[-1] or tf.shape(logits)[-1]  # XLA needs it constant
        label_logits = tf.reduce_sum(
            logits * tf.one_hot(safe_labels, depth, dtype=logits.dtype), axis=-1
        )
        per_pixel = tf.reduce_logsumexp(logits, axis=-1) - label_logits  # [batch, height, width]
        if self.class_weights is None:
            weights = tf.cast(valid, tf.float32)
        else:
            table = tf.constant(self.class_weights, tf.float32)
            weights = tf.where(valid, tf.gather(table, safe_labels), 0.0)
        total_weight = tf.reduce_sum(tf.stop_gradient(weights))
        replica = tf.distribute.get_replica_context()
        if replica is not None and replica.num_replicas_in_sync > 1:
            total_weight = replica.all_reduce("sum", total_weight)
        return tf.math.divide_no_nan(tf.reduce_sum(weights * per_pixel), total_weight)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "class_weights": self.class_weights,
                "num_classes": self.num_classes,
                "ignore_index": self.ignore_index,
            }
        )
        return config
