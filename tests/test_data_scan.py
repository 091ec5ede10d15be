"""Tests of the validating scan, its cache, and class weights."""

import json
import os

import cv2
import numpy as np
import pytest

from tf_enet import data
from tf_enet.data import base, masks

# Two 2x3 CamVid masks (11 = Unlabelled, the ignore id).
MASK_A = [[0, 0, 1], [11, 1, 1]]  # class 0: 2, class 1: 3, ignore: 1
MASK_B = [[0, 2, 2], [2, 2, 11]]  # class 0: 1, class 2: 4, ignore: 1


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_ENET_CACHE", str(tmp_path / "cache"))


def write(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), np.asarray(array))


def make_camvid(root, masks=None):
    masks = masks or {"a": MASK_A, "b": MASK_B}
    for name, mask in masks.items():
        write(root / "data" / "train" / f"{name}.png", np.zeros((2, 3, 3), np.uint8))
        write(root / "data" / "trainannot" / f"{name}.png", np.asarray(mask, np.uint8))
    return data.get_dataset("camvid", str(root / "data"))


def test_scan_counts_classes_and_skips_ignore(tmp_path):
    stats = data.scan(make_camvid(tmp_path), "train")
    assert stats.num_images == 2
    assert stats.pixel_counts.dtype == np.int64
    np.testing.assert_array_equal(stats.pixel_counts, [3, 3, 4] + [0] * 8)
    # Labelled pixels of the images containing each class: class 0 is in
    # both (5 + 5), class 1 only in a (5), class 2 only in b (5).
    np.testing.assert_array_equal(stats.image_pixel_counts, [10, 5, 5] + [0] * 8)
    assert stats.ignore_pixels == 2
    assert stats.image_sizes == ((2, 3),)


def test_mfb_weights_by_hand(tmp_path):
    stats = data.scan(make_camvid(tmp_path), "train")
    weights = data.class_weights(stats, "mfb")
    # freq = [3/10, 3/5, 4/5] = [0.3, 0.6, 0.8]; median 0.6; unseen -> 0.
    np.testing.assert_allclose(weights, [2.0, 1.0, 0.75] + [0.0] * 8, rtol=1e-6)
    assert weights.dtype == np.float32


def test_enet_weights_by_hand(tmp_path):
    stats = data.scan(make_camvid(tmp_path), "train")
    weights = data.class_weights(stats, "enet")
    # p = [0.3, 0.3, 0.4, 0...]; 1/ln(1.32) = 3.60188, 1/ln(1.42) = 2.85180,
    # 1/ln(1.02) = 50.4983.
    np.testing.assert_allclose(weights, [3.60188, 3.60188, 2.85180] + [50.4983] * 8, rtol=1e-5)


def test_none_and_unknown_weights():
    stats = data.ScanResult("train", 1, [1, 2], [3, 3], 0, ((1, 3),))
    np.testing.assert_array_equal(data.class_weights(stats, "none"), [1, 1])
    with pytest.raises(ValueError, match="'median'"):
        data.class_weights(stats, "median")


def test_weights_need_labelled_pixels():
    stats = data.ScanResult("train", 1, [0, 0], [0, 0], 6, ((2, 3),))
    with pytest.raises(ValueError, match="no labelled pixels"):
        data.class_weights(stats, "enet")


def test_bad_label_values_name_file_and_values(tmp_path):
    ds = make_camvid(tmp_path, {"a": MASK_A, "b": [[0, 12, 200], [1, 1, 1]]})
    with pytest.raises(data.DatasetError) as e:
        data.scan(ds, "train")
    message = str(e.value)
    assert "1 of 2 files are unusable" in message
    assert os.path.join("trainannot", "b.png") in message
    assert "invalid values [12, 200]" in message
    assert "class ids 0-10 or the ignore id 11" in message


def test_size_mismatch_names_both_sizes(tmp_path):
    ds = make_camvid(tmp_path, {"a": [[0] * 3] * 3})
    with pytest.raises(
        data.DatasetError,
        match=r"image .*train/a.png is 3x2 but mask .*trainannot/a.png is 3x3",
    ):
        data.scan(ds, "train")


