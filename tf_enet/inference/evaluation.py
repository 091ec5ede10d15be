"""Scoring models on labelled splits: one confusion-matrix routine.

`confusion_matrices` is the one loop over a split: evaluation, the logit
adjustment's choice of strength and the tests all count with it.
`evaluate` turns its matrix into the scores of the paper's tables.
"""

import keras
import numpy as np
from absl import logging

from tf_enet import data as data_lib
from tf_enet import metrics as metrics_lib
from tf_enet import metrics_cityscapes
from tf_enet.data import cityscapes
from tf_enet.inference.loading import ModelError
from tf_enet.inference.predictor import Predictor, resize_images, resize_logits


def confusion_matrices(
    predictor,
    dataset,
    split="val",
    *,
    transforms=(None,),
    limit=None,
    sample=None,
    seed=0,
    batch_size=1,
    input_size=None,
    resize_labels=False,
    on_batch=None,
    on_image=None,
):
    """Counts one confusion matrix per logit transform over a split.

    Each image runs through the model once, at `predictor.model_size` (the
    training size by default); its logits are resized (bilinear) once to
    its label's size, then every transform is applied and its argmax
    counted against the label, ignored pixels left out. Images are batched
    when consecutive images have the same size, so a split mixing sizes
    needs no padding. With `resize_labels`, the labels are resized instead
    (nearest neighbour) to the model's size and the logits scored as they
    come: cheaper, and what validation during training does.

    Args:
        predictor: Predictor, or a keras.Model mapping images to logits
            (run through `Predictor.from_model` with the dataset's classes;
            it has no recorded training size, so it runs at `input_size`
            or else at each image's own size). Build the Predictor once to
            reuse its traced function across calls.
        dataset: tf_enet.data.SegmentationDataset.
        split: str. Split to count.
        transforms: sequence of None, per-class offsets or callables; one
            confusion matrix each. None counts the argmax of the logits as
            they are. Offsets, float array-like `[num_classes]` (e.g.
            `-alpha * np.log(class_weights)`), count
            `argmax(logits + offsets)`, exactly, but only pixels whose top
            logits are closer than the offsets' range are ranked again
            (`offset_argmax`), so many offsets cost little more than one.
            A callable maps one image's float32 logits at label size,
            np.ndarray `[1, label_height, label_width, num_classes]`, to
            scores of the same shape whose argmax is the prediction.
        limit: int or None. Count only the first `limit` images.
        sample: int or None. Count a random sample of this many images (of
            the first `limit`), drawn with `seed`.
        seed: int. Seed of `sample`.
        batch_size: int. Images per model call.
        input_size: (height, width) or None. Run the model at this size
            instead of the training size (see `Predictor.model_size`).
        resize_labels: bool. Score at the model's size, which must then be
            known before the images are (`input_size`, an export's fixed
            size or the training size).
        on_batch: callable `(images_done, images_total)` or None, called
            after each batch.
        on_image: callable `(index, labels, classes)` or None, called for
            every image with its position in the split, its labels and the
            first transform's predicted classes, int arrays `[h, w]` at the
            scored size (for scores a confusion matrix cannot give, such
            as Cityscapes' instance-weighted iIoU).

    Returns:
        np.ndarray int64 `[len(transforms), num_classes, num_classes]`; rows
        are true classes, columns predictions.

    Raises:
        ModelError: the model's class count differs from the dataset's.
        DatasetError: the split is missing, unlabelled or has bad files.
        ValueError: invalid arguments, or `resize_labels` without a known
            model size.
    """
    info = dataset.info
    if isinstance(predictor, keras.Model):
        predictor = Predictor.from_model(predictor, info)
    if predictor.num_classes != info.num_classes:
        raise ModelError(
            f"{predictor.path} outputs {predictor.num_classes} classes but "
            f"{info.name} ({dataset.data_dir}) has {info.num_classes}; "
            f"evaluate it on the dataset it was trained on."
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer; received {batch_size!r}.")
    transforms = list(transforms)
    if not transforms:
        raise ValueError("`transforms` must hold at least one entry (None: as is).")
    num_classes = info.num_classes
    offsets = {}
    for i, transform in enumerate(transforms):
        if transform is not None and not callable(transform):
            offsets[i] = np.asarray(transform, np.float32)
            if offsets[i].shape != (num_classes,):
                raise ValueError(
                    f"`transforms[{i}]` must be None, a callable or {num_classes} "
                    f"per-class offsets; received shape {offsets[i].shape}."
                )
    offset_range = _offset_range(list(offsets.values()))
    matrices = np.zeros((len(transforms), num_classes, num_classes), np.int64)
    resize = {}
    if resize_labels:
        size = input_size or predictor.input_size or predictor.training_size
        if size is None:
            raise ValueError(
                f"`resize_labels` needs the size to score at: {predictor.path} "
                f"records no training size, so pass `input_size`."
            )
        # The pipeline resizes images and labels to the model's size.
        input_size = tuple(size)
        resize = dict(height=input_size[0], width=input_size[1], resize_masks=True)
    pairs = data_lib.make_eval_dataset(
        dataset, split, batch_size=1, limit=limit, sample=sample, seed=seed, **resize
    )
    total = int(pairs.cardinality())
    pending = []  # [(image [h, w, 3], label [h', w'])], all images one size
    done = 0

    def count(labels, classes):
        return metrics_lib.confusion_matrix(labels, classes, num_classes, info.ignore_index)

    def flush():
        nonlocal done
        images = np.stack([image for image, _ in pending])
        model_size = predictor.model_size(images.shape[1:3], input_size)
        logits = predictor.logits(resize_images(images, model_size))
        for position, (logit, (_, label)) in enumerate(zip(logits, pending)):
            logit = resize_logits(logit[None], label.shape)  # [1, h', w', K]
            flat = logit.reshape(-1, num_classes)
            labels = label.reshape(-1)
            top, close = _top_and_close(flat, offset_range)
            if offsets:
                # Pixels not close to a tie keep their top class under every
                # offset: counted once, the close ones once per offset.
                far = np.ones(labels.size, bool)
                far[close] = False
                far_counts = count(labels[far], top[far])
                candidates, close_labels = flat[close], labels[close]
            for i, transform in enumerate(transforms):
                if i in offsets:
                    shifted = np.argmax(candidates + offsets[i], axis=-1)
                    matrices[i] += far_counts + count(close_labels, shifted)
                    if i == 0 and on_image is not None:
                        classes = top.copy()
                        classes[close] = shifted
                elif transform is None:
                    classes = top
                    matrices[i] += count(labels, classes)
                else:
                    classes = np.argmax(transform(logit), axis=-1).reshape(-1)
                    matrices[i] += count(labels, classes)
                if i == 0 and on_image is not None:
                    on_image(done + position, label, classes.reshape(label.shape))
        done += len(pending)
        pending.clear()
        if on_batch is not None:
            on_batch(done, total)

    # One image per element: batching here avoids padding mixed sizes.
    for image, label in pairs:
        image, label = image.numpy()[0], label.numpy()[0]
        if pending and pending[0][0].shape != image.shape:
            flush()
        pending.append((image, label))
        if len(pending) == batch_size:
            flush()
    if pending:
        flush()
    return matrices


def offset_argmax(logits, offsets):
    """`argmax(logits + o, axis=-1)` for each offset vector `o`, exactly.

    A pixel's prediction can only change with `o` where another class's
    logit comes within `max(o) - min(o)` of its top logit. So the argmax of
    the logits is taken once, and only those close pixels (with a margin
    for float32 rounding) are ranked again for each `o`; the others keep
    their top class. Ties resolve as `np.argmax` resolves them (the first
    class), since every tie is among the close pixels.

    Args:
        logits: float32 np.ndarray `[..., num_classes]`.
        offsets: sequence of float32 array-like `[num_classes]`.

    Returns:
        list of int64 np.ndarray `[...]`, one per offset vector.
    """
    flat = logits.reshape(-1, logits.shape[-1])
    offsets = [np.asarray(o, np.float32) for o in offsets]
    top, close = _top_and_close(flat, _offset_range(offsets))
    candidates = flat[close]
    results = []
    for o in offsets:
        classes = top.copy()
        classes[close] = np.argmax(candidates + o, axis=-1)
        results.append(classes.reshape(logits.shape[:-1]))
    return results


def _offset_range(offsets):
    """(span, largest): the widest `max(o) - min(o)` and largest `|o|`, or None."""
    if not offsets:
        return None
    span = max(float(o.max() - o.min()) for o in offsets)
    return span, max(float(np.abs(o).max()) for o in offsets)


def _top_and_close(flat, offset_range):
    """The argmax of `[pixels, classes]` logits, and which pixels offsets can change.

    Args:
        flat: float32 np.ndarray `[pixels, classes]`.
        offset_range: `_offset_range` of the offsets, or None.

    Returns:
        (top, close): int64 `[pixels]` argmax, and the int64 indices of the
        pixels where another class's logit is within the offsets' range
        (plus a float32 rounding margin) of the top one; none without
        offsets.
    """
    top = np.argmax(flat, axis=-1)
    if offset_range is None:
        return top, np.zeros(0, np.int64)
    span, largest = offset_range
    top_logit = np.take_along_axis(flat, top[:, None], axis=-1)[:, 0]
    # Rounding of `logits + o` in float32 is far below this margin.
    margin = span + 1e-4 * (1.0 + np.abs(top_logit) + largest)
    within = flat >= (top_logit - margin)[:, None]
    # Classes within the margin, the top one included. (Not a matrix-vector
    # product: OpenBLAS's threads then spin beside TensorFlow's and slowed
    # the next forward pass and this loop by about 60 ms per image.)
    close = np.flatnonzero(np.count_nonzero(within, axis=-1) > 1)
    return top, close


def evaluate(
    predictor,
    dataset,
    split="test",
    *,
    batch_size=1,
    height=None,
    width=None,
    limit=None,
    on_batch=None,
):
    """Scores a model on a labelled split at full label resolution.

    One confusion matrix is accumulated over the whole split by
    `confusion_matrices`, ignored pixels excluded, and every score derives
    from it. The model runs at its training size unless `height` and
    `width` say otherwise; the logits are resized (bilinear) to each
    label's size before the argmax.

    Args:
        predictor: Predictor.
        dataset: tf_enet.data.SegmentationDataset.
        split: str. Split to evaluate.
        batch_size: int. Images per model call.
        height: int or None. Model input height (with `width`).
        width: int or None. Model input width (with `height`).
        limit: int or None. Evaluate only the first `limit` images.
        on_batch: callable `(images_done, images_total)` or None, called
            after each batch (for progress display).

    Returns:
        dict: `split`, `num_images`, `input_size` (the model's [height,
        width], or None for each image's own size), `class_names`,
        `confusion_matrix` (list of lists, rows true classes),
        `per_class_iou` and `per_class_accuracy` (dicts class name ->
        float, NaN for classes absent from labels and predictions),
        `mean_iou`, `global_accuracy`, `class_accuracy`; for Cityscapes
        also `cityscapes`, the official benchmark's class and category IoU
        and iIoU (`tf_enet.metrics_cityscapes.CityscapesIoU.summary`).

    Raises:
        ModelError: the model's class count differs from the dataset's.
        DatasetError: the split is missing, unlabelled or has bad files.
        ValueError: only one of `height` and `width`, or bad arguments.
    """
    if (height is None) != (width is None):
        raise ValueError(
            f"Give both `height` and `width` or neither; received height="
            f"{height!r}, width={width!r}."
        )
    info = dataset.info
    if predictor.info.class_names != info.class_names:
        logging.warning(
            "%s names its classes %s, the dataset %s; scoring by class id.",
            predictor.path,
            list(predictor.info.class_names),
            list(info.class_names),
        )
    input_size = None if height is None else (height, width)
    done = [0]

    def progress(images_done, images_total):
        done[0] = images_done
        if on_batch is not None:
            on_batch(images_done, images_total)

    on_image = benchmark = None
    if info.name == "cityscapes":
        # The official figures weigh each instance by its size: they need
        # every image's instance ids, paired by position with the split.
        benchmark = metrics_cityscapes.CityscapesIoU()
        instance_paths = dataset.instance_files(split)[:limit]

        def on_image(index, labels, classes):
            instances = cityscapes.read_instance_ids(instance_paths[index])
            benchmark.update(labels, classes, instances)

    (confusion,) = confusion_matrices(
        predictor,
        dataset,
        split,
        limit=limit,
        batch_size=batch_size,
        input_size=input_size,
        on_batch=progress,
        on_image=on_image,
    )
    result = metrics_lib.scores(confusion)
    names = list(info.class_names)
    used_size = input_size or predictor.input_size or predictor.training_size
    results = {
        "split": split,
        "num_images": done[0],
        "input_size": None if used_size is None else list(used_size),
        "class_names": names,
        "confusion_matrix": confusion.tolist(),
        "per_class_iou": dict(zip(names, map(float, result["per_class_iou"]))),
        "per_class_accuracy": dict(zip(names, map(float, result["per_class_accuracy"]))),
        "mean_iou": result["mean_iou"],
        "global_accuracy": result["global_accuracy"],
        "class_accuracy": result["class_accuracy"],
    }
    if benchmark is not None:
        results["cityscapes"] = benchmark.summary()
    return results
