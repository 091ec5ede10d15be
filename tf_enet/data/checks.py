"""Refuses datasets that cannot train a segmentation model, before training.

Some datasets read without error and still cannot be learned: a single
class, a training split without labelled pixels, masks saved as 0/255 while
255 is the ignore id (the whole foreground silently ignored), a validation
split whose masks are all ignore (validation mIoU is undefined every epoch).
Such runs end hours later with a useless model, so `check_trainable` looks
at the `scan` results first and says what to fix.
"""

import numpy as np

from tf_enet.data import base

# Class names that usually mean "no label": listed as a class, they are
# learned and predicted like any other.
_UNLABELLED_NAMES = ("unlabelled", "unlabeled", "void", "ignore", "ignored", "none")


def check_trainable(info, train_stats, val_stats=None):
    """Checks that scanned splits can train and validate a model.

    Refused (DatasetError):
      - fewer than 2 classes;
      - a train split without labelled pixels;
      - a train split in which fewer than 2 classes have pixels;
      - a class without train pixels while ignore pixels cover more than
        any class or leave a single class (masks saved with the wrong
        values, e.g. a 0/255 binary export with ignore id 255);
      - a val split without images or without labelled pixels.

    Not refused: a class absent from train (or val) in an otherwise sound
    dataset. It is returned as a warning; the model still learns the other
    classes, and `class_weights` documents the weight such a class gets. A
    class named like "unlabelled" or "void" with train pixels is warned
    about too: it is learned as a class, which is rarely what was meant,
    and so is a val split that looks as the refused train splits above
    (a class absent while ignore pixels dominate).

    Args:
        info: DatasetInfo.
        train_stats: ScanResult of the training split.
        val_stats: ScanResult of the validation split, or None.

    Returns:
        list of str. Warnings, one line each, for the caller to show.

    Raises:
        DatasetError: with the fix in the message.
    """
    names = info.class_names
    ignore = info.ignore_index
    if info.num_classes < 2:
        raise base.DatasetError(
            f"{info.name}: {info.num_classes} class ({names[0]!r}); "
            f"segmentation needs at least 2 classes; make the background a "
            f"class and label background pixels with it."
        )
    for stats in (train_stats, val_stats):
        if stats is not None and stats.num_classes != info.num_classes:
            raise ValueError(
                f"Scan of split {stats.split!r} has {stats.num_classes} "
                f"classes but {info.name} has {info.num_classes}."
            )
    counts = np.asarray(train_stats.pixel_counts, np.int64)
    split = train_stats.split
    if counts.sum() == 0:
        raise base.DatasetError(
            f"{info.name} split {split!r} has no labelled pixels: all "
            f"{train_stats.num_images} masks hold only the ignore id "
            f"{ignore}; label the masks with class ids 0-"
            f"{info.num_classes - 1}."
        )
    suspect = _ignore_share_suspect(info, train_stats)
    if suspect:
        raise base.DatasetError(suspect)
    absent = np.flatnonzero(counts == 0).tolist()
    present = info.num_classes - len(absent)
    if absent and present < 2:
        only = names[int(np.argmax(counts))]
        raise base.DatasetError(
            f"{info.name} split {split!r}: only class {only!r} has pixels; "
            f"a model cannot learn to tell classes apart from it. Check that "
            f"the masks hold the class ids 0-{info.num_classes - 1}."
        )
    warnings = []
    for class_id, name in enumerate(names):
        if name.strip().lower() in _UNLABELLED_NAMES and counts[class_id] > 0:
            warnings.append(
                f"{info.name}: class {class_id} {name!r} is learned and "
                f"predicted as a class. If it marks unlabelled pixels, give "
                f"them the ignore id {ignore}, or, for masks where 0 is "
                f"unlabelled and classes start at 1, drop it from the list and "
                f'set "reduce_zero_label": true in classes.json.'
            )
    if absent:
        warnings.append(
            f"{info.name} split {split!r}: {_have_no_pixels(names, absent)}; "
            f"the model is not taught to predict them."
        )
    if val_stats is not None:
        split = val_stats.split
        if val_stats.num_images == 0:
            raise base.DatasetError(
                f"{info.name} split {split!r} has no images; validation needs "
                f"at least one labelled image."
            )
        val_counts = np.asarray(val_stats.pixel_counts, np.int64)
        if val_counts.sum() == 0:
            raise base.DatasetError(
                f"{info.name} split {split!r} has no labelled pixels: all "
                f"{val_stats.num_images} masks hold only the ignore id "
                f"{ignore}, so validation mIoU is undefined; label the val "
                f"masks with class ids 0-{info.num_classes - 1}."
            )
        # A warning only: a small val split may lack classes and hold much
        # ignore legitimately (its scores then cover the classes it has).
        suspect = _ignore_share_suspect(info, val_stats)
        if suspect:
            warnings.append(suspect)
        val_absent = np.flatnonzero(val_counts == 0).tolist()
        if val_absent:
            warnings.append(
                f"{info.name} split {split!r}: {_have_no_pixels(names, val_absent)}; "
                f"validation cannot measure them."
            )
    return warnings


