"""tf.data input pipelines for training and evaluation.

Files are listed, paired and validated in Python (`scan`, which also reads
each image's EXIF orientation), and each mask's encoding is read from its
header (`masks.mask_format`); then everything runs in tf.data: read, decode
and turn images upright (`decoding`), map labels to class ids, augment
image and mask together, batch, prefetch. Elements are
`(images float32 [batch, height, width, 3] RGB in [0, 255],
masks int32 [batch, label_height, label_width])`; images are not
normalised (the model does it) and masks hold class ids or the dataset's
ignore id.

Training augmentation follows the usual segmentation recipe (as in
tensorflow/models official/vision): resize to the training size, random
scale, random crop (padding the image with 0 and the mask with the ignore
id where the scaled image is smaller), random horizontal flip, and
optionally colour jitter (brightness, contrast, saturation). All
randomness is stateless, seeded from `seed` through `Dataset.random`, so a
run is reproducible and every epoch still sees new crops.
"""

import numpy as np
import tensorflow as tf

from tf_enet.data import base, decoding, masks
from tf_enet.data.reader import scan_labelled_pairs

AUTOTUNE = tf.data.AUTOTUNE


def mask_formats(dataset, pairs):
    """The `(kinds, scales)` lists of the pairs' masks, for `decode_mask`."""
    formats = [masks.mask_format(m, dataset.label_mapping) for _, m in pairs]
    return [f.kind for f in formats], [f.scale for f in formats]


