"""Tests of dataset layouts: file pairing, class lists and their errors."""

import json
import os

import cv2
import numpy as np
import pytest

from tf_enet import data


def write_rgb(path, rgb):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # OpenCV writes BGR.
    assert cv2.imwrite(str(path), np.asarray(rgb, np.uint8)[:, :, ::-1])


def write_ids(path, ids):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), np.asarray(ids, np.uint8))


def make_camvid(root, splits=None):
    splits = splits or {"train": ["a", "b"], "val": ["c"]}
    for split, names in splits.items():
        for name in names:
            write_rgb(root / split / f"{name}.png", np.zeros((4, 6, 3)))
            write_ids(root / f"{split}annot" / f"{name}.png", np.zeros((4, 6)))
    return root


def make_folder(root, classes=None, **extra):
    classes = classes or [
        {"name": "road", "color": [128, 64, 128]},
        {"name": "car", "color": [0, 0, 142]},
    ]
    os.makedirs(root / "images", exist_ok=True)
    os.makedirs(root / "masks", exist_ok=True)
    (root / "classes.json").write_text(json.dumps({"classes": classes, **extra}))
    return root


# --- CamVid ----------------------------------------------------------------


def test_camvid_pairs_by_name_and_ignores_list_files(tmp_path):
    root = make_camvid(tmp_path)
    # The tutorial's lists point at another machine; they must not be used.
    (root / "train.txt").write_text(
        "/SegNet/CamVid/train/zzz.png /SegNet/CamVid/trainannot/zzz.png\n"
    )
    ds = data.get_dataset("camvid", str(root))
    assert ds.files("train") == [
        (str(root / "train" / "a.png"), str(root / "trainannot" / "a.png")),
        (str(root / "train" / "b.png"), str(root / "trainannot" / "b.png")),
    ]
    assert ds.info.num_classes == 11
    assert ds.info.ignore_index == 11
    assert ds.info.palette[3] == (128, 64, 128)  # Road


def test_camvid_missing_split_names_dir_and_available_splits(tmp_path):
    ds = data.get_dataset("camvid", str(make_camvid(tmp_path)))
    with pytest.raises(data.DatasetError, match="available splits: train, val") as e:
        ds.files("test")
    assert str(tmp_path / "test") in str(e.value)


def test_camvid_wrong_dir_suggests_nested_camvid(tmp_path):
    make_camvid(tmp_path / "CamVid")
    with pytest.raises(data.DatasetError, match="Did you mean.*CamVid"):
        data.get_dataset("camvid", str(tmp_path))


def test_missing_data_dir_is_named(tmp_path):
    with pytest.raises(data.DatasetError, match="nowhere.*does not exist"):
        data.get_dataset("camvid", str(tmp_path / "nowhere"))


def test_unknown_dataset_name():
    with pytest.raises(data.DatasetError, match="'pascal'.*camvid, cityscapes, folder"):
        data.get_dataset("pascal", "/tmp")


def test_images_without_masks_counted_with_first_names(tmp_path):
    root = make_camvid(tmp_path, {"train": ["a"]})
    for name in ("d", "b", "c", "e"):
        write_rgb(root / "train" / f"{name}.png", np.zeros((4, 6, 3)))
    ds = data.get_dataset("camvid", str(root))
    with pytest.raises(data.DatasetError) as e:
        ds.files("train")
    message = str(e.value)
    assert (
        f"4 images without a mask in {root / 'trainannot'}, first: "
        "b.png, c.png, d.png, ..." in message
    )


def test_masks_without_images_counted(tmp_path):
    root = make_camvid(tmp_path, {"train": ["a"]})
    write_ids(root / "trainannot" / "x.png", np.zeros((4, 6)))
    ds = data.get_dataset("camvid", str(root))
    with pytest.raises(
        data.DatasetError,
        match=r"1 masks without an image in .*train, first: x\.png",
    ):
        ds.files("train")


# --- Cityscapes ------------------------------------------------------------


