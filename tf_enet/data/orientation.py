"""EXIF orientation: images are used as photo viewers display them.

Cameras and phones store a photo as the sensor read it and record how to
turn it upright in the EXIF Orientation tag (0x0112). Codes 1-8 name where
the stored image's first row and first column go when displayed:

| code | stored row 0 | stored column 0 | display transform         |
|------|--------------|-----------------|---------------------------|
| 1    | top          | left            | none                      |
| 2    | top          | right           | mirror left-right         |
| 3    | bottom       | right           | rotate 180                |
| 4    | bottom       | left            | mirror top-bottom         |
| 5    | left         | top             | transpose                 |
| 6    | right        | top             | rotate 90 clockwise       |
| 7    | right        | bottom          | transverse                |
| 8    | left         | bottom          | rotate 90 counter-clockwise |

These are the transforms of Pillow's `ImageOps.exif_transpose`. Decoders
ignore the tag (`tf.io.decode_image`, OpenCV with `IMREAD_UNCHANGED`), so
tf_enet reads it separately: `read_orientation` parses the file's header
with Pillow (JPEG APP1, PNG eXIf before the image data), and the transform
is applied to the decoded pixels, with numpy (`apply_orientation`, used by
`base.decode_image_file`) or in the tf.data graph
(`pipeline.orient_image`). Masks carry no orientation and are never turned:
annotation tools (labelme, CVAT) draw on the displayed photo.
"""

import io

import numpy as np
from PIL import Image

ORIENTATION_TAG = 0x0112
# Codes whose transform swaps height and width.
TRANSPOSING = (5, 6, 7, 8)


def read_orientation(contents):
    """Reads the EXIF orientation code of an encoded image.

    Only the header is parsed; the pixels are not decoded.

    Args:
        contents: bytes. The image file.

    Returns:
        int in 1..8; 1 (as stored) when the file has no EXIF, no
        orientation tag, an invalid code, or cannot be parsed (decoding
        reports unreadable files).
    """
    try:
        with Image.open(io.BytesIO(contents)) as image:
            # PNG keeps eXIf in `info` when it precedes the image data;
            # `getexif()` would decode the whole PNG to look further.
            if image.format == "PNG":
                exif = Image.Exif()
                if "exif" in image.info:
                    exif.load(image.info["exif"])
            else:
                exif = image.getexif()
            code = exif.get(ORIENTATION_TAG, 1)
    except (OSError, ValueError, SyntaxError, TypeError):
        return 1
    return code if isinstance(code, int) and 1 <= code <= 8 else 1


def displayed_size(stored_size, orientation):
    """The (height, width) of an image of `stored_size` once oriented."""
    height, width = stored_size
    return (width, height) if orientation in TRANSPOSING else (height, width)


def apply_orientation(array, orientation):
    """Turns decoded pixels as a photo viewer displays them.

    Args:
        array: np.ndarray [H, W] or [H, W, C], as stored in the file.
        orientation: int. EXIF orientation code 1-8 (see the module table).

    Returns:
        np.ndarray [H, W, ...] or, for codes 5-8, [W, H, ...]; contiguous.
    """
    if orientation in (2, 4, 5, 7):
        # Mirrored codes: undo the mirror, then rotate as codes 1, 3, 8, 6.
        array = np.flip(array, axis=1)
    turns = {1: 0, 2: 0, 3: 2, 4: 2, 5: 1, 6: 3, 7: 3, 8: 1}.get(orientation, 0)
    return np.ascontiguousarray(np.rot90(array, turns))
