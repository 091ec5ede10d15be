"""Custom datasets: a folder of images, a folder of masks and a class list.

Layout, either without splits (the whole folder is the "train" split):

    <data_dir>/images/<name>.{png,jpg,jpeg,bmp}
    <data_dir>/masks/<name>.png
    <data_dir>/classes.json

or with one subfolder per split (`images/train`, `masks/train`,
`images/val`, ...). Images and masks are paired by file stem.

`classes.json`:

    {"classes": [{"name": "road", "color": [128, 64, 128]}, ...],
     "ignore_index": 255,
     "ignore_color": [0, 0, 0]}

Masks are single-channel PNGs of class ids (class `c` is the `c`-th entry)
and the ignore id, or colour PNGs using the listed colours; `ignore_color`
(optional) marks unlabelled pixels in colour masks. `ignore_index` defaults
to 255.
"""

import json
import os

from tf_enet.data import base

DEFAULT_IGNORE_INDEX = 255
CLASSES_FILE = "classes.json"


def load_classes(path):
    """Reads `classes.json` into a DatasetInfo and a LabelMapping.

    Args:
        path: str. The `classes.json` file.

    Returns:
        (DatasetInfo, LabelMapping).

    Raises:
        DatasetError: naming the file and the offending key.
    """
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except FileNotFoundError as err:
        raise base.DatasetError(
            f"Folder dataset: class list {path} not found; it lists the "
            f'classes as {{"classes": [{{"name": ..., "color": [R, G, B]}}, '
            f'...], "ignore_index": 255}}.'
        ) from err
    except (OSError, ValueError) as err:
        raise base.DatasetError(f"Cannot read class list {path}: {err}") from err

    def fail(message):
        raise base.DatasetError(f"Class list {path}: {message}")

    if not isinstance(config, dict) or not isinstance(
        config.get("classes"), list
    ):
        fail('expected an object with a "classes" list.')
    if not config["classes"]:
        fail('"classes" is empty.')
    names, colors = [], []
    for i, entry in enumerate(config["classes"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            fail(f'classes[{i}] needs a "name" string; received {entry!r}.')
        try:
            colors.append(base.check_rgb(entry.get("color"), f"classes[{i}].color"))
        except ValueError as err:
            fail(str(err))
        names.append(entry["name"])
    if len(set(colors)) != len(colors):
        fail("two classes share a colour, so colour masks would be ambiguous.")
    ignore_index = config.get("ignore_index", DEFAULT_IGNORE_INDEX)
    if not isinstance(ignore_index, int) or isinstance(ignore_index, bool):
        fail(f'"ignore_index" must be an integer; received {ignore_index!r}.')
    if 0 <= ignore_index < len(names):
        fail(
            f'"ignore_index" {ignore_index} is a class id (0..{len(names) - 1});'
            f" choose a value outside them, e.g. 255."
        )
    color_table = [(color, i) for i, color in enumerate(colors)]
    if config.get("ignore_color") is not None:
        try:
            ignore_color = base.check_rgb(config["ignore_color"], "ignore_color")
        except ValueError as err:
            fail(str(err))
        if ignore_color in colors:
            fail(f'"ignore_color" {list(ignore_color)} is also a class colour.')
        color_table.append((ignore_color, ignore_index))
    info = base.DatasetInfo("folder", tuple(names), tuple(colors), ignore_index)
    mapping = base.LabelMapping.identity(len(names), ignore_index, color_table)
    return info, mapping


class Folder(base.SegmentationDataset):
    """A custom dataset of `images/`, `masks/` and `classes.json`.

    Args:
        data_dir: str. Directory holding `images/`, `masks/` and
            `classes.json`.

    Raises:
        DatasetError: if a directory or the class list is missing or invalid.
    """

    def __init__(self, data_dir):
        super().__init__(data_dir)
        self.image_root = os.path.join(self.data_dir, "images")
        self.mask_root = os.path.join(self.data_dir, "masks")
        base.require_dir(self.image_root, "Folder dataset images (images/)")
        base.require_dir(self.mask_root, "Folder dataset masks (masks/)")
        self.info, self.label_mapping = load_classes(
            os.path.join(self.data_dir, CLASSES_FILE)
        )
        self._split_names = tuple(
            sorted(e.name for e in os.scandir(self.image_root) if e.is_dir())
        )
        if self._split_names and base.list_files(
            self.image_root, base.IMAGE_EXTENSIONS
        ):
            raise base.DatasetError(
                f"Folder dataset: {self.image_root} holds both images and "
                f"split subfolders ({', '.join(self._split_names)}); put every "
                f"image in a split subfolder, or use no subfolders at all."
            )

    def splits(self):
        """Split subfolder names, or ("train",) for a flat folder."""
        return self._split_names or ("train",)

    def files(self, split):
        if not self._split_names:
            if split != "train":
                raise base.DatasetError(
                    f"Folder dataset: {self.image_root} has no split "
                    f"subfolders, so the whole folder is the 'train' split; "
                    f"there is no {split!r} split (add images/{split}/ and "
                    f"masks/{split}/ to make one)."
                )
            image_dir, mask_dir = self.image_root, self.mask_root
        else:
            image_dir = os.path.join(self.image_root, split)
            mask_dir = os.path.join(self.mask_root, split)
            if split not in self._split_names:
                raise base.DatasetError(
                    f"Folder dataset split {split!r} not found: {image_dir} "
                    f"is not a directory (available splits: "
                    f"{', '.join(self._split_names)})."
                )
            base.require_dir(mask_dir, f"Folder dataset masks for {split!r}")
        images = base.list_files(image_dir, base.IMAGE_EXTENSIONS)
        if not images:
            raise base.DatasetError(
                f"Folder dataset split {split!r} is empty: no "
                f"{'/'.join(base.IMAGE_EXTENSIONS)} images in {image_dir}."
            )
        lossy = base.list_files(mask_dir, (".jpg", ".jpeg"))
        if lossy:
            raise base.DatasetError(
                f"{len(lossy)} JPEG masks in {mask_dir}, first: "
                f"{base.format_names(lossy.values())}; JPEG compression alters "
                f"class ids and colours, so masks must be PNGs."
            )
        masks = base.list_files(mask_dir, base.MASK_EXTENSIONS)
        return base.pair_files(images, masks, image_dir, mask_dir)
