"""Cityscapes fine annotations, mapped to the 19 official training classes.

Layout (as unpacked from leftImg8bit_trainvaltest.zip and
gtFine_trainvaltest.zip):

    <data_dir>/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png
    <data_dir>/gtFine/<split>/<city>/<name>_gtFine_labelIds.png

    <data_dir>/gtFine/<split>/<city>/<name>_gtFine_instanceIds.png

The `labelIds` masks hold the 34 Cityscapes label ids; the official table
(cityscapesScripts `helpers/labels.py`) maps them to 19 `trainId`s, every
other label to the ignore id 255, and groups the classes into 7 categories.
Trees with only `<name>_gtFine_labelTrainIds.png` masks (as cityscapesScripts'
`csCreateTrainIdLabelImgs` writes them, and as many copies are shared) are
read as they are: their values are already the trainIds 0-18 and 255.
The `instanceIds` masks (16-bit) give each object of a class with instances
its own id `label_id * 1000 + n`; the benchmark's instance-level iIoU reads
them (`tf_enet.metrics_cityscapes`). The test split's annotations are not
public, so its pairs have no mask.

Reference: Cordts et al., "The Cityscapes Dataset for Semantic Urban Scene
Understanding", CVPR 2016.
"""

import os

import cv2
import numpy as np

from tf_enet.data import base, pairing

CLASS_NAMES = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)
PALETTE = (
    (128, 64, 128),
    (244, 35, 232),
    (70, 70, 70),
    (102, 102, 156),
    (190, 153, 153),
    (153, 153, 153),
    (250, 170, 30),
    (220, 220, 0),
    (107, 142, 35),
    (152, 251, 152),
    (70, 130, 180),
    (220, 20, 60),
    (255, 0, 0),
    (0, 0, 142),
    (0, 0, 70),
    (0, 60, 100),
    (0, 80, 100),
    (0, 0, 230),
    (119, 11, 32),
)
IGNORE_INDEX = 255
# labelId -> trainId for labelIds 0..33, from cityscapesScripts; labels
# outside the benchmark (unlabeled, ego vehicle, parking, rail track, ...)
# go to the ignore id.
LABEL_ID_TO_TRAIN_ID = {
    7: 0,  # road
    8: 1,  # sidewalk
    11: 2,  # building
    12: 3,  # wall
    13: 4,  # fence
    17: 5,  # pole
    19: 6,  # traffic light
    20: 7,  # traffic sign
    21: 8,  # vegetation
    22: 9,  # terrain
    23: 10,  # sky
    24: 11,  # person
    25: 12,  # rider
    26: 13,  # car
    27: 14,  # truck
    28: 15,  # bus
    31: 16,  # train
    32: 17,  # motorcycle
    33: 18,  # bicycle
}
NUM_LABEL_IDS = 34
# The official categories that hold at least one of the 19 classes ("void"
# holds none), and the category of each training class.
CATEGORY_NAMES = (
    "flat",
    "construction",
    "object",
    "nature",
    "sky",
    "human",
    "vehicle",
)
CLASS_CATEGORIES = (0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 5, 6, 6, 6, 6, 6, 6)
# Instance ids above this are `label_id * 1000 + n`; smaller ones are plain
# label ids (pixels of a class without instances, or crowd regions).
INSTANCE_ID_OFFSET = 1000
SPLITS = ("train", "val", "test")
_IMAGE_SUFFIX = "_leftImg8bit.png"
_MASK_SUFFIX = "_gtFine_labelIds.png"
_TRAIN_IDS_SUFFIX = "_gtFine_labelTrainIds.png"
_INSTANCE_SUFFIX = "_gtFine_instanceIds.png"
# gtFine files that are not masks, and what to do when a split has only them.
_NOT_MASKS = {
    "_gtFine_polygons.json": (
        "polygon annotations; make the masks with cityscapesScripts: pip install "
        "cityscapesscripts, then CITYSCAPES_DATASET={data_dir} csCreateTrainIdLabelImgs"
    ),
    "_gtFine_color.png": (
        "colour renderings for viewing, not labels; unpack gtFine_trainvaltest.zip, "
        "which holds the labelIds masks"
    ),
}


def _label_mapping():
    table = [-1] * 256
    for label_id in range(NUM_LABEL_IDS):
        table[label_id] = LABEL_ID_TO_TRAIN_ID.get(label_id, IGNORE_INDEX)
    # The license plate's label id is -1, which an 8-bit file stores as 255.
    table[255] = IGNORE_INDEX
    return base.LabelMapping(
        IGNORE_INDEX,
        tuple(table),
        valid_values=f"Cityscapes labelIds 0-{NUM_LABEL_IDS - 1} (or 255)",
    )


def _train_id_mapping():
    return base.LabelMapping.identity(len(CLASS_NAMES), IGNORE_INDEX)


def read_instance_ids(path):
    """Reads a `*_gtFine_instanceIds.png` file.

    Args:
        path: str. A 16-bit (or 8-bit) single-channel PNG.

    Returns:
        np.ndarray int32 [H, W]: `label_id * 1000 + n` on the pixels of
        object `n` of a class with instances, the plain label id elsewhere.

    Raises:
        DatasetError: naming the file if it is unreadable or not a
            single-channel image.
    """
    path = os.fspath(path)
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as err:
        raise base.DatasetError(f"Cannot read {path}: {err.strerror}.") from err
    array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if array is None:
        raise base.DatasetError(f"Cannot decode instance ids {path}: not a readable PNG.")
    if array.ndim != 2:
        raise base.DatasetError(
            f"Cannot use instance ids {path}: it has {array.shape[2]} "
            f"channels; expected a single-channel Cityscapes instanceIds PNG."
        )
    return array.astype(np.int32)


