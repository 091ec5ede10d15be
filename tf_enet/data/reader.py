"""Reading a labelled split in NumPy, without TensorFlow.

What evaluation reads: the split's image and label files, validated by
`scan` as the tf.data pipeline validates them, decoded with the same
readers (`base.decode_image_file`, `masks.read_mask` and
`masks.map_mask`), one pair at a time. `labelled_pairs` picks and checks
the files as the tf.data pipeline (`tf_enet.data.pipeline`) does.
"""

import numpy as np

from tf_enet.data import base, masks
from tf_enet.data.scan import scan_files


def _check_positive_int(value, name):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer; received {value!r}.")


def labelled_pairs(dataset, split, limit=None, sample=None, seed=0):
    """The split's (image, mask) file pairs, validated by `scan`.

    `scan_labelled_pairs` without the orientations.
    """
    return scan_labelled_pairs(dataset, split, limit, sample, seed)[0]


def scan_labelled_pairs(dataset, split, limit=None, sample=None, seed=0):
    """The split's (image, mask) file pairs, validated, and their orientations.

    The tf.data pipeline and evaluation choose and check files here.

    Args:
        dataset: SegmentationDataset.
        split: str. Split to read.
        limit: int or None. Only the first `limit` pairs.
        sample: int or None. A random sample of this many pairs (of the
            first `limit`), drawn with `seed`, in file order.
        seed: int. Seed of `sample`.

    Returns:
        (pairs, orientations): list of (image path, mask path), and each
        image's EXIF orientation code (1-8) from `scan`.

    Raises:
        DatasetError: the split has no labels, or files `scan` refuses.
        ValueError: invalid `limit` or `sample`.
    """
    if limit is not None:
        _check_positive_int(limit, "limit")
    if sample is not None:
        _check_positive_int(sample, "sample")
    pairs = dataset.files(split)
    if any(mask is None for _, mask in pairs):
        raise base.DatasetError(
            f"{dataset.info.name} split {split!r} has no labels (its masks "
            f"are not published), so it cannot be used for training or "
            f"evaluation; use it for prediction only."
        )
    pairs = pairs[:limit]
    if sample is not None and sample < len(pairs):
        chosen = np.random.default_rng(seed).choice(len(pairs), sample, replace=False)
        pairs = [pairs[i] for i in sorted(chosen)]
    return pairs, scan_files(dataset, pairs, split).orientations


def read_labels(dataset, mask_path):
    """A mask file's class ids (and ignore ids), as the pipeline decodes them.

    Args:
        dataset: SegmentationDataset.
        mask_path: str.

    Returns:
        np.ndarray int32 `[height, width]`.

    Raises:
        DatasetError: naming the file if it is unreadable or holds values
            the dataset's classes lack.
    """
    mapping = dataset.label_mapping
    return masks.map_mask(masks.read_mask(mask_path, mapping), mapping, mask_path).astype(np.int32)


def read_pairs(dataset, pairs):
    """Decodes file pairs one at a time.

    Args:
        dataset: SegmentationDataset.
        pairs: sequence of (image path, mask path), e.g. `labelled_pairs`.

    Yields:
        (image, labels): np.ndarray uint8 `[height, width, 3]` RGB and
        int32 `[label_height, label_width]` class ids.
    """
    for image_path, mask_path in pairs:
        yield base.decode_image_file(image_path), read_labels(dataset, mask_path)
