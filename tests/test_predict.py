"""Tests of image and video prediction: the library, then predict.py as a script.

The model is inference_helpers' pixel model, which predicts the class id
written in each pixel's red channel, so every output file can be checked
exactly.
"""

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tf_enet import inference

from inference_helpers import (
    PALETTE,
    fake_predictor,
    pixel_model,
    red_image,
    run_config,
    write_checkpoint,
    write_rgb,
)

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "predict.py")


def predict(*args, cwd):
    return subprocess.run(
        [sys.executable, SCRIPT, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def read_rgb(path):
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, path
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@pytest.fixture
def checkpoint(tmp_path):
    return write_checkpoint(tmp_path / "run", pixel_model(3), run_config())


# --- The library under predict.py, in-process --------------------------------


def test_write_prediction_writes_the_chosen_outputs(tmp_path):
    red = np.random.RandomState(0).randint(0, 3, (6, 9))
    prediction = inference.FilePrediction("in/a.png", red_image(red), red.astype(np.int32))
    written = inference.write_prediction(
        prediction, str(tmp_path), "a", PALETTE, outputs=("labels", "color")
    )
    assert written == [str(tmp_path / "a_labels.png"), str(tmp_path / "a_color.png")]
    labels = cv2.imread(written[0], cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(labels, red)
    np.testing.assert_array_equal(read_rgb(written[1]), np.array(PALETTE, np.uint8)[red])
    with pytest.raises(ValueError, match="Unknown outputs"):
        inference.write_prediction(prediction, str(tmp_path), "a", PALETTE, outputs=("x",))


def test_output_stems_are_unique():
    stems = inference.output_stems(["a/x.png", "b/x.jpg", "c/y.png", "d/x.png"])
    assert list(stems.values()) == ["x", "x-2", "y", "x-3"]


def write_video(path, frame, count):
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (frame.shape[1], frame.shape[0])
    )
    for _ in range(count):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def read_video(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            return frames
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


def test_predict_video_batches_frames_through_the_given_predictor(tmp_path):
    write_video(tmp_path / "clip.mp4", red_image(np.full((16, 32), 200)), 6)
    predictor = fake_predictor()
    info = inference.video_info(str(tmp_path / "clip.mp4"))
    assert (info.num_frames, info.height, info.width) == (6, 16, 32)
    progress = []
    done = inference.predict_video(
        predictor,
        str(tmp_path / "clip.mp4"),
        str(tmp_path / "out.mp4"),
        batch_size=4,
        alpha=0.5,
        on_frames=progress.append,
    )
    assert done == 6 and progress == [4, 6]
    assert predictor.runner.shapes == [(4, 16, 32, 3), (2, 16, 32, 3)]
    frames = read_video(tmp_path / "out.mp4")
    assert len(frames) == 6 and frames[0].shape == (16, 32, 3)
    # Half the frame (200, 90, 30), half class 2's colour (0, 0, 200).
    np.testing.assert_allclose(frames[3].mean(axis=(0, 1)), [100, 45, 115], atol=12)
    with pytest.raises(OSError, match="missing.mp4: no such video file"):
        inference.video_info(str(tmp_path / "missing.mp4"))
    # OpenCV opens a JPEG as a one-frame video; it is refused instead.
    write_rgb(str(tmp_path / "photo.JPG"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(OSError, match="photo.JPG is an image, not a video; .* --images"):
        inference.video_info(str(tmp_path / "photo.JPG"))
    (tmp_path / "text.mp4").write_text("not a video")
    with pytest.raises(OSError, match="Cannot open video .*text.mp4: OpenCV cannot decode it"):
        inference.video_info(str(tmp_path / "text.mp4"))


# --- predict.py, run as a script ------------------------------------------------


@pytest.mark.slow
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
        "--model",
        checkpoint,
        "--images",
        tmp_path / "in",
        "--output_dir",
        tmp_path / "out",
        "--batch_size",
        2,
        "--alpha",
        0.5,
        cwd=tmp_path,
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
        np.testing.assert_allclose(overlay.mean(axis=(0, 1)), expected.mean(axis=(0, 1)), atol=6)
    assert sorted(os.listdir(tmp_path / "out")) == sorted(
        f"{name}_{kind}" for name in reds for kind in ("labels.png", "color.png", "overlay.jpg")
    )


@pytest.mark.slow
def test_predict_with_flip_tta_writes_the_label_pngs(tmp_path, checkpoint):
    red = np.random.RandomState(4).randint(0, 3, (8, 12))  # not mirror-symmetric
    write_rgb(tmp_path / "in" / "a.png", red_image(red))
    result = predict(
        "--model",
        checkpoint,
        "--images",
        tmp_path / "in",
        "--output_dir",
        tmp_path / "out",
        "--outputs",
        "labels",
        "--tta",
        "flip",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert os.listdir(tmp_path / "out") == ["a_labels.png"]
    # The pixel model's mirror, flipped back, agrees with it pixel for pixel.
    labels = cv2.imread(str(tmp_path / "out" / "a_labels.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(labels, red)


@pytest.mark.slow
def test_predict_outputs_flag_selects_files(tmp_path, checkpoint):
    write_rgb(tmp_path / "x.png", red_image(np.ones((5, 7))))
    result = predict(
        "--model",
        checkpoint,
        "--images",
        tmp_path / "x.png",
        "--outputs",
        "labels",
        "--output_dir",
        tmp_path / "out",
        "--height",
        4,
        "--width",
        4,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert os.listdir(tmp_path / "out") == ["x_labels.png"]
    labels = cv2.imread(str(tmp_path / "out" / "x_labels.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(labels, np.ones((5, 7)))  # back at 5x7


@pytest.mark.slow
def test_predict_video_writes_an_overlay_video(tmp_path, checkpoint):
    video = str(tmp_path / "clip.mp4")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"mp4v"), 10, (32, 16))
    frame = red_image(np.full((16, 32), 200))  # class 2 (red >= 2)
    for _ in range(6):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()

    result = predict(
        "--model",
        checkpoint,
        "--video",
        video,
        "--output_dir",
        tmp_path / "out",
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

    # Two videos in one command: refused before anything runs.
    two = predict("--video", video, video, "--output_dir", tmp_path / "two", cwd=tmp_path)
    assert two.returncode == 2
    assert two.stderr.strip().splitlines() == [
        f"error: --video takes one video file; received also {video} (one command per video)."
    ]
    assert not (tmp_path / "two").exists()


@pytest.mark.slow
def test_predict_with_a_missing_model_is_a_one_line_error(tmp_path):
    # (Every ModelError takes this path; test_inference checks their texts.)
    write_rgb(tmp_path / "x.png", red_image(np.ones((4, 4))))
    result = predict("--images", tmp_path / "x.png", "--model", tmp_path / "nothing", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert f"Model {tmp_path / 'nothing'} not found" in errors[0]
    # The output directory it created for nothing is gone; one the user made stays.
    assert not (tmp_path / "predictions").exists()
    (tmp_path / "mine").mkdir()
    for output_dir in ("mine", "mine/a/b"):
        result = predict(
            "--images", "x.png", "--model", "nothing", "--output_dir", output_dir, cwd=tmp_path
        )
        assert result.returncode == 1
        assert os.listdir(tmp_path / "mine") == []


@pytest.mark.slow
def test_predict_checks_the_output_dir_before_loading_the_model(tmp_path):
    write_rgb(tmp_path / "x.png", red_image(np.ones((4, 4))))
    (tmp_path / "file").write_text("a file, not a directory")
    result = predict(
        "--images",
        tmp_path / "x.png",
        "--model",
        tmp_path / "no_model_here",
        "--output_dir",
        tmp_path / "file" / "out",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert f"--output_dir {tmp_path / 'file' / 'out'}" in errors[0]
    assert "no_model_here" not in result.stderr
