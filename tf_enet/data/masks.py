"""Label masks on disk: which PNG encodings are read, and how.

Masks are lossless PNGs. What a pixel means follows from the PNG's own
header (its colour type and bit depth) and from the dataset's
`LabelMapping.mask_encoding` (one of `base.MASK_ENCODINGS`):

| PNG                       | "auto" (default)  | "ids"            | "color"          |
|---------------------------|-------------------|------------------|------------------|
| grey, 8-bit (+ alpha)     | values are ids    | values are ids   | refused          |
| grey, 1/2/4-bit           | values are ids    | values are ids   | refused          |
| grey, 16-bit              | values are ids    | values are ids   | refused          |
| palette ("P" mode)        | indices are ids   | indices are ids  | palette colours  |
| RGB / RGBA, 8-bit         | class colours     | refused          | class colours    |

So a palette PNG (labelme, CVAT, Pascal VOC) is read as its palette
*indices* unless the dataset says `"mask_encoding": "color"`; the setting
always wins over the file. Under "auto", a palette PNG whose used colours
are all class colours but whose indices name other classes is refused, as
it could mean either. A 1-bit PNG (`Image.fromarray(bool_array)`) reads as
0/1, and a 16-bit PNG as its values: the ids of datasets with more than 256
classes (values without a class are refused, never wrapped to 8 bits).
With `reduce_zero_label` (see `LabelMapping.identity`) the values of
single-channel and palette masks are shifted: 0 is unlabelled, `v` is class
`v - 1`; colour masks are read by colour. Alpha channels are dropped. JPEGs, 16-bit
colour PNGs and other formats are refused: lossy compression and channel
rescaling change ids.

`mask_format` is the one place deciding how a file is read; both the numpy
reader (`read_mask`, used by `scan`) and the tf.data decoder
(`decoding.decode_mask`) follow its answer, so they see the same ids.
"""

import collections
import io

import cv2
import numpy as np
from PIL import Image

from tf_enet.data import base

# How a mask file is decoded; the values are the codes the tf.data decoder
# switches on.
IDS = 0  # Single-channel ids, 1 to 8 bits, read natively.
IDS16 = 1  # Single-channel 16-bit ids, read natively.
PALETTE = 2  # Palette indices, read with Pillow.
COLOR = 3  # RGB colours (also palette colours under "color"), read natively.

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8"
_GREY, _RGB, _PALETTE, _GREY_ALPHA, _RGBA = 0, 2, 3, 4, 6


class MaskFormat(collections.namedtuple("MaskFormat", ["kind", "scale"])):
    """How one mask file is read.

    Args:
        kind: int. `IDS`, `IDS16`, `PALETTE` or `COLOR`.
        scale: int. For `IDS`, decoders expand 1/2/4-bit values to 8 bits
            (a 1-bit 1 becomes 255); dividing by `scale` (255, 85, 17, or 1
            for 8-bit files) gives the stored value back. 1 otherwise.
    """


