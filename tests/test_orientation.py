"""Photos are used as viewers display them: EXIF orientation everywhere.

Every test writes JPEGs carrying an EXIF Orientation tag (0x0112) with
Pillow. The expected upright pixels come from the tag's definition, written
out below as where a stored pixel (row r, column c) of an H x W image lands,
not from the code under test; the stored pixels are decoded by Pillow,
which ignores the tag unless asked.
"""

import json
import os
import struct

import cv2
import numpy as np
import pytest
from PIL import Image

from tf_enet import data, inference
from tf_enet.data import orientation

import inference_helpers

IGNORE = 255
# Stored pixel (r, c) of an H x W image -> displayed (row, column), from the
# EXIF 2.3 definition of each code (where stored row 0 and column 0 go).
DISPLAYED_AT = {
    1: lambda r, c, h, w: (r, c),  # row 0 top, column 0 left
    2: lambda r, c, h, w: (r, w - 1 - c),  # row 0 top, column 0 right
    3: lambda r, c, h, w: (h - 1 - r, w - 1 - c),  # row 0 bottom, column 0 right
    4: lambda r, c, h, w: (h - 1 - r, c),  # row 0 bottom, column 0 left
    5: lambda r, c, h, w: (c, r),  # row 0 left, column 0 top
    6: lambda r, c, h, w: (c, h - 1 - r),  # row 0 right, column 0 top
    7: lambda r, c, h, w: (w - 1 - c, h - 1 - r),  # row 0 right, column 0 bottom
    8: lambda r, c, h, w: (w - 1 - c, r),  # row 0 left, column 0 bottom
}
# Four 8x16 blocks (aligned with JPEG's 8x8 blocks, so colours survive),
# one class each: the stored image is 16 x 32.
COLOURS = np.array([(220, 30, 30), (30, 220, 30), (30, 30, 220), (230, 230, 230)], np.uint8)
STORED_IDS = np.repeat(np.repeat(np.array([[0, 1], [2, 3]], np.uint8), 8, 0), 16, 1)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_ENET_CACHE", str(tmp_path / "cache"))


def displayed(stored, code):
    """The upright image, scattered pixel by pixel from the definition."""
    h, w = stored.shape[:2]
    out_shape = (w, h) if code >= 5 else (h, w)
    out = np.zeros(out_shape + stored.shape[2:], stored.dtype)
    for r in range(h):
        for c in range(w):
            out[DISPLAYED_AT[code](r, c, h, w)] = stored[r, c]
    return out


def write_photo(path, rgb, code):
    """A JPEG of `rgb` (as stored) tagged with orientation `code`."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    exif = Image.Exif()
    exif[orientation.ORIENTATION_TAG] = code
    Image.fromarray(rgb).save(path, quality=100, subsampling=0, exif=exif)


def stored_pixels(path):
    """The JPEG's pixels as stored (Pillow applies no orientation here)."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def make_photo_folder(root, codes, mask_of=None):
    """A folder dataset of the 4-block photo, one per code, masks upright."""
    classes = [{"name": f"c{i}", "color": c.tolist()} for i, c in enumerate(COLOURS)]
    os.makedirs(root / "masks", exist_ok=True)
    (root / "classes.json").write_text(json.dumps({"classes": classes}))
    for code in codes:
        write_photo(str(root / "images" / f"{code}.jpg"), COLOURS[STORED_IDS], code)
        mask = (mask_of or displayed)(STORED_IDS, code)
        assert cv2.imwrite(str(root / "masks" / f"{code}.png"), mask)
    return data.get_dataset("folder", str(root), val_fraction=0)


@pytest.mark.parametrize("code", range(1, 9))
def test_reader_turns_photos_as_viewers_do(tmp_path, code):
    path = str(tmp_path / "photo.jpg")
    write_photo(path, COLOURS[STORED_IDS], code)
    with open(path, "rb") as f:
        assert orientation.read_orientation(f.read()) == code
    image = data.decode_image_file(path)
    expected = displayed(stored_pixels(path), code)
    assert image.shape == expected.shape == ((32, 16, 3) if code >= 5 else (16, 32, 3))
    np.testing.assert_allclose(image, expected, atol=2)


