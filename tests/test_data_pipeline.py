"""Tests of the tf.data pipelines: decoding, label mapping, augmentation."""

import json
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tf_enet import data

CAMVID_DIR = "/work/shared/data/CamVid"
IGNORE = 255
# Image colour of each class in the alignment test; class c is (c+1) * 40.
CLASS_COLORS = np.array([[40, 40, 40], [80, 80, 80], [120, 120, 120], [160, 160, 160]])


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_ENET_CACHE", str(tmp_path / "cache"))


def write(path, array):
    """Writes an array with OpenCV; 3-channel arrays are taken as RGB."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 3:
        array = array[:, :, ::-1]
    assert cv2.imwrite(str(path), array)


def make_folder(root, images, masks, num_classes=4, **extra):
    """A folder dataset of `images` (name -> array) and `masks`."""
    classes = [{"name": f"c{i}", "color": [i * 50, 255 - i * 50, 7]} for i in range(num_classes)]
    os.makedirs(root, exist_ok=True)
    (root / "classes.json").write_text(
        json.dumps({"classes": classes, "ignore_index": IGNORE, **extra})
    )
    for name, image in images.items():
        write(root / "images" / name, image)
    for name, mask in masks.items():
        write(root / "masks" / name, mask)
    # Every image stays in "train"; held-out val splits are tested elsewhere.
    return data.get_dataset("folder", str(root), val_fraction=0)


def batches(dataset):
    return [(x.numpy(), y.numpy()) for x, y in dataset]


def test_images_decode_to_8bit_rgb(tmp_path):
    gray = np.array([[0, 100, 200]], np.uint8)
    images = {
        "a_gray.png": gray,
        # OpenCV's BGRA: red 30, green 20, blue 10, alpha 40.
        "b_rgba.png": np.full((1, 3, 4), (10, 20, 30, 40), np.uint8),
        "c_deep.png": np.full((1, 3), 0xABCD, np.uint16),
        "d_rgb.bmp": np.full((1, 3, 3), (1, 2, 3), np.uint8),
    }
    masks = {name.split(".")[0] + ".png": np.zeros((1, 3), np.uint8) for name in images}
    ds = make_folder(tmp_path, images, masks)
    ((x, _),) = batches(data.make_eval_dataset(ds, "train", batch_size=4))
    assert x.dtype == np.float32 and x.shape == (4, 1, 3, 3)
    np.testing.assert_array_equal(x[0, 0], np.repeat(gray[0, :, None], 3, axis=1))
    np.testing.assert_array_equal(x[1, 0, 0], [30, 20, 10])  # alpha dropped
    np.testing.assert_array_equal(x[2, 0, 0], [171, 171, 171])  # 0xABCD -> 0xAB
    np.testing.assert_array_equal(x[3, 0, 0], [1, 2, 3])
    # The OpenCV decoder for prediction agrees with the pipeline.
    for i, (path, _) in enumerate(ds.files("train")):
        np.testing.assert_array_equal(data.decode_image_file(path), x[i])


def test_cityscapes_label_ids_become_train_ids(tmp_path):
    frame = "lindau_000000_000019"
    write(
        tmp_path / "leftImg8bit/val/lindau" / f"{frame}_leftImg8bit.png",
        np.zeros((2, 3, 3), np.uint8),
    )
    label_ids = np.array([[7, 26, 0], [33, 255, 9]], np.uint8)
    write(tmp_path / "gtFine/val/lindau" / f"{frame}_gtFine_labelIds.png", label_ids)
    ds = data.get_dataset("cityscapes", str(tmp_path))
    ((_, y),) = batches(data.make_eval_dataset(ds, "val", batch_size=1))
    # road 7 -> 0, car 26 -> 13, unlabeled 0 -> 255, bicycle 33 -> 18,
    # license plate 255 -> 255, parking 9 -> 255.
    np.testing.assert_array_equal(y[0], [[0, 13, 255], [18, 255, 255]])


def test_cityscapes_test_split_cannot_train(tmp_path):
    write(
        tmp_path / "leftImg8bit/test/berlin/berlin_0_0_leftImg8bit.png",
        np.zeros((2, 3, 3), np.uint8),
    )
    ds = data.get_dataset("cityscapes", str(tmp_path))
    with pytest.raises(data.DatasetError, match="'test' has no labels"):
        data.make_train_dataset(ds, "test", height=2, width=3, batch_size=1)
    with pytest.raises(data.DatasetError, match="'test' has no labels"):
        data.make_eval_dataset(ds, "test", batch_size=1)


def test_colour_and_id_masks_map_to_ids(tmp_path):
    # Class colours are (i * 50, 255 - i * 50, 7); black is the ignore colour.
    colour_mask = np.array([[[0, 255, 7], [50, 205, 7], [150, 105, 7], [0, 0, 0]]], np.uint8)
    ds = make_folder(
        tmp_path,
        {"a.png": np.zeros((1, 4, 3), np.uint8), "b.png": np.zeros((1, 4, 3), np.uint8)},
        {"a.png": colour_mask, "b.png": np.array([[3, 2, IGNORE, 0]], np.uint8)},
        ignore_color=[0, 0, 0],
    )
    ((_, y),) = batches(data.make_eval_dataset(ds, "train", batch_size=2))
    np.testing.assert_array_equal(y, [[[0, 1, 3, IGNORE]], [[3, 2, IGNORE, 0]]])


def block_dataset(root, count, seed=0):
    """Images of 8x8 blocks whose colour is a function of the block's class."""
    rng = np.random.RandomState(seed)
    images, masks = {}, {}
    for i in range(count):
        classes = rng.randint(0, 4, (3, 4)).repeat(8, 0).repeat(8, 1)  # [24, 32]
        images[f"{i:02d}.png"] = CLASS_COLORS[classes].astype(np.uint8)
        masks[f"{i:02d}.png"] = classes.astype(np.uint8)
    return make_folder(root, images, masks)


