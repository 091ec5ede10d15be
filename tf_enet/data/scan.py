"""One pass over a split that validates every file and counts class pixels.

The tf.data pipeline cannot report a bad file helpfully (a corrupt PNG stops
training with a decoder stack trace; a stray label value silently trains on
garbage), so every split is scanned once with OpenCV first. The scan also
gathers the pixel counts that class weighting needs (`weights.py`), and is
cached as JSON, keyed by the file list, sizes and modification times, so
later runs skip it. Images are measured as displayed (turned by their EXIF
orientation, see `orientation`), and each image's orientation code is kept
for the pipeline, which applies it in the graph.
"""

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import time

import numpy as np
from absl import logging

from tf_enet import artifacts
from tf_enet.data import base, masks
from tf_enet.data import orientation as orientation_lib

CACHE_ENV = "TF_ENET_CACHE"
# Bumped whenever the counting changes, so older cache files are not reused.
_CACHE_VERSION = 3
# How many problems a scan error lists before it summarises the rest.
_MAX_PROBLEMS = 10


@dataclasses.dataclass(frozen=True, eq=False)
class ScanResult:
    """Class statistics of one split, from `scan`.

    Args:
        split: str. The split scanned.
        num_images: int. Number of (image, mask) pairs.
        pixel_counts: np.ndarray int64 [num_classes]. Pixels of each class;
            ignore pixels are not counted.
        image_pixel_counts: np.ndarray int64 [num_classes]. For class `c`,
            the labelled (non-ignore) pixels of all images containing `c`:
            the denominator of median frequency balancing.
        ignore_pixels: int. Pixels with the ignore id.
        image_sizes: tuple of (height, width). The distinct image sizes as
            displayed (after the EXIF orientation), sorted.
        orientations: tuple of int. The EXIF orientation code (1-8) of each
            scanned image, in the order of the pairs scanned.
    """

    split: str
    num_images: int
    pixel_counts: np.ndarray
    image_pixel_counts: np.ndarray
    ignore_pixels: int
    image_sizes: tuple
    orientations: tuple = ()

    def __post_init__(self):
        for name in ("pixel_counts", "image_pixel_counts"):
            array = np.array(getattr(self, name), np.int64)
            # Read-only so the frozen result cannot be changed behind a cache.
            array.flags.writeable = False
            object.__setattr__(self, name, array)
        object.__setattr__(self, "image_sizes", tuple(tuple(s) for s in self.image_sizes))
        object.__setattr__(self, "orientations", tuple(int(o) for o in self.orientations))

    @property
    def num_classes(self):
        return len(self.pixel_counts)

    def to_dict(self):
        return {
            "split": self.split,
            "num_images": self.num_images,
            "pixel_counts": self.pixel_counts.tolist(),
            "image_pixel_counts": self.image_pixel_counts.tolist(),
            "ignore_pixels": self.ignore_pixels,
            "image_sizes": [list(s) for s in self.image_sizes],
            "orientations": list(self.orientations),
        }

    @classmethod
    def from_dict(cls, config):
        return cls(**config)

    @classmethod
    def combine(cls, results):
        """The statistics of several splits trained on together.

        Args:
            results: non-empty sequence of ScanResult with equal
                `num_classes`.

        Returns:
            ScanResult named "a+b", its counts the sums, its sizes the
            union, its orientations concatenated in order.
        """
        results = list(results)
        if len(results) == 1:
            return results[0]
        return cls(
            split="+".join(r.split for r in results),
            num_images=sum(r.num_images for r in results),
            pixel_counts=sum(r.pixel_counts for r in results),
            image_pixel_counts=sum(r.image_pixel_counts for r in results),
            ignore_pixels=sum(int(r.ignore_pixels) for r in results),
            image_sizes=sorted({s for r in results for s in r.image_sizes}),
            orientations=[o for r in results for o in r.orientations],
        )


def default_cache_dir():
    """`$TF_ENET_CACHE` if set, else `~/.cache/tf_enet`."""
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "tf_enet")


def scan(dataset, split, cache_dir=None):
    """Validates a split and counts its class pixels, cached across runs.

    Every image is decoded fully (a header alone would not reveal a
    truncated file) and every mask is mapped to class ids.

    Args:
        dataset: SegmentationDataset.
        split: str. Split name, e.g. "train".
        cache_dir: str or None. Where results are cached; defaults to
            `default_cache_dir()`. An unwritable directory only costs the
            caching.

    Returns:
        ScanResult.

    Raises:
        DatasetError: listing unreadable files, invalid label values and
            image/mask size mismatches, each with its file.
    """
    return scan_files(dataset, dataset.files(split), split, cache_dir)


