"""Validation images, labels and predictions in TensorBoard."""

import keras
import numpy as np
import tensorflow as tf

from tf_enet import artifacts
from tf_enet import data as data_lib


class PredictionImages(keras.callbacks.Callback):
    """Writes a few validation images, labels and predictions to TensorBoard."""

    def __init__(self, log_dir, images, labels, palette, ignore_index):
        super().__init__()
        self.writer = tf.summary.create_file_writer(log_dir)
        self.images = images
        self.labels = labels
        self.palette = palette
        self.ignore_index = ignore_index

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or artifacts.VAL_MEAN_IOU not in logs:
            return
        logits = self.model(self.images, training=False)
        predictions = keras.ops.convert_to_numpy(keras.ops.argmax(logits, -1))
        with self.writer.as_default(step=epoch):
            tf.summary.image("validation/image", self.images.astype("uint8"), max_outputs=4)
            tf.summary.image(
                "validation/label",
                np.stack([data_lib.colorize(m, self.palette) for m in self.labels]),
                max_outputs=4,
            )
            tf.summary.image(
                "validation/prediction",
                np.stack([data_lib.colorize(p, self.palette) for p in predictions]),
                max_outputs=4,
            )
        self.writer.flush()