def test_augmentation_keeps_image_and_mask_aligned(tmp_path):
    ds = block_dataset(tmp_path, 8)
    train = data.make_train_dataset(
        ds, height=24, width=32, batch_size=4, min_scale=0.5, max_scale=2.0, seed=3
    )
    assert train.element_spec[0].shape == (4, 24, 32, 3)
    assert train.element_spec[1].shape == (4, 24, 32)
    padded = checked = 0
    for x, y in batches(train) + batches(train):
        for image, mask in zip(x, y):
            ignore = mask == IGNORE
            # The source has no ignore pixels: ignore is padding, image 0.
            assert np.all(image[ignore] == 0)
            padded += ignore.sum()
            # Away from block edges (where bilinear blends colours) the
            # image colour must be the colour of the mask's class.
            windows = np.lib.stride_tricks.sliding_window_view(np.pad(mask, 2, mode="edge"), (5, 5))
            interior = (windows.min((2, 3)) == windows.max((2, 3))) & ~ignore
            np.testing.assert_allclose(image[interior], CLASS_COLORS[mask[interior]], atol=1e-3)
            checked += interior.sum()
    assert padded > 0  # some scale < 1 happened
    assert checked > 0.5 * 16 * 24 * 32


def flip_patterns(dataset, epochs=2):
    """Per epoch and element: whether the bright left column moved right."""
    patterns = []
    for _ in range(epochs):
        pattern = []
        for x, y in batches(dataset):
            # Masks flip with their images.
            np.testing.assert_array_equal(x[:, :, :, 0] > 128, y == 1)
            pattern += [bool(image[0, -1, 0] > 128) for image in x]
        patterns.append(pattern)
    return patterns


def test_flips_are_seeded_and_reproducible(tmp_path):
    image = np.zeros((4, 6, 3), np.uint8)
    image[:, 0] = 255
    mask = np.zeros((4, 6), np.uint8)
    mask[:, 0] = 1
    ds = make_folder(
        tmp_path, {f"{i}.png": image for i in range(8)}, {f"{i}.png": mask for i in range(8)}
    )

    def make(seed):
        # Scale 1 on an image of the training size leaves only the flip.
        return data.make_train_dataset(
            ds, height=4, width=6, batch_size=4, seed=seed, min_scale=1, max_scale=1
        )

    first, second = flip_patterns(make(seed=7))
    assert 0 < sum(first) < 8  # both flipped and unflipped
    assert first != second  # each epoch draws anew...
    assert flip_patterns(make(seed=7)) == [first, second]  # ...reproducibly
    assert flip_patterns(make(seed=8), epochs=1)[0] != first


def test_label_stride_takes_cell_centres(tmp_path):
    ids = (np.arange(20 * 30).reshape(20, 30) % 4).astype(np.uint8)
    ids_24 = (np.arange(24 * 32).reshape(24, 32) % 4).astype(np.uint8)
    ds = make_folder(
        tmp_path,
        {"a.png": np.zeros((20, 30, 3), np.uint8), "b.png": np.zeros((24, 32, 3), np.uint8)},
        {"a.png": ids, "b.png": ids_24},
    )
    evaluation = data.make_eval_dataset(ds, "train", batch_size=1, label_stride=8)
    (_, ya), (_, yb) = batches(evaluation)
    # 20x30 pads to 24x32 with ignore; centres at rows 4, 12, 20 (padding)
    # and columns 4, 12, 20, 28: a ceil(20/8) x ceil(30/8) = 3x4 mask.
    assert ya.shape == (1, 3, 4)
    np.testing.assert_array_equal(ya[0, :2], ids[4:20:8, 4::8])
    np.testing.assert_array_equal(ya[0, 2], [IGNORE] * 4)
    np.testing.assert_array_equal(yb[0], ids_24[4::8, 4::8])

    train = data.make_train_dataset(
        ds, height=24, width=32, batch_size=2, label_stride=8, augment=False, limit=2
    )
    assert train.element_spec[1].shape == (2, 3, 4)