def scan_files(dataset, pairs, split, cache_dir=None):
    """`scan` for an explicit list of `(image, mask)` pairs of a split."""
    cache_dir = cache_dir or default_cache_dir()
    key = _cache_key(dataset, pairs)
    cache_path = os.path.join(cache_dir, f"scan_{dataset.info.name}_{split}_{key[:24]}.json")
    cached = _read_cache(cache_path, key)
    if cached is not None:
        return cached

    start = time.monotonic()
    logging.info(
        "Scanning %d files of %s split %r (once; the result is cached).",
        len(pairs),
        dataset.info.name,
        split,
    )
    num_classes = dataset.info.num_classes
    ignore = dataset.info.ignore_index
    pixel_counts = np.zeros(num_classes, np.int64)
    image_pixel_counts = np.zeros(num_classes, np.int64)
    ignore_pixels = 0
    sizes = set()
    orientations = []
    problems = []

    def scan_pair(pair):
        try:
            return _scan_pair(*pair, dataset.label_mapping, num_classes, ignore)
        except base.DatasetError as err:
            return err

    # OpenCV releases the GIL while decoding, so threads decode in parallel.
    workers = min(16, os.cpu_count() or 1)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for outcome in pool.map(scan_pair, pairs):
            if isinstance(outcome, base.DatasetError):
                problems.append(str(outcome))
                continue
            size, orientation, counts = outcome
            sizes.add(size)
            orientations.append(orientation)
            if counts is None:
                continue
            labelled = int(counts.sum())
            pixel_counts += counts
            image_pixel_counts[counts > 0] += labelled
            ignore_pixels += size[0] * size[1] - labelled
    if problems:
        shown = "\n  ".join(problems[:_MAX_PROBLEMS])
        more = len(problems) - _MAX_PROBLEMS
        raise base.DatasetError(
            f"{dataset.info.name} split {split!r}: {len(problems)} of "
            f"{len(pairs)} files are unusable:\n  {shown}"
            + (f"\n  ... and {more} more." if more > 0 else "")
        )
    result = ScanResult(
        split=split,
        num_images=len(pairs),
        pixel_counts=pixel_counts,
        image_pixel_counts=image_pixel_counts,
        ignore_pixels=ignore_pixels,
        image_sizes=tuple(sorted(sizes)),
        orientations=tuple(orientations),
    )
    logging.info("Scanned %d files in %.1f s.", len(pairs), time.monotonic() - start)
    _write_cache(cache_path, key, result)
    return result


def _scan_pair(image_path, mask_path, mapping, num_classes, ignore):
    """Returns `((height, width) displayed, orientation, class counts or None)`."""
    image, orientation = base.read_image_array(image_path)
    size = orientation_lib.displayed_size(image.shape[:2], orientation)
    if mask_path is None:
        return size, orientation, None
    raw = masks.read_mask(mask_path, mapping)
    if raw.shape[:2] != size:
        raise base.DatasetError(_size_mismatch(image_path, mask_path, size, raw.shape, orientation))
    ids = masks.map_mask(raw, mapping, mask_path)
    labelled = ids[ids != ignore]
    return size, orientation, np.bincount(labelled.ravel(), minlength=num_classes)


def _size_mismatch(image_path, mask_path, size, mask_shape, orientation):
    """The size-mismatch error, saying when EXIF orientation explains it."""
    mask_size = tuple(mask_shape[:2])
    message = (
        f"Size mismatch: image {image_path} is {size[1]}x{size[0]} but "
        f"mask {mask_path} is {mask_size[1]}x{mask_size[0]} (width x height)"
    )
    if mask_size != size[::-1]:
        return message + "."
    if orientation in orientation_lib.TRANSPOSING:
        return (
            f"{message}: the photo's stored size, before its EXIF orientation "
            f"{orientation} turns it sideways as photo viewers show it, so the "
            f"mask was drawn on the unturned pixels. Turn the mask to match the "
            f"photo as displayed, or set the photo's orientation tag to 1 "
            f"(e.g. exiftool -n -Orientation=1 {image_path})."
        )
    return (
        f"{message}: the image turned sideways. The image has no EXIF "
        f"orientation, so it is used as stored; turn the mask (or the image) "
        f"so both are upright."
    )


def _cache_key(dataset, pairs):
    entries = []
    for pair in pairs:
        for path in pair:
            if path is None:
                entries.append(None)
                continue
            try:
                stat = os.stat(path)
            except OSError as err:
                raise base.DatasetError(f"Cannot read {path}: {err.strerror}.") from err
            entries.append([path, stat.st_size, stat.st_mtime_ns])
    mapping = dataset.label_mapping
    blob = json.dumps(
        {
            "version": _CACHE_VERSION,
            "info": dataset.info.to_dict(),
            "id_table": list(mapping.id_table),
            "color_table": [[list(c), i] for c, i in mapping.color_table],
            "mask_encoding": mapping.mask_encoding,
            "files": entries,
        }
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _read_cache(path, key):
    try:
        with open(path, encoding="utf-8") as f:
            content = json.load(f)
        if content.get("key") != key:
            return None
        return ScanResult.from_dict(content["result"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:
        logging.warning("Ignoring unreadable scan cache %s: %s", path, err)
        return None


def _write_cache(path, key, result):
    directory = os.path.dirname(path)
    try:
        artifacts.write_json(path, {"key": key, "result": result.to_dict()})
    except OSError as err:
        logging.warning(
            "Cannot write the scan cache in %s (%s); the next run scans "
            "again. Set %s to a writable directory to cache.",
            directory,
            err,
            CACHE_ENV,
        )
