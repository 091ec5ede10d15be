"""Users' own datasets through `train`: what is refused before the first
epoch, what trains, and what the run directory records.

The trees are synthetic and small, built in tmp_path. Refusals are checked
with the training stage replaced by a function that fails the test, so they
prove the check comes before any epoch.
"""

import json
import os

import cv2
import numpy as np
import pytest

from tf_enet import artifacts, training
from tf_enet import data as data_lib
from tf_enet.training import TrainConfig, trainer

from helpers import make_shapes_dataset

CLASSES_4 = [
    {"name": "background", "color": [0, 0, 0]},
    {"name": "disc", "color": [255, 0, 0]},
    {"name": "box", "color": [0, 255, 0]},
    {"name": "never", "color": [0, 0, 255]},
]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_ENET_CACHE", str(tmp_path / "cache"))


def scenes(root, splits, classes=CLASSES_4, size=(32, 48), seed=0, **extra):
    """A folder dataset of discs (1) and boxes (2) on background (0).

    Args:
        splits: dict split -> number of images; the split "" writes a flat
            folder without split subfolders.
        extra: more keys of classes.json.
    """
    rng = np.random.RandomState(seed)
    height, width = size
    rows, cols = np.mgrid[:height, :width]
    for split, count in splits.items():
        for i in range(count):
            ids = np.zeros(size, np.uint8)
            cy, cx = rng.randint(8, height - 8), rng.randint(8, width - 8)
            ids[(rows - cy) ** 2 + (cols - cx) ** 2 < 36] = 1
            ids[:6, :10] = 2
            colours = np.array([[90, 110, 90], [200, 80, 60], [60, 90, 200]], np.float32)
            image = np.clip(colours[ids] + rng.normal(0, 10, (*size, 3)), 0, 255)
            for kind, array in (("images", image.astype(np.uint8)[:, :, ::-1]), ("masks", ids)):
                directory = os.path.join(root, kind, split)
                os.makedirs(directory, exist_ok=True)
                cv2.imwrite(os.path.join(directory, f"{i:03d}.png"), array)
    with open(os.path.join(root, "classes.json"), "w") as f:
        json.dump({"classes": classes, **extra}, f)
    return str(root)


def no_training(*args, **kwargs):
    raise AssertionError("training started")


def config_for(data_dir, run, **options):
    defaults = dict(
        dataset="folder",
        data_dir=data_dir,
        checkpoint_dir=str(run),
        height=32,
        width=48,
        batch_size=4,
        epochs=1,
        encoder_epochs=1,
        stage_two_repeat=1,
        verbose=0,
    )
    defaults.update(options)
    return TrainConfig(**defaults)


def test_void_only_val_is_refused_before_the_first_epoch(tmp_path, monkeypatch):
    data_dir = scenes(tmp_path / "data", {"train": 4, "val": 2})
    for name in os.listdir(tmp_path / "data" / "masks" / "val"):
        path = str(tmp_path / "data" / "masks" / "val" / name)
        cv2.imwrite(path, np.full((32, 48), 255, np.uint8))
    monkeypatch.setattr(trainer, "train_stage", no_training)
    with pytest.raises(data_lib.DatasetError, match="val"):
        training.train(config_for(data_dir, tmp_path / "run"))
    assert not (tmp_path / "run" / "config.json").exists()


def test_masks_saved_as_0_255_are_refused_before_the_first_epoch(tmp_path, monkeypatch):
    classes = CLASSES_4[:2]
    data_dir = scenes(tmp_path / "data", {"train": 4, "val": 2}, classes=classes)
    for split in ("train", "val"):
        directory = tmp_path / "data" / "masks" / split
        for name in os.listdir(directory):
            ids = cv2.imread(str(directory / name), cv2.IMREAD_GRAYSCALE)
            cv2.imwrite(str(directory / name), np.where(ids == 1, 255, 0).astype(np.uint8))
    monkeypatch.setattr(trainer, "train_stage", no_training)
    with pytest.raises(data_lib.DatasetError, match="0/255"):
        training.train(config_for(data_dir, tmp_path / "run"))


def test_val_masks_saved_as_0_255_are_warned_about(tmp_path):
    # Train is sound; val was exported with every class but the background
    # as 255, the ignore id: its mIoU would score the background alone.
    data_dir = scenes(tmp_path / "data", {"train": 4, "val": 2}, classes=CLASSES_4[:3])
    directory = tmp_path / "data" / "masks" / "val"
    for name in os.listdir(directory):
        ids = cv2.imread(str(directory / name), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(directory / name), np.where(ids > 0, 255, 0).astype(np.uint8))
    ds = data_lib.get_dataset("folder", data_dir)
    warnings = data_lib.check_trainable(
        ds.info, data_lib.scan(ds, "train"), data_lib.scan(ds, "val")
    )
    suspect = [w for w in warnings if "0/255" in w]
    assert len(suspect) == 1 and "split 'val': class 'disc' has no pixels while" in suspect[0]


