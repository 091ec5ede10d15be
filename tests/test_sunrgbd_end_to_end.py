"""SUN RGB-D through every command: train a few steps, evaluate, predict
and export a fixture in Ankur Handa's layout."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from test_sunrgbd import make_sunrgbd

from tf_enet.data import sunrgbd

from helpers import REPO, subprocess_env


def run(tmp_path, script, *args):
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, script), *args],
        cwd=tmp_path,
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_sunrgbd_trains_evaluates_predicts_and_exports(tmp_path):
    data_dir = make_sunrgbd(tmp_path / "SUNRGBD", train=(1, 2, 3, 4), test=(1, 2))
    run_dir = tmp_path / "run"
    run(
        tmp_path,
        "train.py",
        "--dataset",
        "sunrgbd",
        f"--data_dir={data_dir}",
        f"--checkpoint_dir={run_dir}",
        "--height=16",
        "--width=24",
        "--batch_size=2",
        "--encoder_epochs=1",
        "--epochs=1",
        "--stage_two_repeat=1",
        "--verbose=0",
    )
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"]["num_classes"] == 37
    assert config["dataset"]["class_names"] == list(sunrgbd.CLASS_NAMES)

    scores_path = tmp_path / "scores" / "test.json"  # a directory made on the way
    run(
        tmp_path,
        "evaluate.py",
        "--dataset",
        "sunrgbd",
        f"--data_dir={data_dir}",
        "--split",
        "test",
        f"--model={run_dir}",
        f"--output_json={scores_path}",
    )
    scores = json.loads(scores_path.read_text())
    confusion = np.array(scores["confusion_matrix"])
    # Two 12x16 test labels, the bottom row void: 2 * 11 * 16 scored pixels.
    assert confusion.shape == (37, 37) and confusion.sum() == 2 * 11 * 16

    images = data_dir / sunrgbd.TEST_IMAGE_DIR
    run(
        tmp_path,
        "predict.py",
        f"--images={images}",
        f"--model={run_dir}",
        f"--output_dir={tmp_path / 'predictions'}",
    )
    labels = sorted(os.listdir(tmp_path / "predictions"))
    assert "img-000001_labels.png" in labels and "img-000002_color.png" in labels

    exported = tmp_path / "exports" / "enet_sunrgbd.tflite"
    run(tmp_path, "export.py", f"--model={run_dir}", "--format=tflite", f"--output={exported}")
    sidecar = json.loads((tmp_path / "exports" / "enet_sunrgbd.tflite.json").read_text())
    assert sidecar["dataset"]["name"] == "sunrgbd"
