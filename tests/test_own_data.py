"""Datasets users bring: mask encodings, degenerate splits, held-out val.

Every tree is synthetic and tiny, built in tmp_path; the expected class ids
and pixel counts are written by hand next to each assertion. "Both paths"
means the numpy scan (`data.scan`) and the tf.data decoder
(`data.make_eval_dataset`), which must see the same ids.
"""

import json
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from tf_enet import data

IGNORE = 255
# Class colours of classes.json; the palettes below deliberately differ.
CLASSES = [
    {"name": "background", "color": [0, 0, 0]},
    {"name": "cat", "color": [200, 0, 0]},
    {"name": "dog", "color": [0, 200, 0]},
]
# A 2x4 mask of class ids: background 3, cat 2, dog 2, ignore 1.
IDS = np.array([[0, 0, 1, 2], [1, 2, 255, 0]], np.uint8)
IDS_COUNTS = [3, 2, 2]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_ENET_CACHE", str(tmp_path / "cache"))


def write_image(path, height, width):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), np.full((height, width, 3), 90, np.uint8))


def write_grey(path, values):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), np.asarray(values))


def write_rgb(path, rgb):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), np.asarray(rgb, np.uint8)[:, :, ::-1])


def write_palette(path, indices, palette):
    """A "P" mode PNG, as labelme, CVAT and VOC tools write."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = Image.fromarray(np.asarray(indices, np.uint8), "P")
    image.putpalette([v for colour in palette for v in colour])
    image.save(path)


def make_folder(root, masks, classes=CLASSES, split=None, **extra):
    """A folder dataset: `masks` maps a name to a writer `f(path)`."""
    os.makedirs(root / "images", exist_ok=True)
    os.makedirs(root / "masks", exist_ok=True)
    (root / "classes.json").write_text(
        json.dumps({"classes": classes, "ignore_index": IGNORE, **extra})
    )
    sub = (split,) if split else ()
    for name, writer in masks.items():
        mask_path = root.joinpath("masks", *sub, f"{name}.png")
        os.makedirs(os.path.dirname(mask_path), exist_ok=True)
        writer(str(mask_path))
        height, width = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED).shape[:2]
        write_image(root.joinpath("images", *sub, f"{name}.png"), height, width)
    return root


def pipeline_ids(dataset, split="train"):
    """The masks the tf.data eval pipeline yields, one per image."""
    batches = data.make_eval_dataset(dataset, split, batch_size=1)
    return [labels.numpy()[0] for _, labels in batches]


def counts_of(ids, num_classes=3):
    ids = np.asarray(ids)
    return np.bincount(ids[ids != IGNORE], minlength=num_classes).tolist()


# --- Label encodings -----------------------------------------------------------


def test_palette_indices_are_class_ids_whatever_the_palette_colours(tmp_path):
    # Palette colours are none of classes.json's: only the indices mean ids.
    palette = [(10, 10, 10), (250, 250, 0), (0, 250, 250)] + [(5, 5, 5)] * 253
    root = make_folder(tmp_path, {"a": lambda p: write_palette(p, IDS, palette)})
    ds = data.get_dataset("folder", str(root), val_fraction=0)
    stats = data.scan(ds, "train")
    assert stats.pixel_counts.tolist() == IDS_COUNTS
    assert stats.ignore_pixels == 1
    np.testing.assert_array_equal(pipeline_ids(ds)[0], IDS)


def test_small_palettes_saved_with_few_bits_read_as_indices(tmp_path):
    # Pillow writes a 3-colour palette as a 2-bit PNG.
    palette = [(9, 9, 9), (8, 8, 8), (7, 7, 7)]
    indices = np.array([[0, 1, 2, 2], [1, 0, 0, 0]], np.uint8)
    root = make_folder(tmp_path, {"a": lambda p: write_palette(p, indices, palette)})
    assert open(root / "masks" / "a.png", "rb").read()[24] == 2  # bit depth
    ds = data.get_dataset("folder", str(root), val_fraction=0)
    assert data.scan(ds, "train").pixel_counts.tolist() == [4, 2, 2]
    np.testing.assert_array_equal(pipeline_ids(ds)[0], indices)


def test_palette_read_by_colour_when_classes_json_says_color(tmp_path):
    # Index 0 is dog's colour, 1 cat's, 2 background's, 3 the ignore colour.
    palette = [(0, 200, 0), (200, 0, 0), (0, 0, 0), (255, 255, 255)]
    indices = np.array([[0, 1, 2, 3], [0, 0, 2, 2]], np.uint8)
    expected = np.array([[2, 1, 0, 255], [2, 2, 0, 0]])
    root = make_folder(
        tmp_path,
        {"a": lambda p: write_palette(p, indices, palette)},
        mask_encoding="color",
        ignore_color=[255, 255, 255],
    )
    ds = data.get_dataset("folder", str(root), val_fraction=0)
    assert data.scan(ds, "train").pixel_counts.tolist() == [3, 1, 3]
    np.testing.assert_array_equal(pipeline_ids(ds)[0], expected)


def test_palette_whose_colours_are_other_classes_asks_for_the_encoding(tmp_path):
    # Every used index has a class colour, but index 1 has dog's (id 2):
    # indices and colours disagree, so "auto" refuses to guess.
    palette = [(0, 0, 0), (0, 200, 0), (200, 0, 0)]
    root = make_folder(tmp_path, {"a": lambda p: write_palette(p, IDS % 3, palette)})
    ds = data.get_dataset("folder", str(root), val_fraction=0)
    with pytest.raises(data.DatasetError) as e:
        data.scan(ds, "train")
    assert "a.png is a palette PNG whose index 1 has the colour of id 2" in str(e.value)
    assert '"mask_encoding" to "ids"' in str(e.value)


def test_palette_with_matching_colours_and_indices_is_accepted(tmp_path):
    # VOC style: the palette is the class colours in class order.
    palette = [tuple(c["color"]) for c in CLASSES] + [(0, 0, 0)] * 252 + [(1, 1, 1)]
    root = make_folder(tmp_path, {"a": lambda p: write_palette(p, IDS, palette)})
    ds = data.get_dataset("folder", str(root), val_fraction=0)
    assert data.scan(ds, "train").pixel_counts.tolist() == IDS_COUNTS


def test_one_bit_masks_read_as_zero_and_one(tmp_path):
    foreground = np.array([[False, True, True], [True, False, False]])
    classes = CLASSES[:2]
    root = make_folder(
        tmp_path,
        {"a": lambda p: Image.fromarray(foreground).save(p)},
        classes=classes,
    )
    header = open(root / "masks" / "a.png", "rb").read(26)
    assert (header[24], header[25]) == (1, 0)  # 1-bit greyscale
    ds = data.get_dataset("folder", str(root), val_fraction=0)
    assert data.scan(ds, "train").pixel_counts.tolist() == [3, 3]
    np.testing.assert_array_equal(pipeline_ids(ds)[0], foreground.astype(int))


def test_sixteen_bit_id_masks_read_as_their_values(tmp_path):
    root = make_folder(tmp_path, {"a": lambda p: write_grey(p, IDS.astype(np.uint16))})
    assert open(root / "masks" / "a.png", "rb").read()[24] == 16
    ds = data.get_dataset("folder", str(root), val_fraction=0)
    stats = data.scan(ds, "train")
    assert stats.pixel_counts.tolist() == IDS_COUNTS
    assert stats.ignore_pixels == 1
    np.testing.assert_array_equal(pipeline_ids(ds)[0], IDS)


def test_every_encoding_gives_the_same_ids_on_both_paths(tmp_path):
    colours = {0: (0, 0, 0), 1: (200, 0, 0), 2: (0, 200, 0), 255: (255, 255, 255)}
    rgb = np.array([[colours[v] for v in row] for row in IDS], np.uint8)
    palette = [(99, 1, 1)] * 256
    # Alpha carries nothing; a decoder that composited it would change ids.
    alpha = np.array([[255, 0, 128, 255], [0, 255, 7, 255]], np.uint8)
    writers = {
        "grey8": lambda p: write_grey(p, IDS),
        "grey16": lambda p: write_grey(p, IDS.astype(np.uint16)),
        "grey_alpha": lambda p: Image.fromarray(np.dstack([IDS, alpha]), "LA").save(p),
        "palette": lambda p: write_palette(p, IDS, palette),
        "rgb": lambda p: write_rgb(p, rgb),
        "rgba": lambda p: Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(p),
    }
    root = make_folder(tmp_path, writers, ignore_color=[255, 255, 255])
    ds = data.get_dataset("folder", str(root), val_fraction=0)
    stats = data.scan(ds, "train")
    # Six copies of IDS.
    assert stats.pixel_counts.tolist() == [18, 12, 12]
    assert stats.ignore_pixels == 6
    for ids in pipeline_ids(ds):
        np.testing.assert_array_equal(ids, IDS)


def test_jpeg_masks_are_refused_by_extension_and_by_content(tmp_path):
    root = make_folder(tmp_path, {"a": lambda p: write_grey(p, IDS)})
    # A JPEG renamed to .png: the extension alone would let it through.
    ok, jpeg = cv2.imencode(".jpg", np.zeros((2, 4), np.uint8))
    (root / "masks" / "a.png").write_bytes(jpeg.tobytes())
    ds = data.get_dataset("folder", str(root), val_fraction=0)
    with pytest.raises(data.DatasetError, match="a.png: it is a JPEG; JPEG compression"):
        data.scan(ds, "train")
    # CamVid layout with .jpg annotations.
    camvid = tmp_path / "camvid"
    write_image(camvid / "train" / "x.png", 2, 4)
    os.makedirs(camvid / "trainannot")
    (camvid / "trainannot" / "x.jpg").write_bytes(jpeg.tobytes())
    with pytest.raises(data.DatasetError, match="1 JPEG masks in .*trainannot, first: x.jpg"):
        data.get_dataset("camvid", str(camvid)).files("train")


@pytest.mark.parametrize(
    "encoding, writer, message",
    [
        (
            "ids",
            lambda p: write_rgb(p, np.zeros((2, 4, 3))),
            'a.png is a colour PNG, but the dataset sets "mask_encoding": "ids"',
        ),
        (
            "color",
            lambda p: write_grey(p, IDS),
            'a.png is a single-channel PNG of ids, but the dataset sets "mask_encoding": "color"',
        ),
    ],
)
def test_mask_encoding_setting_wins_over_the_file(tmp_path, encoding, writer, message):
    root = make_folder(tmp_path, {"a": writer}, mask_encoding=encoding)
    ds = data.get_dataset("folder", str(root), val_fraction=0)
    with pytest.raises(data.DatasetError, match=message):
        data.scan(ds, "train")


def test_unknown_mask_encoding_names_classes_json(tmp_path):
    root = make_folder(tmp_path, {}, mask_encoding="palette")
    with pytest.raises(
        data.DatasetError,
        match=r"classes.json: \"mask_encoding\" "
        r"must be one of 'auto', 'ids', 'color'; received 'palette'",
    ):
        data.get_dataset("folder", str(root))


def test_sixteen_bit_colour_masks_are_refused(tmp_path):
    root = make_folder(tmp_path, {"a": lambda p: write_grey(p, np.zeros((2, 4, 3), np.uint16))})
    ds = data.get_dataset("folder", str(root), val_fraction=0)
    with pytest.raises(data.DatasetError, match="a.png: it is a 16-bit colour PNG"):
        data.scan(ds, "train")


# --- Datasets that cannot train ------------------------------------------------


def test_single_class_list_is_refused_with_the_fix(tmp_path):
    root = make_folder(tmp_path, {}, classes=[{"name": "object", "color": [9, 9, 9]}])
    with pytest.raises(
        data.DatasetError,
        match="lists 1 class \\('object'\\); segmentation "
        "needs at least 2 classes; make the background a class",
    ):
        data.get_dataset("folder", str(root))


def test_single_class_info_is_refused_by_check_trainable():
    info = data.DatasetInfo("mine", ("object",), ((9, 9, 9),), 255)
    stats = data.ScanResult("train", 1, [4], [4], 0, ((2, 2),))
    with pytest.raises(data.DatasetError, match="at least 2 classes; make the background"):
        data.check_trainable(info, stats)


def test_binary_masks_saved_as_0_255_are_refused_before_training(tmp_path):
    # 10x10 masks: 49 background pixels, 51 foreground pixels saved as 255,
    # which is the ignore id, so 'object' never occurs.
    mask = np.zeros((10, 10), np.uint8)
    mask.flat[:51] = 255
    root = make_folder(tmp_path, {"a": lambda p: write_grey(p, mask)}, classes=CLASSES[:2])
    ds = data.get_dataset("folder", str(root), val_fraction=0)
    stats = data.scan(ds, "train")
    assert stats.pixel_counts.tolist() == [49, 0]
    assert stats.ignore_pixels == 51
    with pytest.raises(data.DatasetError) as e:
        data.check_trainable(ds.info, stats)
    assert (
        "class 'cat' has no pixels while 51% of pixels are 255, the ignore "
        "id — were the masks saved as 0/255?"
    ) in str(e.value)


def test_binary_masks_saved_as_0_255_with_another_ignore_id_are_refused(tmp_path):
    mask = np.array([[0, 255], [255, 0]], np.uint8)
    write_image(tmp_path / "train" / "a.png", 2, 2)
    write_grey(tmp_path / "trainannot" / "a.png", mask)
    ds = data.get_dataset("camvid", str(tmp_path))  # ignore id 11
    with pytest.raises(
        data.DatasetError,
        match=r"a.png has invalid values \[255\]; .* A "
        r"binary mask saved as 0/255\? Save class c as the value c",
    ):
        data.scan(ds, "train")


def test_absent_class_with_mostly_ignore_pixels_is_refused():
    # 3 classes; 'dog' absent and the ignore id outnumbers every class.
    info = data.DatasetInfo("mine", ("a", "b", "dog"), ((0, 0, 0), (1, 1, 1), (2, 2, 2)), 255)
    stats = data.ScanResult("train", 1, [30, 20, 0], [50, 50, 0], 50, ((10, 10),))
    with pytest.raises(
        data.DatasetError, match="class 'dog' has no pixels while 50% of pixels are 255"
    ):
        data.check_trainable(info, stats)


def test_only_one_class_present_without_ignore_is_refused():
    info = data.DatasetInfo("mine", ("a", "b"), ((0, 0, 0), (1, 1, 1)), 255)
    stats = data.ScanResult("train", 2, [8, 0], [8, 0], 0, ((2, 2),))
    with pytest.raises(data.DatasetError, match="only class 'a' has pixels"):
        data.check_trainable(info, stats)


def test_train_split_without_labelled_pixels_is_refused(tmp_path):
    void = np.full((2, 4), 255, np.uint8)
    root = make_folder(tmp_path, {"a": lambda p: write_grey(p, void)})
    ds = data.get_dataset("folder", str(root), val_fraction=0)
    with pytest.raises(
        data.DatasetError,
        match="'train' has no labelled pixels: all 1 masks hold only the ignore id 255",
    ):
        data.check_trainable(ds.info, data.scan(ds, "train"))


def test_val_split_of_ignore_only_masks_is_refused(tmp_path):
    root = make_folder(tmp_path, {"a": lambda p: write_grey(p, IDS)}, split="train")
    make_folder(root, {"b": lambda p: write_grey(p, np.full((2, 4), 255, np.uint8))}, split="val")
    ds = data.get_dataset("folder", str(root))
    train, val = data.scan(ds, "train"), data.scan(ds, "val")
    with pytest.raises(
        data.DatasetError,
        match="'val' has no labelled pixels: all 1 masks "
        "hold only the ignore id 255, so validation mIoU is undefined",
    ):
        data.check_trainable(ds.info, train, val)


def test_empty_val_split_is_refused(tmp_path):
    root = make_folder(tmp_path, {"a": lambda p: write_grey(p, IDS)}, split="train")
    os.makedirs(root / "images" / "val")
    os.makedirs(root / "masks" / "val")
    ds = data.get_dataset("folder", str(root))
    with pytest.raises(data.DatasetError, match="split 'val' is empty"):
        data.scan(ds, "val")
    stats = data.scan(ds, "train")
    empty = data.ScanResult("val", 0, [0, 0, 0], [0, 0, 0], 0, ())
    with pytest.raises(data.DatasetError, match="'val' has no images"):
        data.check_trainable(ds.info, stats, empty)


def test_class_absent_from_train_warns_and_weights_stay_finite(tmp_path):
    # classes.json lists 4 classes; no mask uses the 4th ('bird').
    classes = CLASSES + [{"name": "bird", "color": [0, 0, 200]}]
    root = make_folder(tmp_path, {"a": lambda p: write_grey(p, IDS)}, classes=classes)
    ds = data.get_dataset("folder", str(root), val_fraction=0)
    stats = data.scan(ds, "train")
    warnings = data.check_trainable(ds.info, stats)
    assert warnings == [
        "folder split 'train': class 'bird' has no pixels; the model is not taught to predict them."
    ]
    # mfb: freq = [3/7, 2/7, 2/7], median 2/7 -> [2/3, 1, 1]; absent -> 0.
    np.testing.assert_allclose(data.class_weights(stats, "mfb"), [2 / 3, 1, 1, 0], rtol=1e-6)
    # enet: p = [3/7, 2/7, 2/7, 0]; absent -> 1/ln(1.02) = 50.4983.
    enet = data.class_weights(stats, "enet")
    np.testing.assert_allclose(enet[3], 1 / np.log(1.02), rtol=1e-6)
    assert np.isfinite(enet).all()


def test_hundreds_of_absent_classes_are_named_up_to_ten_and_counted():
    # 300 classes; train has pixels of ids 0, 1 and 150 only.
    names = tuple(f"c{i}" for i in range(300))
    info = data.DatasetInfo("many", names, tuple((i % 256, i // 256, 0) for i in range(300)), 65535)
    counts = np.zeros(300, np.int64)
    counts[[0, 1, 150]] = 100
    stats = data.ScanResult("train", 3, counts, counts * 3, 0, ((10, 30),))
    (warning,) = data.check_trainable(info, stats)
    ten = ", ".join(f"'c{i}'" for i in range(2, 12))
    assert warning == (
        f"many split 'train': classes {ten} and 287 more (ids 12-149, 151-299) have no "
        f"pixels; the model is not taught to predict them."
    )
    # Scattered ids (every other class absent) are counted, not listed.
    assert data.name_classes(names, range(0, 300, 2)).endswith("'c18' and 140 more")


def test_camvid_scenes_with_only_sky_road_and_car_warn_not_fail(tmp_path):
    # 64x96 scenes: sky on top, road at the bottom, a car in between.
    mask = np.zeros((64, 96), np.uint8)  # Sky (0)
    mask[32:] = 3  # Road
    mask[24:40, 40:56] = 8  # Car
    for split in ("train", "val"):
        write_image(tmp_path / split / "s.png", 64, 96)
        write_grey(tmp_path / f"{split}annot" / "s.png", mask)
    ds = data.get_dataset("camvid", str(tmp_path))
    train, val = data.scan(ds, "train"), data.scan(ds, "val")
    # Sky 32*96 - 8*16, Road 32*96 - 8*16, Car 16*16.
    assert train.pixel_counts[[0, 3, 8]].tolist() == [2944, 2944, 256]
    warnings = data.check_trainable(ds.info, train, val)
    absent = (
        "'Building', 'Pole', 'Pavement', 'Tree', 'SignSymbol', 'Fence', 'Pedestrian', 'Bicyclist'"
    )
    assert warnings == [
        f"camvid split 'train': classes {absent} have no pixels; the model is not "
        f"taught to predict them.",
        f"camvid split 'val': classes {absent} have no pixels; validation cannot measure them.",
    ]
    weights = data.class_weights(train, "mfb")
    assert np.isfinite(weights).all()
    assert (weights[[0, 3, 8]] > 0).all() and (np.delete(weights, [0, 3, 8]) == 0).all()


# --- Held-out val split ----------------------------------------------------------


def flat_folder(root, names):
    return make_folder(root, {n: (lambda p: write_grey(p, IDS)) for n in names})


def names_of(pairs):
    return [os.path.basename(image) for image, _ in pairs]


def test_flat_folder_holds_out_a_seeded_val_split(tmp_path):
    names = [f"img{i:02d}" for i in range(10)]
    root = flat_folder(tmp_path, names)
    ds = data.get_dataset("folder", str(root))
    assert ds.splits() == ("train", "val")
    train, val = names_of(ds.files("train")), names_of(ds.files("val"))
    assert len(val) == 1  # round(0.1 * 10)
    assert sorted(train + val) == [f"{n}.png" for n in names]
    assert train == sorted(train)
    # The same arguments give the same split; other seeds pick others.
    again = data.get_dataset("folder", str(root))
    assert names_of(again.files("val")) == val
    picks = {
        tuple(names_of(data.get_dataset("folder", str(root), val_seed=s).files("val")))
        for s in range(5)
    }
    assert len(picks) > 1
    info = ds.split_info()
    assert info == {
        "splits": ["train", "val"],
        "held_out": {"val": {"from": "train", "val_fraction": 0.1, "val_seed": 0, "images": val}},
    }
    assert json.loads(json.dumps(info)) == info


def test_held_out_val_moves_little_when_images_are_added(tmp_path):
    names = [f"img{i:02d}" for i in range(10)]
    val = names_of(data.get_dataset("folder", str(flat_folder(tmp_path, names))).files("val"))
    flat_folder(tmp_path, ["zzz"])
    grown = names_of(data.get_dataset("folder", str(tmp_path)).files("val"))
    # 11 images still hold out 1: the old pick, unless the new image ranks first.
    assert grown in (val, ["zzz.png"])


def test_train_only_subfolder_holds_out_val_and_fraction_rounds(tmp_path):
    root = make_folder(
        tmp_path, {f"{i}": (lambda p: write_grey(p, IDS)) for i in range(7)}, split="train"
    )
    ds = data.get_dataset("folder", str(root), val_fraction=0.3)
    val, train = ds.files("val"), ds.files("train")
    assert len(val) == 2 and len(train) == 5  # round(0.3 * 7) = 2
    assert all(os.sep + os.path.join("images", "train") in image for image, _ in val)
    assert not set(val) & set(train)


def test_single_image_folder_cannot_hold_out_val(tmp_path):
    root = flat_folder(tmp_path, ["only"])
    ds = data.get_dataset("folder", str(root))
    assert names_of(ds.files("train")) == ["only.png"]
    with pytest.raises(
        data.DatasetError, match="cannot hold out a 'val' split from the single train image"
    ):
        ds.files("val")


def test_val_on_disk_is_not_held_out(tmp_path):
    root = make_folder(tmp_path, {"a": lambda p: write_grey(p, IDS)}, split="train")
    make_folder(root, {"b": lambda p: write_grey(p, IDS)}, split="val")
    ds = data.get_dataset("folder", str(root))
    assert names_of(ds.files("train")) == ["a.png"]
    assert names_of(ds.files("val")) == ["b.png"]
    assert ds.split_info() == {"splits": ["train", "val"], "held_out": {}}


@pytest.mark.parametrize("value", [1.0, -0.1, "0.1", True])
def test_bad_val_fraction_is_named(tmp_path, value):
    root = flat_folder(tmp_path, ["a"])
    with pytest.raises(ValueError, match=r"`val_fraction` must be a number in \[0, 1\)"):
        data.get_dataset("folder", str(root), val_fraction=value)


def test_dataset_options_other_layouts_lack_are_named(tmp_path):
    with pytest.raises(ValueError, match="'camvid' takes no option val_fraction"):
        data.get_dataset("camvid", str(tmp_path), val_fraction=0.1)


# --- The rest of the path: sizes ---------------------------------------------------


def test_image_smaller_than_the_crop_is_padded_with_ignore(tmp_path):
    ones = np.ones((4, 6), np.uint8)
    root = make_folder(tmp_path, {"a": lambda p: write_grey(p, ones)})
    ds = data.get_dataset("folder", str(root), val_fraction=0)
    # Scale 0.5 of an 8x12 crop: the 4x6 image fills 24 of 96 pixels.
    batches = data.make_train_dataset(
        ds, height=8, width=12, batch_size=1, min_scale=0.5, max_scale=0.5
    )
    ((images, labels),) = list(batches)
    labels = labels.numpy()[0]
    assert labels.shape == (8, 12)
    assert (labels == 1).sum() == 24
    assert (labels == IGNORE).sum() == 72


def test_split_mixing_sizes_batches_for_training_and_evaluation(tmp_path):
    small = np.zeros((2, 4), np.uint8)
    large = np.ones((6, 8), np.uint8)
    root = make_folder(
        tmp_path, {"a": lambda p: write_grey(p, small), "b": lambda p: write_grey(p, large)}
    )
    ds = data.get_dataset("folder", str(root), val_fraction=0)
    assert data.scan(ds, "train").image_sizes == ((2, 4), (6, 8))
    train = data.make_train_dataset(ds, height=4, width=4, batch_size=2, augment=False)
    ((images, labels),) = list(train)
    assert images.shape == (2, 4, 4, 3) and labels.shape == (2, 4, 4)
    ((images, labels),) = list(data.make_eval_dataset(ds, "train", batch_size=2))
    labels = labels.numpy()
    # Padded to 6x8: 'a' keeps 8 pixels of class 0, the rest is ignore.
    assert labels.shape == (2, 6, 8)
    assert (labels[0] == 0).sum() == 8 and (labels[0] == IGNORE).sum() == 40
    assert (labels[1] == 1).all()


def test_single_image_split_trains_with_batch_1_and_names_larger_batches(tmp_path):
    root = flat_folder(tmp_path, ["only"])
    ds = data.get_dataset("folder", str(root))
    assert len(list(data.make_train_dataset(ds, height=2, width=4, batch_size=1))) == 1
    with pytest.raises(data.DatasetError, match="1 images, fewer than one batch of 2"):
        data.make_train_dataset(ds, height=2, width=4, batch_size=2)


def test_mask_and_image_sizes_differ_names_both_files(tmp_path):
    root = make_folder(tmp_path, {"a": lambda p: write_palette(p, IDS, [(1, 2, 3)])})
    write_image(root / "images" / "a.png", 3, 4)
    ds = data.get_dataset("folder", str(root), val_fraction=0)
    with pytest.raises(data.DatasetError) as e:
        data.scan(ds, "train")
    message = str(e.value)
    assert f"image {root / 'images' / 'a.png'} is 4x3" in message
    assert f"mask {root / 'masks' / 'a.png'} is 4x2" in message
