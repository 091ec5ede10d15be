"""SUN RGB-D with the 37-class segmentation labels (RGB only, as in ENet).

Two layouts of the same files are read. The archives most SUN RGB-D
segmentation code downloads (Ankur Handa's extraction of the toolbox's
`SUNRGBD2Dseg.mat`, https://github.com/ankurhanda/sunrgbd-meta-data;
fetched by `python -m tf_enet.data.download sunrgbd`) unpack to

    <data_dir>/SUNRGBD-train_images/img-000001.jpg ... img-005285.jpg
    <data_dir>/SUNRGBD-test_images/img-000001.jpg ... img-005050.jpg
    <data_dir>/sunrgbd_train_test_labels/img-000001.png ... img-010335.png

where the label archive numbers the test images first: test image `n` has
label `n`, training image `n` has label `n + 5050`. The reorganisation of
the same files by https://github.com/chrischoy/SUN_RGBD (also used by
several RGB-D segmentation repositories) numbers labels per split:

    <data_dir>/image/{train,test}/img-000001.jpg ...
    <data_dir>/label37/{train,test}/00000001.png ...

Files may sit at any depth below each folder. Images and labels are paired
by these numbers, never by sorted position, so a missing file is reported
instead of shifting every later pair.

Labels are single-channel PNGs: 0 is void (unlabelled, the ignore id here)
and 1-37 the classes of the toolbox's `seg37list`, which become class ids
0-36. The benchmark has no validation split; "val" is the test split, as
the ENet paper reports test figures (Table 6).

The palette is the PASCAL VOC colour map indexed by the label value (class
id + 1), as pytorch-semseg's SUN RGB-D loader paints these labels; SUN
RGB-D itself publishes no colours.

References: Song, Lichtenberg, Xiao, "SUN RGB-D: A RGB-D Scene
Understanding Benchmark Suite", CVPR 2015; Paszke et al., "ENet", 2016,
Sec. 5.3.
"""

import os
import re

from tf_enet.data import base, pairing