def test_reader_leaves_untagged_and_png_images_as_stored(tmp_path):
    rgb = COLOURS[STORED_IDS]
    Image.fromarray(rgb).save(tmp_path / "plain.jpg", quality=100, subsampling=0)
    Image.fromarray(rgb).save(tmp_path / "plain.png")
    np.testing.assert_allclose(data.decode_image_file(tmp_path / "plain.jpg"), rgb, atol=2)
    np.testing.assert_array_equal(data.decode_image_file(tmp_path / "plain.png"), rgb)


def test_png_orientation_chunk_is_applied(tmp_path):
    exif = Image.Exif()
    exif[orientation.ORIENTATION_TAG] = 6
    Image.fromarray(COLOURS[STORED_IDS]).save(tmp_path / "a.png", exif=exif)
    image = data.decode_image_file(tmp_path / "a.png")
    np.testing.assert_array_equal(image, displayed(COLOURS[STORED_IDS], 6))


def test_pipeline_pairs_every_orientation_with_its_upright_mask(tmp_path):
    codes = range(1, 9)
    ds = make_photo_folder(tmp_path, codes)
    stats = data.scan(ds, "train")
    # Sideways photos (5-8) are 16 wide, 32 high as displayed.
    assert stats.image_sizes == ((16, 32), (32, 16))
    assert stats.pixel_counts.tolist() == [8 * 128] * 4
    batches = data.make_eval_dataset(ds, "train", batch_size=1)
    for code, (image, mask) in zip(sorted(codes), batches):
        expected = displayed(COLOURS[STORED_IDS], code)
        assert image.shape[1:3] == expected.shape[:2], code
        np.testing.assert_allclose(image[0].numpy(), expected, atol=3, err_msg=f"code {code}")
        np.testing.assert_array_equal(mask[0], displayed(STORED_IDS, code))


def test_square_photos_train_with_image_and_mask_aligned(tmp_path):
    # A square sideways photo passes any size check; only turning the image
    # keeps each pixel's colour on its own class.
    ids = np.repeat(np.repeat(np.array([[0, 1], [2, 3]], np.uint8), 8, 0), 8, 1)
    classes = [{"name": f"c{i}", "color": c.tolist()} for i, c in enumerate(COLOURS)]
    os.makedirs(tmp_path / "masks")
    (tmp_path / "classes.json").write_text(json.dumps({"classes": classes}))
    for code in (3, 6, 7, 8):
        write_photo(str(tmp_path / "images" / f"{code}.jpg"), COLOURS[ids], code)
        assert cv2.imwrite(str(tmp_path / "masks" / f"{code}.png"), displayed(ids, code))
    ds = data.get_dataset("folder", str(tmp_path), val_fraction=0)
    batches = data.make_train_dataset(ds, height=16, width=16, batch_size=4, augment=False)
    images, masks = next(iter(batches))
    # Each pixel's nearest class colour must be its mask's class.
    distance = np.linalg.norm(images.numpy()[..., None, :] - COLOURS.astype(np.float32), axis=-1)
    np.testing.assert_array_equal(distance.argmin(-1), masks.numpy())


def test_mask_drawn_on_the_unturned_photo_is_refused_naming_exif(tmp_path):
    ds = make_photo_folder(tmp_path, [6], mask_of=lambda ids, code: ids)
    with pytest.raises(data.DatasetError) as e:
        data.scan(ds, "train")
    message = str(e.value)
    image = tmp_path / "images" / "6.jpg"
    assert f"image {image} is 16x32 but mask {tmp_path / 'masks' / '6.png'} is 32x16" in message
    assert "EXIF orientation 6" in message and "Orientation=1" in message


def test_mask_turned_against_an_untagged_image_says_so(tmp_path):
    ds = make_photo_folder(tmp_path, [1], mask_of=lambda ids, code: ids.T)
    with pytest.raises(data.DatasetError, match="the image turned sideways. The image has no EXIF"):
        data.scan(ds, "train")


