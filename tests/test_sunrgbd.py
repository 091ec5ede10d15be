"""Tests of the SUN RGB-D (37 classes) layout, labels and pipelines."""

import os

import cv2
import numpy as np
import pytest

from tf_enet import data
from tf_enet.data import sunrgbd

IGNORE = 255
HEIGHT, WIDTH = 12, 16


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_ENET_CACHE", str(tmp_path / "cache"))


def write(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), np.asarray(array))


def label_map(number):
    """The label of file number `number`: left half `number % 37 + 1`,
    right half `(number + 5) % 37 + 1`, the bottom row void (0)."""
    label = np.empty((HEIGHT, WIDTH), np.uint8)
    label[:, : WIDTH // 2] = number % 37 + 1
    label[:, WIDTH // 2 :] = (number + 5) % 37 + 1
    label[-1] = 0
    return label


def make_sunrgbd(root, train=(1, 2, 3), test=(1, 2), nested=False):
    """Handa's layout: images numbered per split, labels test-first.

    Image `n` of a split is a flat grey of level `n * 20` (+ 100 for test),
    so a pairing can be checked from the pixels.
    """
    inner = "SUNRGBD-train_images" if nested else ""
    for n in train:
        write(
            root / sunrgbd.TRAIN_IMAGE_DIR / inner / f"img-{n:06d}.jpg",
            np.full((HEIGHT, WIDTH, 3), n * 20, np.uint8),
        )
        write(root / sunrgbd.LABEL_DIR / f"img-{n + 5050:06d}.png", label_map(n + 5050))
    for n in test:
        write(
            root / sunrgbd.TEST_IMAGE_DIR / f"img-{n:06d}.jpg",
            np.full((HEIGHT, WIDTH, 3), 100 + n * 20, np.uint8),
        )
        write(root / sunrgbd.LABEL_DIR / f"img-{n:06d}.png", label_map(n))
    return root


def names(pairs):
    return [(os.path.basename(i), os.path.basename(m)) for i, m in pairs]


def test_train_images_pair_with_labels_offset_by_the_test_count(tmp_path):
    ds = data.get_dataset("sunrgbd", str(make_sunrgbd(tmp_path, nested=True)))
    assert ds.splits() == ("train", "val", "test")
    assert names(ds.files("train")) == [
        ("img-000001.jpg", "img-005051.png"),
        ("img-000002.jpg", "img-005052.png"),
        ("img-000003.jpg", "img-005053.png"),
    ]
    assert names(ds.files("test")) == [
        ("img-000001.jpg", "img-000001.png"),
        ("img-000002.jpg", "img-000002.png"),
    ]
    assert ds.files("val") == ds.files("test")  # no val split: the paper reports test


def test_pairing_is_by_number_so_a_gap_is_reported(tmp_path):
    root = make_sunrgbd(tmp_path, train=(1, 2, 3, 10))
    ds = data.get_dataset("sunrgbd", str(root))
    # Image 10 pairs with label 5060 although it is the 4th file.
    assert names(ds.files("train"))[-1] == ("img-000010.jpg", "img-005060.png")
    os.remove(root / sunrgbd.LABEL_DIR / "img-005052.png")
    with pytest.raises(data.DatasetError, match="1 images without a mask .* img-000002.jpg"):
        ds.files("train")
    os.remove(root / sunrgbd.TEST_IMAGE_DIR / "img-000001.jpg")
    with pytest.raises(data.DatasetError, match="1 masks without an image .* img-000001.png"):
        ds.files("test")


def test_per_split_layout_pairs_by_number_within_each_split(tmp_path):
    # chrischoy/SUN_RGBD: image/<split>/img-<n>.jpg, label37/<split>/<n>.png.
    for split, numbers in (("train", (1, 2, 10)), ("test", (1, 3))):
        for n in numbers:
            write(tmp_path / "image" / split / f"img-{n:06d}.jpg", np.zeros((4, 4, 3)))
            write(tmp_path / "label37" / split / f"{n:08d}.png", label_map(n))
    ds = data.get_dataset("sunrgbd", str(tmp_path))
    assert ds.splits() == ("train", "val", "test")
    assert names(ds.files("train")) == [
        ("img-000001.jpg", "00000001.png"),
        ("img-000002.jpg", "00000002.png"),
        ("img-000010.jpg", "00000010.png"),
    ]
    assert names(ds.files("val")) == [
        ("img-000001.jpg", "00000001.png"),
        ("img-000003.jpg", "00000003.png"),
    ]
    os.remove(tmp_path / "label37" / "test" / "00000003.png")
    with pytest.raises(data.DatasetError, match="1 images without a mask .* img-000003.jpg"):
        ds.files("test")


def test_layout_errors_name_what_is_missing(tmp_path):
    with pytest.raises(data.DatasetError, match="sunrgbd_train_test_labels/"):
        data.get_dataset("sunrgbd", str(tmp_path))
    os.makedirs(tmp_path / sunrgbd.LABEL_DIR)
    with pytest.raises(data.DatasetError, match="has no images; expected SUNRGBD-train_images/"):
        data.get_dataset("sunrgbd", str(tmp_path))
    os.makedirs(tmp_path / sunrgbd.TEST_IMAGE_DIR)
    ds = data.get_dataset("sunrgbd", str(tmp_path))
    with pytest.raises(data.DatasetError, match="split 'train' not found"):
        ds.files("train")
    with pytest.raises(data.DatasetError, match="split 'test' is empty"):
        ds.files("test")
    with pytest.raises(data.DatasetError, match="no split 'training'"):
        ds.files("training")
    write(tmp_path / sunrgbd.TEST_IMAGE_DIR / "img-000001.jpg", np.zeros((2, 2, 3)))
    write(tmp_path / sunrgbd.TEST_IMAGE_DIR / "copy" / "img-1.jpg", np.zeros((2, 2, 3)))
    with pytest.raises(data.DatasetError, match="Two SUN RGB-D files numbered 1"):
        ds.files("test")


def test_classes_and_palette():
    info = data.SUNRGBD.info
    assert info.num_classes == 37 and info.ignore_index == IGNORE
    assert info.class_names[0] == "wall" and info.class_names[36] == "bag"
    # PASCAL VOC colours of label values 1, 2, 3 and 37.
    assert info.palette[:3] == ((128, 0, 0), (0, 128, 0), (128, 128, 0))
    assert info.palette[36] == (128, 0, 192)
    assert len(set(info.palette)) == 37


def test_labels_shift_by_one_and_void_is_ignored(tmp_path):
    root = make_sunrgbd(tmp_path, train=(1,), test=(1,))
    write(root / sunrgbd.LABEL_DIR / "img-000001.png", np.array([[0, 1, 37, 20]] * 2, np.uint8))
    write(root / sunrgbd.TEST_IMAGE_DIR / "img-000001.jpg", np.zeros((2, 4, 3), np.uint8))
    ds = data.get_dataset("sunrgbd", str(root))
    ((_, y),) = [
        (x.numpy(), y.numpy()) for x, y in data.make_eval_dataset(ds, "test", batch_size=1)
    ]
    np.testing.assert_array_equal(y[0], [[IGNORE, 0, 36, 19]] * 2)

    write(root / sunrgbd.LABEL_DIR / "img-000001.png", np.array([[38, 1]], np.uint8))
    write(root / sunrgbd.TEST_IMAGE_DIR / "img-000001.jpg", np.zeros((1, 2, 3), np.uint8))
    with pytest.raises(data.DatasetError, match=r"invalid values \[38\]"):
        data.scan(ds, "test")


def test_scan_counts_and_class_weights(tmp_path):
    ds = data.get_dataset("sunrgbd", str(make_sunrgbd(tmp_path)))
    stats = data.scan(ds, "train")
    # Labels 5051-5053: left halves 5051 % 37 + 1 = 20, 21, 22, right
    # halves 25, 26, 27 (class ids one lower), 11 rows each of 8 pixels.
    expected = np.zeros(37, np.int64)
    expected[[19, 20, 21, 24, 25, 26]] = 11 * 8
    np.testing.assert_array_equal(stats.pixel_counts, expected)
    assert stats.ignore_pixels == 3 * WIDTH  # the void rows
    assert stats.image_sizes == ((HEIGHT, WIDTH),)
    weights = data.class_weights(stats, "enet")
    share = 1 / 6
    np.testing.assert_allclose(weights[19], 1 / np.log(1.02 + share), rtol=1e-6)
    np.testing.assert_allclose(weights[0], 1 / np.log(1.02), rtol=1e-6)


def test_train_and_eval_pipelines(tmp_path):
    ds = data.get_dataset("sunrgbd", str(make_sunrgbd(tmp_path)))
    train = data.make_train_dataset(ds, height=8, width=8, batch_size=2, seed=1)
    ((x, y),) = [(x.numpy(), y.numpy()) for x, y in train]  # 3 images, 1 full batch
    assert x.shape == (2, 8, 8, 3) and y.shape == (2, 8, 8)
    assert set(np.unique(y)) <= {19, 20, 21, 24, 25, 26, IGNORE}

    val = data.make_eval_dataset(ds, "val", batch_size=2)
    batches = [(x.numpy(), y.numpy()) for x, y in val]
    assert [b[0].shape[0] for b in batches] == [2]
    x, y = batches[0]
    # Test image n is grey 100 + 20 n (JPEG, so within a few levels) and
    # its label has left half n % 37 + 1.
    np.testing.assert_allclose(x[:, 0, 0, 0], [120, 140], atol=3)
    np.testing.assert_array_equal(y[:, 0, 0], [1, 2])  # labels 2, 3 -> ids 1, 2
    np.testing.assert_array_equal(y[:, -1], IGNORE)


def test_16_bit_labels_read_as_ids(tmp_path):
    # Whether the published label PNGs are 8- or 16-bit, values are ids.
    root = make_sunrgbd(tmp_path, train=(1,), test=(1,))
    write(root / sunrgbd.LABEL_DIR / "img-000001.png", np.array([[0, 1, 37, 20]] * 2, np.uint16))
    write(root / sunrgbd.TEST_IMAGE_DIR / "img-000001.jpg", np.zeros((2, 4, 3), np.uint8))
    ds = data.get_dataset("sunrgbd", str(root))
    assert data.scan(ds, "test").pixel_counts[[0, 19, 36]].tolist() == [2, 2, 2]
    ((_, y),) = [
        (x.numpy(), y.numpy()) for x, y in data.make_eval_dataset(ds, "test", batch_size=1)
    ]
    np.testing.assert_array_equal(y[0], [[IGNORE, 0, 36, 19]] * 2)
