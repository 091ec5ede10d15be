"""Tests of the confusion matrix and scores on tiny hand-made masks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_enet import metrics
from tf_enet.losses import WeightedSparseCategoricalCrossentropy

IGNORE = 255

# Rows of the 2x4 masks; the last label is ignored.
LABELS = np.array([[0, 0, 1, 1], [2, 2, 2, IGNORE]])
PREDICTIONS = np.array([[0, 1, 1, 2], [2, 2, 0, 1]])
# true 0: predicted 0, 1        -> [1, 1, 0]
# true 1: predicted 1, 2        -> [0, 1, 1]
# true 2: predicted 2, 2, 0     -> [1, 0, 2]
# (the ignored pixel, predicted 1, is not counted)
EXPECTED_CONFUSION = [[1, 1, 0], [0, 1, 1], [1, 0, 2]]


def test_confusion_matrix_by_hand():
    confusion = metrics.confusion_matrix(LABELS, PREDICTIONS, 3, IGNORE)
    assert confusion.dtype == np.int64
    np.testing.assert_array_equal(confusion, EXPECTED_CONFUSION)


def test_scores_by_hand():
    result = metrics.scores(EXPECTED_CONFUSION)
    # IoU = TP / (labelled + predicted - TP):
    # class 0: 1 / (2 + 2 - 1) = 1/3; class 1: 1 / (2 + 2 - 1) = 1/3;
    # class 2: 2 / (3 + 3 - 2) = 1/2.
    np.testing.assert_allclose(result["per_class_iou"], [1 / 3, 1 / 3, 1 / 2])
    assert result["mean_iou"] == pytest.approx((1 / 3 + 1 / 3 + 1 / 2) / 3)  # 0.3889
    # 4 of 7 labelled pixels right.
    assert result["global_accuracy"] == pytest.approx(4 / 7)
    # Recall per class: 1/2, 1/2, 2/3.
    np.testing.assert_allclose(result["per_class_accuracy"], [1 / 2, 1 / 2, 2 / 3])
    assert result["class_accuracy"] == pytest.approx((1 / 2 + 1 / 2 + 2 / 3) / 3)


def test_perfect_prediction_scores_one():
    confusion = metrics.confusion_matrix(LABELS, np.where(LABELS == IGNORE, 0, LABELS), 3, IGNORE)
    np.testing.assert_array_equal(confusion, np.diag([2, 2, 3]))
    result = metrics.scores(confusion)
    assert result["mean_iou"] == 1.0
    assert result["global_accuracy"] == 1.0 and result["class_accuracy"] == 1.0


def test_absent_class_is_nan_and_left_out_of_the_means():
    # Class 3 is neither labelled nor predicted: no IoU, no accuracy.
    confusion = metrics.confusion_matrix(LABELS, PREDICTIONS, 4, IGNORE)
    np.testing.assert_array_equal(confusion[:3, :3], EXPECTED_CONFUSION)
    assert not confusion[3].any() and not confusion[:, 3].any()
    result = metrics.scores(confusion)
    assert np.isnan(result["per_class_iou"][3])
    assert np.isnan(result["per_class_accuracy"][3])
    assert result["mean_iou"] == pytest.approx((1 / 3 + 1 / 3 + 1 / 2) / 3)
    assert result["class_accuracy"] == pytest.approx((1 / 2 + 1 / 2 + 2 / 3) / 3)


def test_predicted_but_unlabelled_class_has_iou_zero_and_no_accuracy():
    labels = np.array([[0, 0, 1, 1]])
    predictions = np.array([[0, 2, 1, 1]])
    result = metrics.scores(metrics.confusion_matrix(labels, predictions, 3, IGNORE))
    # class 0: 1 / (2 + 1 - 1) = 1/2; class 1: 2 / 2 = 1; class 2: 0 / 1 = 0.
    np.testing.assert_allclose(result["per_class_iou"], [1 / 2, 1, 0])
    assert result["mean_iou"] == pytest.approx(1 / 2)
    # Class 2 has no labelled pixel: recall undefined, left out.
    assert np.isnan(result["per_class_accuracy"][2])
    assert result["class_accuracy"] == pytest.approx((1 / 2 + 1) / 2)
    assert result["global_accuracy"] == pytest.approx(3 / 4)


def test_nothing_labelled_gives_nan_not_an_error():
    confusion = metrics.confusion_matrix(np.full((2, 2), IGNORE), np.zeros((2, 2)), 3, IGNORE)
    assert not confusion.any()
    result = metrics.scores(confusion)
    assert np.isnan(result["mean_iou"])
    assert np.isnan(result["global_accuracy"]) and np.isnan(result["class_accuracy"])


def test_labels_outside_the_classes_are_ignored_like_the_ignore_id():
    labels = np.array([[0, 5, -1, 1]])
    predictions = np.array([[0, 1, 1, 1]])
    np.testing.assert_array_equal(
        metrics.confusion_matrix(labels, predictions, 2, IGNORE), [[1, 0], [0, 1]]
    )


def test_predictions_outside_the_classes_are_refused():
    # Counted as label * n + prediction they would land in the next row.
    with pytest.raises(ValueError, match=r"\[0, 3\).*\[3\]"):
        metrics.confusion_matrix(LABELS, np.full(LABELS.shape, 3), 3, IGNORE)
    with pytest.raises(ValueError, match="same shape"):
        metrics.confusion_matrix(LABELS, PREDICTIONS[:1], 3, IGNORE)


def test_agrees_with_the_keras_mean_iou_training_reports():
    rng = np.random.RandomState(0)
    labels = rng.randint(0, 4, (3, 8, 8))
    labels[rng.uniform(size=labels.shape) < 0.2] = IGNORE
    logits = rng.normal(size=(3, 8, 8, 4)).astype("float32")
    keras_miou = keras.metrics.MeanIoU(num_classes=4, ignore_class=IGNORE, sparse_y_pred=False)
    keras_miou.update_state(labels, logits)
    confusion = metrics.confusion_matrix(labels, logits.argmax(-1), 4, IGNORE)
    np.testing.assert_array_equal(keras_miou.total_cm.numpy(), confusion)
    assert float(keras_miou.result()) == pytest.approx(
        metrics.scores(confusion)["mean_iou"], rel=1e-6
    )


def _random_labels_and_logits(seed, num_classes=5, shape=(3, 9, 11)):
    rng = np.random.RandomState(seed)
    # Ids -1 and num_classes + 1 are outside the classes; IGNORE is ignored.
    labels = rng.randint(-1, num_classes + 2, shape)
    labels[rng.uniform(size=shape) < 0.2] = IGNORE
    logits = rng.normal(size=shape + (num_classes,)).astype("float32")
    return labels.astype("int32"), logits


@pytest.mark.parametrize("run", ["eager", "graph", "xla"])
def test_fast_mean_iou_counts_what_keras_mean_iou_counts(run):
    fast = metrics.MeanIoU(num_classes=5, ignore_class=IGNORE)
    reference = keras.metrics.MeanIoU(num_classes=5, ignore_class=IGNORE, sparse_y_pred=False)
    update = fast.update_state
    if run != "eager":
        # Unknown sizes, as in a training step whose last batch is smaller.
        update = tf.function(
            update,
            jit_compile=run == "xla",
            input_signature=[
                tf.TensorSpec([None, None, None], tf.int32),
                tf.TensorSpec([None, None, None, 5], tf.float32),
            ],
        )
    for seed in (0, 1):
        labels, logits = _random_labels_and_logits(seed)
        update(labels, logits)
        reference.update_state(labels, logits)
    np.testing.assert_array_equal(fast.total_cm.numpy(), reference.total_cm.numpy())
    assert float(fast.result()) == float(reference.result())
    # And the confusion matrix the evaluation reports.
    expected = sum(
        metrics.confusion_matrix(*_labels_and_argmax(seed), 5, IGNORE) for seed in (0, 1)
    )
    np.testing.assert_array_equal(fast.total_cm.numpy(), expected)


def _labels_and_argmax(seed):
    labels, logits = _random_labels_and_logits(seed)
    return labels, logits.argmax(-1)


def test_fast_mean_iou_with_sample_weights_is_keras_mean_iou():
    labels, logits = _random_labels_and_logits(2)
    weights = np.random.RandomState(3).randint(0, 3, labels.shape)
    fast = metrics.MeanIoU(num_classes=5, ignore_class=IGNORE)
    reference = keras.metrics.MeanIoU(num_classes=5, ignore_class=IGNORE, sparse_y_pred=False)
    fast.update_state(labels, logits, sample_weight=weights)
    reference.update_state(labels, logits, sample_weight=weights)
    np.testing.assert_array_equal(fast.total_cm.numpy(), reference.total_cm.numpy())


def test_fast_mean_iou_config_round_trip():
    metric = metrics.MeanIoU(num_classes=4, ignore_class=IGNORE, name="mean_iou")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert type(restored) is metrics.MeanIoU
    assert (restored.num_classes, restored.ignore_class, restored.name) == (4, IGNORE, "mean_iou")
    assert restored.sparse_y_pred is False


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fast_mean_iou_in_a_compiled_training_step(jit_compile):
    # train.py --jit_compile: Keras XLA-compiles the loss and metric with the step.
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 1)(inputs))
    fast = metrics.MeanIoU(num_classes=4, ignore_class=IGNORE, name="fast")
    reference = keras.metrics.MeanIoU(
        num_classes=4, ignore_class=IGNORE, sparse_y_pred=False, name="reference"
    )
    model.compile(
        optimizer="adam",
        loss=WeightedSparseCategoricalCrossentropy(class_weights=[1, 2, 3, 4], ignore_index=IGNORE),
        metrics=[fast, reference],
        jit_compile=jit_compile,
    )
    rng = np.random.RandomState(5)
    images = rng.uniform(size=(2, 8, 8, 3)).astype("float32")
    labels = rng.randint(0, 4, (2, 8, 8))
    labels[0, 0] = IGNORE
    logs = model.train_on_batch(images, labels, return_dict=True)
    assert fast.total_cm.numpy().sum() == labels.size - 8
    np.testing.assert_array_equal(fast.total_cm.numpy(), reference.total_cm.numpy())
    assert logs["fast"] == logs["reference"]
