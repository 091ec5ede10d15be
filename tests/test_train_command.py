"""What `train.py` prints: plain log messages and a short summary at the end."""

import logging
import os
import re
import subprocess
import sys

import pytest

from tf_enet import cli
from tf_enet.cli import train as train_cli

from helpers import REPO, make_shapes_dataset, subprocess_env, train_flags


def record(level, message):
    return logging.LogRecord("absl", level, "trainer.py", 305, message, (), None)


def test_log_lines_read_as_messages():
    formatter = cli.MessageFormatter()
    assert formatter.format(record(logging.INFO, "Starting a new run in runs/x")) == (
        "Starting a new run in runs/x"
    )
    assert formatter.format(record(logging.WARNING, "The full stage has only 4 steps")) == (
        "warning: The full stage has only 4 steps"
    )


def test_the_summary_names_the_best_epoch_the_scores_and_the_model():
    results = {
        "checkpoint_dir": "runs/x",
        "class_weights": [1.0, 2.0],
        "encoder": {"stage": "encoder", "epochs": 7, "epoch": 6, "val_mean_iou": 0.65458},
        "full": {"stage": "full", "epochs": 14, "epoch": 14, "val_mean_iou": 0.72384},
        "logit_adjustment": {"alpha": 0.6, "val_mean_iou_before": 0.72384, "val_mean_iou": 0.7624},
    }
    assert train_cli.summary_lines(results) == [
        "Encoder stage: best epoch 6 of 7, val mean IoU 0.6546",
        "Full stage: best epoch 14 of 14, val mean IoU 0.7238",
        "Logit adjustment (alpha 0.6): val mean IoU 0.7238 -> 0.7624",
        f"Model: {os.path.join('runs/x', 'model.keras')} (scores in best.json, every "
        "epoch in history.csv)",
    ]
    encoder_only = {"checkpoint_dir": "runs/x", "encoder": results["encoder"]}
    assert train_cli.summary_lines(encoder_only)[-1] == (
        f"Encoder: {os.path.join('runs/x', 'encoder', 'model.keras')}; run the same "
        "command with --stages full to train the full network from it."
    )
    # A val split whose mean IoU is undefined (JSON null, or nan).
    results["full"]["val_mean_iou"] = None
    assert train_cli.summary_lines(results)[1].endswith("val mean IoU n/a")


@pytest.mark.slow
def test_train_py_logs_messages_and_ends_with_the_summary(tmp_path):
    data_dir = make_shapes_dataset(tmp_path / "data", num_train=8, num_val=4, size=32)
    run = tmp_path / "run"
    flags = train_flags(
        data_dir,
        run,
        height=32,
        width=32,
        batch_size=4,
        stages="full",
        epochs=1,
        stage_two_repeat=1,
        logit_adjustment="off",
    )
    result = subprocess.run(
        [sys.executable, "train.py", *flags],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env=subprocess_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Starting a new run in {run}" in result.stderr.splitlines()
    # absl's prefix on Python log lines: "I1205 08:41:45.360000 140 trainer.py:305] ".
    assert not re.search(r"^[IWE]\d{4} [\d:.]+ +\d+ \w+\.py:\d+\] ", result.stderr, re.M)
    assert "warning: No trained encoder in" in result.stderr
    tail = result.stdout.splitlines()[-2:]
    assert re.fullmatch(r"Full stage: best epoch 1 of 1, val mean IoU 0\.\d{4}", tail[0])
    assert tail[1] == (
        f"Model: {run / 'model.keras'} (scores in best.json, every epoch in history.csv)"
    )
    assert "{" not in result.stdout