def downsample_labels(mask, stride, ignore_index):
    """Subsamples a mask to the resolution of an output stride.

    The mask is padded at the bottom and right with the ignore id to a
    multiple of `stride` (as `PadToMultiple` pads the model's input), then
    the centre pixel of every `stride x stride` cell is taken (offset
    `stride // 2`). The result is `ceil(h / stride) x ceil(w / stride)` and
    aligned with the encoder's output grid; for sizes divisible by the
    stride it equals nearest-neighbour resizing.

    Args:
        mask: int32 tensor [height, width].
        stride: int. 1 returns `mask` unchanged.
        ignore_index: int. Padding value.

    Returns:
        int32 tensor [ceil(height / stride), ceil(width / stride)].
    """
    if stride == 1:
        return mask
    height = mask.shape[0] if mask.shape[0] is not None else tf.shape(mask)[0]
    width = mask.shape[1] if mask.shape[1] is not None else tf.shape(mask)[1]
    mask = tf.pad(
        mask,
        [[0, -height % stride], [0, -width % stride]],
        constant_values=ignore_index,
    )
    mask = mask[stride // 2 :: stride, stride // 2 :: stride]
    if isinstance(height, int) and isinstance(width, int):
        mask.set_shape([-(-height // stride), -(-width // stride)])
    return mask


def _random_window(seed, size, target):
    """Draws where a `target`-long window sits on a `size`-long axis.

    Returns `(pad_before, pad_after, crop_offset)`: a shorter axis is padded
    to `target` at a random position, a longer one cropped at a random
    offset.
    """
    slack = tf.abs(size - target)
    offset = tf.random.stateless_uniform([], seed, minval=0, maxval=slack + 1, dtype=tf.int32)
    pad_before = tf.where(size < target, offset, 0)
    pad_after = tf.maximum(target - size, 0) - pad_before
    crop_offset = tf.where(size >= target, offset, 0)
    return pad_before, pad_after, crop_offset


def color_jitter(image, seed, strength):
    """Random brightness, contrast and saturation changes of one image.

    Each factor is drawn from `[1 - strength, 1 + strength]`, brightness as
    a shift of up to `strength * 64` grey levels; the order is fixed
    (brightness, contrast, saturation), and the result is clipped to
    [0, 255]. The mask is not touched: colour changes keep every label.

    Args:
        image: float32 tensor [H, W, 3], RGB in [0, 255].
        seed: int tensor [2]. Stateless seed.
        strength: float in [0, 1).

    Returns:
        float32 tensor [H, W, 3] in [0, 255].
    """
    seeds = tf.random.experimental.stateless_split(seed, 3)
    low, high = 1.0 - strength, 1.0 + strength
    image = tf.image.stateless_random_brightness(image, strength * 64.0, seeds[0])
    image = tf.image.stateless_random_contrast(image, low, high, seeds[1])
    image = tf.image.stateless_random_saturation(image, low, high, seeds[2])
    return tf.clip_by_value(image, 0.0, 255.0)


def augment_pair(
    image, mask, seed, *, height, width, min_scale, max_scale, ignore_index, jitter=0.0
):
    """Randomly scales, crops/pads and flips an image and its mask together.

    The image is resized straight to `scale * (height, width)` (bilinear;
    the mask with nearest neighbour), with `scale` uniform in
    `[min_scale, max_scale]`, then a `height x width` window is cut at a
    random position, padding with 0 (image) and `ignore_index` (mask) where
    the scaled image is smaller. Then both are flipped left-right with
    probability 1/2, and with `jitter > 0` the image's colours change
    (`color_jitter`) before the padding is applied, so padding stays 0.

    Args:
        image: uint8 tensor [H, W, 3].
        mask: int32 tensor [H, W].
        seed: int tensor [2]. Stateless seed; equal seeds give equal output.
        height: int. Output height.
        width: int. Output width.
        min_scale: float. Smallest scale factor.
        max_scale: float. Largest scale factor.
        ignore_index: int. Mask padding value.
        jitter: float. Colour jitter strength (`color_jitter`); 0: none.

    Returns:
        (float32 tensor [height, width, 3], int32 tensor [height, width]).
    """
    seeds = tf.random.experimental.stateless_split(seed, 5)
    scale = tf.random.stateless_uniform([], seeds[0], minval=min_scale, maxval=max_scale)
    scaled_h = tf.maximum(tf.cast(tf.round(height * scale), tf.int32), 1)
    scaled_w = tf.maximum(tf.cast(tf.round(width * scale), tf.int32), 1)
    image = tf.image.resize(image, [scaled_h, scaled_w], method="bilinear")
    if jitter:
        image = color_jitter(image, seeds[4], jitter)
    mask = tf.image.resize(mask[:, :, None], [scaled_h, scaled_w], method="nearest")[:, :, 0]

    pad_top, pad_bottom, top = _random_window(seeds[1], scaled_h, height)
    pad_left, pad_right, left = _random_window(seeds[2], scaled_w, width)
    image = tf.pad(image, [[pad_top, pad_bottom], [pad_left, pad_right], [0, 0]])
    mask = tf.pad(
        mask,
        [[pad_top, pad_bottom], [pad_left, pad_right]],
        constant_values=ignore_index,
    )
    image = image[top : top + height, left : left + width]
    mask = mask[top : top + height, left : left + width]

    flip = tf.random.stateless_uniform([], seeds[3]) < 0.5
    image, mask = tf.cond(
        flip,
        lambda: (tf.reverse(image, [1]), tf.reverse(mask, [1])),
        lambda: (image, mask),
    )
    image = tf.ensure_shape(image, [height, width, 3])
    mask = tf.ensure_shape(mask, [height, width])
    return image, mask


def _check_positive_int(value, name):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer; received {value!r}.")


def _file_dataset(dataset, pairs, orientations, input_context):
    """`(image_path, mask_path, kind, scale, orientation)` elements, sharded."""
    images, mask_paths = zip(*pairs)
    kinds, scales = mask_formats(dataset, pairs)
    files = tf.data.Dataset.from_tensor_slices(
        (
            list(images),
            list(mask_paths),
            tf.constant(kinds, tf.int32),
            tf.constant(scales, tf.int32),
            tf.constant(orientations, tf.int32),
        )
    )
    if input_context is not None:
        files = files.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    return files


def _options(input_context):
    options = tf.data.Options()
    # Sharded by hand already when an input context is given; otherwise let
    # tf.distribute shard the elements.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF
        if input_context is not None
        else tf.data.experimental.AutoShardPolicy.DATA
    )
    return options


def make_train_dataset(
    dataset,
    split="train",
    *,
    height,
    width,
    batch_size,
    seed=0,
    label_stride=1,
    limit=None,
    augment=True,
    min_scale=0.75,
    max_scale=1.5,
    color_jitter=0.0,
    input_context=None,
):
    """Builds the shuffled, augmented training pipeline.

    Args:
        dataset: SegmentationDataset.
        split: str, or a sequence of str: the split(s) to read, e.g.
            ("train", "val") for a final model.
        height: int. Training image height.
        width: int. Training image width.
        batch_size: int. Global batch size; with `input_context`, each
            pipeline yields its per-replica share.
        seed: int. Seeds shuffling and augmentation; the same seed gives the
            same sequence of batches.
        label_stride: int. Masks are subsampled by this factor (8 for the
            paper's encoder-only stage); see `downsample_labels`.
        limit: int or None. Use only the first `limit` pairs (sorted).
        augment: bool. Random scale, crop and flip; if False, images are
            only resized to `height x width`.
        min_scale: float. Smallest random scale factor.
        max_scale: float. Largest random scale factor.
        color_jitter: float in [0, 1). Colour jitter strength (see
            `color_jitter`); 0: none.
        input_context: tf.distribute.InputContext or None. Shards the file
            list across input pipelines.

    Returns:
        tf.data.Dataset of `(float32 [batch, height, width, 3],
        int32 [batch, ceil(height / label_stride), ceil(width /
        label_stride)])`, one pass over the split per iteration, the last
        partial batch dropped.

    Raises:
        DatasetError: for unusable files (from `scan`), an unlabelled split,
            or fewer images than one batch.
        ValueError: for invalid arguments.
    """
    for value, name in (
        (height, "height"),
        (width, "width"),
        (batch_size, "batch_size"),
        (label_stride, "label_stride"),
    ):
        _check_positive_int(value, name)
    if not 0 < min_scale <= max_scale:
        raise ValueError(
            f"Need 0 < min_scale <= max_scale; received min_scale="
            f"{min_scale!r}, max_scale={max_scale!r}."
        )
    splits = (split,) if isinstance(split, str) else tuple(split)
    pairs, orientations = [], []
    for name in splits:
        split_pairs, split_orientations = scan_labelled_pairs(dataset, name, limit)
        pairs += split_pairs
        orientations += split_orientations
    split = "+".join(splits)
    mapping = dataset.label_mapping
    ignore = dataset.info.ignore_index
    files = _file_dataset(dataset, pairs, orientations, input_context)
    num_files = len(pairs)
    pipeline_id = 0
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
        pipeline_id = input_context.input_pipeline_id
        num_files = len(pairs[pipeline_id :: input_context.num_input_pipelines])
    if num_files < batch_size:
        raise base.DatasetError(
            f"{dataset.info.name} split {split!r} gives this input pipeline "
            f"{num_files} images, fewer than one batch of {batch_size}; "
            f"lower the batch size or raise `limit`."
        )
    files = files.shuffle(num_files, seed=seed, reshuffle_each_iteration=True)
    # One random number per element, different each epoch but fixed by the
    # seed, feeds the stateless ops; pipelines get distinct streams.
    randoms = tf.data.Dataset.random(seed=seed + pipeline_id, rerandomize_each_iteration=True)
    scale_range = (float(min_scale), float(max_scale))

    def load(paths, random):
        image_path, mask_path, kind, scale, orientation = paths
        image = decoding.decode_image(tf.io.read_file(image_path), orientation)
        mask = decoding.decode_mask(tf.io.read_file(mask_path), mapping, kind, scale)
        if augment:
            element_seed = tf.stack([random, tf.constant(seed, tf.int64)])
            image, mask = augment_pair(
                image,
                mask,
                element_seed,
                height=height,
                width=width,
                min_scale=scale_range[0],
                max_scale=scale_range[1],
                ignore_index=ignore,
                jitter=float(color_jitter),
            )
        else:
            image = tf.image.resize(image, [height, width], method="bilinear")
            mask = tf.image.resize(mask[:, :, None], [height, width], method="nearest")[:, :, 0]
            image = tf.ensure_shape(image, [height, width, 3])
            mask = tf.ensure_shape(mask, [height, width])
        mask = downsample_labels(mask, label_stride, ignore)
        return image, mask

    files = tf.data.Dataset.zip((files, randoms))
    data = files.map(load, num_parallel_calls=AUTOTUNE)
    data = data.batch(batch_size, drop_remainder=True)
    data = data.prefetch(AUTOTUNE)
    return data.with_options(_options(input_context))


def make_eval_dataset(
    dataset,
    split="val",
    *,
    batch_size,
    height=None,
    width=None,
    label_stride=1,
    limit=None,
    sample=None,
    seed=0,
    resize_masks=False,
    input_context=None,
):
    """Builds the evaluation pipeline: every image once, in sorted order.

    Args:
        dataset: SegmentationDataset.
        split: str. Split to read.
        batch_size: int. Global batch size; with `input_context`, each
            pipeline yields its per-replica share.
        height: int or None. If given with `width`, images are resized
            (bilinear) to `height x width`; masks keep their full
            resolution, since evaluation is at label resolution and the
            caller upsamples the logits.
        width: int or None. See `height`.
        label_stride: int. Masks are subsampled by this factor from their
            full resolution (or from `height x width` with `resize_masks`);
            see `downsample_labels`.
        limit: int or None. Use only the first `limit` pairs.
        sample: int or None. Use a random sample of this many pairs (of the
            first `limit`), drawn with `seed`, in file order.
        seed: int. Seed of `sample`.
        resize_masks: bool. With `height` and `width`, resize the masks too
            (nearest neighbour), so that the model's logits at that size are
            scored directly: validation at the training scale.
        input_context: tf.distribute.InputContext or None. Shards the file
            list across input pipelines.

    Returns:
        tf.data.Dataset of `(float32 [batch, H, W, 3], int32 [batch, h, w])`.
        Images of different sizes in one batch are padded with 0, masks with
        the ignore id; the last batch may be smaller.

    Raises:
        DatasetError: for unusable files (from `scan`) or an unlabelled
            split.
        ValueError: for invalid arguments.
    """
    _check_positive_int(batch_size, "batch_size")
    _check_positive_int(label_stride, "label_stride")
    if (height is None) != (width is None):
        raise ValueError(
            f"Give both `height` and `width` or neither; received height="
            f"{height!r}, width={width!r}."
        )
    if height is not None:
        _check_positive_int(height, "height")
        _check_positive_int(width, "width")
    pairs, orientations = scan_labelled_pairs(dataset, split, limit, sample, seed)
    mapping = dataset.label_mapping
    ignore = dataset.info.ignore_index
    files = _file_dataset(dataset, pairs, orientations, input_context)
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)

    def load(image_path, mask_path, kind, scale, orientation):
        image = decoding.decode_image(tf.io.read_file(image_path), orientation)
        if height is not None:
            image = tf.image.resize(image, [height, width], method="bilinear")
        else:
            image = tf.cast(image, tf.float32)
        mask = decoding.decode_mask(tf.io.read_file(mask_path), mapping, kind, scale)
        if resize_masks and height is not None:
            mask = tf.image.resize(mask[:, :, None], [height, width], method="nearest")[:, :, 0]
        return image, downsample_labels(mask, label_stride, ignore)

    data = files.map(load, num_parallel_calls=AUTOTUNE)
    data = data.padded_batch(
        batch_size,
        padded_shapes=([height, width, 3], [None, None]),
        padding_values=(tf.constant(0.0), tf.constant(ignore, tf.int32)),
    )
    data = data.prefetch(AUTOTUNE)
    return data.with_options(_options(input_context))
