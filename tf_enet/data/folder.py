"""Custom datasets: a folder of images, a folder of masks and a class list.

Layout, either without splits (the whole folder is the "train" split):

    <data_dir>/images/<name>.{png,jpg,jpeg,bmp}
    <data_dir>/masks/<name>.png
    <data_dir>/classes.json

or with one subfolder per split (`images/train`, `masks/train`,
`images/val`, ...). Images and masks are paired by file stem.

Without a `val` subfolder (a flat folder, or only `train/`), a "val" split
is held out of "train": `val_fraction` of its images (at least 1, and at
least 1 left for training), chosen by a seeded hash of each image's file
name. The choice depends only on the file names, `val_fraction` and
`val_seed`, so it is the same on every machine and run; `split_info()`
records it. `val_fraction=0` turns this off (then there is no "val").

`classes.json`:

    {"classes": [{"name": "road", "color": [128, 64, 128]}, ...],
     "ignore_index": 255,
     "ignore_color": [0, 0, 0],
     "mask_encoding": "auto",
     "reduce_zero_label": false}

Class `c` is the `c`-th entry; at least 2 classes are needed (the
background is a class). Masks are PNGs of class ids and the ignore id
(single-channel 1 to 16-bit, or palette PNGs read as their indices; more
than 256 classes need 16-bit masks and an `ignore_index` past the class
ids, e.g. 65535), or colour PNGs using the listed colours; `ignore_color`
(optional) marks unlabelled pixels in colour masks. `ignore_index` defaults
to 255. `reduce_zero_label` (optional, default false) reads id masks where
0 is unlabelled and class `c` is saved as `c + 1` (mmsegmentation's
setting of that name, ADE20K's convention): 0 becomes the ignore id and
`v` the class `v - 1`; the classes list starts with the class saved as 1.
`mask_encoding` (optional, default "auto") says how palette and colour
PNGs are read; see `tf_enet.data.masks`: "auto" reads palette indices and
RGB colours, "ids" refuses RGB masks, "color" reads palette PNGs by their
colours and refuses single-channel masks.

Polygon annotations (labelme `*.json` with "shapes", COCO `instances_*.json`)
where masks are expected are refused, naming the converter that draws them
into masks (`polygon_annotations`).
"""

import hashlib
import json
import os

from tf_enet.data import base, pairing

