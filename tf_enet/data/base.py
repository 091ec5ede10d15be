"""What every dataset shares: its description, label mapping, image reading.

A dataset is a directory layout plus a rule turning mask pixels into class
ids. `DatasetInfo` describes the classes (names, colours, ignore id) and is
what gets saved beside a model; `LabelMapping` says how raw mask values map
to ids; `SegmentationDataset` lists `(image, mask)` pairs per split, found
and paired by name with `pairing`. The modules `camvid`, `cityscapes`,
`folder` and `sunrgbd` fill these in for each layout, and `pipeline` turns
any of them into a `tf.data.Dataset`.

`decode_image_file` and `colorize` are the numpy (OpenCV) counterparts of the
pipeline's decoding, for prediction scripts working on single files; both
turn photos upright by their EXIF orientation (`orientation`). Masks are
read by `masks`.
"""

import dataclasses
import os

import cv2
import numpy as np

from tf_enet.data import orientation as orientation_lib
from tf_enet.errors import TfEnetError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
MASK_EXTENSIONS = (".png",)
# Ways a dataset's PNG masks can encode classes; see `tf_enet.data.masks`.
MASK_ENCODINGS = ("auto", "ids", "color")
# Single-channel masks are at most 16-bit, so no mask value reaches this.
MAX_MASK_VALUES = 65536


class DatasetError(TfEnetError, ValueError):
    """A dataset directory, file or argument is not what the loader expects."""