def test_unwritable_checkpoint_dir_is_refused_before_the_first_epoch(tmp_path, monkeypatch):
    data_dir = scenes(tmp_path / "data", {"train": 4, "val": 2})
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setattr(trainer, "train_stage", no_training)
    with pytest.raises(training.TrainingError, match="--checkpoint_dir"):
        training.train(config_for(data_dir, blocker / "run"))


def test_train_only_folder_holds_out_val_and_records_it(tmp_path, monkeypatch):
    data_dir = scenes(tmp_path / "data", {"": 20})
    stages = []
    monkeypatch.setattr(
        trainer, "train_stage", lambda config, stage, *args: stages.append(stage) or {}
    )
    # No stage trains, so there is no model to convert at the end.
    monkeypatch.setattr(trainer, "write_runtime_model", lambda checkpoint_dir: None)
    monkeypatch.setattr(trainer, "adjust_logits", lambda *args: None)
    training.train(config_for(data_dir, tmp_path / "run", val_fraction=0.25))
    assert stages == ["encoder", "full"]
    saved = artifacts.read_json(tmp_path / "run" / "config.json")
    held_out = saved["splits"]["held_out"]["val"]
    # 25% of 20 images, picked by name: 5 of them, none also in train.
    assert len(held_out["images"]) == 5 and held_out["val_fraction"] == 0.25
    dataset = data_lib.get_dataset("folder", data_dir, val_fraction=0.25)
    train_names = {os.path.basename(image) for image, _ in dataset.files("train")}
    assert len(train_names) == 15 and not train_names & set(held_out["images"])


@pytest.mark.slow
def test_a_class_absent_from_train_trains_and_is_adjusted(tmp_path):
    # classes.json lists 4 classes; no mask holds the 4th. mfb weighs it 0;
    # the run ends with a usable, adjusted model instead of failing after
    # the last epoch.
    data_dir = scenes(tmp_path / "data", {"train": 8, "val": 4})
    config = config_for(data_dir, tmp_path / "run", epochs=2)
    results = training.train(config)
    assert results["class_weights"][3] == 0.0
    assert all(w > 0 for w in results["class_weights"][:3])
    adjusted = results["logit_adjustment"]
    assert adjusted is not None and adjusted["alpha"] in [a / 10 for a in range(11)]
    best = artifacts.read_json(tmp_path / "run" / "best.json")
    assert best["logit_adjustment"]["alpha"] == adjusted["alpha"]
    # The bias of the absent class is the trained one: weight 0 moves nothing.
    assert best["logit_adjustment"]["bias"][3] == pytest.approx(
        best["logit_adjustment"]["trained_bias"][3]
    )
    # Running the command again finds the run complete and the same record.
    assert training.train(config)["logit_adjustment"] == adjusted


def strict_json(path):
    def refuse(constant):
        raise ValueError(f"{path} holds {constant}, which strict JSON refuses")

    with open(path, encoding="utf-8") as f:
        return json.load(f, parse_constant=refuse)


@pytest.mark.slow
def test_every_json_file_of_a_run_is_strict(tmp_path):
    # A run of a dataset whose val split lacks one class writes NaN IoUs for
    # it in the logs; the files must still be strict JSON.
    data_dir = make_shapes_dataset(tmp_path / "data", num_train=4, num_val=2, size=32)
    run = tmp_path / "run"
    config = config_for(data_dir, run, width=32, batch_size=2, logit_adjustment="off")
    training.train(config)
    files = [
        os.path.join(d, n) for d, _, names in os.walk(run) for n in names if n.endswith(".json")
    ]
    assert len(files) >= 5  # config, best and done of both stages, backups
    for path in files:
        strict_json(path)


def test_write_json_writes_non_finite_numbers_as_null(tmp_path):
    path = tmp_path / "a" / "b.json"
    artifacts.write_json(
        path,
        {
            "mean_iou": float("nan"),
            "iou": [0.5, float("inf")],
            "count": np.int64(3),
            "value": np.float32(0.25),
        },
    )
    assert strict_json(path) == {"count": 3, "iou": [0.5, None], "mean_iou": None, "value": 0.25}