# What a polygon annotation file is, and how to turn it into masks.
_POLYGON_FORMATS = {
    "labelme": (
        "labelme polygons, not masks (PNGs of class ids); convert them with labelme's "
        "examples/semantic_segmentation/labelme2voc.py (labels.txt: __ignore__, then "
        "the classes in classes.json order) and use its SegmentationClass/*.png as masks/"
    ),
    "COCO": (
        "COCO annotations, not masks (PNGs of class ids); draw one PNG of class ids "
        "per image into masks/ with pycocotools (COCO(file).annToMask(annotation) for "
        "each annotation, its class id in classes.json order)"
    ),
}
# Bytes of a JSON file read to tell labelme from COCO (labelme files embed
# the image, COCO files can be gigabytes; the top-level keys come first).
_JSON_HEAD = 1 << 16
DEFAULT_IGNORE_INDEX = 255
DEFAULT_VAL_FRACTION = 0.1
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

    if not isinstance(config, dict) or not isinstance(config.get("classes"), list):
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
    reduce_zero_label = config.get("reduce_zero_label", False)
    if not isinstance(reduce_zero_label, bool):
        fail(f'"reduce_zero_label" must be true or false; received {reduce_zero_label!r}.')
    ignore_index = config.get("ignore_index", DEFAULT_IGNORE_INDEX)
    if not isinstance(ignore_index, int) or isinstance(ignore_index, bool):
        fail(f'"ignore_index" must be an integer; received {ignore_index!r}.')
    # With more classes than 255, 255 is a class id; 16-bit masks use 65535.
    example = 255 if len(names) <= 255 else base.MAX_MASK_VALUES - 1
    if 0 <= ignore_index < len(names):
        zero_hint = ""
        if ignore_index == 0:
            zero_hint = (
                " If 0 marks unlabelled pixels and the classes are saved as "
                '1, 2, ..., set "reduce_zero_label": true instead: 0 is then '
                "ignored and the value v is class v - 1."
            )
        fail(
            f'"ignore_index" {ignore_index} is a class id (0..{len(names) - 1});'
            f" choose a value outside them, e.g. {example}.{zero_hint}"
        )
    if reduce_zero_label and 0 < ignore_index <= len(names):
        fail(
            f'"ignore_index" {ignore_index} is the mask value of class '
            f'{names[ignore_index - 1]!r} under "reduce_zero_label" (class c '
            f"is saved as c + 1); choose a value past {len(names)}, e.g. "
            f"{example if example > len(names) else base.MAX_MASK_VALUES - 1}."
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
    encoding = config.get("mask_encoding", "auto")
    if encoding not in base.MASK_ENCODINGS:
        fail(
            f'"mask_encoding" must be one of '
            f"{', '.join(repr(e) for e in base.MASK_ENCODINGS)}; received "
            f"{encoding!r}."
        )
    if len(names) < 2:
        fail(
            f"lists 1 class ({names[0]!r}); segmentation needs at least 2 "
            f"classes; make the background a class (class 0, with its own "
            f"colour) and label background pixels with it."
        )
    info = base.DatasetInfo("folder", tuple(names), tuple(colors), ignore_index)
    mapping = base.LabelMapping.identity(
        len(names),
        ignore_index,
        color_table,
        mask_encoding=encoding,
        reduce_zero_label=reduce_zero_label,
    )
    return info, mapping


def polygon_annotations(*directories):
    """Finds polygon annotation files where masks were expected.

    Args:
        *directories: str. Directories to look in (not their subfolders);
            missing ones are skipped.

    Returns:
        (path, format) of the first labelme or COCO JSON file, `format`
        "labelme" or "COCO"; None if there is none.
    """
    for directory in directories:
        if not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory)):
            if not name.lower().endswith(".json") or name == CLASSES_FILE:
                continue
            path = os.path.join(directory, name)
            try:
                with open(path, "rb") as f:
                    head = f.read(_JSON_HEAD)
            except OSError:
                continue
            if name.startswith("instances_") or (b'"images"' in head and b'"annotations"' in head):
                return path, "COCO"
            if b'"shapes"' in head:
                return path, "labelme"
    return None


def _refuse_polygons(*directories):
    """Raises a DatasetError naming polygon files found in `directories`."""
    found = polygon_annotations(*directories)
    if found is not None:
        path, kind = found
        raise base.DatasetError(f"Folder dataset: {path} holds {_POLYGON_FORMATS[kind]}.")


def held_out(images, fraction, seed):
    """Chooses the images held out for validation.

    Each image name gets the SHA-256 hash of `"<seed>:<name>"`; the
    `round(fraction * n)` names with the smallest hashes (at least 1, at
    most `n - 1`) are held out. The choice depends on nothing but the names,
    so it is stable across machines, and adding images moves few others.

    Args:
        images: list of str. Image file names (base names).
        fraction: float in [0, 1).
        seed: int.

    Returns:
        set of the held-out names; empty if `fraction` is 0 or there are
        fewer than 2 images.
    """
    if fraction == 0 or len(images) < 2:
        return set()
    count = min(max(1, round(fraction * len(images))), len(images) - 1)
    ranked = sorted(
        images,
        key=lambda name: hashlib.sha256(f"{seed}:{name}".encode()).hexdigest(),
    )
    return set(ranked[:count])