def mask_format(path, mapping):
    """Decides how a mask file is read, from its PNG header.

    Args:
        path: str. The mask file.
        mapping: LabelMapping. Its `mask_encoding` and whether it has
            class colours (`color_table`) decide the ambiguous cases.

    Returns:
        MaskFormat.

    Raises:
        DatasetError: naming the file, if it is not a PNG (JPEGs are lossy),
            is a 16-bit colour PNG, or is an encoding the dataset does not
            accept (see the module table).
    """
    try:
        with open(path, "rb") as f:
            header = f.read(26)
    except OSError as err:
        raise base.DatasetError(f"Cannot read {path}: {err.strerror}.") from err
    if header.startswith(_JPEG_SIGNATURE):
        raise base.DatasetError(
            f"Cannot use mask {path}: it is a JPEG; JPEG compression alters "
            f"class ids and colours, so masks must be PNGs."
        )
    if not header.startswith(_PNG_SIGNATURE) or len(header) < 26:
        raise base.DatasetError(
            f"Cannot use mask {path}: not a PNG file; masks must be lossless PNGs."
        )
    bit_depth, color_type = header[24], header[25]
    encoding = mapping.mask_encoding
    if color_type in (_GREY, _GREY_ALPHA):
        if encoding == "color":
            raise base.DatasetError(
                f"Mask {path} is a single-channel PNG of ids, but the dataset "
                f'sets "mask_encoding": "color"; use "ids" or "auto" for id '
                f"masks."
            )
        if bit_depth == 16:
            return MaskFormat(IDS16, 1)
        if bit_depth in (1, 2, 4, 8):
            return MaskFormat(IDS, 255 // (2**bit_depth - 1))
    if color_type == _PALETTE:
        if encoding == "color":
            return MaskFormat(COLOR, 1)
        return MaskFormat(PALETTE, 1)
    if color_type in (_RGB, _RGBA):
        if bit_depth == 16:
            raise base.DatasetError(
                f"Cannot use mask {path}: it is a 16-bit colour PNG; save "
                f"colour masks as 8-bit PNGs."
            )
        if encoding == "ids":
            raise base.DatasetError(
                f"Mask {path} is a colour PNG, but the dataset sets "
                f'"mask_encoding": "ids"; save single-channel or palette '
                f'PNGs of class ids, or use "color".'
            )
        if not mapping.color_table:
            raise base.DatasetError(
                f"Mask {path} has 3 (colour) channels; expected a "
                f"single-channel or palette PNG of {mapping.valid_values}."
            )
        return MaskFormat(COLOR, 1)
    raise base.DatasetError(
        f"Cannot use mask {path}: its PNG header is invalid (colour type "
        f"{color_type}, bit depth {bit_depth})."
    )


def palette_indices(contents):
    """Decodes a palette PNG to its indices with Pillow.

    Args:
        contents: bytes. The PNG file.

    Returns:
        np.ndarray uint8 [H, W].

    Raises:
        ValueError: if the file is not a readable palette image.
    """
    return _read_palette(contents)[0]


def _read_palette(contents):
    """Returns a palette PNG's indices [H, W] and its colours [256, 3]."""
    with Image.open(io.BytesIO(contents)) as image:
        if image.mode != "P":
            raise ValueError(f"expected a palette image; found mode {image.mode}")
        indices = np.asarray(image, np.uint8)
        listed = np.asarray(image.getpalette() or [], np.int64)
    colours = np.zeros((256, 3), np.int64)
    listed = listed[: 3 * 256].reshape(-1, 3)
    colours[: len(listed)] = listed
    return indices, colours


def read_mask(path, mapping):
    """Reads a mask as `decoding.decode_mask` sees it, before label mapping.

    Args:
        path: str. A PNG mask.
        mapping: LabelMapping. Decides the encoding (`mask_format`).

    Returns:
        np.ndarray: [H, W] uint8 or uint16 stored values (ids, palette
        indices) or [H, W, 3] uint8 RGB colours.

    Raises:
        DatasetError: naming the file if it is unreadable, corrupt or of an
            encoding the dataset does not accept.
    """
    fmt = mask_format(path, mapping)
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as err:
        raise base.DatasetError(f"Cannot read {path}: {err.strerror}.") from err
    if fmt.kind == PALETTE:
        try:
            indices, colours = _read_palette(data.tobytes())
        except (OSError, ValueError) as err:
            raise base.DatasetError(
                f"Cannot decode mask {path}: corrupt or truncated PNG ({err})."
            ) from err
        _check_palette_agrees(indices, colours, mapping, path)
        return indices
    if fmt.kind == COLOR:
        # Alpha is dropped and palettes are expanded, as tf.io.decode_png
        # does with channels=3.
        array = cv2.imdecode(data, cv2.IMREAD_COLOR)
    else:
        # Grey+alpha comes out of OpenCV as grey, as out of TensorFlow with
        # channels=1; any-depth keeps 16-bit values.
        array = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH)
    if array is None:
        raise base.DatasetError(f"Cannot decode mask {path}: corrupt or truncated PNG.")
    if fmt.kind == COLOR:
        return np.ascontiguousarray(array[:, :, ::-1])
    return array // np.asarray(fmt.scale, array.dtype)


