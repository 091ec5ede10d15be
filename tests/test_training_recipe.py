"""Tests of the recipe options: warm-up, colour jitter, training on several
splits and keeping the last epoch's model."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_enet import artifacts, training
from tf_enet import data as data_lib
from tf_enet.training import TrainConfig
from tf_enet.training.callbacks import BestModelCheckpoint
from tf_enet.training.warmup import LinearWarmup

from helpers import make_shapes_dataset


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_ENET_CACHE", str(tmp_path / "cache"))


def test_warmup_rises_linearly_then_follows_the_poly_schedule():
    config = TrainConfig(learning_rate=0.1, lr_schedule="poly", warmup_epochs=2)
    schedule = training.learning_rate_schedule(config, steps_per_epoch=10, epochs=5)
    poly = lambda s: 0.1 * (1 - s / 50) ** 0.9  # noqa: E731  the schedule by hand
    # Step s of the warm-up (20 steps) trains at (s + 1) / 20 of poly(s).
    assert float(schedule(0)) == pytest.approx(poly(0) / 20)
    assert float(schedule(9)) == pytest.approx(poly(9) * 10 / 20)
    assert float(schedule(19)) == pytest.approx(poly(19))
    assert float(schedule(30)) == pytest.approx(poly(30))
    # A constant rate (step schedule shorter than one period) warms up too.
    constant = training.learning_rate_schedule(
        TrainConfig(learning_rate=0.1, warmup_epochs=1), 4, 3
    )
    assert [float(constant(s)) for s in (0, 1, 3, 7)] == pytest.approx([0.025, 0.05, 0.1, 0.1])
    # No warm-up: the plain Keras schedule, unchanged.
    plain = training.learning_rate_schedule(TrainConfig(lr_schedule="poly"), 10, 5)
    assert isinstance(plain, keras.optimizers.schedules.PolynomialDecay)


def test_warmup_survives_a_saved_optimizer():
    schedule = LinearWarmup(
        keras.optimizers.schedules.PolynomialDecay(0.1, 100, end_learning_rate=0.0), 10
    )
    config = keras.saving.serialize_keras_object(schedule)
    restored = keras.saving.deserialize_keras_object(json.loads(json.dumps(config)))
    assert float(restored(4)) == pytest.approx(float(schedule(4)))
    assert float(restored(4)) == pytest.approx(0.1 * (1 - 4 / 100) * 5 / 10)
    with pytest.raises(ValueError, match="warmup_steps"):
        LinearWarmup(0.1, 0)


def test_color_jitter_shifts_a_grey_image_by_at_most_its_brightness_range():
    # On a flat grey image contrast (around the mean) and saturation (no
    # chroma) change nothing: only the brightness shift, |d| <= 0.25 * 64.
    grey = tf.fill([8, 8, 3], 100.0)
    shifts = []
    for i in range(20):
        out = data_lib.color_jitter(grey, tf.constant([i, 7], tf.int64), 0.25).numpy()
        assert np.ptp(out) == pytest.approx(0.0, abs=1e-3)
        shifts.append(out[0, 0, 0] - 100.0)
    assert max(abs(s) for s in shifts) <= 16.0 + 1e-3
    assert np.std(shifts) > 2.0  # it does move
    # Same seed, same result; the output stays in [0, 255].
    image = tf.random.stateless_uniform([16, 16, 3], [1, 2], maxval=255.0)
    a = data_lib.color_jitter(image, tf.constant([5, 5], tf.int64), 0.9).numpy()
    b = data_lib.color_jitter(image, tf.constant([5, 5], tf.int64), 0.9).numpy()
    np.testing.assert_array_equal(a, b)
    assert a.min() >= 0.0 and a.max() <= 255.0


def test_jitter_changes_colours_and_keeps_masks_and_padding(tmp_path):
    root = make_shapes_dataset(tmp_path / "data", num_train=4, num_val=1, size=32)
    ds = data_lib.get_dataset("folder", root)
    common = dict(height=32, width=32, batch_size=4, seed=1, min_scale=0.5, max_scale=0.9)
    plain = next(iter(data_lib.make_train_dataset(ds, **common)))
    jittered = next(iter(data_lib.make_train_dataset(ds, color_jitter=0.5, **common)))
    np.testing.assert_array_equal(plain[1].numpy(), jittered[1].numpy())
    # Padding: ignore in the mask and black in the plain image (the shapes
    # images label their outlines ignore too, and those are not black).
    padding = (plain[1].numpy() == ds.info.ignore_index) & np.all(plain[0].numpy() == 0, -1)
    assert padding.sum() > 4 * 32 * 32 * 0.1  # scales below 0.9 pad every crop
    assert np.all(jittered[0].numpy()[padding] == 0)
    assert not np.allclose(plain[0].numpy()[~padding], jittered[0].numpy()[~padding])


def test_training_on_train_and_val_reads_both_splits(tmp_path):
    root = make_shapes_dataset(tmp_path / "data", num_train=6, num_val=4, size=32)
    ds = data_lib.get_dataset("folder", root)
    both = data_lib.make_train_dataset(ds, ("train", "val"), height=32, width=32, batch_size=1)
    assert sum(1 for _ in both) == 10
    config = TrainConfig(
        dataset="folder", data_dir=root, batch_size=3, train_splits="train,val", select="last"
    )
    assert training.steps_per_epoch(config, ds) == 3  # 10 // 3
    stats = data_lib.ScanResult.combine([data_lib.scan(ds, "train"), data_lib.scan(ds, "val")])
    train, val = data_lib.scan(ds, "train"), data_lib.scan(ds, "val")
    assert stats.split == "train+val" and stats.num_images == 10
    np.testing.assert_array_equal(stats.pixel_counts, train.pixel_counts + val.pixel_counts)
    assert stats.orientations == train.orientations + val.orientations


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(train_splits="train,val"), "select='last'"),
        (dict(train_splits="train,,val", select="last"), "`train_splits`"),
        (dict(train_splits="train,train"), "`train_splits`"),
        (dict(color_jitter=1.0), "`color_jitter`"),
        (dict(warmup_epochs=-1), "`warmup_epochs`"),
        (dict(select="first"), "`select`"),
    ],
)
def test_recipe_options_are_checked(options, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**options)


def _tiny_model(value):
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1, name="d")(inputs))
    model.get_layer("d").bias.assign([value])
    return model


@pytest.mark.parametrize("keep, kept_epoch", [("best", 1), ("last", 3)])
def test_the_kept_model_is_the_best_or_the_last(tmp_path, keep, kept_epoch):
    path = str(tmp_path / artifacts.MODEL_FILE)
    callback = BestModelCheckpoint(path, keep=keep)
    for epoch, miou in enumerate([0.5, 0.4, 0.3]):
        callback.set_model(_tiny_model(float(epoch + 1)))
        callback.on_epoch_end(epoch, {artifacts.VAL_MEAN_IOU: miou, "loss": 1.0})
    record = artifacts.read_json(os.path.join(tmp_path, artifacts.BEST_FILE))
    assert record["epoch"] == kept_epoch
    assert record[artifacts.VAL_MEAN_IOU] == pytest.approx([0.5, 0.4, 0.3][kept_epoch - 1])
    saved = keras.saving.load_model(path, compile=False)
    assert float(saved.get_layer("d").bias.numpy()[0]) == kept_epoch


@pytest.mark.slow
def test_a_final_model_run_trains_on_both_splits_and_keeps_the_last_epoch(tmp_path):
    root = make_shapes_dataset(tmp_path / "data", num_train=8, num_val=4, size=32)
    config = TrainConfig(
        dataset="folder",
        data_dir=root,
        checkpoint_dir=str(tmp_path / "run"),
        height=32,
        width=32,
        batch_size=4,
        stages="full",
        epochs=3,
        stage_two_repeat=1,
        train_splits="train,val",
        select="last",
        color_jitter=0.3,
        warmup_epochs=1,
        logit_adjustment="off",
        verbose=0,
    )
    results = training.train(config)
    assert results["full"]["epoch"] == 3
    record = artifacts.read_json(os.path.join(config.checkpoint_dir, artifacts.CONFIG_FILE))
    assert record["train"]["train_splits"] == "train,val"
    assert record["train"]["select"] == "last"
    # (8 + 4) // 4 optimizer steps per epoch: val is trained on.
    with open(os.path.join(config.checkpoint_dir, artifacts.HISTORY_FILE)) as f:
        assert len(f.read().splitlines()) == 4