class Folder(base.SegmentationDataset):
    """A custom dataset of `images/`, `masks/` and `classes.json`.

    Args:
        data_dir: str. Directory holding `images/`, `masks/` and
            `classes.json`.
        val_fraction: float in [0, 1). Share of the "train" images held out
            as the "val" split when there is no `val` subfolder; 0 holds
            none out.
        val_seed: int. Seeds which images are held out.

    Raises:
        DatasetError: if a directory or the class list is missing or invalid.
        ValueError: for an invalid `val_fraction` or `val_seed`.
    """

    def __init__(self, data_dir, val_fraction=DEFAULT_VAL_FRACTION, val_seed=0):
        if (
            isinstance(val_fraction, bool)
            or not isinstance(val_fraction, (int, float))
            or not 0 <= val_fraction < 1
        ):
            raise ValueError(
                f"`val_fraction` must be a number in [0, 1); received {val_fraction!r}."
            )
        if isinstance(val_seed, bool) or not isinstance(val_seed, int):
            raise ValueError(f"`val_seed` must be an integer; received {val_seed!r}.")
        super().__init__(data_dir)
        self.val_fraction = float(val_fraction)
        self.val_seed = val_seed
        self.image_root = os.path.join(self.data_dir, "images")
        self.mask_root = os.path.join(self.data_dir, "masks")
        pairing.require_dir(self.image_root, "Folder dataset images (images/)")
        if not os.path.isdir(self.mask_root):
            subfolders = [e.path for e in os.scandir(self.image_root) if e.is_dir()]
            annotations = os.path.join(self.data_dir, "annotations")
            _refuse_polygons(self.image_root, *sorted(subfolders), self.data_dir, annotations)
        pairing.require_dir(self.mask_root, "Folder dataset masks (masks/)")
        self.info, self.label_mapping = load_classes(os.path.join(self.data_dir, CLASSES_FILE))
        self._split_names = tuple(sorted(e.name for e in os.scandir(self.image_root) if e.is_dir()))
        if self._split_names and pairing.list_files(self.image_root, base.IMAGE_EXTENSIONS):
            raise base.DatasetError(
                f"Folder dataset: {self.image_root} holds both images and "
                f"split subfolders ({', '.join(self._split_names)}); put every "
                f"image in a split subfolder, or use no subfolders at all."
            )

    def _holds_out_val(self):
        disk = self._split_names or ("train",)
        return self.val_fraction > 0 and "train" in disk and "val" not in disk

    def splits(self):
        """Split subfolders (or "train" if none), plus a held-out "val"."""
        disk = self._split_names or ("train",)
        return tuple(sorted(disk + ("val",))) if self._holds_out_val() else disk

    def files(self, split):
        """Lists a split's sorted `(image_path, mask_path)` pairs.

        Without a `val` subfolder, "train" and "val" share the images of
        the on-disk train split, disjointly (see `held_out`).

        Raises:
            DatasetError: for a missing or empty split, unpaired files, JPEG
                masks, or a "val" split that cannot be held out of a single
                train image.
        """
        if not self._holds_out_val() or split not in ("train", "val"):
            return self._disk_files(split)
        pairs = self._disk_files("train")
        val = held_out(
            [os.path.basename(i) for i, _ in pairs],
            self.val_fraction,
            self.val_seed,
        )
        if split == "train":
            return [p for p in pairs if os.path.basename(p[0]) not in val]
        if not val:
            raise base.DatasetError(
                f"Folder dataset: cannot hold out a 'val' split from the "
                f"single train image in {self.image_root}; add more images, "
                f"or images/val/ and masks/val/."
            )
        return [p for p in pairs if os.path.basename(p[0]) in val]

    def split_info(self):
        """How the splits were formed, as recorded beside a model.

        Returns:
            dict, JSON-serialisable: `"splits"`, the split names, and
            `"held_out"`, mapping a held-out split ("val") to `{"from":
            "train", "val_fraction", "val_seed", "images": [sorted image
            file names]}`; empty when every split is on disk.
        """
        info = super().split_info()
        if self._holds_out_val():
            images = [os.path.basename(i) for i, _ in self.files("val")]
            info["held_out"]["val"] = {
                "from": "train",
                "val_fraction": self.val_fraction,
                "val_seed": self.val_seed,
                "images": images,
            }
        return info

    def _disk_files(self, split):
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
            pairing.require_dir(mask_dir, f"Folder dataset masks for {split!r}")
        images = pairing.list_files(image_dir, base.IMAGE_EXTENSIONS)
        if not images:
            raise base.DatasetError(
                f"Folder dataset split {split!r} is empty: no "
                f"{'/'.join(base.IMAGE_EXTENSIONS)} images in {image_dir}."
            )
        masks = pairing.list_mask_files(mask_dir)
        if not masks:
            _refuse_polygons(mask_dir, image_dir)
        return pairing.pair_files(images, masks, image_dir, mask_dir)