def _list(directory, suffix):
    """Maps `<city>/<name>` to paths of files ending in `suffix`."""
    found = {}
    for root, _, names in os.walk(directory):
        for name in names:
            if name.endswith(suffix):
                city = os.path.relpath(root, directory)
                found[os.path.join(city, name[: -len(suffix)])] = os.path.join(root, name)
    return found


class Cityscapes(base.SegmentationDataset):
    """Cityscapes with fine annotations and the 19 training classes.

    The masks are the `labelIds` files, or, in a tree that has none, the
    `labelTrainIds` files; `mask_suffix` says which.

    Args:
        data_dir: str. Directory holding `leftImg8bit/` and `gtFine/`.

    Raises:
        DatasetError: if `leftImg8bit/` is missing.
    """

    info = base.DatasetInfo("cityscapes", CLASS_NAMES, PALETTE, IGNORE_INDEX)
    label_mapping = _label_mapping()
    mask_suffix = _MASK_SUFFIX

    def __init__(self, data_dir):
        super().__init__(data_dir)
        pairing.require_dir(
            os.path.join(self.data_dir, "leftImg8bit"),
            "Cityscapes images (leftImg8bit/)",
        )
        if not self._has_files(_MASK_SUFFIX) and self._has_files(_TRAIN_IDS_SUFFIX):
            self.mask_suffix = _TRAIN_IDS_SUFFIX
            self.label_mapping = _train_id_mapping()

    def _has_files(self, suffix):
        """Whether any annotated split under `gtFine/` has a `*suffix` file."""
        for split in ("train", "val"):
            for _, _, names in os.walk(os.path.join(self.data_dir, "gtFine", split)):
                if any(name.endswith(suffix) for name in names):
                    return True
        return False

    def splits(self):
        """The splits present under `leftImg8bit/`."""
        return tuple(
            s for s in SPLITS if os.path.isdir(os.path.join(self.data_dir, "leftImg8bit", s))
        )

    def files(self, split):
        """Pairs images with `labelIds` masks; the test split has no masks."""
        if split not in SPLITS:
            raise base.DatasetError(f"Cityscapes has no split {split!r}; expected one of {SPLITS}.")
        image_dir = os.path.join(self.data_dir, "leftImg8bit", split)
        if not os.path.isdir(image_dir):
            raise base.DatasetError(
                f"Cityscapes split {split!r} not found: {image_dir} is not a "
                f"directory (available splits: {', '.join(self.splits())})."
            )
        images = _list(image_dir, _IMAGE_SUFFIX)
        if not images:
            raise base.DatasetError(
                f"Cityscapes split {split!r} is empty: no *{_IMAGE_SUFFIX} under {image_dir}."
            )
        if split == "test":
            return [(path, None) for path in sorted(images.values())]
        mask_dir = os.path.join(self.data_dir, "gtFine", split)
        pairing.require_dir(mask_dir, f"Cityscapes annotations for {split!r}")
        masks = _list(mask_dir, self.mask_suffix)
        if not masks:
            raise base.DatasetError(self._no_masks(split, mask_dir))
        return pairing.pair_files(images, masks, image_dir, mask_dir)

    def _no_masks(self, split, mask_dir):
        """The error for a split without masks, saying what it has instead."""
        message = (
            f"Cityscapes split {split!r} has no masks: no *{_MASK_SUFFIX} or "
            f"*{_TRAIN_IDS_SUFFIX} files under {mask_dir}"
        )
        if self.mask_suffix == _MASK_SUFFIX and _list(mask_dir, _TRAIN_IDS_SUFFIX):
            return (
                f"Cityscapes split {split!r} has only *{_TRAIN_IDS_SUFFIX} masks "
                f"under {mask_dir}, while the other splits have *{_MASK_SUFFIX}; "
                f"use one kind of mask in every split."
            )
        for suffix, meaning in _NOT_MASKS.items():
            if _list(mask_dir, suffix):
                meaning = meaning.format(data_dir=self.data_dir)
                return f"{message}; its *{suffix} files are {meaning}."
        return f"{message}; unpack gtFine_trainvaltest.zip into {self.data_dir}."

    def files_with_instances(self, split):
        """Lists `(image_path, label_ids_path, instance_ids_path)` triples.

        In the order of `files(split)`: the `i`-th triple is the `i`-th
        pair plus its `instanceIds` file, so an evaluation walking
        `files` (as `make_eval_dataset` does; `limit` takes a prefix) finds
        each image's instances by position.

        Raises:
            DatasetError: for the test split (no public annotations) or a
                labelIds mask without its instanceIds file.
        """
        pairs = self.files(split)
        if any(mask is None for _, mask in pairs):
            raise base.DatasetError(
                f"Cityscapes split {split!r} has no public annotations, so "
                f"it has no instanceIds files."
            )
        suffix = self.mask_suffix
        triples = [(image, mask, mask[: -len(suffix)] + _INSTANCE_SUFFIX) for image, mask in pairs]
        missing = [t[2] for t in triples if not os.path.isfile(t[2])]
        if missing:
            raise base.DatasetError(
                f"{len(missing)} Cityscapes {suffix[len('_gtFine_') : -len('.png')]} "
                f"masks of split {split!r} "
                f"have no *{_INSTANCE_SUFFIX} beside them, first: "
                f"{pairing.format_names(missing)}; the instance-level scores "
                f"(iIoU) need gtFine_trainvaltest.zip unpacked in full."
            )
        return triples

    def instance_files(self, split):
        """The `instanceIds` file of each pair of `files(split)`, in order."""
        return [t[2] for t in self.files_with_instances(split)]