def check_scoreable(info, stats):
    """Checks that a scanned split can score a model (evaluation).

    Refused (DatasetError): a split without labelled pixels (every score
    would be undefined).

    Warned about (returned): a class without pixels while ignore pixels
    cover more than any class or leave a single class. That is how masks
    saved with the wrong values look (e.g. a 0/255 binary export with
    ignore id 255: the foreground is skipped and the background alone
    scored), but also a few images of a dataset with much unlabelled area,
    so evaluation goes on and says so.

    Args:
        info: DatasetInfo.
        stats: ScanResult of the split (or of the images scored).

    Returns:
        list of str. Warnings, one line each, for the caller to show.

    Raises:
        DatasetError: with the fix in the message.
    """
    if int(np.sum(stats.pixel_counts)) == 0:
        raise base.DatasetError(
            f"{info.name} split {stats.split!r} has no labelled pixels: all "
            f"{stats.num_images} masks hold only the ignore id "
            f"{info.ignore_index}, so there is nothing to score; label the "
            f"masks with class ids 0-{info.num_classes - 1}."
        )
    suspect = _ignore_share_suspect(info, stats)
    return [suspect] if suspect else []


def _ignore_share_suspect(info, stats):
    """What to say when masks look as if the ignore id stood for a class.

    The sign: a class without pixels while the ignore id is present and
    either covers more pixels than any class or leaves one class alone.

    Returns:
        str, or None when the split does not look so.
    """
    counts = np.asarray(stats.pixel_counts, np.int64)
    absent = np.flatnonzero(counts == 0).tolist()
    ignore = stats.ignore_pixels
    present = len(counts) - len(absent)
    if absent and ignore > 0 and (present < 2 or counts.max() < ignore):
        share = ignore / (int(counts.sum()) + ignore)
        return (
            f"{info.name} split {stats.split!r}: class "
            f"{info.class_names[absent[0]]!r} has no pixels while {share:.0%} "
            f"of pixels are {info.ignore_index}, the ignore id — were the "
            f"masks saved as 0/{info.ignore_index}? Save class c as the value "
            f"c (e.g. mask // 255 for a 0/255 binary mask)."
        )
    return None


# The most classes a message names; the rest are counted, so a dataset of
# hundreds of classes gets a line, not a page.
MAX_LISTED_CLASSES = 10


def name_classes(names, ids):
    """Names classes for a one-line message: the first ten, then a count.

    Args:
        names: sequence of str. All class names, indexed by id.
        ids: sequence of int. The classes to name, in order.

    Returns:
        str. `'a', 'b'`, or `'a', ... 'j' and 290 more (ids 10-299)`; the
        ids are left out when they make more than ten ranges.
    """
    ids = list(ids)
    listed = ", ".join(repr(names[c]) for c in ids[:MAX_LISTED_CLASSES])
    rest = ids[MAX_LISTED_CLASSES:]
    if rest:
        ranges = _id_ranges(rest)
        listed += f" and {len(rest)} more"
        if len(ranges) <= MAX_LISTED_CLASSES:
            listed += f" (ids {', '.join(ranges)})"
    return listed


def _have_no_pixels(names, classes):
    """`class 'a' has no pixels`, or `classes 'a', 'b' have no pixels`."""
    if len(classes) == 1:
        return f"class {name_classes(names, classes)} has no pixels"
    return f"classes {name_classes(names, classes)} have no pixels"


def _id_ranges(ids):
    """`[3, 4, 5, 9]` -> `["3-5", "9"]`."""
    ranges = []
    for i in ids:
        if ranges and i == ranges[-1][1] + 1:
            ranges[-1][1] = i
        else:
            ranges.append([i, i])
    return [str(a) if a == b else f"{a}-{b}" for a, b in ranges]