def test_mismatch_unrelated_to_orientation_mentions_no_exif(tmp_path):
    ds = make_photo_folder(tmp_path, [6], mask_of=lambda ids, code: ids[:8])
    with pytest.raises(data.DatasetError) as e:
        data.scan(ds, "train")
    assert "is 16x32 but mask" in str(e.value) and "EXIF" not in str(e.value)


def test_predict_files_segments_sideways_photos_upright(tmp_path):
    # The pixel model predicts the class written in the red channel.
    stored = inference_helpers.red_image(np.where(STORED_IDS == 0, 200, 0))
    write_photo(str(tmp_path / "photo.jpg"), stored, 8)
    predictor = inference_helpers.fake_predictor()
    (result,) = inference.predict_files(predictor, [str(tmp_path / "photo.jpg")])
    np.testing.assert_array_equal(result.classes, displayed(np.where(STORED_IDS == 0, 2, 0), 8))


def rotate_mp4(path, degrees):
    """Sets the display matrix of an MP4's video track, as phones do.

    The `tkhd` box (ISO 14496-12 8.3.2) holds a 3x3 matrix in 16.16 fixed
    point; {a, b, c, d} = {0, 1, -1, 0} turns the picture 90 degrees
    clockwise on display.
    """
    content = bytearray(open(path, "rb").read())
    box = content.find(b"tkhd")
    version = content[box + 4]
    # version/flags, times and ids, duration, reserved, layer, group,
    # volume, reserved: then the matrix.
    offset = box + 8 + (32 if version == 1 else 20) + 16
    a, b = {90: (0, 1), 180: (-1, 0), 270: (0, -1)}[degrees]
    matrix = [a << 16, b << 16, 0, -b << 16, a << 16, 0, 0, 0, 1 << 30]
    content[offset : offset + 36] = struct.pack(">9i", *matrix)
    open(path, "wb").write(bytes(content))


def test_predict_video_writes_rotated_phone_videos_upright(tmp_path):
    # Stored 16 x 32 frames: class 2 (red 200) in the left half.
    red = np.zeros((16, 32), np.uint8)
    red[:, :16] = 200
    frame = inference_helpers.red_image(red)
    path = str(tmp_path / "phone.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 10, (32, 16))
    for _ in range(3):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    rotate_mp4(path, 90)
    info = inference.video_info(path)
    assert (info.height, info.width) == (32, 16)
    done = inference.predict_video(
        inference_helpers.fake_predictor(), path, str(tmp_path / "out.mp4"), alpha=1.0
    )
    assert done == 3
    capture = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    ok, out = capture.read()
    capture.release()
    assert ok and out.shape[:2] == (32, 16)
    # Turned clockwise, the stored left half is the displayed top half:
    # class 2's colour (0, 0, 200) above, class 0's (200, 0, 0) below.
    upright = np.rot90(np.where(red == 200, 2, 0), -1)
    expected = np.asarray(inference_helpers.PALETTE, np.float32)[upright]
    rgb = cv2.cvtColor(out, cv2.COLOR_BGR2RGB).astype(np.float32)
    np.testing.assert_allclose(rgb[2:14].mean((0, 1)), expected[2:14].mean((0, 1)), atol=12)
    np.testing.assert_allclose(rgb[18:30].mean((0, 1)), expected[18:30].mean((0, 1)), atol=12)


@pytest.mark.parametrize("code", [0, 9, 65535])
def test_invalid_orientation_codes_leave_the_image_as_stored(tmp_path, code):
    exif = Image.Exif()
    exif[orientation.ORIENTATION_TAG] = code
    Image.fromarray(COLOURS[STORED_IDS]).save(tmp_path / "a.jpg", quality=100, exif=exif)
    assert orientation.read_orientation((tmp_path / "a.jpg").read_bytes()) == 1
    assert data.decode_image_file(tmp_path / "a.jpg").shape == (16, 32, 3)
