"""Decoding in the tf.data graph: image and mask bytes to pixels and ids.

The graph counterparts of the numpy readers: `decode_image` follows
`base.decode_image_file` (8-bit RGB, turned upright by the EXIF orientation
that `scan` read from the file's header), and `decode_mask` follows
`masks.read_mask` and `masks.map_mask` (class ids through the dataset's
`LabelMapping`, in the encoding `masks.mask_format` chose).
"""

import numpy as np
import tensorflow as tf

from tf_enet.data import masks


def decode_image(contents, orientation):
    """Decodes PNG/JPEG/BMP bytes to 8-bit RGB, upright.

    Grey is replicated, alpha dropped and 16-bit scaled to 8 bits, as
    `base.decode_image_file` does with OpenCV.

    Args:
        contents: scalar string tensor, the file's bytes.
        orientation: int32 scalar tensor. The file's EXIF orientation code
            1-8, from `scan` (`tf.io.decode_image` ignores it).

    Returns:
        uint8 tensor [height, width, 3] at the displayed size.
    """
    return orient_image(decode_rgb(contents), orientation)


def decode_rgb(contents):
    """Decodes PNG/JPEG/BMP bytes to 8-bit RGB as stored (no EXIF turn).

    JPEGs are decoded with libjpeg's accurate integer DCT, as OpenCV
    decodes them for prediction and evaluation (`base.decode_image_file`):
    `tf.io.decode_image` uses the fast DCT, whose pixels differ by up to
    16 levels, so a model would be trained and validated on other pixels
    than it is scored on. (CMYK JPEGs still come out up to 1 level apart:
    the two libraries round the conversion to RGB differently.)

    Args:
        contents: scalar string tensor, the file's bytes.

    Returns:
        uint8 tensor [height, width, 3].
    """
    image = tf.cond(
        tf.io.is_jpeg(contents),
        lambda: tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(contents, channels=3, dtype=tf.uint8, expand_animations=False),
    )
    image.set_shape([None, None, 3])
    return image


def orient_image(image, orientation):
    """Turns an image as its EXIF orientation code says, in the graph.

    The transforms of `orientation.apply_orientation`: mirrored codes
    (2, 4, 5, 7) are flipped left-right, then every code is rotated
    counter-clockwise by a multiple of 90 degrees.

    Args:
        image: tensor [height, width, channels].
        orientation: int32 scalar tensor, 1-8.

    Returns:
        tensor [height, width, channels], or [width, height, channels] for
        codes 5-8.
    """
    orientation = tf.cast(orientation, tf.int32)
    mirrored = tf.reduce_any(tf.equal(orientation, [2, 4, 5, 7]))
    image = tf.cond(mirrored, lambda: tf.reverse(image, [1]), lambda: image)
    # Quarter turns counter-clockwise, indexed by code (0 is unused).
    turns = tf.gather([0, 0, 0, 2, 2, 1, 3, 3, 1], tf.clip_by_value(orientation, 0, 8))

    def turn():
        # In float32 (exact for 8- and 16-bit values): oneDNN transposes only
        # float types on CPUs without AVX-512, and a graph holding another
        # type's transpose makes TensorFlow log an error-level line that it
        # falls back to Eigen, in every training run.
        return tf.cast(tf.image.rot90(tf.cast(image, tf.float32), turns), image.dtype)

    # Upright images (most) skip the casts.
    return tf.cond(turns > 0, turn, lambda: image)


def decode_mask(contents, mapping, kind, scale):
    """Decodes PNG mask bytes to class ids.

    Args:
        contents: scalar string tensor, the PNG's bytes.
        mapping: LabelMapping. Values it does not know become the ignore
            id (`scan` has already refused such files).
        kind: int32 scalar tensor. The file's `masks.MaskFormat.kind`.
        scale: int32 scalar tensor. The file's `masks.MaskFormat.scale`.

    Returns:
        int32 tensor [height, width].
    """
    ignore = mapping.ignore_index
    id_table = mapping.id_array()
    # One more entry, for every value past the table (from 16-bit files).
    id_table = np.append(np.where(id_table < 0, ignore, id_table), ignore)
    past_table = len(id_table) - 1
    id_table = tf.constant(id_table, tf.int32)

    def to_ids(values):  # [height, width] int32 stored values
        return tf.gather(id_table, tf.minimum(values, past_table))

    def from_ids():
        raw = tf.io.decode_png(contents, channels=1)  # [height, width, 1]
        return to_ids(tf.cast(raw[:, :, 0], tf.int32) // scale)

    def from_ids16():
        raw = tf.io.decode_png(contents, channels=1, dtype=tf.uint16)
        return to_ids(tf.cast(raw[:, :, 0], tf.int32))

    def from_palette():
        # TensorFlow expands palettes to colours; Pillow keeps the indices.
        indices = tf.numpy_function(masks.palette_indices, [contents], tf.uint8, stateful=False)
        indices.set_shape([None, None])
        return to_ids(tf.cast(indices, tf.int32))

    branches = {
        masks.IDS: from_ids,
        masks.IDS16: from_ids16,
        masks.PALETTE: from_palette,
    }
    if mapping.color_table:
        keys, key_ids = mapping.color_arrays()

        def from_colors():
            rgb = tf.io.decode_png(contents, channels=3)  # [height, width, 3]
            rgb = tf.cast(rgb, tf.int32)
            packed = rgb[:, :, 0] * 65536 + rgb[:, :, 1] * 256 + rgb[:, :, 2]
            flat = tf.reshape(packed, [1, -1])
            index = tf.searchsorted(tf.constant(keys[None]), flat)[0]
            index = tf.minimum(index, len(keys) - 1)
            found = tf.equal(tf.gather(keys, index), flat[0])
            ids = tf.where(found, tf.gather(key_ids, index), ignore)
            return tf.reshape(ids, tf.shape(packed))

        branches[masks.COLOR] = from_colors
    ids = tf.switch_case(kind, branches)
    ids.set_shape([None, None])
    return ids
