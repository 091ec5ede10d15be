"""The Cityscapes pixel-level benchmark: IoU and iIoU of classes and categories.

The official benchmark (cityscapesScripts
`evaluation/evalPixelLevelSemanticLabeling.py`) reports four means:

- class IoU: `TP / (TP + FP + FN)` per training class, averaged over the 19;
- category IoU: the same with the 7 categories as classes (a pixel of
  "car" predicted as "truck" is a true positive of "vehicle");
- class iIoU: `iTP / (iTP + FP + iFN)` for the 8 classes with instances,
  where every ground-truth instance's true positive and false negative
  pixels are weighted by `average size of the class / size of the
  instance`, so that large objects do not dominate; false positives are not
  weighted (they belong to no instance);
- category iIoU: the same for "human" and "vehicle".

Pixels whose ground truth is not one of the 19 classes are ignored; a class
(or category) with no pixels in either labels or predictions has no score
(NaN) and is left out of the mean, as the official script does. Instances
come from the `*_gtFine_instanceIds.png` files (see
`tf_enet.data.cityscapes.read_instance_ids`); crowd regions (ids below
1000) and classes outside the benchmark (caravan, trailer) carry no
instance weight.

The official figures are computed at the full 1024x2048 resolution: the
instance weights depend on instance sizes in pixels, so labels, predictions
and instance ids passed to `CityscapesIoU.update` must all be at that
resolution to reproduce them.

Reference: Cordts et al., "The Cityscapes Dataset for Semantic Urban Scene
Understanding", CVPR 2016, Sec. 3.2.
"""

import numpy as np

from tf_enet.data import cityscapes

# Average instance size in pixels (at 1024x2048) of each class with
# instances, from the official evaluation script's `avgClassSize`.
AVERAGE_INSTANCE_SIZE = {
    "person": 3462.4756337644,
    "rider": 3930.4788056518,
    "car": 12794.0202738185,
    "truck": 27855.1264367816,
    "bus": 35732.1511111111,
    "train": 67583.7075812274,
    "motorcycle": 6298.7200839748,
    "bicycle": 4672.3249222261,
}
_NUM_CLASSES = len(cityscapes.CLASS_NAMES)
_NUM_CATEGORIES = len(cityscapes.CATEGORY_NAMES)
_IGNORE = cityscapes.IGNORE_INDEX
_CATEGORY_OF = np.asarray(cityscapes.CLASS_CATEGORIES, np.int64)
# One entry per training class: its average instance size, or 0 when the
# class has no instances.
_AVERAGE_SIZE = np.asarray([AVERAGE_INSTANCE_SIZE.get(n, 0.0) for n in cityscapes.CLASS_NAMES])
_HAS_INSTANCES = _AVERAGE_SIZE > 0
_CATEGORY_HAS_INSTANCES = np.asarray(
    [all(_HAS_INSTANCES[_CATEGORY_OF == c]) for c in range(_NUM_CATEGORIES)]
)
# label id -> training class id, or -1 for labels outside the benchmark.
_LABEL_TO_CLASS = np.asarray(
    [cityscapes.LABEL_ID_TO_TRAIN_ID.get(i, -1) for i in range(cityscapes.NUM_LABEL_IDS)],
    np.int64,
)


