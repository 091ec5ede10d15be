"""Scoring models on labelled splits: one evaluation loop.

`split_logits` is the one loop over a split: it reads the split in NumPy
(`tf_enet.data.reader`, no TensorFlow), runs the model and yields each
image's logits at its label's size. `confusion_matrix_of_split` counts
their argmax; `evaluate` turns that matrix into the scores of the paper's
tables. The logit adjustment scores its candidate offsets from the same
loop (`tf_enet.logit_adjustment.offset_confusion_matrices`).
"""

import numpy as np
from absl import logging

from tf_enet import confusion as confusion_lib
from tf_enet import metrics_cityscapes
from tf_enet.data import checks, cityscapes, reader
from tf_enet.data.scan import scan_files
from tf_enet.inference import processing
from tf_enet.inference.loading import ModelError
from tf_enet.inference.predictor import Predictor


def split_logits(
    predictor,
    dataset,
    split="val",
    *,
    limit=None,
    sample=None,
    seed=0,
    batch_size=1,
    input_size=None,
    resize_labels=False,
    on_batch=None,
):
    """Runs a model over a labelled split: each image's logits at label size.

    Each image runs through the model once, at `predictor.model_size` (the
    training size by default, aspect ratio kept: see
    `Predictor.content_logits`); its logits are resized (bilinear) to its
    label's size. Consecutive images of one size are batched, so a split
    mixing sizes needs no padding. With `resize_labels`, images are resized
    (bilinear, as the training pipeline resizes them) and labels (nearest
    neighbour) to the model's size instead, and the logits scored as they
    come: cheaper, and what validation during training does.

    Args:
        predictor: Predictor, or a keras.Model mapping images to logits
            (run through `Predictor.from_model` with the dataset's classes;
            it has no recorded training size, so it runs at `input_size`
            or else at each image's own size).
        dataset: tf_enet.data.SegmentationDataset.
        split: str. Split to read.
        limit: int or None. Only the first `limit` images.
        sample: int or None. A random sample of this many images (of the
            first `limit`), drawn with `seed`.
        seed: int. Seed of `sample`.
        batch_size: int. Images per model call.
        input_size: (height, width) or None. Run the model at this size
            instead of the training size (see `Predictor.model_size`).
        resize_labels: bool. Score at the model's size, which must then be
            known before the images are (`input_size`, an export's fixed
            size or the training size).
        on_batch: callable `(images_done, images_total)` or None, called
            after each batch.

    Yields:
        (index, logits, labels): the image's position in the split, float32
        np.ndarray `[label_height, label_width, num_classes]` and int32
        `[label_height, label_width]` class ids or the ignore id.

    Raises:
        ModelError: the model's class count differs from the dataset's.
        DatasetError: the split is missing, unlabelled or has bad files.
        ValueError: invalid arguments, or `resize_labels` without a known
            model size.
    """
    info = dataset.info
    if not isinstance(predictor, Predictor):
        predictor = Predictor.from_model(predictor, info)
    if predictor.num_classes != info.num_classes:
        raise ModelError(
            f"{predictor.path} outputs {predictor.num_classes} classes but "
            f"{info.name} ({dataset.data_dir}) has {info.num_classes}; "
            f"evaluate it on the dataset it was trained on."
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer; received {batch_size!r}.")
    scored_size = None
    if resize_labels:
        scored_size = input_size or predictor.input_size or predictor.training_size
        if scored_size is None:
            raise ValueError(
                f"`resize_labels` needs the size to score at: {predictor.path} "
                f"records no training size, so pass `input_size`."
            )
        scored_size = tuple(scored_size)
    pairs = reader.labelled_pairs(dataset, split, limit, sample, seed)
    total = len(pairs)
    pending = []  # [(image [h, w, 3], labels [h', w'])], all images one size
    done = 0

    def flush():
        images = np.stack([image for image, _ in pending]).astype(np.float32)
        logits = predictor.content_logits(images, input_size=input_size)
        for position, (logit, (_, labels)) in enumerate(zip(logits, pending)):
            logit = processing.resize_logits(logit[None], labels.shape)[0]
            yield done + position, logit, labels

    for image, labels in reader.read_pairs(dataset, pairs):
        if scored_size is not None:
            image = processing.resize_images(image[None], scored_size, antialias=False)[0]
            labels = processing.resize_labels(labels, scored_size)
        if pending and pending[0][0].shape != image.shape:
            yield from flush()
            done += len(pending)
            pending.clear()
            if on_batch is not None:
                on_batch(done, total)
        pending.append((image, labels))
        if len(pending) == batch_size:
            yield from flush()
            done += len(pending)
            pending.clear()
            if on_batch is not None:
                on_batch(done, total)
    if pending:
        yield from flush()
        done += len(pending)
        if on_batch is not None:
            on_batch(done, total)


def confusion_matrix_of_split(predictor, dataset, split="val", *, on_image=None, **options):
    """Counts the confusion matrix of a model's argmax over a split.

    Args:
        predictor: Predictor or keras.Model (see `split_logits`).
        dataset: tf_enet.data.SegmentationDataset.
        split: str. Split to count.
        on_image: callable `(index, labels, classes)` or None, called for
            every image with its position in the split, its labels and
            predicted classes, int arrays `[h, w]` at the scored size (for
            scores a confusion matrix cannot give, such as Cityscapes'
            instance-weighted iIoU).
        **options: for `split_logits`: `limit`, `sample`, `seed`,
            `batch_size`, `input_size`, `resize_labels`, `on_batch`.

    Returns:
        np.ndarray int64 `[num_classes, num_classes]`; rows are true
        classes, columns predictions.

    Raises:
        As `split_logits`.
    """
    info = dataset.info
    matrix = np.zeros((info.num_classes, info.num_classes), np.int64)
    for index, logits, labels in split_logits(predictor, dataset, split, **options):
        classes = np.argmax(logits, axis=-1)
        matrix += confusion_lib.confusion_matrix(
            labels, classes, info.num_classes, info.ignore_index
        )
        if on_image is not None:
            on_image(index, labels, classes)
    return matrix


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
    `confusion_matrix_of_split`, ignored pixels excluded, and every score derives
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
        DatasetError: the split is missing, unlabelled (no labelled pixel:
            `tf_enet.data.check_scoreable`, which also warns, in the log,
            about masks that look saved as 0/255) or has bad files.
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
    # Masks with the ignore id where a class should be would score only the
    # classes left: said before any model runs.
    scored = reader.labelled_pairs(dataset, split, limit)
    for warning in checks.check_scoreable(info, scan_files(dataset, scored, split)):
        logging.warning("%s", warning)
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

    confusion = confusion_matrix_of_split(
        predictor,
        dataset,
        split,
        limit=limit,
        batch_size=batch_size,
        input_size=input_size,
        on_batch=progress,
        on_image=on_image,
    )
    result = confusion_lib.scores(confusion)
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
