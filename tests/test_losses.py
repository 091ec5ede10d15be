"""Tests of the class-weighted cross-entropy against a numpy reference."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_enet.losses import WeightedSparseCategoricalCrossentropy

IGNORE = 255


def reference_loss(labels, logits, class_weights, ignore_index=IGNORE):
    """sum_i w[y_i] * ce_i / sum_i w[y_i] over labelled pixels, in float64."""
    labels = np.asarray(labels).reshape(-1)
    logits = np.asarray(logits, np.float64).reshape(labels.size, -1)
    valid = labels != ignore_index
    labels, logits = labels[valid], logits[valid]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    ce = -log_probs[np.arange(labels.size), labels]
    weights = np.asarray(class_weights, np.float64)[labels]
    return float((weights * ce).sum() / weights.sum()) if weights.sum() else 0.0


def random_batch(seed, shape=(2, 5, 7), num_classes=4, ignore_share=0.3):
    rng = np.random.RandomState(seed)
    labels = rng.randint(0, num_classes, shape)
    labels[rng.uniform(size=shape) < ignore_share] = IGNORE
    logits = rng.normal(0, 3, shape + (num_classes,)).astype("float32")
    return labels.astype("int32"), logits


# Two classes, the same logits [ln 3, 0] at every pixel: p(class 0) = 3/4, so
# a class-0 pixel costs ln(4/3) and a class-1 pixel ln(4).
CE0, CE1 = math.log(4 / 3), math.log(4)
TWO_PIXEL_LOGITS = np.array([[[[math.log(3), 0.0], [math.log(3), 0.0]]]], "float32")


def test_weights_change_the_loss_by_hand():
    labels = np.array([[[0, 1]]])
    unweighted = WeightedSparseCategoricalCrossentropy(class_weights=[1, 1])
    weighted = WeightedSparseCategoricalCrossentropy(class_weights=[1, 3])
    # (ln(4/3) + ln 4) / 2 = 0.8370 and (ln(4/3) + 3 ln 4) / (1 + 3) = 1.1116.
    assert float(unweighted(labels, TWO_PIXEL_LOGITS)) == pytest.approx((CE0 + CE1) / 2, rel=1e-6)
    assert float(weighted(labels, TWO_PIXEL_LOGITS)) == pytest.approx((CE0 + 3 * CE1) / 4, rel=1e-6)
    # Not the mean of w * ce over pixels: (ln(4/3) + 3 ln 4) / 2 = 2.2233.
    assert float(weighted(labels, TWO_PIXEL_LOGITS)) != pytest.approx((CE0 + 3 * CE1) / 2, rel=1e-3)


def test_scaling_all_weights_does_not_change_the_loss():
    labels, logits = random_batch(0)
    losses = [
        float(WeightedSparseCategoricalCrossentropy(class_weights=w)(labels, logits))
        for w in ([0.5, 2.0, 1.0, 4.0], [5.0, 20.0, 10.0, 40.0])
    ]
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_numpy_reference(seed):
    labels, logits = random_batch(seed)
    weights = [0.2, 1.0, 3.5, 7.0]
    loss = WeightedSparseCategoricalCrossentropy(class_weights=weights)
    expected = reference_loss(labels, logits, weights)
    assert float(loss(labels, logits)) == pytest.approx(expected, rel=1e-5)
    # Uniform weights are the plain mean over labelled pixels.
    plain = WeightedSparseCategoricalCrossentropy(num_classes=4)
    assert float(plain(labels, logits)) == pytest.approx(
        reference_loss(labels, logits, [1, 1, 1, 1]), rel=1e-5
    )


def test_ignored_pixels_count_in_neither_numerator_nor_denominator():
    loss = WeightedSparseCategoricalCrossentropy(class_weights=[1, 3])
    labels = np.array([[[0, 1, IGNORE, IGNORE]]])
    # Ignored pixels with confident wrong logits: they would add loss to
    # the numerator, or weight 1 each to the denominator (giving
    # (ln(4/3) + 3 ln 4) / 6 = 0.7411).
    logits = np.array(
        [[[[math.log(3), 0.0], [math.log(3), 0.0], [-50.0, 50.0], [50.0, -50.0]]]], "float32"
    )
    assert float(loss(labels, logits)) == pytest.approx((CE0 + 3 * CE1) / 4, rel=1e-6)
    # And they get no gradient.
    logits = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = loss(labels, logits)
    gradient = tape.gradient(value, logits).numpy()
    np.testing.assert_array_equal(gradient[0, 0, 2:], 0.0)
    assert np.all(gradient[0, 0, :2] != 0.0)


def test_all_ignored_batch_gives_zero_loss_and_zero_gradient():
    loss = WeightedSparseCategoricalCrossentropy(class_weights=[1.0, 2.0, 3.0])
    labels = np.full((2, 3, 3), IGNORE)
    logits = tf.constant(np.random.RandomState(0).normal(size=(2, 3, 3, 3)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = loss(labels, logits)
    assert float(value) == 0.0
    gradient = tape.gradient(value, logits).numpy()
    assert np.isfinite(gradient).all() and not gradient.any()


def test_class_with_zero_weight_only_gives_zero_not_nan():
    # "mfb" gives weight 0 to classes absent from the training split.
    loss = WeightedSparseCategoricalCrossentropy(class_weights=[0.0, 1.0])
    assert float(loss(np.zeros((1, 2, 2)), np.ones((1, 2, 2, 2)))) == 0.0


def test_labels_with_a_channel_axis_and_other_ignore_ids():
    labels, logits = random_batch(3)
    loss = WeightedSparseCategoricalCrossentropy(class_weights=[1, 2, 3, 4])
    np.testing.assert_allclose(loss(labels[..., None], logits), loss(labels, logits), rtol=1e-6)
    other = WeightedSparseCategoricalCrossentropy(class_weights=[1, 2, 3, 4], ignore_index=-1)
    np.testing.assert_allclose(
        other(np.where(labels == IGNORE, -1, labels), logits), loss(labels, logits), rtol=1e-6
    )


def test_config_round_trip():
    loss = WeightedSparseCategoricalCrossentropy(
        class_weights=[0.5, 2.0, 4.0], ignore_index=7, name="wce"
    )
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, WeightedSparseCategoricalCrossentropy)
    assert restored.get_config() == loss.get_config()
    assert restored.class_weights == [0.5, 2.0, 4.0]
    assert restored.num_classes == 3 and restored.ignore_index == 7
    assert restored.name == "wce"
    labels, logits = random_batch(4, num_classes=3)
    labels = np.where(labels == IGNORE, 7, labels)
    np.testing.assert_allclose(restored(labels, logits), loss(labels, logits))
    unweighted = WeightedSparseCategoricalCrossentropy(num_classes=5)
    assert (
        WeightedSparseCategoricalCrossentropy.from_config(unweighted.get_config()).get_config()
        == unweighted.get_config()
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "class_weights"),
        ({"class_weights": [1.0, 2.0], "num_classes": 3}, "num_classes=3"),
        ({"class_weights": [1.0, -2.0]}, "non-negative"),
    ],
)
def test_invalid_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WeightedSparseCategoricalCrossentropy(**kwargs)


def test_one_training_step_lowers_the_loss():
    labels, _ = random_batch(5, shape=(4, 6, 6), num_classes=3)
    images = np.eye(3, dtype="float32")[np.where(labels == IGNORE, 0, labels)]
    model = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Conv2D(3, 1)])
    loss = WeightedSparseCategoricalCrossentropy(class_weights=[1.0, 2.0, 0.5])
    model.compile(keras.optimizers.SGD(0.5), loss=loss)
    before = model.evaluate(images, labels, verbose=0)
    model.fit(images, labels, epochs=5, verbose=0)
    assert model.evaluate(images, labels, verbose=0) < before


def reference_gradient(labels, logits, class_weights, ignore_index=IGNORE):
    """d loss / d logits = w[y] * (softmax - onehot(y)) / sum w, in float64."""
    shape = logits.shape
    labels = np.asarray(labels).reshape(-1)
    logits = np.asarray(logits, np.float64).reshape(labels.size, -1)
    valid = labels != ignore_index
    safe = np.where(valid, labels, 0)
    shifted = logits - logits.max(axis=1, keepdims=True)
    softmax = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    onehot = np.eye(logits.shape[1])[safe]
    weights = np.where(valid, np.asarray(class_weights, np.float64)[safe], 0.0)
    return (weights[:, None] * (softmax - onehot) / weights.sum()).reshape(shape)


@pytest.mark.parametrize("seed", [0, 1])
def test_gradient_matches_the_softmax_reference(seed):
    labels, logits = random_batch(seed)
    weights = [0.2, 1.0, 3.5, 7.0]
    loss = WeightedSparseCategoricalCrossentropy(class_weights=weights)
    logits = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = loss(labels, logits)
    gradient = tape.gradient(value, logits).numpy()
    np.testing.assert_allclose(
        gradient, reference_gradient(labels, logits.numpy(), weights), atol=1e-7, rtol=1e-5
    )


def test_large_logits_give_finite_exact_values():
    # exp(1000) overflows float32: the loss must subtract the maximum first.
    labels = np.array([[[0, 1, 2]]], "int32")
    logits = np.array([[[[1000.0, 0.0, -1000.0]] * 3]], "float32")
    loss = WeightedSparseCategoricalCrossentropy(num_classes=3)
    logits = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = loss(labels, logits)
    # Pixel costs 0, 1000 and 2000: their mean is 1000.
    assert float(value) == pytest.approx(1000.0, rel=1e-6)
    assert np.isfinite(tape.gradient(value, logits).numpy()).all()
