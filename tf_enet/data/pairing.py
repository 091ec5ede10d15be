"""Finding a dataset's files and pairing images with masks by name.

The layouts (`camvid`, `cityscapes`, `folder`, `sunrgbd`) list their
directories with these helpers, so that every layout refuses duplicate
names, JPEG masks and unpaired files with the same messages.
"""

import os

from tf_enet.data import base

# How many file names an error message lists before it says "...".
_MAX_NAMES = 3


def list_files(directory, extensions):
    """Maps file stems to paths for the files of a directory.

    Args:
        directory: str. Directory to list (not its subdirectories).
        extensions: tuple of str. Lower-case extensions with the dot.

    Returns:
        dict `stem -> path`.

    Raises:
        DatasetError: if two files share a stem, since pairing by name would
            be ambiguous.
    """
    found = {}
    for entry in os.scandir(directory):
        if not entry.is_file():
            continue
        name = entry.name
        stem, ext = os.path.splitext(name)
        if ext.lower() not in extensions or name.startswith("."):
            continue
        path = os.path.join(directory, name)
        if stem in found:
            raise base.DatasetError(
                f"Two files named {stem!r} in {directory}: {found[stem]} and "
                f"{path}; pairing images with masks by name needs unique "
                f"names."
            )
        found[stem] = path
    return found


def list_mask_files(directory):
    """`list_files` for PNG masks, refusing JPEG masks by name.

    Raises:
        DatasetError: if the directory holds JPEG masks (lossy compression
            changes class ids and colours) or two masks share a stem.
    """
    lossy = list_files(directory, (".jpg", ".jpeg"))
    if lossy:
        raise base.DatasetError(
            f"{len(lossy)} JPEG masks in {directory}, first: "
            f"{format_names(lossy.values())}; JPEG compression alters class "
            f"ids and colours, so masks must be PNGs."
        )
    return list_files(directory, base.MASK_EXTENSIONS)


def format_names(paths):
    """The first sorted base names of `paths`, for error messages."""
    names = sorted(os.path.basename(p) for p in paths)
    shown = ", ".join(names[:_MAX_NAMES])
    return shown + (", ..." if len(names) > _MAX_NAMES else "")


def pair_files(images, masks, image_dir, mask_dir):
    """Pairs images with masks of the same key, refusing leftovers.

    Args:
        images: dict `key -> image path`.
        masks: dict `key -> mask path`, using the same keys.
        image_dir: str. Named in the error for masks without an image.
        mask_dir: str. Named in the error for images without a mask.

    Returns:
        list of `(image_path, mask_path)` sorted by image path.

    Raises:
        DatasetError: naming the count and the first files of each side
            that has no partner.
    """
    lonely_images = [images[k] for k in images if k not in masks]
    lonely_masks = [masks[k] for k in masks if k not in images]
    problems = []
    if lonely_images:
        problems.append(
            f"{len(lonely_images)} images without a mask in {mask_dir}, "
            f"first: {format_names(lonely_images)}"
        )
    if lonely_masks:
        problems.append(
            f"{len(lonely_masks)} masks without an image in {image_dir}, "
            f"first: {format_names(lonely_masks)}"
        )
    if problems:
        raise base.DatasetError("; ".join(problems) + ".")
    return sorted((images[k], masks[k]) for k in images)


def require_dir(path, what):
    """Raises a DatasetError naming `what` unless `path` is a directory."""
    if not os.path.isdir(path):
        raise base.DatasetError(f"{what} not found: {path} is not a directory.")