def test_eval_resizes_images_only_and_pads_masks(tmp_path):
    ds = make_folder(
        tmp_path,
        {"a.png": np.zeros((4, 6, 3), np.uint8), "b.png": np.zeros((2, 8, 3), np.uint8)},
        {"a.png": np.ones((4, 6), np.uint8), "b.png": np.full((2, 8), 2, np.uint8)},
    )
    evaluation = data.make_eval_dataset(ds, "train", batch_size=2, height=8, width=8)
    ((x, y),) = batches(evaluation)
    assert x.shape == (2, 8, 8, 3)
    # Masks keep their own resolution, padded with the ignore id to 4x8.
    assert y.shape == (2, 4, 8)
    np.testing.assert_array_equal(y[0, :, :6], 1)
    np.testing.assert_array_equal(y[0, :, 6:], IGNORE)
    np.testing.assert_array_equal(y[1, :2], 2)
    np.testing.assert_array_equal(y[1, 2:], IGNORE)


def test_input_context_shards_files_disjointly(tmp_path):
    # Image i is uniformly i * 10, so each batch shows which files it used.
    ds = make_folder(
        tmp_path,
        {f"{i}.png": np.full((2, 2, 3), i * 10, np.uint8) for i in range(8)},
        {f"{i}.png": np.zeros((2, 2), np.uint8) for i in range(8)},
    )
    seen = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=pipeline, num_replicas_in_sync=2
        )
        train = data.make_train_dataset(
            ds, height=2, width=2, batch_size=4, augment=False, input_context=context
        )
        assert train.element_spec[0].shape[0] == 2  # per-replica batch
        assert (
            train.options().experimental_distribute.auto_shard_policy
            == tf.data.experimental.AutoShardPolicy.OFF
        )
        seen.append({int(x[0, 0, 0]) // 10 for xs, _ in batches(train) for x in xs})
    assert seen[0].isdisjoint(seen[1])
    assert seen[0] | seen[1] == set(range(8))


def test_limit_and_batch_larger_than_split(tmp_path):
    ds = make_folder(
        tmp_path,
        {f"{i}.png": np.full((2, 2, 3), i, np.uint8) for i in range(5)},
        {f"{i}.png": np.zeros((2, 2), np.uint8) for i in range(5)},
    )
    ((x, _),) = batches(data.make_eval_dataset(ds, "train", batch_size=8, limit=3))
    np.testing.assert_array_equal(x[:, 0, 0, 0], [0, 1, 2])  # the first 3 sorted
    with pytest.raises(data.DatasetError, match="3 images, fewer than one batch of 4"):
        data.make_train_dataset(ds, height=2, width=2, batch_size=4, limit=3)
    with pytest.raises(ValueError, match="`height` must be a positive integer"):
        data.make_train_dataset(ds, height=0, width=2, batch_size=1)


def test_pipeline_refuses_bad_files_before_training(tmp_path):
    ds = make_folder(
        tmp_path,
        {"a.png": np.zeros((2, 2, 3), np.uint8)},
        {"a.png": np.array([[0, 9], [1, 1]], np.uint8)},
    )
    with pytest.raises(data.DatasetError, match=r"a.png has invalid values \[9\]"):
        data.make_train_dataset(ds, height=2, width=2, batch_size=1)


@pytest.mark.skipif(not os.path.isdir(CAMVID_DIR), reason="real CamVid absent")
def test_real_camvid_smoke():
    ds = data.get_dataset("camvid", CAMVID_DIR)
    assert len(ds.files("train")) == 367
    assert len(ds.files("val")) == 101
    assert ds.info.num_classes == 11
    assert ds.info.ignore_index == 11
    train = data.make_train_dataset(ds, height=360, width=480, batch_size=2, limit=4)
    x, y = next(iter(train))
    assert x.shape == (2, 360, 480, 3) and x.dtype == tf.float32
    assert y.shape == (2, 360, 480) and y.dtype == tf.int32
    assert set(np.unique(y)) <= set(range(12))


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_training_decodes_jpegs_to_the_pixels_prediction_reads(tmp_path, mode):
    # A noisy photo with 4:2:0 chroma (Pillow's default): the JPEG decoders'
    # DCTs round differently, so only the same method gives equal pixels.
    from PIL import Image

    from tf_enet.data import decoding

    rgb = np.random.RandomState(0).randint(0, 256, (37, 53, 3)).astype(np.uint8)
    path = str(tmp_path / "photo.jpg")
    Image.fromarray(rgb).convert(mode).save(path, quality=80)
    expected = data.decode_image_file(path)  # what predict and evaluate read
    contents = tf.io.read_file(path)
    decoded = decoding.decode_rgb(contents).numpy()
    if mode == "CMYK":
        # TensorFlow and OpenCV round the CMYK to RGB conversion apart.
        np.testing.assert_allclose(decoded, expected, atol=1)
    else:
        np.testing.assert_array_equal(decoded, expected)
    if mode == "RGB":
        # The default, fast DCT of tf.io.decode_image gives other pixels.
        fast = tf.io.decode_image(contents, channels=3).numpy()
        assert np.abs(fast.astype(int) - expected).max() > 0
