"""Tests of the Apache Beam handler and pipeline (`tf_enet.beam`), on DirectRunner.

The model is the shipped CamVid preset, run as `tf-enet-predict` runs it;
the reference for every output is `tf-enet-predict` itself (byte for
byte), and for the class totals a NumPy count over the written labels.
"""

import io
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

beam = pytest.importorskip("apache_beam", reason="the [beam] extra is not installed")

from tf_enet import beam as tf_enet_beam  # noqa: E402
from tf_enet import inference  # noqa: E402
from tf_enet.data import base as data_base  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "data", "samples")


@pytest.fixture(scope="module")
def predictor():
    return inference.load_predictor()


def write_image(path, image):
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)), path


def smooth_image(seed, height, width):
    """An image with large regions, so the model predicts several classes."""
    rng = np.random.RandomState(seed)
    small = rng.randint(0, 256, (3, 4, 3)).astype(np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def run_module(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "tf_enet.beam", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def file_bytes(directory):
    return {
        name: (directory / name).read_bytes()
        for name in sorted(os.listdir(directory))
        if name != tf_enet_beam.SUMMARY_FILE
    }


# --- Decoding and encoding shared with tf-enet-predict -----------------------


def test_decode_image_bytes_matches_the_file_reader(tmp_path):
    image = smooth_image(0, 10, 14)
    write_image(tmp_path / "a.png", image)
    decoded = data_base.decode_image_bytes((tmp_path / "a.png").read_bytes(), "gs://b/a.png")
    np.testing.assert_array_equal(decoded, image)
    # A sideways photo is turned upright as Pillow's exif_transpose turns it.
    photo = Image.fromarray(smooth_image(1, 12, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display.
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", exif=exif)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(buffer.getvalue()))))
    decoded = data_base.decode_image_bytes(buffer.getvalue(), "gs://b/photo.jpg")
    assert decoded.shape == (20, 12, 3)
    np.testing.assert_array_equal(decoded, upright)
    with pytest.raises(data_base.DatasetError, match="gs://b/e.png: the file is empty"):
        data_base.decode_image_bytes(b"", "gs://b/e.png")


def test_encode_prediction_is_what_opencv_writes(tmp_path):
    classes = np.random.RandomState(1).randint(0, 3, (6, 9)).astype(np.int32)
    image = smooth_image(1, 6, 9)
    palette = ((255, 0, 0), (0, 255, 0), (0, 0, 255))
    prediction = inference.FilePrediction("a.png", image, classes)
    encoded = inference.encode_prediction(prediction, palette, outputs=("labels", "overlay"))
    assert list(encoded) == ["_labels.png", "_overlay.jpg"]
    # The reference: OpenCV's file writer on arrays built here.
    colors = np.array(palette, np.uint8)[classes]
    blended = cv2.addWeighted(image, 0.5, colors, 0.5, 0)
    cv2.imwrite(str(tmp_path / "l.png"), classes.astype(np.uint8))
    cv2.imwrite(str(tmp_path / "o.jpg"), cv2.cvtColor(blended, cv2.COLOR_RGB2BGR))
    assert encoded["_labels.png"] == (tmp_path / "l.png").read_bytes()
    assert encoded["_overlay.jpg"] == (tmp_path / "o.jpg").read_bytes()


# --- The model handler -------------------------------------------------------


def test_handler_predicts_mixed_sizes_in_order(predictor):
    handler = tf_enet_beam.ENetModelHandler(max_batch_size=3)
    batch = [smooth_image(2, 30, 40), smooth_image(3, 20, 50), smooth_image(4, 30, 40)]
    results = handler.run_inference(batch, predictor)
    assert [r.example is image for r, image in zip(results, batch)] == [True] * 3
    for result, image in zip(results, batch):
        assert result.inference.shape == image.shape[:2]
        np.testing.assert_array_equal(result.inference, predictor.predict(image[None])[0])
    # The two 30x40 images differ, so a mix-up of the order would show.
    assert not np.array_equal(results[0].inference, results[2].inference)
    assert handler.batch_elements_kwargs() == {"min_batch_size": 1, "max_batch_size": 3}
    assert handler.get_num_bytes(batch) == sum(image.nbytes for image in batch)
    with pytest.raises(ValueError, match="min_batch_size <= max_batch_size"):
        tf_enet_beam.ENetModelHandler(min_batch_size=5, max_batch_size=2)


def test_remote_model_must_be_a_single_file():
    with pytest.raises(inference.ModelError, match="only a .tflite or .onnx file"):
        tf_enet_beam.local_model_path("gs://bucket/run/model.keras")
    assert tf_enet_beam.local_model_path("enet_camvid") == "enet_camvid"


# --- File handling -----------------------------------------------------------


def test_write_file_replaces_and_leaves_no_temporary_file(tmp_path):
    path = str(tmp_path / "a.png")
    tf_enet_beam.write_file(path, b"first")
    tf_enet_beam.write_file(path, b"second")
    assert os.listdir(tmp_path) == ["a.png"]
    assert (tmp_path / "a.png").read_bytes() == b"second"
    with pytest.raises(TypeError):
        tf_enet_beam.write_file(str(tmp_path / "b.png"), "not bytes")
    assert os.listdir(tmp_path) == ["a.png"]


def test_input_checks_name_the_input(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    assert tf_enet_beam.input_patterns([str(tmp_path), "gs://b/frames/", "x/*.jpg"]) == [
        (str(tmp_path / "*"), True),
        ("gs://b/frames/*", True),
        ("x/*.jpg", False),
    ]
    tf_enet_beam.check_inputs([str(tmp_path / "*.jpg")])
    with pytest.raises(OSError, match=r"--images .*\*\.png: matches no file"):
        tf_enet_beam.check_inputs([str(tmp_path / "*.jpg"), str(tmp_path / "*.png")])
    with pytest.raises(OSError, match="--output_dir .*a.jpg"):
        tf_enet_beam.check_output_dir(str(tmp_path / "a.jpg" / "out"))


def test_command_help_loads_neither_beam_nor_a_model():
    code = (
        "import sys, tf_enet.beam.__main__ as m\n"
        "try:\n    m.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted({'apache_beam', 'tensorflow', 'tf_enet.inference'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "--output_dir" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout


def test_command_refuses_bad_input_before_running(tmp_path, capsys):
    from tf_enet.beam.__main__ import main

    assert main(["--images", str(tmp_path / "*.jpg"), "--output_dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip().endswith("matches no file.")
    assert main(["--images", SAMPLES, "--output_dir", str(tmp_path), "--height", "8"]) == 2
    capsys.readouterr()
    beam_flags = ["--runner", "DirectRunner", "--direct_num_workers", "2"]
    assert main(["--images", "x", "--output_dir", str(tmp_path), *beam_flags, "--workers=2"]) == 2
    assert "unknown flag --workers:" in capsys.readouterr().err  # Sorts after the known ones.
    with pytest.raises(SystemExit):
        main(["--images", SAMPLES, "--output_dir", str(tmp_path), "--outputs", "labels,x"])
    capsys.readouterr()
    (tmp_path / "a_file").write_text("in the way")
    assert main(["--images", SAMPLES, "--output_dir", str(tmp_path / "a_file")]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: --output_dir {tmp_path / 'a_file'} is a file, not a directory."
    ]


# --- The pipeline ------------------------------------------------------------


def test_pipeline_names_outputs_as_predict_does(tmp_path):
    for folder, seed in (("a", 5), ("b", 6)):
        (tmp_path / folder).mkdir()
        write_image(tmp_path / folder / "x.png", smooth_image(seed, 16, 24))
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "b" / "y.jpg").write_bytes(b"not a jpeg")
    output = tmp_path / "out"
    inputs = [str(tmp_path / "a"), str(tmp_path / "b" / "*")]
    with beam.Pipeline() as pipeline:
        _ = pipeline | tf_enet_beam.SegmentImages(inputs, str(output), outputs=("labels",))
    assert sorted(os.listdir(output)) == ["summary.json", "x-2_labels.png", "x_labels.png"]
    summary = tf_enet_beam.read_summary(str(output))
    assert summary["images"] == 2
    assert summary["skipped"] == [str(tmp_path / "a" / "notes.txt")]
    assert [u["path"] for u in summary["unreadable"]] == [str(tmp_path / "b" / "y.jpg")]
    labels = [
        cv2.imread(str(output / f"{n}_labels.png"), cv2.IMREAD_UNCHANGED) for n in ("x", "x-2")
    ]
    expected = sum(np.bincount(label.ravel(), minlength=11) for label in labels)
    assert [c["pixels"] for c in summary["classes"]] == expected.tolist()
    assert summary["classes"][0]["name"] == "Sky"


@pytest.mark.slow
def test_multiprocess_pipeline_matches_predict(tmp_path):
    """DirectRunner with 2 worker processes against tf-enet-predict, then a rerun."""
    images = tmp_path / "images"
    images.mkdir()
    sizes = ((36, 48), (60, 80), (45, 45))
    for i in range(200):
        height, width = sizes[i % len(sizes)]
        write_image(images / f"frame_{i:03d}.png", smooth_image(i, height, width))
    for name in sorted(os.listdir(SAMPLES)):
        (images / name).write_bytes(open(os.path.join(SAMPLES, name), "rb").read())
    sample = (images / sorted(os.listdir(SAMPLES))[0]).read_bytes()
    bad = {
        "truncated.jpg": sample[: len(sample) // 2],
        "text.jpg": b"this is not a jpeg",
        "empty.png": b"",
    }
    for name, content in bad.items():
        (images / name).write_bytes(content)
    (images / "readme.txt").write_text("skipped: not an image name")

    reference = tmp_path / "predict"
    done = subprocess.run(
        [sys.executable, "-m", "tf_enet", "predict", "--images", str(images)]
        + ["--output_dir", str(reference)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr  # The bad files fail there.
    output = tmp_path / "beam"
    args = ["--images", images, "--output_dir", output, "--batch_size", "8"]
    args += ["--direct_running_mode", "multi_processing", "--direct_num_workers", "2"]
    done = run_module(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Segmented 204 images" in done.stdout
    assert "sdk_worker" not in done.stderr  # The workers' INFO log stays off the terminal.

    expected = file_bytes(reference)
    assert len(expected) == 3 * 204
    written = file_bytes(output)
    assert sorted(written) == sorted(expected)
    different = [name for name in expected if written[name] != expected[name]]
    assert different == []

    summary = json.loads((output / tf_enet_beam.SUMMARY_FILE).read_text())
    assert summary["images"] == 204
    assert sorted(os.path.basename(u["path"]) for u in summary["unreadable"]) == sorted(bad)
    assert summary["skipped"] == [str(images / "readme.txt")]
    totals = np.zeros(11, np.int64)
    for name in written:
        if name.endswith("_labels.png"):
            labels = cv2.imread(str(output / name), cv2.IMREAD_UNCHANGED)
            totals += np.bincount(labels.ravel(), minlength=11)
    assert [c["pixels"] for c in summary["classes"]] == totals.tolist()

    # A rerun into the same directory: the same files, nothing left over.
    (output / f".stale_labels.png{'.tmp-'}0123").write_bytes(b"half")
    done = run_module(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "removed 1 temporary files" in done.stdout
    assert file_bytes(output) == written
    assert sorted(os.listdir(output)) == sorted([*written, tf_enet_beam.SUMMARY_FILE])


@pytest.mark.slow
def test_pipeline_runs_where_tensorflow_cannot_be_imported(tmp_path):
    code = f"""
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ImportError(f"No module named {{name!r}} (blocked)")
sys.meta_path.insert(0, _Block())
from tf_enet.beam.__main__ import main
sys.exit(main(["--images", {SAMPLES!r}, "--output_dir", {str(tmp_path)!r}, "--outputs", "labels"]))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert tf_enet_beam.read_summary(str(tmp_path))["images"] == len(os.listdir(SAMPLES))
