"""Label conventions of users' masks: 0 is void, more than 256 classes.

Tiny synthetic folder datasets; the expected class ids are written by hand
next to each assertion, and checked on both paths: the numpy scan
(`data.scan`) and the tf.data decoder (`data.make_eval_dataset`).
"""

import json
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from tf_enet import data

# Three classes, saved in the masks as 1, 2, 3 with 0 for unlabelled.
CLASSES = [
    {"name": "cat", "color": [200, 0, 0]},
    {"name": "dog", "color": [0, 200, 0]},
    {"name": "bird", "color": [0, 0, 200]},
]
ZERO_VOID = np.array([[0, 1, 2, 3], [255, 3, 0, 1]], np.uint8)
# 0 -> ignore, v -> v - 1, 255 (the ignore id) stays ignored.
ZERO_VOID_IDS = np.array([[255, 0, 1, 2], [255, 2, 255, 0]])


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_ENET_CACHE", str(tmp_path / "cache"))


def make_folder(root, masks, classes=CLASSES, **settings):
    """A flat folder dataset; `masks` maps a name to a mask writer `f(path)`."""
    os.makedirs(root / "images", exist_ok=True)
    os.makedirs(root / "masks", exist_ok=True)
    (root / "classes.json").write_text(json.dumps({"classes": classes, **settings}))
    for name, writer in masks.items():
        path = str(root / "masks" / f"{name}.png")
        writer(path)
        height, width = cv2.imread(path, cv2.IMREAD_UNCHANGED).shape[:2]
        assert cv2.imwrite(str(root / "images" / f"{name}.png"), np.zeros((height, width, 3)))
    return str(root)


def grey(values):
    return lambda path: cv2.imwrite(path, np.asarray(values))


def pipeline_ids(dataset):
    return [
        labels.numpy()[0] for _, labels in data.make_eval_dataset(dataset, "train", batch_size=1)
    ]


def test_reduce_zero_label_maps_zero_to_ignore_and_shifts_classes(tmp_path):
    def palette(path):
        image = Image.fromarray(ZERO_VOID, "P")
        image.putpalette([7, 7, 7] * 256)
        image.save(path)

    root = make_folder(
        tmp_path, {"grey": grey(ZERO_VOID), "palette": palette}, reduce_zero_label=True
    )
    ds = data.get_dataset("folder", root, val_fraction=0)
    stats = data.scan(ds, "train")
    # Per copy: cat (value 1) 2 pixels, dog (2) 1, bird (3) 2; 0 and 255: 3.
    assert stats.pixel_counts.tolist() == [4, 2, 4]
    assert stats.ignore_pixels == 6
    for ids in pipeline_ids(ds):
        np.testing.assert_array_equal(ids, ZERO_VOID_IDS)
    batches = data.make_train_dataset(ds, height=2, width=4, batch_size=2, augment=False)
    _, masks = next(iter(batches))
    np.testing.assert_array_equal(masks, [ZERO_VOID_IDS, ZERO_VOID_IDS])
    assert data.check_trainable(ds.info, stats) == []


def test_reduce_zero_label_leaves_colour_masks_to_their_colours(tmp_path):
    rgb = np.array([[[200, 0, 0], [0, 0, 200]]], np.uint8)
    root = make_folder(
        tmp_path,
        {"a": lambda p: cv2.imwrite(p, rgb[:, :, ::-1]), "b": grey([[0, 1]])},
        reduce_zero_label=True,
    )
    ds = data.get_dataset("folder", root, val_fraction=0)
    ids = pipeline_ids(ds)
    np.testing.assert_array_equal(ids[0], [[0, 2]])  # cat, bird by colour
    np.testing.assert_array_equal(ids[1], [[255, 0]])  # 0 void, 1 is cat


def test_zero_is_void_masks_are_refused_pointing_to_reduce_zero_label(tmp_path):
    root = make_folder(tmp_path, {"a": grey(ZERO_VOID)})
    ds = data.get_dataset("folder", root, val_fraction=0)
    with pytest.raises(data.DatasetError) as e:
        data.scan(ds, "train")
    message = str(e.value)
    assert f"Mask {tmp_path / 'masks' / 'a.png'} has invalid values [3]" in message
    assert '"reduce_zero_label": true in classes.json' in message


def test_other_invalid_values_get_no_reduce_zero_label_hint(tmp_path):
    root = make_folder(tmp_path, {"a": grey([[0, 1, 7]])})
    ds = data.get_dataset("folder", root, val_fraction=0)
    with pytest.raises(data.DatasetError, match=r"invalid values \[7\]") as e:
        data.scan(ds, "train")
    assert "reduce_zero_label" not in str(e.value)


def test_ignore_index_zero_is_refused_pointing_to_reduce_zero_label(tmp_path):
    root = make_folder(tmp_path, {"a": grey(ZERO_VOID)}, ignore_index=0)
    with pytest.raises(data.DatasetError, match='"ignore_index" 0 is a class id') as e:
        data.get_dataset("folder", root)
    assert '"reduce_zero_label": true instead' in str(e.value)