def check_rgb(color, where):
    """Returns `color` as an (R, G, B) tuple; ValueError naming `where`."""
    if (
        not isinstance(color, (tuple, list))
        or len(color) != 3
        or not all(isinstance(v, int) and 0 <= v <= 255 for v in color)
    ):
        raise ValueError(
            f"{where} must be three integers in [0, 255] (R, G, B); received {color!r}."
        )
    return tuple(int(v) for v in color)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Describes the classes of a segmentation dataset.

    Args:
        name: str. Dataset kind, a key of `get_dataset` ("camvid", ...).
        class_names: tuple of str. Class `c` is `class_names[c]`.
        palette: tuple of (R, G, B) int triples, one per class, for
            visualisation.
        ignore_index: int. Mask value of pixels that carry no label; never
            a class id (`0 <= ignore_index < num_classes` is rejected).
    """

    name: str
    class_names: tuple
    palette: tuple
    ignore_index: int

    def __post_init__(self):
        # Lists arriving from JSON become tuples so the info stays hashable.
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(
            self,
            "palette",
            tuple(check_rgb(c, f"DatasetInfo.palette[{i}]") for i, c in enumerate(self.palette)),
        )
        if not self.class_names:
            raise ValueError("DatasetInfo.class_names must not be empty.")
        if len(self.palette) != len(self.class_names):
            raise ValueError(
                f"DatasetInfo.palette has {len(self.palette)} colours for "
                f"{len(self.class_names)} classes; expected one per class."
            )
        if not isinstance(self.ignore_index, int) or isinstance(self.ignore_index, bool):
            raise ValueError(
                f"DatasetInfo.ignore_index must be an int; received {self.ignore_index!r}."
            )
        if 0 <= self.ignore_index < len(self.class_names):
            raise ValueError(
                f"DatasetInfo.ignore_index {self.ignore_index} is a class id "
                f"(0..{len(self.class_names) - 1}); it must be outside them."
            )

    @property
    def num_classes(self):
        return len(self.class_names)

    def to_dict(self):
        """Returns a JSON-serialisable dict; `from_dict` inverts it."""
        return {
            "name": self.name,
            "class_names": list(self.class_names),
            "palette": [list(c) for c in self.palette],
            "ignore_index": self.ignore_index,
        }

    @classmethod
    def from_dict(cls, config):
        return cls(
            name=config["name"],
            class_names=tuple(config["class_names"]),
            palette=tuple(tuple(c) for c in config["palette"]),
            ignore_index=int(config["ignore_index"]),
        )


@dataclasses.dataclass(frozen=True)
class LabelMapping:
    """How raw mask pixels become class ids.

    Single-channel and palette masks go through `id_table` (palette masks
    by their indices); colour masks through `color_table`. A value absent
    from both is invalid: `scan` reports it, and the pipeline (which only
    sees scanned files) maps it to the ignore id. `masks.mask_format` says
    which table a file goes through.

    Args:
        ignore_index: int. Id given to pixels without a label.
        id_table: tuple of 256 to 65536 ints. `id_table[v]` is the id of
            mask value `v`, or -1 where `v` is not a valid value; values
            past the table's end (from 16-bit masks) are invalid.
        color_table: tuple of `((R, G, B), id)` pairs for colour masks;
            empty when the dataset only has class-id masks.
        valid_values: str. The valid mask values in words, for errors.
        mask_encoding: str. How palette and colour PNGs are read: "auto"
            (palette indices are ids, RGB masks are colours), "ids" (palette
            indices are ids, RGB masks are refused) or "color" (palette and
            RGB masks are colours, single-channel masks are refused). See
            `tf_enet.data.masks`.
        reduce_zero_label: bool. Whether `id_table` reads masks whose value
            0 is unlabelled and whose classes start at 1 (see `identity`).
    """

    ignore_index: int
    id_table: tuple
    color_table: tuple = ()
    valid_values: str = ""
    mask_encoding: str = "auto"
    reduce_zero_label: bool = False

    def __post_init__(self):
        if not 256 <= len(self.id_table) <= MAX_MASK_VALUES:
            raise ValueError(
                f"LabelMapping.id_table needs 256 to {MAX_MASK_VALUES} entries "
                f"(one per 8- or 16-bit value); received {len(self.id_table)}."
            )
        if self.mask_encoding not in MASK_ENCODINGS:
            raise ValueError(
                f"LabelMapping.mask_encoding must be one of "
                f"{', '.join(MASK_ENCODINGS)}; received {self.mask_encoding!r}."
            )
        if self.mask_encoding == "color" and not self.color_table:
            raise ValueError('LabelMapping.mask_encoding "color" needs a color_table.')

    @classmethod
    def identity(
        cls,
        num_classes,
        ignore_index,
        color_table=(),
        mask_encoding="auto",
        reduce_zero_label=False,
    ):
        """Masks hold the class ids themselves, plus the ignore id.

        Args:
            num_classes: int. Classes 0 to `num_classes - 1`; more than 256
                need 16-bit masks.
            ignore_index: int. The ignore id, also a valid mask value.
            color_table: tuple of `((R, G, B), id)` pairs; see the class.
            mask_encoding: str. See the class.
            reduce_zero_label: bool. Masks where 0 is unlabelled and class
                `c` is the value `c + 1` (mmsegmentation's
                `reduce_zero_label`, ADE20K): 0 maps to the ignore id, `v`
                to `v - 1`, and the ignore id stays the ignore id.

        Returns:
            LabelMapping.
        """
        shift = 1 if reduce_zero_label else 0
        if reduce_zero_label and 0 < ignore_index <= num_classes:
            raise ValueError(
                f"LabelMapping: with reduce_zero_label, the ignore id "
                f"{ignore_index} is the mask value of class {ignore_index - 1}."
            )
        size = max(256, num_classes + shift)
        if ignore_index < MAX_MASK_VALUES:
            size = max(size, ignore_index + 1)
        table = [-1] * size
        for class_id in range(num_classes):
            table[class_id + shift] = class_id
        if 0 <= ignore_index < size:
            table[ignore_index] = ignore_index
        if reduce_zero_label:
            table[0] = ignore_index
            valid = (
                f"0 (unlabelled), class values 1-{num_classes} (class c is "
                f"saved as c + 1) or the ignore id {ignore_index}"
            )
        else:
            valid = f"class ids 0-{num_classes - 1} or the ignore id {ignore_index}"
        if color_table and mask_encoding == "color":
            valid = "the colours of classes.json"
        elif color_table and mask_encoding == "auto":
            valid += " (or, in colour masks, the colours of classes.json)"
        return cls(
            ignore_index,
            tuple(table),
            tuple(color_table),
            valid,
            mask_encoding,
            reduce_zero_label,
        )

    def id_array(self):
        """`id_table` as int32 [N], -1 marking invalid values."""
        return np.asarray(self.id_table, np.int32)

    def color_arrays(self):
        """Sorted packed colours `R << 16 | G << 8 | B` and their ids.

        Returns:
            (keys, ids): int32 arrays [M], `keys` ascending, for lookup by
            binary search.
        """
        keys = np.asarray(
            [(r << 16) | (g << 8) | b for (r, g, b), _ in self.color_table],
            np.int32,
        )
        ids = np.asarray([i for _, i in self.color_table], np.int32)
        order = np.argsort(keys, kind="stable")
        return keys[order], ids[order]


class SegmentationDataset:
    """A dataset on disk: its classes and the (image, mask) pairs per split.

    Subclasses set `info` and `label_mapping` and implement `splits` and
    `files`.

    Args:
        data_dir: str. Root directory of the dataset.
    """

    info: DatasetInfo
    label_mapping: LabelMapping

    def __init__(self, data_dir):
        self.data_dir = os.path.abspath(os.fspath(data_dir))
        if not os.path.isdir(self.data_dir):
            raise DatasetError(
                f"{type(self).__name__}: data_dir {self.data_dir} does not "
                f"exist or is not a directory."
            )

    def splits(self):
        """The names of the splits present on disk."""
        raise NotImplementedError

    def files(self, split):
        """Lists the split's sorted `(image_path, mask_path)` pairs.

        `mask_path` is None for splits published without labels.

        Raises:
            DatasetError: if the split is missing or files are unpaired.
        """
        raise NotImplementedError

    def split_info(self):
        """How the splits were formed, as recorded beside a model.

        Returns:
            dict, JSON-serialisable: `"splits"`, the split names, and
            `"held_out"`, mapping each split carved out of another (see
            `Folder`) to how it was chosen; empty here, where every split
            is a directory on disk.
        """
        return {"splits": list(self.splits()), "held_out": {}}

    def __repr__(self):
        return f"{type(self).__name__}({self.data_dir!r})"


def read_image_array(path):
    """Decodes an image file with OpenCV, as stored, and reads its orientation.

    Returns:
        (array, orientation): np.ndarray as stored in the file, [H, W] or
        [H, W, C] (BGR order), uint8 or uint16; and its EXIF orientation
        code 1-8 (`orientation.read_orientation`), which the caller applies.

    Raises:
        DatasetError: naming the file if it cannot be read or decoded, or if
            a JPEG is truncated (OpenCV decodes those with a warning, but
            TensorFlow's decoder rejects them mid-training).
    """
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as err:
        raise DatasetError(f"Cannot read {path}: {err.strerror}.") from err
    return decode_image_array(data, path)


def decode_image_array(data, name):
    """Decodes an image file's bytes with OpenCV, as stored, and reads its orientation.

    Args:
        data: bytes or np.ndarray uint8 [num_bytes]. The encoded file, e.g.
            read through another file system.
        name: str. The file, named in errors.

    Returns:
        (array, orientation), as `read_image_array` returns them.

    Raises:
        DatasetError: naming the file if it cannot be decoded, or if a JPEG
            is truncated (OpenCV decodes those with a warning, but
            TensorFlow's decoder rejects them mid-training).
    """
    data = np.frombuffer(data, np.uint8) if isinstance(data, bytes) else data
    if data.size == 0:
        raise DatasetError(f"Cannot decode {name}: the file is empty.")
    # Unchanged keeps channels and bit depth and skips the EXIF rotation, as
    # tf.io.decode_image does; the orientation is applied by the callers.
    array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if array is None:
        raise DatasetError(
            f"Cannot decode {name}: not a readable image (corrupt, truncated "
            f"or unsupported format)."
        )
    is_jpeg = data[:2].tobytes() == b"\xff\xd8"
    # The end-of-image marker cannot occur inside entropy-coded data, so its
    # absence near the end means the file was cut short.
    if is_jpeg and b"\xff\xd9" not in data[-4096:].tobytes():
        raise DatasetError(f"Cannot decode {name}: the JPEG is truncated.")
    if array.dtype not in (np.uint8, np.uint16):
        raise DatasetError(
            f"Cannot use {name}: pixel type {array.dtype} is not supported; "
            f"expected 8- or 16-bit integers."
        )
    return array, orientation_lib.read_orientation(data.tobytes())


def to_rgb8(array):
    """Converts an OpenCV image array to 8-bit RGB.

    Follows `tf.io.decode_image(..., channels=3, dtype=tf.uint8)`: grey is
    replicated, alpha dropped (not composited), 16-bit values shifted right
    by 8.

    Args:
        array: np.ndarray [H, W] or [H, W, C], uint8 or uint16, BGR order.

    Returns:
        np.ndarray uint8 [H, W, 3], RGB.
    """
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    channels = array.shape[2]
    if channels in (1, 2):
        return np.repeat(array[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(array[:, :, 2::-1])


def decode_image_file(path):
    """Reads an image file as 8-bit RGB, upright, like the training pipeline.

    Photos are turned by their EXIF orientation, as photo viewers show them
    (see `tf_enet.data.orientation`).

    Args:
        path: str. PNG, JPEG or BMP file; grey, RGBA and 16-bit are
            converted.

    Returns:
        np.ndarray uint8 [H, W, 3], RGB, at the displayed size (height and
        width swapped from the stored ones for sideways photos).

    Raises:
        DatasetError: naming the file if it is unreadable.
    """
    array, orientation = read_image_array(os.fspath(path))
    return orientation_lib.apply_orientation(to_rgb8(array), orientation)


def decode_image_bytes(data, name):
    """Decodes an image file's bytes as 8-bit RGB, upright, as `decode_image_file` does.

    Args:
        data: bytes. The encoded PNG, JPEG or BMP file.
        name: str. The file, named in errors.

    Returns:
        np.ndarray uint8 [H, W, 3], RGB, at the displayed size.

    Raises:
        DatasetError: naming the file if it cannot be decoded.
    """
    array, orientation = decode_image_array(data, name)
    return orientation_lib.apply_orientation(to_rgb8(array), orientation)


def colorize(labels, palette):
    """Paints a label map with a palette.

    Args:
        labels: np.ndarray int [H, W]. Class ids; the ignore id and any value
            outside `[0, len(palette))` are painted black.
        palette: sequence of (R, G, B), e.g. `DatasetInfo.palette`.

    Returns:
        np.ndarray uint8 [H, W, 3], RGB.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"colorize expects labels of shape [H, W]; received shape {labels.shape}.")
    colors = np.zeros((len(palette) + 1, 3), np.uint8)
    colors[:-1] = np.asarray(palette, np.uint8).reshape(-1, 3)
    valid = (labels >= 0) & (labels < len(palette))
    index = np.where(valid, labels, len(palette)).astype(np.intp)
    return colors[index]
