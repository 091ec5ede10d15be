"""Runs that share a machine: the run lock, free space, errors mid-run, resuming."""

import errno
import json
import math
import os
import socket
import subprocess
import sys

import pytest
import tensorflow as tf

import tf_enet
from tf_enet import data as data_lib
from tf_enet import training
from tf_enet.training import TrainConfig, TrainingError, disk_space, failures
from tf_enet.training.callbacks import best_model_checkpoint
from tf_enet.training.run_lock import LOCK_FILE, RunLock

from helpers import make_shapes_dataset

SMALL = dict(height=32, width=32, batch_size=4, stage_two_repeat=1, verbose=0)


def small_config(tmp_path, **options):
    data_dir = make_shapes_dataset(tmp_path / "data", num_train=8, num_val=4, size=32)
    return TrainConfig(
        dataset="folder",
        data_dir=data_dir,
        checkpoint_dir=str(tmp_path / "run"),
        **{**SMALL, "stages": "full", "epochs": 2, "logit_adjustment": "off", **options},
    )


def test_a_second_run_in_a_locked_directory_is_refused(tmp_path):
    first = RunLock(str(tmp_path))
    first.acquire()
    record = json.loads((tmp_path / LOCK_FILE).read_text())
    assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
    with pytest.raises(TrainingError) as error:
        RunLock(str(tmp_path)).acquire()
    message = str(error.value)
    assert message.startswith(f"--checkpoint_dir {tmp_path} is in use by another training run")
    assert f"PID {os.getpid()} on {socket.gethostname()}" in message and "\n" not in message
    first.release()
    assert not (tmp_path / LOCK_FILE).exists()
    with RunLock(str(tmp_path)):
        pass


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path, caplog):
    caplog.set_level("WARNING", logger="absl")
    pid = dead_pid()
    stale = {"pid": pid, "host": socket.gethostname(), "started": "2026-12-05 08:00 UTC"}
    (tmp_path / LOCK_FILE).write_text(json.dumps(stale))
    with RunLock(str(tmp_path)):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    warning = caplog.records[-1].getMessage()
    assert warning.startswith(f"Took over the lock {tmp_path / LOCK_FILE} left by PID {pid} on ")
    assert "no longer running" in warning


