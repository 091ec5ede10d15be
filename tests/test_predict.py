"""Tests of predict.py, run as a script on small synthetic inputs.

The model is test_inference's pixel model, which predicts the class id
written in each pixel's red channel, so every output file can be checked
exactly.
"""

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from test_inference import (
    PALETTE, pixel_model, red_image, run_config, write_checkpoint, write_rgb,
)

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "predict.py")


def predict(*args, cwd):
    return subprocess.run(
        [sys.executable, SCRIPT, *map(str, args)],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )


def read_rgb(path):
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, path
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@pytest.fixture
def checkpoint(tmp_path):
    return write_checkpoint(tmp_path / "run", pixel_model(3), run_config())


def test_predict_writes_every_output_and_reports_bad_files(tmp_path, checkpoint):
    rng = np.random.RandomState(0)
    # a and c share a size (one batch of 2), b has its own.
    reds = {
        "a": rng.randint(0, 3, (8, 12)),
        "b": rng.randint(0, 3, (6, 10)),
        "c": rng.randint(0, 3, (8, 12)),
    }
    for name, red in reds.items():
        write_rgb(tmp_path / "in" / f"{name}.png", red_image(red))
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    (tmp_path / "in" / "notes.txt").write_text("not an image")

    result = predict(
        "--model", checkpoint, "--images", tmp_path / "in", "--output_dir",
        tmp_path / "out", "--batch_size", 2, "--alpha", 0.5, cwd=tmp_path,
    )

    assert result.returncode == 1  # broken.png failed
    assert "Traceback" not in result.stderr
    assert f"error: Cannot decode {tmp_path / 'in' / 'broken.png'}" in result.stderr
    assert f"note: skipping {tmp_path / 'in' / 'notes.txt'}" in result.stderr
    assert "Segmented 3 of 4 images" in result.stdout
    palette = np.array(PALETTE, np.uint8)
    for name, red in reds.items():
        labels = cv2.imread(str(tmp_path / "out" / f"{name}_labels.png"), cv2.IMREAD_UNCHANGED)
        assert labels.dtype == np.uint8
        np.testing.assert_array_equal(labels, red)  # class ids, input size
        np.testing.assert_array_equal(
            read_rgb(tmp_path / "out" / f"{name}_color.png"), palette[red]
        )
        overlay = read_rgb(tmp_path / "out" / f"{name}_overlay.jpg")
        expected = 0.5 * red_image(red) + 0.5 * palette[red]
        assert overlay.shape == (*red.shape, 3)
        # JPEG subsamples colour on these tiny noisy images; means survive.
        np.testing.assert_allclose(
            overlay.mean(axis=(0, 1)), expected.mean(axis=(0, 1)), atol=6
        )
    assert sorted(os.listdir(tmp_path / "out")) == sorted(
        f"{name}_{kind}" for name in reds
        for kind in ("labels.png", "color.png", "overlay.jpg")
    )


def test_predict_outputs_flag_selects_files(tmp_path, checkpoint):
    write_rgb(tmp_path / "x.png", red_image(np.ones((5, 7))))
    result = predict(
        "--model", checkpoint, "--images", tmp_path / "x.png", "--outputs",
        "labels", "--output_dir", tmp_path / "out", "--height", 4, "--width", 4,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert os.listdir(tmp_path / "out") == ["x_labels.png"]
    labels = cv2.imread(str(tmp_path / "out" / "x_labels.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(labels, np.ones((5, 7)))  # back at 5x7


def test_predict_video_writes_an_overlay_video(tmp_path, checkpoint):
    video = str(tmp_path / "clip.mp4")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"mp4v"), 10, (32, 16))
    frame = red_image(np.full((16, 32), 200))  # class 2 (red >= 2)
    for _ in range(6):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()

    result = predict(
        "--model", checkpoint, "--video", video, "--output_dir", tmp_path / "out",
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    assert "Wrote 6 frames" in result.stdout and "frames/s" in result.stdout
    capture = cv2.VideoCapture(str(tmp_path / "out" / "clip_overlay.mp4"))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    assert len(frames) == 6 and frames[0].shape == (16, 32, 3)
    # Half the frame (200, 90, 30), half class 2's colour (0, 0, 200).
    np.testing.assert_allclose(frames[3].mean(axis=(0, 1)), [100, 45, 115], atol=12)


def test_predict_without_the_shipped_model_is_a_one_line_error(tmp_path):
    # Run from tmp_path, where the default checkpoints/enet_camvid is absent.
    # (Every ModelError takes this path; test_inference checks their texts.)
    write_rgb(tmp_path / "x.png", red_image(np.ones((4, 4))))
    result = predict("--images", tmp_path / "x.png", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert "pretrained CamVid model checkpoints/enet_camvid" in errors[0]


def test_predict_checks_the_output_dir_before_loading_the_model(tmp_path):
    write_rgb(tmp_path / "x.png", red_image(np.ones((4, 4))))
    (tmp_path / "file").write_text("a file, not a directory")
    result = predict(
        "--images", tmp_path / "x.png", "--model", tmp_path / "no_model_here",
        "--output_dir", tmp_path / "file" / "out", cwd=tmp_path,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert f"--output_dir {tmp_path / 'file' / 'out'}" in errors[0]
    assert "no_model_here" not in result.stderr