def test_ignore_index_equal_to_a_shifted_class_value_is_refused(tmp_path):
    root = make_folder(tmp_path, {"a": grey(ZERO_VOID)}, ignore_index=3, reduce_zero_label=True)
    with pytest.raises(data.DatasetError, match="is the mask value of class 'bird'"):
        data.get_dataset("folder", root)


def test_reduce_zero_label_must_be_a_boolean(tmp_path):
    root = make_folder(tmp_path, {"a": grey(ZERO_VOID)}, reduce_zero_label="yes")
    with pytest.raises(data.DatasetError, match='"reduce_zero_label" must be true or false'):
        data.get_dataset("folder", root)


def test_unlabelled_listed_as_a_class_is_warned_about(tmp_path):
    # The workaround before reduce_zero_label: list "unlabelled" as class 0.
    classes = [{"name": "unlabelled", "color": [0, 0, 0]}] + CLASSES
    root = make_folder(tmp_path, {"a": grey(ZERO_VOID)}, classes=classes)
    ds = data.get_dataset("folder", root, val_fraction=0)
    warnings = data.check_trainable(ds.info, data.scan(ds, "train"))
    assert len(warnings) == 1
    assert "class 0 'unlabelled' is learned and predicted as a class" in warnings[0]
    assert "reduce_zero_label" in warnings[0]


# --- More than 256 classes ------------------------------------------------------

