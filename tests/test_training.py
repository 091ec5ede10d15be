"""Tests of training: options, checkpoint directory, resume, divergence, and
an end-to-end run on a synthetic dataset that a correct pipeline learns."""

import csv
import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_enet import artifacts, inference, logit_adjustment, training
from tf_enet import data as data_lib
from tf_enet import metrics as metrics_lib
from tf_enet.losses import WeightedSparseCategoricalCrossentropy
from tf_enet.training import TrainConfig, TrainingError, trainer

from helpers import (
    IGNORE,
    REPO,
    SHAPE_CLASSES,
    make_shapes_dataset,
    subprocess_env,
    train_flags,
)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_ENET_CACHE", str(tmp_path / "cache"))


def history(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# ---------------------------------------------------------------- options


def test_help_documents_every_option():
    result = subprocess.run(
        [sys.executable, "train.py", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for field in dataclasses.fields(TrainConfig):
        assert f"--{field.name}:" in result.stdout or (f"--[no]{field.name}:" in result.stdout), (
            field.name
        )
    assert "--[no]overwrite:" in result.stdout


@pytest.mark.parametrize(
    "options, name",
    [
        ({"height": 0}, "height"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"epochs": -1}, "epochs"),
        ({"stages": "decoder"}, "stages"),
        ({"strategy": "tpu"}, "strategy"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"lr_decay_factor": 2.0}, "lr_decay_factor"),
        ({"limit": 0}, "limit"),
        ({"dataset": "voc"}, "dataset"),
        ({"logit_adjustment": "on"}, "logit_adjustment"),
        ({"logit_adjustment": -0.5}, "logit_adjustment"),
    ],
)
def test_invalid_options_are_named(options, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        TrainConfig(**options)


def test_learning_rate_schedules_by_hand():
    step = training.learning_rate_schedule(
        TrainConfig(learning_rate=0.1, lr_decay_epochs=2, lr_decay_factor=0.5),
        steps_per_epoch=10,
        epochs=5,
    )
    # Boundaries after 20 and 40 steps: 0.1, then 0.05, then 0.025.
    assert [float(step(s)) for s in (0, 20, 21, 40, 41, 49)] == pytest.approx(
        [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    )
    poly = training.learning_rate_schedule(
        TrainConfig(learning_rate=0.1, lr_schedule="poly"), 10, 5
    )
    # 0.1 * (1 - 25 / 50) ** 0.9 = 0.05359
    assert float(poly(25)) == pytest.approx(0.1 * 0.5**0.9)
    assert float(poly(50)) == pytest.approx(0.0)
    constant = training.learning_rate_schedule(TrainConfig(learning_rate=0.1), 10, 5)
    assert constant == 0.1  # fewer epochs than one decay period


def test_weight_decay_adds_torch_style_gradient_and_is_not_saved(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((4, 4, 2)),
            keras.layers.Conv2D(3, 3, name="conv"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Conv2DTranspose(2, 2, name="deconv"),
        ]
    )
    training.add_weight_decay(model, 2e-4)
    kernels = [model.get_layer("conv").kernel, model.get_layer("deconv").kernel]
    with tf.GradientTape() as tape:
        penalty = tf.add_n(model.losses)
    # Torch's weight decay adds 2e-4 * w to each kernel's gradient.
    for gradient, kernel in zip(tape.gradient(penalty, kernels), kernels):
        np.testing.assert_allclose(gradient, 2e-4 * kernel.numpy(), rtol=1e-5)
    assert len(model.losses) == 2  # kernels only, no biases or BN
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    assert not reloaded.losses


def test_loss_guard_stops_on_non_finite_loss_or_weights():
    guard = training.LossGuard()
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    guard.set_model(model)
    guard.on_train_batch_end(0, {"loss": 0.5})
    guard.on_epoch_end(0, {"loss": 0.5})
    with pytest.raises(TrainingError, match="loss became nan at batch 3"):
        guard.on_train_batch_end(3, {"loss": np.float32("nan")})
    kernel = model.layers[0].kernel
    kernel.assign(np.array([[np.inf], [0.0]], "float32"))
    with pytest.raises(TrainingError, match="weights became non-finite in epoch 2"):
        guard.on_epoch_end(1, {"loss": 0.5})


def test_validation_runs_on_the_first_and_last_epochs_too():
    config = TrainConfig(validation_freq=3)
    assert training.validation_epochs(config, 7) == [1, 3, 6, 7]
    assert training.validation_epochs(config, 6) == [1, 3, 6]
    assert training.validation_epochs(TrainConfig(), 3) == [1, 2, 3]


def test_history_keeps_its_columns_when_an_epoch_has_no_validation(tmp_path):
    path = str(tmp_path / "history.csv")
    first = training.HistoryLogger(path)
    first.on_train_begin()
    first.on_epoch_end(0, {"loss": 1.0, "val_loss": 2.0, "val_mean_iou": 0.5})
    first.on_train_end()
    resumed = training.HistoryLogger(path)
    resumed.on_train_begin()
    resumed.on_epoch_end(1, {"loss": 0.9, "mean_iou": 0.1})
    resumed.on_train_end()
    assert history(path) == [
        {"epoch": "0", "loss": "1.0", "val_loss": "2.0", "val_mean_iou": "0.5"},
        {"epoch": "1", "loss": "0.9", "val_loss": "NA", "val_mean_iou": "NA"},
    ]


def test_history_rows_after_the_backup_are_dropped(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,1.0\n1,0.9\n2,0.8\n")
    (tmp_path / "backup").mkdir()
    artifacts.write_json(tmp_path / "backup" / "training_metadata.json", {"epoch": 2, "batch": 0})
    training.trim_history(str(path), str(tmp_path / "backup"))
    assert path.read_text() == "epoch,loss\n0,1.0\n1,0.9\n"
    training.trim_history(str(path), str(tmp_path / "backup"))  # idempotent
    assert path.read_text() == "epoch,loss\n0,1.0\n1,0.9\n"


# ------------------------------------------------------ checkpoint directory


def write_run(directory, config):
    artifacts.write_json(os.path.join(directory, "config.json"), {"train": config.to_dict()})


def test_checkpoint_dir_accepts_its_own_run_and_more_epochs(tmp_path):
    config = TrainConfig(checkpoint_dir=str(tmp_path), epochs=10)
    assert training.check_checkpoint_dir(config, overwrite=False) is False  # new
    write_run(tmp_path, config)
    assert training.check_checkpoint_dir(config, overwrite=False) is True
    longer = dataclasses.replace(config, epochs=20, verbose=2)
    assert training.check_checkpoint_dir(longer, overwrite=False) is True


def test_checkpoint_dir_refuses_a_different_run_unless_overwrite(tmp_path):
    config = TrainConfig(checkpoint_dir=str(tmp_path))
    write_run(tmp_path, config)
    other = dataclasses.replace(config, learning_rate=1e-3, height=256)
    with pytest.raises(TrainingError) as error:
        training.check_checkpoint_dir(other, overwrite=False)
    message = str(error.value)
    assert "holds a different run" in message
    assert "height: 360 -> 256" in message and "learning_rate: 0.0005 -> 0.001" in message
    assert "--overwrite" in message
    assert training.check_checkpoint_dir(other, overwrite=True) is False


def test_an_encoder_run_goes_on_to_the_full_network(tmp_path):
    # The paper's two stages as two commands in one directory.
    encoder = TrainConfig(checkpoint_dir=str(tmp_path), stages="encoder")
    write_run(tmp_path, encoder)
    full = dataclasses.replace(encoder, stages="full")
    both = dataclasses.replace(encoder, stages="both")
    # Unfinished: "both" finishes it first; "full" has no encoder to start from.
    assert training.check_checkpoint_dir(both, overwrite=False) is True
    with pytest.raises(TrainingError, match="encoder stage in .* has not finished"):
        training.check_checkpoint_dir(full, overwrite=False)
    # --overwrite starts over instead.
    assert training.check_checkpoint_dir(full, overwrite=True) is False
    (tmp_path / "encoder").mkdir()
    artifacts.write_json(os.path.join(tmp_path, "encoder", "done.json"), {"epochs": 100})
    assert training.check_checkpoint_dir(full, overwrite=False) is True
    assert training.check_checkpoint_dir(both, overwrite=False) is True
    # After the full stage, any of the commands is the same run again.
    write_run(tmp_path, full)
    (tmp_path / "model.keras").write_text("the full network")
    for config in (encoder, both, full):
        assert training.check_checkpoint_dir(config, overwrite=False) is True


def test_a_full_network_trained_without_an_encoder_gains_none(tmp_path):
    full = TrainConfig(checkpoint_dir=str(tmp_path), stages="full")
    write_run(tmp_path, full)
    (tmp_path / "backup").mkdir()  # the full stage has started
    for stages in ("encoder", "both"):
        other = dataclasses.replace(full, stages=stages)
        with pytest.raises(TrainingError, match=f"stages: 'full' -> '{stages}'"):
            training.check_checkpoint_dir(other, overwrite=False)


def test_checkpoint_dir_with_foreign_files_is_refused(tmp_path):
    (tmp_path / "model.keras").write_text("not ours")
    config = TrainConfig(checkpoint_dir=str(tmp_path))
    with pytest.raises(TrainingError, match="no config.json"):
        training.check_checkpoint_dir(config, overwrite=False)


def test_run_files_get_the_permissions_of_any_new_file(tmp_path):
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    artifacts.write_json(str(tmp_path / "best.json"), {"epoch": 1})
    artifacts.write_atomically(str(tmp_path / "model.keras"), keras.Sequential().save)
    for name in ("best.json", "model.keras"):
        assert os.stat(tmp_path / name).st_mode == os.stat(plain).st_mode, name
    assert sorted(os.listdir(tmp_path)) == ["best.json", "model.keras", "plain.json"]


def test_overwrite_removes_only_run_files(tmp_path):
    for name in (
        "model.keras",
        "best.json",
        "done.json",
        "history.csv",
        "config.json",
        "notes.txt",
    ):
        (tmp_path / name).write_text("x")
    for name in ("backup", "encoder/backup", "logs/full"):
        (tmp_path / name).mkdir(parents=True)
    training.remove_run_files(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


# ------------------------------------------------------- end to end (slow)

# A task a correct pipeline, loss and model learn in a few hundred steps.
LEARNED_OPTIONS = dict(
    dataset="folder",
    height=64,
    width=64,
    batch_size=4,
    encoder_epochs=3,
    epochs=15,
    learning_rate=5e-3,
    class_weighting="enet",
    validation_freq=5,
    stage_two_repeat=1,
    verbose=0,
    seed=0,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("learned")
    os.environ["TF_ENET_CACHE"] = str(root / "cache")
    try:
        data_dir = make_shapes_dataset(root / "data", num_train=48, num_val=8)
        config = TrainConfig(data_dir=data_dir, checkpoint_dir=str(root / "run"), **LEARNED_OPTIONS)
        start = time.monotonic()
        results = training.train(config)
        seconds = time.monotonic() - start
    finally:
        del os.environ["TF_ENET_CACHE"]
    return config, results, seconds


@pytest.mark.slow
def test_training_learns_the_synthetic_task(trained):
    config, results, seconds = trained
    print(f"both stages trained in {seconds:.0f} s; results: {results}")
    assert results["encoder"]["best_val_mean_iou"] > 0.4
    assert results["full"]["best_val_mean_iou"] > 0.8
    # An independent evaluation of the saved model agrees with the logs:
    # as saved (logits adjusted), and with the trained bias put back.
    model = keras.saving.load_model(os.path.join(config.checkpoint_dir, "model.keras"))
    dataset = data_lib.get_dataset("folder", config.data_dir)
    adjusted = results["logit_adjustment"]
    assert adjusted["val_mean_iou_before"] == pytest.approx(results["full"]["val_mean_iou"])
    for logged, bias in (
        (adjusted["val_mean_iou"], None),
        (results["full"], adjusted["trained_bias"]),
    ):
        if bias is not None:
            model.get_layer("fullconv").bias.assign(bias)
        scores = val_scores(model, dataset)
        if bias is None:
            assert scores["mean_iou"] == pytest.approx(logged, abs=1e-6)
            continue
        assert scores["mean_iou"] == pytest.approx(logged["val_mean_iou"], abs=1e-6)
        for name, iou in zip(dataset.info.class_names, scores["per_class_iou"]):
            assert logged[f"val_iou_{name}"] == pytest.approx(iou, abs=1e-6)


def val_scores(model, dataset):
    confusion = inference.confusion_matrix_of_split(model, dataset, "val")
    return metrics_lib.scores(confusion)


@pytest.mark.slow
def test_logit_adjustment_is_chosen_on_train_folded_once_and_reversible(trained, tmp_path):
    config, results, _ = trained
    adjusted = results["logit_adjustment"]
    weights = np.array(results["class_weights"], np.float32)
    train_miou = adjusted["train_mean_iou"]
    assert set(train_miou) == {f"{a:g}" for a in logit_adjustment.ALPHAS}
    assert train_miou[f"{adjusted['alpha']:g}"] == max(train_miou.values())
    # A copy of the run, so the adjustment can change without the fixture.
    run = str(tmp_path / "run")
    shutil.copytree(config.checkpoint_dir, run)
    config = dataclasses.replace(config, checkpoint_dir=run)
    model_path = os.path.join(run, "model.keras")

    def bias():
        model = keras.saving.load_model(model_path, compile=False)
        return model.get_layer("fullconv").bias.numpy()

    trained_bias = np.array(adjusted["trained_bias"], np.float32)
    expected = trained_bias - np.float32(adjusted["alpha"]) * np.log(weights)
    np.testing.assert_allclose(bias(), expected, atol=1e-6)
    # Running again changes nothing: the record says it is done.
    digest = sha256(model_path)
    assert training.train(config)["logit_adjustment"] == adjusted
    assert sha256(model_path) == digest
    # A given alpha starts from the trained bias, not the adjusted one.
    half = training.train(dataclasses.replace(config, logit_adjustment="0.5"))["logit_adjustment"]
    assert half["alpha"] == 0.5 and "train_mean_iou" not in half
    np.testing.assert_allclose(bias(), trained_bias - 0.5 * np.log(weights), atol=1e-6)
    # Off puts the trained model back and drops the record.
    assert (
        training.train(dataclasses.replace(config, logit_adjustment="off"))["logit_adjustment"]
        is None
    )
    np.testing.assert_allclose(bias(), trained_bias, atol=1e-6)
    assert "logit_adjustment" not in artifacts.read_json(os.path.join(run, "best.json"))
    # A kill between the record and the model: the next run completes it.
    record = artifacts.read_json(os.path.join(run, "best.json"))
    record["logit_adjustment"] = dict(adjusted)
    artifacts.write_json(os.path.join(run, "best.json"), record)
    assert training.train(config)["logit_adjustment"]["alpha"] == adjusted["alpha"]
    np.testing.assert_allclose(bias(), expected, atol=1e-6)


@pytest.mark.slow
def test_config_json_holds_everything_to_use_the_model(trained):
    config, results, _ = trained
    with open(os.path.join(config.checkpoint_dir, "config.json")) as f:
        saved = json.load(f)
    assert saved["train"] == config.to_dict()  # every option
    assert set(saved["train"]) == {f.name for f in dataclasses.fields(TrainConfig)}
    assert saved["dataset"] == {
        "name": "folder",
        "class_names": [name for name, _, _ in SHAPE_CLASSES],
        "palette": [list(color) for _, color, _ in SHAPE_CLASSES],
        "ignore_index": IGNORE,
    }
    dataset = data_lib.get_dataset("folder", config.data_dir)
    expected_weights = data_lib.class_weights(data_lib.scan(dataset, "train"), "enet")
    assert saved["class_weighting"] == "enet"
    np.testing.assert_allclose(saved["class_weights"], expected_weights, rtol=1e-6)
    assert results["class_weights"] == saved["class_weights"]
    assert saved["input"] == {
        "channels": "RGB",
        "range": [0, 255],
        "mean": [123.675, 116.28, 103.53],
        "std": [58.395, 57.12, 57.375],
        "normalized_inside_model": True,
    }
    assert saved["model"] == {
        "num_classes": 4,
        "num_initial_blocks": 1,
        "stage_two_repeat": 1,
        "skip_connections": False,
    }


@pytest.mark.slow
def test_run_directory_holds_history_logs_and_backups(trained):
    config, results, _ = trained
    run = config.checkpoint_dir
    for stage_dir, epochs in ((os.path.join(run, "encoder"), 3), (run, 15)):
        rows = history(os.path.join(stage_dir, "history.csv"))
        assert [int(r["epoch"]) for r in rows] == list(range(epochs))
        assert {f"val_iou_{name}" for name, _, _ in SHAPE_CLASSES} <= set(rows[0])
        validated = [int(r["epoch"]) + 1 for r in rows if r["val_mean_iou"] != "NA"]
        assert validated == training.validation_epochs(config, epochs)
        with open(os.path.join(stage_dir, "backup", "training_metadata.json")) as f:
            assert json.load(f)["epoch"] == epochs
        with open(os.path.join(stage_dir, "done.json")) as f:
            assert json.load(f)["epochs"] == epochs
        assert not [n for n in os.listdir(stage_dir) if n.startswith(".tmp")]
    best = results["full"]
    assert best["epoch"] in validated and best["val_mean_iou"] == best["best_val_mean_iou"]
    for stage in ("encoder", "full"):
        assert os.listdir(os.path.join(run, "logs", stage, "train"))
        assert os.listdir(os.path.join(run, "logs", stage, "images"))
    # A finished run started again returns its results without training:
    # no stage's weights, backup or history are written again.
    written = [
        os.path.join(stage_dir, name)
        for stage_dir in (os.path.join(run, "encoder"), run)
        for name in ("history.csv", "done.json", os.path.join("backup", "latest.weights.h5"))
    ]
    before = [os.stat(path).st_mtime_ns for path in written]
    assert training.train(config) == results
    assert [os.stat(path).st_mtime_ns for path in written] == before


# -------------------------------------------------- resume, refuse, diverge

SMALL_OPTIONS = dict(height=32, width=32, batch_size=4, stage_two_repeat=1)


def run_train_py(tmp_path, flags, timeout=600):
    result = subprocess.run(
        [sys.executable, "train.py", *flags],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=subprocess_env(tmp_path),
    )
    return result


def optimizer_steps(weights_path):
    import h5py

    with h5py.File(weights_path, "r") as f:
        return int(f["optimizer/vars/0"][()])  # Adam's iteration count


@pytest.mark.slow
def test_killed_run_resumes_at_the_next_epoch(tmp_path):
    data_dir = make_shapes_dataset(tmp_path / "data", num_train=16, num_val=4, size=32)
    run = tmp_path / "run"
    # The best model as training saved it, optimizer state included (the
    # logit adjustment re-saves it without).
    flags = train_flags(
        data_dir, run, encoder_epochs=1, epochs=2, logit_adjustment="off", **SMALL_OPTIONS
    )
    metadata = run / "backup" / "training_metadata.json"
    with open(tmp_path / "first.log", "w") as log:
        process = subprocess.Popen(
            [sys.executable, "train.py", *flags],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=subprocess_env(tmp_path),
        )
        try:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    if json.loads(metadata.read_text())["epoch"] >= 1:
                        break
                except (OSError, ValueError):
                    pass
                time.sleep(0.2)
            # The first full-network epoch is backed up: kill without warning.
            process.send_signal(signal.SIGKILL)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
    first = (tmp_path / "first.log").read_text()
    assert process.returncode == -signal.SIGKILL, first[-3000:]
    assert "Epoch 1/2" in first
    # Killed during the second epoch, before its backup.
    assert json.loads(metadata.read_text())["epoch"] == 1
    assert keras.saving.load_model(run / "model.keras") is not None

    second = run_train_py(tmp_path, flags)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Epoch 1/2" not in second.stdout and "Epoch 2/2" in second.stdout
    assert "The encoder stage is complete" in second.stderr
    assert [r["epoch"] for r in history(run / "history.csv")] == ["0", "1"]
    assert [r["epoch"] for r in history(run / "encoder" / "history.csv")] == ["0"]
    # 16 images in batches of 4: the optimizer went on from step 4 to 8.
    assert optimizer_steps(run / "backup" / "latest.weights.h5") == 8
    best = keras.saving.load_model(run / "model.keras")
    best_epoch = json.loads((run / "best.json").read_text())["epoch"]
    assert int(best.optimizer.iterations.numpy()) == 4 * best_epoch


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A finished one-epoch full-network run; tests work on copies of it."""
    root = tmp_path_factory.mktemp("small")
    os.environ["TF_ENET_CACHE"] = str(root / "cache")
    try:
        data_dir = make_shapes_dataset(root / "data", num_train=8, num_val=4, size=32)
        config = TrainConfig(
            dataset="folder",
            data_dir=data_dir,
            verbose=0,
            checkpoint_dir=str(root / "run"),
            stages="full",
            epochs=1,
            **SMALL_OPTIONS,
        )
        training.train(config)
    finally:
        del os.environ["TF_ENET_CACHE"]
    return config


def copy_run(config, directory):
    shutil.copytree(config.checkpoint_dir, directory)
    return dataclasses.replace(config, checkpoint_dir=str(directory))


@pytest.mark.slow
def test_a_different_run_is_refused_and_overwrite_starts_over(small_run, tmp_path):
    config = copy_run(small_run, tmp_path / "run")
    run = tmp_path / "run"
    other = train_flags(
        config.data_dir,
        run,
        stages="encoder",
        encoder_epochs=1,
        learning_rate=1e-3,
        **SMALL_OPTIONS,
    )
    refused = run_train_py(tmp_path, other)
    assert refused.returncode == 1
    message = refused.stderr.strip().splitlines()[-1]
    assert message.startswith(f"error: {run} holds a different run (")
    assert "learning_rate: 0.0005 -> 0.001" in message
    assert "stages: 'full' -> 'encoder'" in message and "--overwrite" in message
    assert (run / "model.keras").exists()  # untouched

    overwritten = run_train_py(tmp_path, other + ["--overwrite"])
    assert overwritten.returncode == 0, overwritten.stderr[-3000:]
    # The full-network run's files are gone; only the new run's remain.
    assert not (run / "model.keras").exists() and not (run / "backup").exists()
    assert not (run / "history.csv").exists()
    assert len(history(run / "encoder" / "history.csv")) == 1
    saved = json.loads((run / "config.json").read_text())["train"]
    assert saved["learning_rate"] == 1e-3 and saved["stages"] == "encoder"


@pytest.mark.slow
def test_the_two_stages_as_two_commands(small_run, tmp_path):
    run = tmp_path / "run"
    options = dict(epochs=1, encoder_epochs=1, **SMALL_OPTIONS)
    encoder = run_train_py(
        tmp_path, train_flags(small_run.data_dir, run, stages="encoder", **options)
    )
    assert encoder.returncode == 0, encoder.stderr[-3000:]
    assert not (run / "model.keras").exists()
    full = run_train_py(tmp_path, train_flags(small_run.data_dir, run, stages="full", **options))
    assert full.returncode == 0, full.stderr[-3000:]
    assert f"layers from {run / 'encoder' / 'model.keras'}" in full.stderr
    assert (run / "model.keras").exists()
    assert json.loads((run / "config.json").read_text())["train"]["stages"] == "full"
    # The first command again: the same run, its stage complete.
    again = run_train_py(
        tmp_path, train_flags(small_run.data_dir, run, stages="encoder", **options)
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "The encoder stage is complete" in again.stderr


class NaNLoss(WeightedSparseCategoricalCrossentropy):
    def call(self, y_true, y_pred):
        return super().call(y_true, y_pred) * float("nan")


@pytest.mark.slow
def test_non_finite_loss_stops_and_keeps_the_last_good_backup(small_run, tmp_path, monkeypatch):
    config = copy_run(small_run, tmp_path / "run")
    backup = tmp_path / "run" / "backup"
    before = {name: sha256(backup / name) for name in os.listdir(backup)}

    monkeypatch.setattr(trainer, "WeightedSparseCategoricalCrossentropy", NaNLoss)
    longer = dataclasses.replace(config, epochs=2)
    with pytest.raises(TrainingError, match=r"loss became nan at batch 0.*--learning_rate"):
        training.train(longer)
    assert {name: sha256(backup / name) for name in os.listdir(backup)} == before
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 1
    assert len(history(tmp_path / "run" / "history.csv")) == 1
    assert keras.saving.load_model(tmp_path / "run" / "model.keras") is not None


def test_new_run_keeps_unrelated_files_in_its_directory(tmp_path, monkeypatch):
    # Stop right after the directory is prepared: no training needed.
    def stop(*args, **kwargs):
        raise RuntimeError("stop")

    monkeypatch.setattr(trainer, "train_stage", stop)
    data_dir = make_shapes_dataset(tmp_path / "data", num_train=4, num_val=2, size=32)
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    (run / "logs" / "notes.txt").write_text("mine")
    config = TrainConfig(dataset="folder", data_dir=data_dir, checkpoint_dir=str(run))
    with pytest.raises(RuntimeError, match="stop"):
        training.train(config)
    assert (run / "logs" / "notes.txt").read_text() == "mine"
    assert json.loads((run / "config.json").read_text())["train"] == config.to_dict()


@pytest.mark.parametrize("tf_config", [None, "", "{}", '{"cluster": {}}', "not json"])
def test_multi_worker_without_a_valid_tf_config_is_explained(tf_config, monkeypatch):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(TrainingError, match="TF_CONFIG.*Training on several machines"):
        training.make_strategy("multi_worker")


def test_flags_are_the_config_fields_with_their_defaults_and_choices():
    from absl import flags

    from tf_enet.cli import train as train_cli
    from tf_enet.training.config import CHOICES

    flag_values = flags.FlagValues()
    train_cli.define_flags(flag_values)
    for field in dataclasses.fields(TrainConfig):
        flag = flag_values[field.name]
        if field.name == "verbose":  # decided by the terminal
            assert flag.default is None
            continue
        expected = field.default
        if field.name == "logit_adjustment":
            expected = str(expected)
        assert flag.default == expected, field.name
        if field.name in CHOICES:
            assert tuple(flag.parser.enum_values) == CHOICES[field.name]
        assert flag.help, field.name


@pytest.mark.parametrize("num_classes, shown", [(3, True), (41, False)])
def test_epoch_line_shows_per_class_iou_up_to_40_classes(capsys, caplog, num_classes, shown):
    inputs = keras.Input((2, 2, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(num_classes, 1)(inputs))
    metric = metrics_lib.MeanIoU(num_classes=num_classes, name=artifacts.MEAN_IOU)
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=[metric])
    images, labels = np.ones((4, 2, 2, 1), np.float32), np.zeros((4, 2, 2), np.int32)
    recorded = keras.callbacks.History()
    names = [f"c{i}" for i in range(num_classes)]
    caplog.set_level("INFO", logger="absl")  # other tests may raise absl's level
    callbacks = [
        training.ClassScores(metric, names),
        training.EpochLine(num_classes),
        recorded,
    ]
    model.fit(images, labels, validation_data=(images, labels), callbacks=callbacks, verbose=2)
    line = capsys.readouterr().out
    assert artifacts.VAL_MEAN_IOU in line and "val_global_accuracy" in line
    assert ("val_iou_c0" in line) == shown
    # The callbacks after it still receive every class.
    assert f"val_iou_c{num_classes - 1}" in recorded.history
    notes = [r.getMessage() for r in caplog.records if "epoch lines leave out" in r.getMessage()]
    assert notes == (
        []
        if shown
        else [
            "The epoch lines leave out the val IoU of each of the 41 classes; "
            "history.csv and TensorBoard have them."
        ]
    )


def test_every_dataset_has_a_default_root():
    assert set(data_lib.DEFAULT_DATA_DIRS) == set(data_lib.DATASETS)


def test_class_scores_name_each_class_absent_from_val_once(caplog):
    metric = metrics_lib.MeanIoU(num_classes=3)
    # Class 2 ("sign") is neither in the labels nor predicted.
    metric.update_state(np.array([0, 0, 1, 1]), np.eye(3)[[0, 1, 1, 1]])
    scores = training.ClassScores(metric, ["road", "car", "sign"], stage="encoder")
    caplog.set_level("INFO", logger="absl")  # other tests may raise absl's level
    for epoch in range(2):
        logs = {artifacts.VAL_MEAN_IOU: float(metric.result())}
        scores.on_epoch_end(epoch, logs)
    assert np.isnan(logs["val_iou_sign"])
    # road: 1 of 2 labelled pixels right, none wrongly predicted -> 1/2;
    # car: 2 right, 1 predicted wrongly -> 2/3; the mean leaves sign out.
    assert logs["val_iou_road"] == pytest.approx(0.5)
    assert logs["val_iou_car"] == pytest.approx(2 / 3)
    assert logs[artifacts.VAL_MEAN_IOU] == pytest.approx((0.5 + 2 / 3) / 2)
    # A class that goes nan later gets its own line; each class one line.
    metric.reset_state()
    metric.update_state(np.array([0, 0]), np.eye(3)[[0, 0]])
    scores.on_epoch_end(2, {artifacts.VAL_MEAN_IOU: float(metric.result())})
    notes = [r.getMessage() for r in caplog.records if "is nan" in r.getMessage()]
    assert notes == [
        "val IoU of 'sign' is nan: no pixels of it in the encoder stage's val labels "
        "(1/8 of the size) and none predicted; val mean IoU averages the other classes.",
        "val IoU of 'car' is nan: no pixels of it in the encoder stage's val labels "
        "(1/8 of the size) and none predicted; val mean IoU averages the other classes.",
    ]