def test_corrupt_and_truncated_files_are_all_listed(tmp_path):
    ds = make_camvid(tmp_path, {"a": MASK_A, "b": MASK_B})
    image = tmp_path / "data" / "train" / "a.png"
    image.write_bytes(image.read_bytes()[:40])
    (tmp_path / "data" / "trainannot" / "b.png").write_bytes(b"garbage")
    with pytest.raises(data.DatasetError) as e:
        data.scan(ds, "train")
    message = str(e.value)
    assert "2 of 2 files are unusable" in message
    assert "Cannot decode" in message and str(image) in message
    mask = tmp_path / "data" / "trainannot" / "b.png"
    assert f"Cannot use mask {mask}: not a PNG file" in message


def test_truncated_jpeg_is_caught(tmp_path):
    # Older OpenCV decodes a cut JPEG with only a warning; TensorFlow fails.
    ok, jpeg = cv2.imencode(".jpg", np.random.RandomState(0).randint(0, 255, (64, 64, 3), np.uint8))
    path = tmp_path / "cut.jpg"
    path.write_bytes(jpeg.tobytes()[:-100])
    with pytest.raises(data.DatasetError, match="cut.jpg: .*truncated"):
        base.read_image_array(str(path))


def test_colour_mask_in_id_dataset_and_16_bit_value_past_ids_are_refused(tmp_path):
    ds = make_camvid(tmp_path, {"a": MASK_A, "b": MASK_B})
    write(tmp_path / "data" / "trainannot" / "a.png", np.zeros((2, 3, 3), np.uint8))
    # A 16-bit mask is read as its values; 300 is no CamVid id.
    write(
        tmp_path / "data" / "trainannot" / "b.png", np.array([[0, 1, 300], [2, 11, 0]], np.uint16)
    )
    with pytest.raises(data.DatasetError) as e:
        data.scan(ds, "train")
    assert "a.png has 3 (colour) channels" in str(e.value)
    assert "b.png has invalid values [300]" in str(e.value)


def test_unknown_mask_colour_names_file_and_colour(tmp_path):
    (tmp_path / "classes.json").write_text(
        json.dumps(
            {
                "classes": [
                    {"name": "a", "color": [255, 0, 0]},
                    {"name": "b", "color": [0, 0, 255]},
                ],
                "ignore_color": [0, 0, 0],
            }
        )
    )
    write(tmp_path / "images" / "x.png", np.zeros((2, 2, 3), np.uint8))
    # RGB (255, 0, 0), (0, 0, 0) known; (0, 255, 0) is not. OpenCV is BGR.
    mask = np.array([[[0, 0, 255], [0, 0, 0]], [[0, 255, 0], [0, 255, 0]]], np.uint8)
    write(tmp_path / "masks" / "x.png", mask)
    ds = data.get_dataset("folder", str(tmp_path), val_fraction=0)
    with pytest.raises(
        data.DatasetError,
        match=r"x.png has colours not in the class "
        r"list: \[\(0, 255, 0\)\]",
    ):
        data.scan(ds, "train")


def test_second_scan_reads_no_file(tmp_path, monkeypatch):
    ds = make_camvid(tmp_path)
    first = data.scan(ds, "train", cache_dir=str(tmp_path / "c"))

    def fail(path, *args):
        raise AssertionError(f"read {path} despite the cache")

    monkeypatch.setattr(base, "read_image_array", fail)
    monkeypatch.setattr(masks, "read_mask", fail)
    second = data.scan(ds, "train", cache_dir=str(tmp_path / "c"))
    assert second.to_dict() == first.to_dict()
    np.testing.assert_array_equal(second.pixel_counts, first.pixel_counts)

    # A changed file changes the key, so the scan runs (and reads) again.
    mask = tmp_path / "data" / "trainannot" / "a.png"
    os.utime(mask, ns=(1, 1))
    with pytest.raises(AssertionError, match="despite the cache"):
        data.scan(ds, "train", cache_dir=str(tmp_path / "c"))


def test_cache_goes_to_env_dir_and_unwritable_dir_is_harmless(tmp_path):
    ds = make_camvid(tmp_path)
    data.scan(ds, "train")
    assert len(os.listdir(tmp_path / "cache")) == 1
    blocker = tmp_path / "file"
    blocker.write_text("")
    stats = data.scan(ds, "train", cache_dir=str(blocker / "sub"))
    assert stats.num_images == 2