MANY = [{"name": f"c{i}", "color": [i % 256, i // 256, 7]} for i in range(300)]
# 16-bit values: classes 0, 255, 256, 280, 299 and the ignore id 65535.
WIDE = np.array([[0, 255, 256, 280], [299, 280, 65535, 0]], np.uint16)


def test_sixteen_bit_masks_of_300_classes_read_as_class_ids(tmp_path):
    root = make_folder(tmp_path, {"a": grey(WIDE)}, classes=MANY, ignore_index=65535)
    ds = data.get_dataset("folder", root, val_fraction=0)
    stats = data.scan(ds, "train")
    expected = np.zeros(300, int)
    for value, count in ((0, 2), (255, 1), (256, 1), (280, 2), (299, 1)):
        expected[value] = count
    assert stats.pixel_counts.tolist() == expected.tolist()
    assert stats.ignore_pixels == 1
    (ids,) = pipeline_ids(ds)
    np.testing.assert_array_equal(ids, WIDE.astype(int))


def test_value_past_the_last_class_is_refused_not_wrapped(tmp_path):
    # 300 would be 44 if wrapped to 8 bits; 556 would be class 44 too.
    root = make_folder(
        tmp_path,
        {"a": grey(np.array([[0, 300, 556]], np.uint16))},
        classes=MANY,
        ignore_index=65535,
    )
    ds = data.get_dataset("folder", root, val_fraction=0)
    with pytest.raises(data.DatasetError) as e:
        data.scan(ds, "train")
    assert "has invalid values [300, 556]; expected class ids 0-299 or the ignore id 65535" in str(
        e.value
    )


def test_default_ignore_index_among_300_classes_suggests_65535(tmp_path):
    root = make_folder(tmp_path, {"a": grey(WIDE)}, classes=MANY)
    with pytest.raises(data.DatasetError, match=r"is a class id \(0..299\).*e\.g\. 65535"):
        data.get_dataset("folder", root)


# --- Cityscapes trees without labelIds -----------------------------------------


def make_cityscapes(root, annotations):
    """One train and one val image; `annotations` maps a gtFine suffix to
    a writer `f(path)` of that file for each image."""
    for split, frame in (("train", "aachen_000000_000019"), ("val", "lindau_000000_000019")):
        image = root / "leftImg8bit" / split / "city" / f"{frame}_leftImg8bit.png"
        os.makedirs(image.parent, exist_ok=True)
        assert cv2.imwrite(str(image), np.zeros((2, 3, 3), np.uint8))
        gt = root / "gtFine" / split / "city"
        os.makedirs(gt, exist_ok=True)
        for suffix, writer in annotations.items():
            writer(str(gt / f"{frame}_gtFine_{suffix}"))
    return str(root)


# trainIds as csCreateTrainIdLabelImgs writes them: 0-18, 255 ignored.
TRAIN_IDS = np.array([[0, 13, 18], [255, 11, 0]], np.uint8)


def test_cityscapes_label_train_ids_only_tree_reads_train_ids(tmp_path):
    root = make_cityscapes(tmp_path, {"labelTrainIds.png": grey(TRAIN_IDS)})
    ds = data.get_dataset("cityscapes", root)
    assert ds.files("train")[0][1].endswith("aachen_000000_000019_gtFine_labelTrainIds.png")
    stats = data.scan(ds, "train")
    # road 2, person 1, car 1, bicycle 1; one ignore pixel.
    expected = [0] * 19
    expected[0], expected[11], expected[13], expected[18] = 2, 1, 1, 1
    assert stats.pixel_counts.tolist() == expected
    assert stats.ignore_pixels == 1
    (ids,) = pipeline_ids_of(ds, "val")
    np.testing.assert_array_equal(ids, TRAIN_IDS)


def pipeline_ids_of(dataset, split):
    return [labels.numpy()[0] for _, labels in data.make_eval_dataset(dataset, split, batch_size=1)]


def test_cityscapes_with_label_ids_still_maps_label_ids(tmp_path):
    # Both kinds present: the official labelIds win (26 is car, 13 in trainIds).
    root = make_cityscapes(
        tmp_path,
        {"labelIds.png": grey([[26, 7, 0], [7, 7, 7]]), "labelTrainIds.png": grey(TRAIN_IDS)},
    )
    ds = data.get_dataset("cityscapes", root)
    (ids,) = pipeline_ids_of(ds, "val")
    np.testing.assert_array_equal(ids, [[13, 0, 255], [0, 0, 0]])


def test_cityscapes_polygons_only_names_the_converter(tmp_path):
    root = make_cityscapes(tmp_path, {"polygons.json": lambda p: open(p, "w").write("{}")})
    ds = data.get_dataset("cityscapes", root)
    with pytest.raises(data.DatasetError) as e:
        ds.files("train")
    message = str(e.value)
    assert "no *_gtFine_labelIds.png or *_gtFine_labelTrainIds.png files" in message
    assert "*_gtFine_polygons.json" in message
    assert f"CITYSCAPES_DATASET={root} csCreateTrainIdLabelImgs" in message
    assert "\n" not in message


def test_cityscapes_colour_renderings_only_are_not_labels(tmp_path):
    root = make_cityscapes(
        tmp_path, {"color.png": lambda p: cv2.imwrite(p, np.zeros((2, 3, 3), np.uint8))}
    )
    with pytest.raises(data.DatasetError, match="colour renderings for viewing, not labels"):
        data.get_dataset("cityscapes", root).files("val")


# --- Polygon annotations where masks are expected --------------------------------

LABELME = {
    "version": "5.5.0",
    "flags": {},
    "shapes": [{"label": "cat", "points": [[0, 0], [2, 0], [2, 1]], "shape_type": "polygon"}],
    "imagePath": "a.png",
    "imageData": None,
}
COCO = {"images": [{"id": 1, "file_name": "a.png"}], "annotations": [], "categories": []}


def folder_without_masks(root):
    os.makedirs(root / "images")
    (root / "classes.json").write_text(json.dumps({"classes": CLASSES}))
    assert cv2.imwrite(str(root / "images" / "a.png"), np.zeros((2, 3, 3), np.uint8))


def test_labelme_files_in_masks_are_refused_naming_the_converter(tmp_path):
    folder_without_masks(tmp_path)
    os.makedirs(tmp_path / "masks")
    (tmp_path / "masks" / "a.json").write_text(json.dumps(LABELME))
    ds = data.get_dataset("folder", str(tmp_path), val_fraction=0)
    with pytest.raises(data.DatasetError) as e:
        ds.files("train")
    message = str(e.value)
    assert message.startswith(f"Folder dataset: {tmp_path / 'masks' / 'a.json'} holds labelme")
    assert "labelme2voc.py" in message and "\n" not in message


def test_labelme_files_beside_images_without_masks_are_refused(tmp_path):
    folder_without_masks(tmp_path)
    (tmp_path / "images" / "a.json").write_text(json.dumps(LABELME))
    with pytest.raises(data.DatasetError, match=r"images/a\.json holds labelme polygons"):
        data.get_dataset("folder", str(tmp_path))


def test_coco_annotations_instead_of_masks_are_refused(tmp_path):
    folder_without_masks(tmp_path)
    os.makedirs(tmp_path / "annotations")
    (tmp_path / "annotations" / "instances_train.json").write_text(json.dumps(COCO))
    with pytest.raises(data.DatasetError, match="holds COCO annotations.*annToMask"):
        data.get_dataset("folder", str(tmp_path))


def test_other_json_files_leave_the_missing_masks_error(tmp_path):
    folder_without_masks(tmp_path)
    (tmp_path / "images" / "notes.json").write_text(json.dumps({"author": "me"}))
    with pytest.raises(data.DatasetError, match=r"masks \(masks/\) not found"):
        data.get_dataset("folder", str(tmp_path))


def test_cityscapes_train_ids_tree_without_instances_says_what_iiou_needs(tmp_path):
    root = make_cityscapes(tmp_path, {"labelTrainIds.png": grey(TRAIN_IDS)})
    with pytest.raises(data.DatasetError) as e:
        data.get_dataset("cityscapes", root).instance_files("val")
    assert str(e.value).startswith(
        "1 Cityscapes labelTrainIds masks of split 'val' have no *_gtFine_instanceIds.png"
    )
    assert "iIoU" in str(e.value)
