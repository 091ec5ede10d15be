"""Shared test data for the training tests: a small synthetic folder dataset."""

import json
import os

import cv2
import numpy as np

IGNORE = 255
# name, colour in classes.json (the mask palette), mean image colour (RGB).
SHAPE_CLASSES = (
    ("background", (0, 0, 0), (110, 110, 110)),
    ("box", (220, 20, 60), (200, 40, 40)),
    ("disc", (0, 200, 0), (40, 190, 60)),
    ("ring", (0, 0, 230), (50, 60, 210)),
)


def _write_rgb(path, rgb):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))


def _write_ids(path, ids):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), ids.astype(np.uint8))


def draw_shapes(rng, size):
    """One image and mask of coloured boxes, discs and rings on grey noise.

    Each class has its own colour (with pixel noise), so a pixel's class
    follows from its neighbourhood. A 2-pixel band around every shape is
    labelled IGNORE (as VOC ignores object borders), and so is one random
    patch per image painted in a random class colour: a pipeline that trains
    on ignore pixels learns a contradictory target there.

    Returns:
        (uint8 [size, size, 3] RGB image, uint8 [size, size] class ids).
    """
    ids = np.zeros((size, size), np.uint8)
    ignore = np.zeros((size, size), bool)
    rows, cols = np.mgrid[:size, :size]
    for kind in rng.permutation([1, 2, 3]):
        cy, cx = rng.randint(10, size - 10, 2)
        r = rng.randint(8, 15)
        if kind == 1:
            h, w = rng.randint(6, 13, 2)
            inside = (abs(rows - cy) <= h) & (abs(cols - cx) <= w)
        elif kind == 2:
            inside = (rows - cy) ** 2 + (cols - cx) ** 2 <= r * r
        else:
            distance = np.sqrt((rows - cy) ** 2 + (cols - cx) ** 2)
            inside = (distance <= r) & (distance >= r - 6)
        ids[inside] = kind
        ignore &= ~inside
        outline = cv2.dilate(inside.astype(np.uint8), np.ones((5, 5), np.uint8))
        ignore |= (outline > 0) & ~inside
    colours = np.array([c[2] for c in SHAPE_CLASSES], np.float32)
    image = colours[ids] + rng.normal(0, 12, (size, size, 3))
    # A patch coloured like a random class but labelled ignore.
    py, px = rng.randint(0, size - 6, 2)
    image[py : py + 6, px : px + 6] = colours[rng.randint(0, len(colours))]
    ignore[py : py + 6, px : px + 6] = True
    ids = np.where(ignore, IGNORE, ids).astype(np.uint8)
    return np.clip(image, 0, 255).astype(np.uint8), ids


def make_shapes_dataset(root, num_train=32, num_val=8, size=64, seed=0):
    """Writes a folder dataset of `draw_shapes` images into `root`.

    Train masks are single-channel class ids; val masks are colour PNGs in
    the palette of classes.json, so both label decodings are exercised.

    Returns:
        str. The dataset directory.
    """
    rng = np.random.RandomState(seed)
    root = str(root)
    classes = [{"name": name, "color": list(colour)} for name, colour, _ in SHAPE_CLASSES]
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "classes.json"), "w") as f:
        json.dump({"classes": classes, "ignore_index": IGNORE, "ignore_color": [255, 255, 255]}, f)
    palette = np.array([c[1] for c in SHAPE_CLASSES] + [(255, 255, 255)], np.uint8)
    for split, count in (("train", num_train), ("val", num_val)):
        for i in range(count):
            image, ids = draw_shapes(rng, size)
            _write_rgb(os.path.join(root, "images", split, f"{i:03d}.png"), image)
            mask_path = os.path.join(root, "masks", split, f"{i:03d}.png")
            if split == "train":
                _write_ids(mask_path, ids)
            else:
                _write_rgb(mask_path, palette[np.minimum(ids, len(palette) - 1)])
    return root


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def subprocess_env(tmp_path, **extra):
    """Environment for a training subprocess: CPU only, quiet, own cache."""
    env = dict(os.environ)
    env.update(
        CUDA_VISIBLE_DEVICES="-1",
        TF_CPP_MIN_LOG_LEVEL="2",
        TF_ENET_CACHE=str(tmp_path / "cache"),
        PYTHONUNBUFFERED="1",
    )
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def train_flags(data_dir, checkpoint_dir, **flags):
    """`train.py` arguments for the shapes dataset; `flags` override."""
    options = dict(
        dataset="folder",
        data_dir=data_dir,
        checkpoint_dir=checkpoint_dir,
        height=64,
        width=64,
        batch_size=8,
        verbose=2,
        seed=0,
    )
    options.update(flags)
    args = []
    for name, value in options.items():
        if isinstance(value, bool):
            args.append(f"--{name}" if value else f"--no{name}")
        else:
            args.append(f"--{name}={value}")
    return args
