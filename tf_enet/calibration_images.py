"""Calibration images for the int8 TFLite conversion (`tf_enet.exporting`)."""

import numpy as np
import tensorflow as tf

from tf_enet import data as data_lib


def representative_images(paths, *, height=None, width=None):
    """Calibration images for int8 quantization, as the converter wants.

    Args:
        paths: sequence of str. Image files.
        height: int or None. Resize (bilinear) to this height, with `width`.
        width: int or None.

    Returns:
        A callable returning a generator of `[float32 [1, H, W, 3]]` lists.

    Raises:
        DatasetError: naming a file that cannot be read (when iterated).
    """
    paths = list(paths)

    def generate():
        for path in paths:
            image = data_lib.decode_image_file(path).astype(np.float32)
            if height is not None:
                image = tf.image.resize(image, [height, width], method="bilinear").numpy()
            yield [image[None]]

    return generate