def test_eval_pipeline_at_the_training_scale_resizes_masks_by_nearest(tmp_path):
    # One 32x48 scene scored at 16x24: the mask is every second pixel
    # (nearest neighbour: output pixel i is centred at input 2i + 1 between
    # pixels 2i and 2i + 1, which TensorFlow resolves to 2i + 1).
    data_dir = scenes(tmp_path / "data", {"train": 2, "val": 1})
    dataset = data_lib.get_dataset("folder", data_dir)
    full = cv2.imread(str(tmp_path / "data" / "masks" / "val" / "000.png"), cv2.IMREAD_GRAYSCALE)
    ((images, labels),) = data_lib.make_eval_dataset(
        dataset, "val", batch_size=1, height=16, width=24, resize_masks=True
    )
    assert images.shape == (1, 16, 24, 3)
    np.testing.assert_array_equal(labels.numpy()[0], full[1::2, 1::2])
    ((_, encoder_labels),) = data_lib.make_eval_dataset(
        dataset, "val", batch_size=1, height=16, width=24, resize_masks=True, label_stride=8
    )
    np.testing.assert_array_equal(encoder_labels.numpy()[0], full[1::2, 1::2][4::8, 4::8])


def test_eval_pipeline_sample_is_seeded_and_in_file_order(tmp_path):
    data_dir = scenes(tmp_path / "data", {"train": 8, "val": 1})
    dataset = data_lib.get_dataset("folder", data_dir)

    def sampled(seed):
        pipeline = data_lib.make_eval_dataset(dataset, "train", batch_size=1, sample=3, seed=seed)
        return [float(np.asarray(image).sum()) for image, _ in pipeline]

    every = [
        float(np.asarray(image).sum())
        for image, _ in data_lib.make_eval_dataset(dataset, "train", batch_size=1)
    ]
    first = sampled(0)
    assert len(first) == 3 and first == sampled(0)
    positions = [every.index(value) for value in first]
    assert positions == sorted(positions)
    assert any(sampled(seed) != first for seed in (1, 2, 3))


def test_a_small_dataset_with_default_schedule_is_warned_about(tmp_path):
    # 8 images in batches of 4: 2 steps per epoch. 10 encoder epochs are
    # 20 steps and 300 full epochs 600: only the encoder stage is short.
    data_dir = scenes(tmp_path / "data", {"train": 8, "val": 2})
    dataset = data_lib.get_dataset("folder", data_dir)
    config = config_for(data_dir, tmp_path / "run", encoder_epochs=10, epochs=300)
    lines = trainer.short_schedule_warnings(config, dataset)
    assert len(lines) == 1
    assert lines[0].startswith("The encoder stage has only 20 optimizer steps (10 epochs of 2")
    # The config already has batch 4; the default learning rate is low.
    assert "--batch_size" not in lines[0]
    assert "raise --learning_rate (e.g. 0.002), raise the epochs" in lines[0]
    longer = config_for(data_dir, tmp_path / "run", encoder_epochs=200, epochs=300)
    assert trainer.short_schedule_warnings(longer, dataset) == []


def test_output_checks_name_a_file_in_the_way(tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("a file")
    with pytest.raises(OSError, match=r"--output_dir .*taken is a file, not a directory"):
        artifacts.ensure_writable_dir(str(blocker), "--output_dir")
    with pytest.raises(OSError, match=r"--output_json .*part of the path is a file"):
        artifacts.ensure_writable_file(str(blocker / "sub" / "scores.json"), "--output_json")
    artifacts.ensure_writable_file(
        str(tmp_path / "new" / "deeper" / "scores.json"), "--output_json"
    )
    assert (tmp_path / "new" / "deeper").is_dir()


def test_every_json_file_is_written_by_artifacts():
    # One writer, strict by construction (write_json above): no module of
    # the package writes JSON files another way.
    package = os.path.join(os.path.dirname(os.path.dirname(__file__)), "tf_enet")
    writers = []
    for directory, _, names in os.walk(package):
        for name in names:
            path = os.path.join(directory, name)
            if name.endswith(".py") and name != "artifacts.py":
                with open(path, encoding="utf-8") as f:
                    if "json.dump(" in f.read():
                        writers.append(os.path.relpath(path, package))
    assert writers == []


def test_in_training_validation_runs_at_the_training_size(tmp_path):
    # Images of 32x48 trained at 16x24 (Cityscapes at half resolution, in
    # small): validation feeds the model what prediction will, the training
    # size, with the labels resized to it.
    import tensorflow as tf

    data_dir = scenes(tmp_path / "data", {"train": 4, "val": 2})
    dataset = data_lib.get_dataset("folder", data_dir)
    strategy = tf.distribute.get_strategy()
    config = config_for(data_dir, tmp_path / "run", height=16, width=24, batch_size=2)
    for stage, label_size in (("full", (16, 24)), ("encoder", (2, 3))):
        _, val = trainer.make_datasets(config, dataset, stage, strategy)
        for images, labels in val:
            assert images.shape[1:3] == (16, 24)
            assert labels.shape[1:3] == label_size