def test_without_flock_a_live_holder_refuses_and_a_dead_one_is_taken_over(tmp_path, monkeypatch):
    # Some network file systems have no flock: the recorded PID decides.
    def no_flock(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr("fcntl.flock", no_flock)
    holder = {"pid": os.getppid(), "host": socket.gethostname(), "started": "x"}
    (tmp_path / LOCK_FILE).write_text(json.dumps(holder))
    with pytest.raises(TrainingError, match=f"PID {os.getppid()} on"):
        RunLock(str(tmp_path)).acquire()
    holder["pid"] = dead_pid()
    (tmp_path / LOCK_FILE).write_text(json.dumps(holder))
    with RunLock(str(tmp_path)):
        pass


def test_train_is_refused_while_another_run_holds_the_directory(tmp_path):
    config = small_config(tmp_path)
    os.makedirs(config.checkpoint_dir)
    with RunLock(config.checkpoint_dir):
        with pytest.raises(TrainingError, match="is in use by another training run"):
            training.train(config)
    assert os.listdir(config.checkpoint_dir) == []


def test_the_disk_space_estimate_by_hand(tmp_path):
    config = small_config(tmp_path, epochs=3, validation_freq=2)
    # Validated epochs 1, 2 (every 2nd) and 3 (the last): three times 4
    # images of 32x32x3 bytes; four model-sized files of 16 bytes a weight.
    estimate = disk_space.estimate(config, ["full"], 1000, lambda stage, epochs: [1, 2, 3])
    assert estimate["models"] == 4 * 16 * 1000
    assert estimate["logs"] == 3 * 4 * 32 * 32 * 3
    assert estimate["total"] == 64000 + 36864 + (1 << 20)


def test_a_run_without_room_is_refused_before_its_first_epoch(tmp_path, monkeypatch):
    config = small_config(tmp_path)
    usage = disk_space.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(disk_space.shutil, "disk_usage", lambda path: usage._replace(free=1 << 20))
    with pytest.raises(TrainingError) as error:
        training.train(config)
    message = str(error.value)
    assert message.startswith(f"--checkpoint_dir {config.checkpoint_dir} has 1 MB free, but")
    assert "MB there (models and backups" in message and "\n" not in message
    assert not os.path.exists(os.path.join(config.checkpoint_dir, "config.json"))


def test_a_data_file_damaged_during_training_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_ENET_CACHE", str(tmp_path / "cache"))
    config = small_config(tmp_path)
    dataset = data_lib.get_dataset("folder", config.data_dir)
    data_lib.scan(dataset, "train")  # as train() does before the first epoch
    damaged = dataset.files("train")[3][0]
    with open(damaged, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n cut short")
    error = tf.errors.InvalidArgumentError(None, None, "Invalid PNG data, size 17")
    message = str(failures.explain(error, dataset, "full", str(tmp_path / "run"), 5))
    assert message.startswith(f"A data file changed during training: Cannot decode {damaged}")
    assert message.endswith("run the same command to resume the full stage from epoch 1 of 5.")
    assert "\n" not in message


@pytest.mark.slow
def test_a_full_disk_mid_run_ends_in_one_line_and_the_same_command_resumes(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("TF_ENET_CACHE", str(tmp_path / "cache"))
    config = small_config(tmp_path)
    real_write = best_model_checkpoint.artifacts.write_atomically
    calls = []

    def fills_the_disk(path, write):
        if path.endswith("model.keras"):
            calls.append(path)
        if path.endswith("model.keras") and len(calls) == 2:  # the second epoch's best model
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, write)

    monkeypatch.setattr(best_model_checkpoint.artifacts, "write_atomically", fills_the_disk)
    # Every epoch improves on the last, so each saves the best model.
    checkpoint = best_model_checkpoint.BestModelCheckpoint
    saves_every_epoch = checkpoint.on_epoch_end

    def always_better(self, epoch, logs=None):
        self.best = -math.inf
        saves_every_epoch(self, epoch, logs)

    monkeypatch.setattr(checkpoint, "on_epoch_end", always_better)
    model_path = os.path.join(config.checkpoint_dir, "model.keras")
    with pytest.raises(TrainingError) as error:
        training.train(config)
    assert str(error.value) == (
        f"Cannot write {model_path}: No space left on device. Free space (or fix "
        "the cause); nothing finished is lost: run the same command to resume the "
        "full stage from epoch 2 of 2."
    )
    assert not os.path.exists(os.path.join(config.checkpoint_dir, LOCK_FILE))
    monkeypatch.undo()
    monkeypatch.setenv("TF_ENET_CACHE", str(tmp_path / "cache"))
    caplog.set_level("INFO", logger="absl")
    results = training.train(config)
    assert f"Resuming the full stage from epoch 2 of 2 in {config.checkpoint_dir}" in [
        r.getMessage() for r in caplog.records
    ]
    assert results["full"]["epochs"] == 2
    assert tf_enet.ENet.from_preset(config.checkpoint_dir) is not None


def test_a_backup_damaged_in_both_copies_is_named_with_the_way_out(tmp_path):
    from tf_enet.training.callbacks import Backup

    model = tf_enet.build_enet(3, stage_two_repeat=1)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    backup_dir = tmp_path / "backup"
    backup_dir.mkdir()
    for name in ("latest.weights.h5", "latest.weights.h5.bkp"):
        (backup_dir / name).write_bytes(b"\x89HDF\r\n\x1a\n cut short by a crash")
    callback = Backup(str(backup_dir), double_checkpoint=True, delete_checkpoint=False)
    callback.set_model(model)
    with pytest.raises(TrainingError) as error:
        callback.on_train_begin()
    message = str(error.value)
    assert message.startswith(f"The backup in {backup_dir} cannot be read (both copies; ")
    assert message.endswith("the best model so far is kept.") and "\n" not in message
