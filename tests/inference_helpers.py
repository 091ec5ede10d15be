"""Shared test models and data of the deployment tests (inference, predict,
evaluate, export).

The "pixel model" is a 1x1 convolution whose logits are `k * R - k**2 / 2`
for class `k`, so it predicts the class id written in each pixel's red
channel. Predictions are then known exactly, and scores can be checked
against a confusion matrix counted by hand.
"""

import json
import os

import cv2
import keras
import numpy as np

from tf_enet import data, inference

PALETTE = ((200, 0, 0), (0, 200, 0), (0, 0, 200))
CLASSES = ("road", "car", "sky")
IGNORE = 255


def pixel_model(num_classes):
    """A Keras model predicting the class id stored in the red channel."""
    images = keras.Input((None, None, 3), name="images")
    conv = keras.layers.Conv2D(num_classes, 1, name="logits")
    model = keras.Model(images, conv(images))
    kernel = np.zeros((1, 1, 3, num_classes), np.float32)
    kernel[0, 0, 0] = np.arange(num_classes)
    bias = -0.5 * np.arange(num_classes, dtype=np.float32) ** 2
    conv.set_weights([kernel, bias])
    return model


def run_config(class_names=CLASSES, palette=PALETTE, ignore_index=IGNORE):
    """A config.json as train.py writes it (the parts inference reads)."""
    return {
        "format": "tf_enet/1",
        "model": {"num_classes": len(class_names)},
        "dataset": {
            "name": "folder",
            "class_names": list(class_names),
            "palette": [list(c) for c in palette],
            "ignore_index": ignore_index,
        },
    }


def write_checkpoint(directory, model, config=None):
    """A checkpoint directory: model.keras and, if given, config.json."""
    os.makedirs(directory, exist_ok=True)
    model.save(os.path.join(directory, "model.keras"))
    if config is not None:
        with open(os.path.join(directory, "config.json"), "w") as f:
            json.dump(config, f)
    return str(directory)


def write_rgb(path, rgb):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(np.uint8(rgb), cv2.COLOR_RGB2BGR))


def red_image(red):
    """An RGB image whose red channel is `red` (the pixel model's answer)."""
    red = np.asarray(red, np.uint8)
    return np.stack([red, np.full_like(red, 90), np.full_like(red, 30)], -1)


# Two 8x8 images of the folder dataset below, with hand-counted results.
# a: predicted 0 in columns 0-3 and 1 in 4-7; labelled 0 in rows 0-3, 1 in
#    rows 4-6, ignore in row 7.  -> [[16, 16, 0], [12, 12, 0], [0, 0, 0]]
# b: predicted 2 everywhere; labelled 0 in column 0, else 2.
#                               -> [[0, 0, 8], [0, 0, 0], [0, 0, 56]]
PREDICTED_A = np.repeat([[0] * 4 + [1] * 4], 8, axis=0)
LABEL_A = np.array([[0] * 8] * 4 + [[1] * 8] * 3 + [[IGNORE] * 8])
PREDICTED_B = np.full((8, 8), 2)
LABEL_B = np.where(np.arange(8)[None, :] == 0, 0, np.full((8, 8), 2))
CONFUSION = [[16, 16, 8], [12, 12, 0], [0, 0, 56]]
# IoU = TP / (row + column - TP): 16/52, 12/40, 56/64.
PER_CLASS_IOU = [16 / 52, 12 / 40, 56 / 64]
MEAN_IOU = (16 / 52 + 12 / 40 + 56 / 64) / 3  # 0.49423
GLOBAL_ACCURACY = (16 + 12 + 56) / 120  # 0.7 of the 120 labelled pixels
CLASS_ACCURACY = (16 / 40 + 12 / 24 + 56 / 56) / 3  # 0.63333


def write_folder_dataset(root):
    """A folder dataset with a 'val' split of the two images above."""
    classes = [{"name": n, "color": list(c)} for n, c in zip(CLASSES, PALETTE)]
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "classes.json"), "w") as f:
        json.dump({"classes": classes, "ignore_index": IGNORE}, f)
    for name, predicted, label in (
        ("a", PREDICTED_A, LABEL_A),
        ("b", PREDICTED_B, LABEL_B),
    ):
        write_rgb(os.path.join(root, "images", "val", f"{name}.png"), red_image(predicted))
        mask = os.path.join(root, "masks", "val", f"{name}.png")
        os.makedirs(os.path.dirname(mask), exist_ok=True)
        assert cv2.imwrite(mask, np.uint8(label))
    return str(root)


class RecordingRunner:
    """A runner computing the pixel model's logits and recording shapes."""

    num_classes = 3

    def __init__(self):
        self.shapes = []

    def __call__(self, images):
        self.shapes.append(images.shape)
        k = np.arange(self.num_classes, dtype=np.float32)
        return images[..., :1] * k - 0.5 * k**2


def fake_predictor():
    info = data.DatasetInfo("folder", CLASSES, PALETTE, IGNORE)
    return inference.Predictor(RecordingRunner(), info, None, "fake", "keras")