def make_cityscapes(root):
    for split, city, frame in [
        ("train", "aachen", "aachen_000000_000019"),
        ("train", "bremen", "bremen_000001_000019"),
        ("val", "lindau", "lindau_000000_000019"),
        ("test", "berlin", "berlin_000000_000019"),
    ]:
        write_rgb(
            root / "leftImg8bit" / split / city / f"{frame}_leftImg8bit.png",
            np.zeros((4, 6, 3)),
        )
        gt = root / "gtFine" / split / city
        write_ids(gt / f"{frame}_gtFine_labelIds.png", np.zeros((4, 6)))
        # Other annotation files of the release must not confuse pairing.
        write_rgb(gt / f"{frame}_gtFine_color.png", np.zeros((4, 6, 3)))
        write_ids(gt / f"{frame}_gtFine_instanceIds.png", np.zeros((4, 6)))
    return root


def test_cityscapes_pairs_across_cities_and_test_has_no_masks(tmp_path):
    root = make_cityscapes(tmp_path)
    ds = data.get_dataset("cityscapes", str(root))
    train = ds.files("train")
    assert [os.path.basename(m) for _, m in train] == [
        "aachen_000000_000019_gtFine_labelIds.png",
        "bremen_000001_000019_gtFine_labelIds.png",
    ]
    assert [os.path.basename(i) for i, _ in train] == [
        "aachen_000000_000019_leftImg8bit.png",
        "bremen_000001_000019_leftImg8bit.png",
    ]
    test = ds.files("test")
    assert len(test) == 1 and test[0][1] is None
    assert ds.info.num_classes == 19
    assert ds.info.ignore_index == 255
    assert ds.info.class_names[13] == "car"


def test_cityscapes_label_table_matches_official_train_ids():
    table = data.Cityscapes.label_mapping.id_table
    assert table[7] == 0  # road
    assert table[8] == 1  # sidewalk
    assert table[24] == 11  # person
    assert table[26] == 13  # car
    assert table[33] == 18  # bicycle
    assert table[0] == 255  # unlabeled
    assert table[9] == 255  # parking
    assert table[34] == -1  # not a Cityscapes label id
    assert sorted(v for v in table if 0 <= v < 19) == list(range(19))


def test_cityscapes_without_left_img8bit_is_named(tmp_path):
    with pytest.raises(data.DatasetError, match="leftImg8bit"):
        data.get_dataset("cityscapes", str(tmp_path))


# --- Folder ----------------------------------------------------------------


def test_folder_flat_is_train_split_and_val_says_so(tmp_path):
    root = make_folder(tmp_path)
    write_rgb(root / "images" / "x.jpg", np.zeros((4, 6, 3)))
    write_rgb(root / "images" / "y.bmp", np.zeros((4, 6, 3)))
    write_ids(root / "masks" / "x.png", np.zeros((4, 6)))
    write_ids(root / "masks" / "y.png", np.zeros((4, 6)))
    # Without a held-out val split, the flat folder is all "train".
    ds = data.get_dataset("folder", str(root), val_fraction=0)
    assert ds.splits() == ("train",)
    assert [os.path.basename(i) for i, _ in ds.files("train")] == ["x.jpg", "y.bmp"]
    assert ds.info.class_names == ("road", "car")
    assert ds.info.palette == ((128, 64, 128), (0, 0, 142))
    assert ds.info.ignore_index == 255
    with pytest.raises(data.DatasetError, match="no split subfolders.*'train' split"):
        ds.files("val")


def test_folder_split_subfolders(tmp_path):
    root = make_folder(tmp_path, ignore_index=7)
    for split in ("train", "val"):
        write_rgb(root / "images" / split / "p.png", np.zeros((4, 6, 3)))
        write_ids(root / "masks" / split / "p.png", np.zeros((4, 6)))
    ds = data.get_dataset("folder", str(root))
    assert ds.splits() == ("train", "val")
    assert ds.files("val") == [
        (str(root / "images" / "val" / "p.png"), str(root / "masks" / "val" / "p.png"))
    ]
    assert ds.info.ignore_index == 7
    with pytest.raises(data.DatasetError, match="'test' not found.*train, val"):
        ds.files("test")