class CityscapesIoU:
    """Accumulates the four Cityscapes benchmark scores over images.

    Feed it one image (or a batch) at a time with `update`, then read
    `result`. All inputs are at the same resolution; for the official
    figures, the full 1024x2048 one (see the module docstring).

    Example:

        metric = CityscapesIoU()
        for (image, label_ids, instance_ids) in ds.files_with_instances("val"):
            ...  # predict training class ids for the image
            metric.update(train_ids, predictions, read_instance_ids(instance_ids))
        scores = metric.result()   # scores["class_iiou"], ...
    """

    def __init__(self):
        self.reset()

    def reset(self):
        """Forgets every image seen."""
        self.num_images = 0
        self._confusion = np.zeros((_NUM_CLASSES, _NUM_CLASSES), np.int64)
        self._class_tp = np.zeros(_NUM_CLASSES)  # instance-weighted
        self._class_fn = np.zeros(_NUM_CLASSES)
        self._category_tp = np.zeros(_NUM_CATEGORIES)
        self._category_fn = np.zeros(_NUM_CATEGORIES)

    def update(self, labels, predictions, instance_ids):
        """Adds images to the counts.

        Args:
            labels: int array-like `[H, W]` or `[batch, H, W]`. Training
                class ids 0-18, or the ignore id 255 (any value outside
                0-18 is ignored).
            predictions: int array-like of the same shape. Predicted
                training class ids 0-18.
            instance_ids: int array-like of the same shape. The Cityscapes
                instance ids of the images (`read_instance_ids`); padding
                may be 0. Instance ids are per image, so a batch is counted
                image by image.

        Raises:
            ValueError: if the shapes differ, are not 2-D or 3-D, or a
                prediction is not a class id.
        """
        labels = np.asarray(labels)
        predictions = np.asarray(predictions)
        instance_ids = np.asarray(instance_ids)
        if not labels.shape == predictions.shape == instance_ids.shape:
            raise ValueError(
                f"labels, predictions and instance_ids must have the same "
                f"shape; received {labels.shape}, {predictions.shape} and "
                f"{instance_ids.shape}."
            )
        if labels.ndim not in (2, 3):
            raise ValueError(
                f"CityscapesIoU.update expects [H, W] or [batch, H, W] "
                f"arrays; received shape {labels.shape}."
            )
        outside = (predictions < 0) | (predictions >= _NUM_CLASSES)
        if outside.any():
            raise ValueError(
                f"predictions must be training class ids in [0, "
                f"{_NUM_CLASSES}); received "
                f"{np.unique(predictions[outside])[:10].tolist()}."
            )
        if labels.ndim == 2:
            labels = labels[None]
            predictions = predictions[None]
            instance_ids = instance_ids[None]
        for image in zip(labels, predictions, instance_ids):
            self._add_image(*image)

    def _add_image(self, labels, predictions, instance_ids):
        labels = labels.astype(np.int64).ravel()
        predictions = predictions.astype(np.int64).ravel()
        instance_ids = instance_ids.astype(np.int64).ravel()
        valid = (labels >= 0) & (labels < _NUM_CLASSES)
        self._confusion += np.bincount(
            labels[valid] * _NUM_CLASSES + predictions[valid],
            minlength=_NUM_CLASSES * _NUM_CLASSES,
        ).reshape(_NUM_CLASSES, _NUM_CLASSES)
        self.num_images += 1

        # Instances of the benchmark's classes; `> 1000` as the official
        # script tests, which also leaves out crowd regions (plain label ids).
        is_instance = instance_ids > cityscapes.INSTANCE_ID_OFFSET
        ids = instance_ids[is_instance]
        label_ids = ids // cityscapes.INSTANCE_ID_OFFSET
        known = label_ids < cityscapes.NUM_LABEL_IDS
        classes = np.full(ids.shape, -1, np.int64)
        classes[known] = _LABEL_TO_CLASS[label_ids[known]]
        counted = classes >= 0
        if not counted.any():
            return
        ids, classes = ids[counted], classes[counted]
        predicted = predictions[is_instance][counted]
        instances, index = np.unique(ids, return_inverse=True)
        size = np.bincount(index).astype(np.float64)
        instance_class = _LABEL_TO_CLASS[instances // cityscapes.INSTANCE_ID_OFFSET]
        weight = _AVERAGE_SIZE[instance_class] / size
        class_hits = np.bincount(index, weights=(predicted == classes), minlength=instances.size)
        np.add.at(self._class_tp, instance_class, class_hits * weight)
        np.add.at(self._class_fn, instance_class, (size - class_hits) * weight)

        category = _CATEGORY_OF[instance_class]
        category_hits = np.bincount(
            index,
            weights=(_CATEGORY_OF[predicted] == _CATEGORY_OF[classes]),
            minlength=instances.size,
        )
        np.add.at(self._category_tp, category, category_hits * weight)
        np.add.at(self._category_fn, category, (size - category_hits) * weight)

    def result(self):
        """The benchmark's scores over all images seen.

        Returns:
            dict with
            - `class_iou`, `class_iiou`, `category_iou`, `category_iiou`:
              floats, the four means of the benchmark (NaN if nothing was
              seen);
            - `per_class_iou`, `per_class_iiou`: np.ndarray float64 [19],
              iIoU NaN for the classes without instances;
            - `per_category_iou`, `per_category_iiou`: np.ndarray float64
              [7], in the order of `cityscapes.CATEGORY_NAMES`, iIoU NaN
              except for "human" and "vehicle";
            - `class_names`, `category_names`: tuples of str;
            - `confusion`: np.ndarray int64 [19, 19], rows true classes;
            - `num_images`: int.
        """
        confusion = self._confusion.astype(np.float64)
        one_hot = np.eye(_NUM_CATEGORIES)[_CATEGORY_OF]  # [classes, categories]
        category_confusion = one_hot.T @ confusion @ one_hot

        class_tp, class_fp, class_fn = _counts(confusion)
        category_tp, category_fp, category_fn = _counts(category_confusion)
        per_class_iou = _ratio(class_tp, class_tp + class_fp + class_fn)
        per_category_iou = _ratio(category_tp, category_tp + category_fp + category_fn)
        per_class_iiou = _ratio(self._class_tp, self._class_tp + class_fp + self._class_fn)
        per_class_iiou[~_HAS_INSTANCES] = np.nan
        per_category_iiou = _ratio(
            self._category_tp,
            self._category_tp + category_fp + self._category_fn,
        )
        per_category_iiou[~_CATEGORY_HAS_INSTANCES] = np.nan
        return {
            "class_iou": _nanmean(per_class_iou),
            "class_iiou": _nanmean(per_class_iiou),
            "category_iou": _nanmean(per_category_iou),
            "category_iiou": _nanmean(per_category_iiou),
            "per_class_iou": per_class_iou,
            "per_class_iiou": per_class_iiou,
            "per_category_iou": per_category_iou,
            "per_category_iiou": per_category_iiou,
            "class_names": cityscapes.CLASS_NAMES,
            "category_names": cityscapes.CATEGORY_NAMES,
            "confusion": self._confusion.copy(),
            "num_images": self.num_images,
        }

    def summary(self):
        """The scores as plain Python values, for JSON reports.

        Returns:
            dict with the four means (`class_iou`, `class_iiou`,
            `category_iou`, `category_iiou`), `num_images`, and the tables
            `per_class_iou` (19 class names -> float), `per_class_iiou`
            (the 8 classes with instances), `per_category_iou` (7
            categories) and `per_category_iiou` ("human", "vehicle"). A
            score without pixels is NaN.
        """
        scores = self.result()

        def table(names, values, keep):
            return {n: float(v) for n, v, k in zip(names, values, keep) if k}

        classes, categories = scores["class_names"], scores["category_names"]
        every_class = np.ones(_NUM_CLASSES, bool)
        every_category = np.ones(_NUM_CATEGORIES, bool)
        return {
            "class_iou": scores["class_iou"],
            "class_iiou": scores["class_iiou"],
            "category_iou": scores["category_iou"],
            "category_iiou": scores["category_iiou"],
            "num_images": scores["num_images"],
            "per_class_iou": table(classes, scores["per_class_iou"], every_class),
            "per_class_iiou": table(classes, scores["per_class_iiou"], _HAS_INSTANCES),
            "per_category_iou": table(categories, scores["per_category_iou"], every_category),
            "per_category_iiou": table(
                categories, scores["per_category_iiou"], _CATEGORY_HAS_INSTANCES
            ),
        }


def _counts(confusion):
    """True positives, false positives and false negatives per row class."""
    tp = np.diag(confusion)
    return tp, confusion.sum(axis=0) - tp, confusion.sum(axis=1) - tp


def _ratio(numerator, denominator):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def _nanmean(values):
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")
