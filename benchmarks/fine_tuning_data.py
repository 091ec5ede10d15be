"""Writes the small 3-class dataset of the README's fine-tuning comparison.

    python benchmarks/fine_tuning_data.py --camvid data/CamVid --out camvid3

CamVid's 11 classes merged into 3 (background: sky, building, pole, tree,
sign, fence; ground: road, pavement; traffic: car, pedestrian, bicyclist;
CamVid's Unlabelled is ignored), every `--train_step`-th training image and
every `--val_step`-th val image, shrunk to `--height` x `--width` (area
interpolation for images, nearest neighbour for masks), as a folder dataset
(`images/{train,val}`, `masks/{train,val}`, `classes.json`).
"""

import json
import os

import cv2
import numpy as np
from absl import app, flags

from tf_enet.data import camvid

FLAGS = flags.FLAGS
flags.DEFINE_string("camvid", "data/CamVid", "CamVid root (SegNet layout: train/, trainannot/).")
flags.DEFINE_string("out", "camvid3", "Folder dataset to write.")
flags.DEFINE_integer("train_step", 6, "Keep every N-th training image.")
flags.DEFINE_integer("val_step", 3, "Keep every N-th val image.")
flags.DEFINE_integer("height", 120, "Height of the written images.")
flags.DEFINE_integer("width", 160, "Width of the written images.")

IGNORE = 255
CLASSES = (
    ("background", (128, 128, 128), ("Sky", "Building", "Pole", "Tree", "SignSymbol", "Fence")),
    ("ground", (128, 64, 128), ("Road", "Pavement")),
    ("traffic", (64, 0, 128), ("Car", "Pedestrian", "Bicyclist")),
)
# CamVid's class ids (SegNet layout); 11 is Unlabelled.
CAMVID = camvid.CLASS_NAMES


def main(argv):
    del argv
    lookup = [IGNORE] * 256
    for new_id, (_, _, members) in enumerate(CLASSES):
        for name in members:
            lookup[CAMVID.index(name)] = new_id
    for split, step in (("train", FLAGS.train_step), ("val", FLAGS.val_step)):
        names = sorted(os.listdir(os.path.join(FLAGS.camvid, split)))[::step]
        for kind in ("images", "masks"):
            os.makedirs(os.path.join(FLAGS.out, kind, split), exist_ok=True)
        for name in names:
            image = cv2.imread(os.path.join(FLAGS.camvid, split, name))
            mask = cv2.imread(os.path.join(FLAGS.camvid, split + "annot", name), -1)
            size = (FLAGS.width, FLAGS.height)
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
            mask = cv2.LUT(mask, np.array(lookup, np.uint8))
            cv2.imwrite(os.path.join(FLAGS.out, "images", split, name), image)
            cv2.imwrite(os.path.join(FLAGS.out, "masks", split, name), mask)
        print(f"{split}: {len(names)} images")
    classes = [{"name": name, "color": list(color)} for name, color, _ in CLASSES]
    with open(os.path.join(FLAGS.out, "classes.json"), "w", encoding="utf-8") as f:
        json.dump({"classes": classes, "ignore_index": IGNORE}, f, indent=1)


if __name__ == "__main__":
    app.run(main)