def test_folder_jpeg_masks_are_refused(tmp_path):
    root = make_folder(tmp_path)
    write_rgb(root / "images" / "x.png", np.zeros((4, 6, 3)))
    write_rgb(root / "masks" / "x.jpg", np.zeros((4, 6, 3)))
    with pytest.raises(data.DatasetError, match="JPEG masks.*x.jpg"):
        data.get_dataset("folder", str(root)).files("train")


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "classes.json not found"),
        ("{not json", "Cannot read class list"),
        ({"classes": []}, '"classes" is empty'),
        ({"classes": [{"name": "a"}]}, r"classes\[0\]\.color must be three"),
        ({"classes": [{"name": "a", "color": [1, 2, 300]}]}, "0, 255"),
        (
            {"classes": [{"name": "a", "color": [1, 2, 3]}], "ignore_index": 0},
            '"ignore_index" 0 is a class id',
        ),
        (
            {"classes": [{"name": "a", "color": [1, 2, 3]}, {"name": "b", "color": [1, 2, 3]}]},
            "share a colour",
        ),
    ],
)
def test_folder_bad_class_list_names_file(tmp_path, content, message):
    os.makedirs(tmp_path / "images")
    os.makedirs(tmp_path / "masks")
    if content is not None:
        text = content if isinstance(content, str) else json.dumps(content)
        (tmp_path / "classes.json").write_text(text)
    with pytest.raises(data.DatasetError, match=message) as e:
        data.get_dataset("folder", str(tmp_path))
    assert str(tmp_path / "classes.json") in str(e.value)


def test_folder_missing_masks_dir(tmp_path):
    os.makedirs(tmp_path / "images")
    with pytest.raises(data.DatasetError, match=r"masks/\) not found.*masks"):
        data.get_dataset("folder", str(tmp_path))


# --- DatasetInfo, decode_image_file, colorize -------------------------------


def test_dataset_info_round_trips_through_json():
    info = data.CamVid.info
    restored = data.DatasetInfo.from_dict(json.loads(json.dumps(info.to_dict())))
    assert restored == info
    assert restored.num_classes == 11


def test_dataset_info_rejects_ignore_inside_classes():
    with pytest.raises(ValueError, match="ignore_index 1 is a class id"):
        data.DatasetInfo("x", ("a", "b"), ((0, 0, 0), (1, 1, 1)), 1)


def test_decode_image_file_converts_to_8bit_rgb(tmp_path):
    gray = np.array([[0, 100], [200, 255]], np.uint8)
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    # BGRA in OpenCV: blue 10, green 20, red 30, alpha 40.
    bgra = np.full((2, 2, 4), (10, 20, 30, 40), np.uint8)
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    cv2.imwrite(str(tmp_path / "deep.png"), np.full((2, 2, 3), 0xABCD, np.uint16))

    out = data.decode_image_file(str(tmp_path / "gray.png"))
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out[:, :, 1], gray)
    np.testing.assert_array_equal(
        data.decode_image_file(str(tmp_path / "rgba.png"))[0, 0], [30, 20, 10]
    )
    # 16-bit 0xABCD keeps its high byte, 0xAB = 171.
    np.testing.assert_array_equal(
        data.decode_image_file(str(tmp_path / "deep.png"))[0, 0], [171, 171, 171]
    )


def test_decode_image_file_unreadable_names_file(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(data.DatasetError, match="bad.png"):
        data.decode_image_file(str(bad))
    with pytest.raises(data.DatasetError, match="missing.png"):
        data.decode_image_file(str(tmp_path / "missing.png"))


def test_colorize_paints_ignore_and_out_of_range_black():
    palette = ((10, 20, 30), (40, 50, 60))
    labels = np.array([[0, 1], [255, -1]])
    np.testing.assert_array_equal(
        data.colorize(labels, palette),
        [[[10, 20, 30], [40, 50, 60]], [[0, 0, 0], [0, 0, 0]]],
    )