CLASS_NAMES = (
    "wall",
    "floor",
    "cabinet",
    "bed",
    "chair",
    "sofa",
    "table",
    "door",
    "window",
    "bookshelf",
    "picture",
    "counter",
    "blinds",
    "desk",
    "shelves",
    "curtain",
    "dresser",
    "pillow",
    "mirror",
    "floor_mat",
    "clothes",
    "ceiling",
    "books",
    "fridge",
    "tv",
    "paper",
    "towel",
    "shower_curtain",
    "box",
    "whiteboard",
    "person",
    "night_stand",
    "toilet",
    "sink",
    "lamp",
    "bathtub",
    "bag",
)
IGNORE_INDEX = 255
# Label value of unlabelled pixels in the PNGs.
VOID_LABEL = 0
TRAIN_IMAGE_DIR = "SUNRGBD-train_images"
TEST_IMAGE_DIR = "SUNRGBD-test_images"
LABEL_DIR = "sunrgbd_train_test_labels"
# The per-split layout: image/<split>/ and label37/<split>/.
SPLIT_IMAGE_DIR = "image"
SPLIT_LABEL_DIR = "label37"
# Split sizes; in Handa's label folder, training image `n` has label
# `n + NUM_TEST`.
NUM_TRAIN = 5285
NUM_TEST = 5050
SPLITS = ("train", "val", "test")
# `img-000001.jpg`, `00000001.png`, `img37labels-000001.png`, ...
_FILE_NAME = re.compile(r"^(?:[A-Za-z0-9_]*-)?(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)


def voc_color(index):
    """The PASCAL VOC colour map's colour for `index` (0 is black).

    Bits 0, 1 and 2 of the index set the top bit of R, G and B; bits 3,
    4 and 5 the next bit down; and so on.

    Returns:
        (R, G, B) tuple of ints.
    """
    red = green = blue = 0
    for shift in range(8):
        red |= ((index >> 0) & 1) << (7 - shift)
        green |= ((index >> 1) & 1) << (7 - shift)
        blue |= ((index >> 2) & 1) << (7 - shift)
        index >>= 3
    return red, green, blue


PALETTE = tuple(voc_color(c + 1) for c in range(len(CLASS_NAMES)))


def _label_mapping():
    table = [-1] * 256
    table[VOID_LABEL] = IGNORE_INDEX
    for value in range(1, len(CLASS_NAMES) + 1):
        table[value] = value - 1
    return base.LabelMapping(
        ignore_index=IGNORE_INDEX,
        id_table=tuple(table),
        valid_values=f"SUN RGB-D labels 0 (void) to {len(CLASS_NAMES)}",
    )


def list_numbered(directory, extensions):
    """Maps `n` to the path of each `[prefix-]<n>.<ext>` below `directory`.

    Args:
        directory: str. Searched recursively.
        extensions: tuple of str. Lower-case extensions with the dot.

    Returns:
        dict `int -> path`.

    Raises:
        DatasetError: if two files carry the same number.
    """
    found = {}
    for root, _, names in os.walk(directory):
        for name in names:
            match = _FILE_NAME.match(name)
            if not match or os.path.splitext(name)[1].lower() not in extensions:
                continue
            number = int(match.group(1))
            path = os.path.join(root, name)
            if number in found:
                raise base.DatasetError(
                    f"Two SUN RGB-D files numbered {number} under "
                    f"{directory}: {found[number]} and {path}; pairing by "
                    f"number needs one file per number."
                )
            found[number] = path
    return found


class SUNRGBD(base.SegmentationDataset):
    """SUN RGB-D, 37 classes, in Handa's or the per-split layout.

    Args:
        data_dir: str. Directory holding `SUNRGBD-train_images/`,
            `SUNRGBD-test_images/` and `sunrgbd_train_test_labels/`, or
            `image/` and `label37/`.

    Raises:
        DatasetError: if the labels or all images are missing.
    """

    info = base.DatasetInfo("sunrgbd", CLASS_NAMES, PALETTE, IGNORE_INDEX)
    label_mapping = _label_mapping()

    def __init__(self, data_dir):
        super().__init__(data_dir)
        self.per_split = os.path.isdir(
            os.path.join(self.data_dir, SPLIT_IMAGE_DIR)
        ) and os.path.isdir(os.path.join(self.data_dir, SPLIT_LABEL_DIR))
        if not self.per_split:
            pairing.require_dir(
                os.path.join(self.data_dir, LABEL_DIR),
                f"SUN RGB-D labels ({LABEL_DIR}/ from "
                f"sunrgbd_train_test_labels.tar.gz, or {SPLIT_IMAGE_DIR}/ and "
                f"{SPLIT_LABEL_DIR}/)",
            )
        if not self.splits():
            raise base.DatasetError(
                f"SUN RGB-D: {self.data_dir} has no images; expected "
                f"{TRAIN_IMAGE_DIR}/ or {TEST_IMAGE_DIR}/ (unpack "
                f"SUNRGBD-train_images.tgz and SUNRGBD-test_images.tgz there, "
                f"or run `python -m tf_enet.data.download sunrgbd`), or "
                f"{SPLIT_IMAGE_DIR}/train/ and {SPLIT_LABEL_DIR}/train/."
            )

    def _folders(self, split):
        """(image dir, label dir, label number of image 1 minus 1, count)."""
        name = "train" if split == "train" else "test"
        if self.per_split:
            return (
                os.path.join(self.data_dir, SPLIT_IMAGE_DIR, name),
                os.path.join(self.data_dir, SPLIT_LABEL_DIR, name),
                0,
                None,
            )
        if split == "train":
            image_dir, offset, count = TRAIN_IMAGE_DIR, NUM_TEST, NUM_TRAIN
        else:
            image_dir, offset, count = TEST_IMAGE_DIR, 0, NUM_TEST
        return (
            os.path.join(self.data_dir, image_dir),
            os.path.join(self.data_dir, LABEL_DIR),
            offset,
            count,
        )

    def splits(self):
        """ "train" and/or "val" and "test" (the same images), as present."""
        present = []
        for split in ("train", "test"):
            image_dir, label_dir, _, _ = self._folders(split)
            if os.path.isdir(image_dir) and os.path.isdir(label_dir):
                present += ["train"] if split == "train" else ["val", "test"]
        return tuple(present)

    def files(self, split):
        """Pairs the split's images with their labels by number.

        "val" lists the test split.

        Raises:
            DatasetError: for an unknown or absent split, an empty image
                folder, or images and labels of the split without partner.
        """
        if split not in SPLITS:
            raise base.DatasetError(
                f"SUN RGB-D has no split {split!r}; expected one of {SPLITS} "
                f"(val is the test split)."
            )
        image_dir, label_dir, offset, count = self._folders(split)
        for directory in (image_dir, label_dir):
            if not os.path.isdir(directory):
                raise base.DatasetError(
                    f"SUN RGB-D split {split!r} not found: {directory} is not "
                    f"a directory (available splits: "
                    f"{', '.join(self.splits())})."
                )
        images = list_numbered(image_dir, (".jpg", ".jpeg", ".png"))
        if not images:
            raise base.DatasetError(
                f"SUN RGB-D split {split!r} is empty: no img-<number>.jpg under {image_dir}."
            )
        labels = {
            number - offset: path
            for number, path in list_numbered(label_dir, (".png",)).items()
            if count is None or offset < number <= offset + count
        }
        return pairing.pair_files(images, labels, image_dir, label_dir)