def _check_palette_agrees(indices, colours, mapping, path):
    """Refuses a palette PNG whose indices and colours name other classes.

    Under "auto" a palette PNG is read as indices. When every index used
    has the colour of a listed class but some index is not that class's
    id, the file could mean either; guessing would silently train on
    swapped classes, so the dataset must choose.
    """
    if mapping.mask_encoding != "auto" or not mapping.color_table:
        return
    by_colour = {tuple(c): i for c, i in mapping.color_table}
    used = np.flatnonzero(np.bincount(indices.ravel(), minlength=256))
    named = [by_colour.get(tuple(colours[i].tolist())) for i in used]
    if any(n is None for n in named):
        return
    for index, class_id in zip(used.tolist(), named):
        if index != class_id:
            raise base.DatasetError(
                f"Mask {path} is a palette PNG whose index {index} has the "
                f"colour of id {class_id}, so indices and colours disagree; "
                f'set "mask_encoding" to "ids" (indices are class ids) or '
                f'"color" (palette colours are class colours) in '
                f"classes.json."
            )


def map_mask(raw, mapping, path):
    """Turns a raw mask into class ids, refusing values the mapping lacks.

    Args:
        raw: np.ndarray, [H, W] uint8/uint16 values or [H, W, 3] uint8 RGB,
            as returned by `read_mask`.
        mapping: LabelMapping.
        path: str. The mask file, named in errors.

    Returns:
        np.ndarray int32 [H, W] of class ids and the ignore id.

    Raises:
        DatasetError: naming the file and the invalid values or colours.
    """
    if raw.ndim == 2:
        # Values past the table (from 16-bit files) are invalid.
        table = np.concatenate([mapping.id_array(), [-1]]).astype(np.int32)
        ids = table[np.minimum(raw.astype(np.int32), len(table) - 1)]
        bad = ids < 0
        if bad.any():
            values = np.unique(raw[bad]).tolist()
            hint = ""
            if values == [255]:
                hint = (
                    " A binary mask saved as 0/255? Save class c as the value c (e.g. mask // 255)."
                )
            elif values == [_num_ids(mapping)] and not mapping.reduce_zero_label:
                # Values 0..N for N classes: 0 is most likely unlabelled.
                hint = (
                    " If 0 marks unlabelled pixels and classes start at 1, set "
                    '"reduce_zero_label": true in classes.json.'
                )
            raise base.DatasetError(
                f"Mask {path} has invalid values {_listed(values)}; expected "
                f"{mapping.valid_values}.{hint}"
            )
        return ids
    keys, key_ids = mapping.color_arrays()
    raw = raw.astype(np.int32)
    packed = (raw[..., 0] << 16) | (raw[..., 1] << 8) | raw[..., 2]
    index = np.clip(np.searchsorted(keys, packed), 0, len(keys) - 1)
    found = keys[index] == packed
    if not found.all():
        colors = [
            (int(k) >> 16, (int(k) >> 8) & 255, int(k) & 255) for k in np.unique(packed[~found])
        ]
        raise base.DatasetError(
            f"Mask {path} has colours not in the class list: "
            f"{_listed(colors)}; expected {mapping.valid_values}."
        )
    return key_ids[index]


def _num_ids(mapping):
    """How many class ids an identity mapping reads (0 if not an identity)."""
    table, count = mapping.id_table, 0
    while count < len(table) and table[count] == count != mapping.ignore_index:
        count += 1
    return count


def _listed(values, limit=10):
    shown = ", ".join(str(v) for v in values[:limit])
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    return f"[{shown}]{more}"
