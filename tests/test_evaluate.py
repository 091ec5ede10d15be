"""Tests of evaluate.py, run as a script on a tiny folder dataset (slow:
each starts a Python process; test_inference tests the library in-process).

The dataset and the pixel model come from inference_helpers, where the
expected confusion matrix and scores are counted by hand.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tf_enet import conversions

from inference_helpers import (
    CLASS_ACCURACY,
    CLASSES,
    CONFUSION,
    GLOBAL_ACCURACY,
    MEAN_IOU,
    PER_CLASS_IOU,
    PREDICTED_A,
    pixel_model,
    run_config,
    write_checkpoint,
    write_folder_dataset,
)

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "evaluate.py")


def evaluate(tmp_path, *args):
    env = dict(os.environ, TF_ENET_CACHE=str(tmp_path / "cache"))
    return subprocess.run(
        [sys.executable, SCRIPT, *map(str, args)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.fixture
def setup(tmp_path):
    data_dir = write_folder_dataset(tmp_path / "data")
    checkpoint = write_checkpoint(tmp_path / "run", pixel_model(3), run_config())
    return data_dir, checkpoint


@pytest.mark.slow
def test_evaluate_prints_the_table_and_writes_json(tmp_path, setup):
    data_dir, checkpoint = setup
    result = evaluate(
        tmp_path,
        "--dataset",
        "folder",
        "--data_dir",
        data_dir,
        "--split",
        "val",
        "--model",
        checkpoint,
        "--output_json",
        tmp_path / "new" / "dir" / "scores.json",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # Log lines read as messages, without absl's "I1205 08:41:45.36 140 scan.py:153] ".
    assert "Scanning 2 files of folder split 'val'" in result.stderr
    assert not re.search(r"^[IWE]\d{4} [\d:.]+ +\d+ \w+\.py:\d+\] ", result.stderr, re.M)
    # The directory did not exist: it is created before the evaluation.
    scores = json.loads((tmp_path / "new" / "dir" / "scores.json").read_text())
    assert scores["confusion_matrix"] == CONFUSION
    assert [scores["per_class_iou"][c] for c in CLASSES] == pytest.approx(PER_CLASS_IOU)
    assert scores["mean_iou"] == pytest.approx(MEAN_IOU)
    assert scores["global_accuracy"] == pytest.approx(GLOBAL_ACCURACY)
    assert scores["class_accuracy"] == pytest.approx(CLASS_ACCURACY)
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    # Percentages: IoU 16/52 = 30.77 and accuracy 16/40 = 40.00 for road;
    # means 49.42 (IoU), 70.00 (pixels), 63.33 (classes).
    assert "road 30.77 40.00" in lines
    assert "car 30.00 50.00" in lines
    assert "sky 87.50 100.00" in lines
    assert "mean IoU 49.42" in lines
    assert "global accuracy 70.00" in lines
    assert "class-average accuracy 63.33" in lines


@pytest.mark.slow
def test_evaluate_missing_split_is_a_one_line_error_naming_the_splits(tmp_path, setup):
    # (Every ModelError and DatasetError takes this path; test_inference
    # checks their texts, e.g. a model with other classes.)
    data_dir, checkpoint = setup
    result = evaluate(
        tmp_path,
        "--dataset",
        "folder",
        "--data_dir",
        data_dir,
        "--split",
        "test",
        "--model",
        checkpoint,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert errors[0] == (
        f"error: {tmp_path / 'data'} has no 'test' split; it has val: pass one of them as --split."
    )


@pytest.mark.slow
def test_evaluate_without_split_scores_the_split_the_dataset_has(tmp_path, setup):
    data_dir, checkpoint = setup  # a folder dataset with only images/val
    result = evaluate(
        tmp_path, "--dataset", "folder", "--data_dir", data_dir, "--model", checkpoint
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert " on folder val: 2 images" in result.stdout
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert "mean IoU 49.42" in lines  # the val split's scores, as above


@pytest.mark.slow
def test_evaluate_checks_the_output_json_before_evaluating(tmp_path, setup):
    data_dir, checkpoint = setup
    (tmp_path / "file").write_text("a file, not a directory")
    target = tmp_path / "file" / "scores.json"
    result = evaluate(
        tmp_path,
        "--dataset",
        "folder",
        "--data_dir",
        data_dir,
        "--split",
        "val",
        "--model",
        tmp_path / "no_model_here",
        "--output_json",
        target,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    # The output is refused before the model is even looked for.
    assert len(errors) == 1, result.stderr[-2000:]
    assert f"--output_json {tmp_path / 'file'}" in errors[0]
    assert "no_model_here" not in result.stderr


@pytest.mark.slow
def test_evaluate_holds_out_the_val_images_the_model_was_trained_without(tmp_path):
    # A flat folder dataset (no val folder) of 4 images, trained with half
    # of them held out as val: evaluate scores those 2, not the default 10%.
    root = tmp_path / "flat"
    write_folder_dataset(root)
    for name in ("a", "b"):
        for kind in ("images", "masks"):
            for copy in ("", "2"):
                (root / kind / f"{name}{copy}.png").write_bytes(
                    (root / kind / "val" / f"{name}.png").read_bytes()
                )
    for kind in ("images", "masks"):
        for name in ("a", "b"):
            (root / kind / "val" / f"{name}.png").unlink()
        (root / kind / "val").rmdir()
    config = {**run_config(), "train": {"dataset": "folder", "val_fraction": 0.5}}
    checkpoint = write_checkpoint(tmp_path / "run", pixel_model(3), config)
    result = evaluate(
        tmp_path,
        "--dataset",
        "folder",
        "--data_dir",
        root,
        "--split",
        "val",
        "--model",
        checkpoint,
        "--output_json",
        tmp_path / "scores.json",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["dataset_options"] == {"val_fraction": 0.5}
    assert scores["num_images"] == 2


@pytest.mark.slow
def test_evaluate_names_the_runtime_at_the_size_it_runs(tmp_path):
    data_dir = write_folder_dataset(tmp_path / "data")
    height, width = np.shape(PREDICTED_A)
    config = {**run_config(), "train": {"height": height, "width": width}}
    checkpoint = write_checkpoint(tmp_path / "run", pixel_model(3), config)
    conversions.write_runtime_model(checkpoint)  # as train.py does at its end
    common = ["--dataset", "folder", "--data_dir", data_dir, "--split", "val"]
    # At its training size a Keras model runs as its TFLite conversion;
    # at any other size, in Keras.
    for size, runtime in (
        ([], "keras, run as its fixed-size TFLite conversion"),
        (["--height", height + 2, "--width", width + 2], "keras"),
    ):
        result = evaluate(tmp_path, *common, "--model", checkpoint, *size)
        assert result.returncode == 0, result.stderr[-2000:]
        assert f"model.keras ({runtime}) on folder val" in result.stdout


@pytest.mark.slow
def test_evaluate_refuses_another_size_for_a_fixed_size_export(tmp_path):
    from tf_enet import exporting

    data_dir = write_folder_dataset(tmp_path / "data")
    height, width = np.shape(PREDICTED_A)
    model = str(tmp_path / "fixed.tflite")
    exporting.export_tflite(pixel_model(3), model, run_config(), input_size=(height, width))
    common = ["--dataset", "folder", "--data_dir", data_dir, "--split", "val", "--model", model]
    result = evaluate(tmp_path, *common, "--height", height + 1, "--width", width)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {model} was exported for {height}x{width} images and runs only at that "
        f"size: omit --height/--width (images are resized to it) or pass --height {height} "
        f"--width {width}."
    )
    assert evaluate(tmp_path, *common, "--height", height, "--width", width).returncode == 0
