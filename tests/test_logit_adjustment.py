"""Tests of the logit adjustment: the folded bias and the alpha search."""

import math

import numpy as np
import pytest

import tf_enet
from tf_enet import data as data_lib
from tf_enet import inference, logit_adjustment
from tf_enet import metrics as metrics_lib
from tf_enet.training.logit_adjustment import adjustment_scores

from helpers import IGNORE, SHAPE_CLASSES, make_shapes_dataset

COLOURS = np.array([c[2] for c in SHAPE_CLASSES], np.float32)
# "ring" outweighs the rest by e^3: its logit gains (1 - alpha) * 3.
WEIGHTS = np.array([1.0, 1.0, 1.0, math.exp(3.0)], np.float32)


def nearest_colour(images):
    """Class ids of the shapes images: the nearest class colour (noise is small)."""
    distance = np.linalg.norm(images[..., None, :] - COLOURS, axis=-1)
    return np.argmin(distance, axis=-1)  # [batch, height, width]


def weighted_logits(images):
    """Logits of a model that learned the classes and the weights' log shift."""
    one_hot = np.eye(len(COLOURS), dtype=np.float32)[nearest_colour(np.asarray(images))]
    return one_hot + np.log(WEIGHTS)


def test_adjustment_scores_undo_the_weights_shift(tmp_path):
    dataset = data_lib.get_dataset(
        "folder", make_shapes_dataset(tmp_path / "data", num_train=6, num_val=2)
    )
    predictor = inference.Predictor(weighted_logits, dataset.info)
    scores = adjustment_scores(predictor, dataset, WEIGHTS, "train")
    assert sorted(scores) == list(logit_adjustment.ALPHAS)
    # Independent references: at alpha <= 0.6 the ring's 3 * (1 - alpha) >= 1.2
    # beats every other logit, from 0.7 (0.9) on the nearest colour wins.
    by_colour = all_ring = 0
    for images, labels in data_lib.make_eval_dataset(dataset, "train", batch_size=1):
        classes = nearest_colour(images.numpy())
        by_colour = by_colour + metrics_lib.confusion_matrix(labels, classes, 4, IGNORE)
        all_ring = all_ring + metrics_lib.confusion_matrix(
            labels, np.full_like(classes, 3), 4, IGNORE
        )
    for alpha in logit_adjustment.ALPHAS:
        expected = metrics_lib.scores(all_ring if alpha <= 0.6 else by_colour)
        assert scores[alpha]["mean_iou"] == pytest.approx(expected["mean_iou"])
    assert scores[0.0]["mean_iou"] < 0.25 < 0.95 < scores[1.0]["mean_iou"]
    # The ties from 0.7 to 1 resolve to the weakest adjustment.
    assert logit_adjustment.best_alpha(scores) == 0.7
    with pytest.raises(ValueError, match="4 finite, non-negative class weights"):
        adjustment_scores(predictor, dataset, [1.0, -1.0, 1.0, 1.0])


def test_fold_adjustment_subtracts_alpha_log_weights_from_the_logits():
    model = tf_enet.build_enet(4, stage_two_repeat=1)
    images = np.random.RandomState(0).uniform(0, 255, (2, 24, 40, 3)).astype("float32")
    before = model(images, training=False).numpy()
    logit_adjustment.fold_adjustment(model, WEIGHTS, 0.7)
    after = model(images, training=False).numpy()
    np.testing.assert_allclose(after, before - 0.7 * np.log(WEIGHTS), atol=1e-5)
    logit_adjustment.fold_adjustment(model, WEIGHTS, -0.7)
    np.testing.assert_allclose(model(images, training=False).numpy(), before, atol=1e-5)
    encoder = tf_enet.build_enet_encoder(4, stage_two_repeat=1)
    with pytest.raises(ValueError, match="no layer 'fullconv'"):
        logit_adjustment.fold_adjustment(encoder, WEIGHTS, 0.5)
    with pytest.raises(ValueError, match="4 finite, non-negative class weights"):
        logit_adjustment.fold_adjustment(model, WEIGHTS[:3], 0.5)


def test_a_class_without_weight_keeps_its_logits():
    # Median frequency balancing gives a class absent from the training
    # split weight 0: the adjustment leaves it as trained (offset log 1 = 0)
    # and still moves the others by alpha * log(w).
    model = tf_enet.build_enet(4, stage_two_repeat=1)
    images = np.random.RandomState(1).uniform(0, 255, (1, 16, 24, 3)).astype("float32")
    before = model(images, training=False).numpy()
    weights = np.array([0.5, 2.0, 1.0, 0.0], np.float32)
    logit_adjustment.fold_adjustment(model, weights, 1.0)
    after = model(images, training=False).numpy()
    expected_shift = np.array([-math.log(0.5), -math.log(2.0), 0.0, 0.0], np.float32)
    np.testing.assert_allclose(
        after - before, np.broadcast_to(expected_shift, before.shape), atol=1e-5
    )
    with pytest.raises(ValueError, match="at least one positive"):
        logit_adjustment.log_weights([0.0, 0.0], 2)
