"""Tests of model loading, prediction and evaluation (tf_enet.inference).

Most tests use the pixel model of `inference_helpers`, which predicts the
class id written in each pixel's red channel, so predictions are known
exactly and scores are checked against confusion matrices counted by hand.
"""

import os
import zipfile

import cv2
import keras
import numpy as np
import pytest

import tf_enet
from tf_enet import data, inference, logit_adjustment
from tf_enet.inference import evaluation

from inference_helpers import (
    CLASS_ACCURACY,
    CLASSES,
    CONFUSION,
    GLOBAL_ACCURACY,
    IGNORE,
    MEAN_IOU,
    PALETTE,
    PER_CLASS_IOU,
    PREDICTED_A,
    RecordingRunner,
    fake_predictor,
    pixel_model,
    red_image,
    run_config,
    write_checkpoint,
    write_folder_dataset,
    write_rgb,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The real CamVid copy (`python -m tf_enet.data.download camvid`), for the
# slow test that measures the shipped model; TF_ENET_CAMVID points elsewhere.
CAMVID = os.environ.get("TF_ENET_CAMVID", os.path.join(REPO, "data", "CamVid"))


@pytest.fixture
def checkpoint(tmp_path):
    return write_checkpoint(tmp_path / "run", pixel_model(3), run_config())


# --- Loading -----------------------------------------------------------------


def test_checkpoint_loads_with_its_classes_and_predicts(checkpoint):
    predictor = inference.load_predictor(checkpoint)
    assert predictor.kind == "keras"
    assert predictor.info.class_names == CLASSES
    assert predictor.info.palette == PALETTE
    classes = predictor.predict(red_image(PREDICTED_A)[None])
    np.testing.assert_array_equal(classes[0], PREDICTED_A)
    assert classes.dtype == np.int32


def test_keras_file_alone_gets_generic_classes(tmp_path):
    path = str(tmp_path / "model.keras")
    pixel_model(4).save(path)
    predictor = inference.load_predictor(path)
    assert predictor.info.class_names == ("class_0", "class_1", "class_2", "class_3")
    palette = predictor.info.palette
    assert len(set(palette)) == 4 and (0, 0, 0) not in palette  # black = ignore
    assert predictor.info.ignore_index == 255


def test_keras_file_uses_the_config_beside_it(tmp_path):
    path = write_checkpoint(tmp_path, pixel_model(3), run_config())
    predictor = inference.load_predictor(os.path.join(path, "model.keras"))
    assert predictor.info.class_names == CLASSES


# Each returns (path to load, file the message must name, expected words).
def _not_enet(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.save(tmp_path / "dense.keras")
    path = tmp_path / "dense.keras"
    return path, path, "is not an ENet segmentation model"


def _random_bytes(tmp_path):
    path = tmp_path / "noise.keras"
    path.write_bytes(np.random.RandomState(0).bytes(300))
    return path, path, "is not a valid Keras model (.keras): it is not a zip archive"


def _zip_without_model(tmp_path):
    path = tmp_path / "other.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "a zip archive, but no Keras model in it")
    return path, path, "is not a valid Keras model (.keras)"


def _lambda_layer(tmp_path):
    # Safe mode refuses the layer instead of running its stored bytecode.
    images = keras.Input((None, None, 3))
    model = keras.Model(images, keras.layers.Lambda(lambda x: x * 2)(images))
    path = tmp_path / "lambda.keras"
    model.save(path)
    return path, path, "Lambda"


def _class_mismatch(tmp_path):
    write_checkpoint(tmp_path, pixel_model(4), run_config())
    return tmp_path, tmp_path / "model.keras", "outputs 4 classes but its configuration"


def _bad_config(tmp_path):
    write_checkpoint(tmp_path, pixel_model(3))
    (tmp_path / "config.json").write_text('{"model": {}}')
    return tmp_path, tmp_path / "config.json", 'no "dataset" entry'


def _missing(tmp_path):
    return tmp_path / "nothing", tmp_path / "nothing", "not found"


def _unknown_extension(tmp_path):
    path = tmp_path / "weights.h5"
    path.write_bytes(b"x")
    return path, path, "unknown file type '.h5'"


def _empty_directory(tmp_path):
    return tmp_path, tmp_path, "without model.keras or saved_model.pb"


def _encoder_stage_only(tmp_path):
    # A run stopped after its encoder stage.
    write_checkpoint(tmp_path / "encoder", pixel_model(3))
    return tmp_path, tmp_path / "encoder" / "model.keras", "holds only the encoder stage"


def _corrupt_tflite(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(np.random.RandomState(0).bytes(300))
    return path, path, "is not a valid TFLite model"


def _corrupt_onnx(tmp_path):
    pytest.importorskip("onnxruntime")
    path = tmp_path / "model.onnx"
    path.write_bytes(np.random.RandomState(0).bytes(300))
    return path, path, "is not a valid ONNX model"


def _corrupt_saved_model(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(np.random.RandomState(0).bytes(300))
    return tmp_path, tmp_path, "is not a valid SavedModel"


@pytest.mark.parametrize(
    "make",
    [
        _not_enet,
        _random_bytes,
        _lambda_layer,
        _class_mismatch,
        _bad_config,
        _missing,
        _unknown_extension,
        _empty_directory,
        _encoder_stage_only,
        _corrupt_tflite,
        _zip_without_model,
        _corrupt_onnx,
        _corrupt_saved_model,
    ],
)
def test_bad_models_give_one_line_errors_naming_the_file(tmp_path, make):
    path, named, expected = make(tmp_path)
    with pytest.raises(inference.ModelError) as error:
        inference.load_predictor(str(path))
    message = str(error.value)
    assert expected in message
    assert str(named) in message
    assert "\n" not in message
    if make is not _missing:  # A file that is there is never "not found".
        assert "not found" not in message.lower()
    assert "codec" not in message


def test_default_model_is_the_shipped_preset_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no checkpoints/ here
    predictor = inference.load_predictor()
    assert predictor.info.name == "camvid" and predictor.num_classes == 11
    assert predictor.training_size == (360, 480)
    assert os.path.samefile(
        os.path.dirname(predictor.path),
        os.path.join(os.path.dirname(tf_enet.__file__), "presets", "enet_camvid"),
    )


@pytest.mark.parametrize(
    "train, dataset, expected",
    [
        ({"dataset": "folder", "val_fraction": 0.5}, "folder", {"val_fraction": 0.5}),
        ({"dataset": "folder", "val_fraction": 0.5}, "camvid", {}),
        ({"dataset": "camvid"}, "camvid", {}),
        (None, "folder", {}),
    ],
)
def test_dataset_options_are_those_the_model_was_trained_with(train, dataset, expected):
    config = None if train is None else {**run_config(), "train": train}
    assert inference.dataset_options(config, dataset) == expected


def test_read_model_config_reads_without_loading_the_model(tmp_path):
    path = write_checkpoint(tmp_path / "run", pixel_model(3), run_config())
    (tmp_path / "run" / "model.keras").write_bytes(b"not loaded")
    assert inference.read_model_config(path)["dataset"]["class_names"] == list(CLASSES)
    alone = tmp_path / "alone.keras"
    alone.write_bytes(b"")
    assert inference.read_model_config(str(alone)) is None


# --- Prediction ----------------------------------------------------------------


def test_predict_resizes_input_and_logits_back():
    predictor = fake_predictor()
    image = red_image(np.repeat(np.repeat([[0, 1], [2, 1]], 6, 0), 6, 1))  # 12x12
    classes = predictor.predict(image[None], input_size=(6, 6))
    assert predictor.runner.shapes == [(1, 6, 6, 3)]
    # The model saw 6x6; its logits came back to 12x12 (bilinear, so the
    # blocks' inner pixels keep their class).
    assert classes.shape == (1, 12, 12)
    np.testing.assert_array_equal(classes[0, 1:5, 1:5], 0)
    np.testing.assert_array_equal(classes[0, 7:11, 1:5], 2)
    labels = predictor.predict(image[None], output_size=(3, 3))
    assert labels.shape == (1, 3, 3)


def test_predict_runs_at_the_training_size_and_resizes_logits_back():
    info = data.DatasetInfo("folder", CLASSES, PALETTE, IGNORE)
    config = {**run_config(), "train": {"height": 6, "width": 6}}
    predictor = inference.Predictor(RecordingRunner(), info, config, "fake", "keras")
    assert predictor.training_size == (6, 6)
    red = np.repeat(np.repeat([[0, 1], [2, 1]], 9, 0), 9, 1)  # 18x18, 9-pixel blocks
    classes = predictor.predict(red_image(red)[None])
    # One resize in (18 -> 6), one resize of the logits out (6 -> 18).
    assert predictor.runner.shapes == [(1, 6, 6, 3)]
    assert classes.shape == (1, 18, 18) and classes.dtype == np.int32
    # Away from the block edges the classes are the red values again.
    for rows, cols in (
        (slice(0, 7), slice(0, 7)),
        (slice(11, 18), slice(0, 7)),
        (slice(0, 7), slice(11, 18)),
        (slice(11, 18), slice(11, 18)),
    ):
        np.testing.assert_array_equal(classes[0, rows, cols], red[rows, cols])
    # --height/--width override the training size; so does a fixed export size.
    predictor.predict(red_image(red)[None], input_size=(9, 9))
    assert predictor.runner.shapes[-1] == (1, 9, 9, 3)
    predictor.runner.input_size = (3, 3)
    predictor.predict(red_image(red)[None])
    assert predictor.runner.shapes[-1] == (1, 3, 3, 3)


def test_predict_without_a_training_size_runs_at_the_image_size():
    predictor = fake_predictor()  # no configuration
    assert predictor.training_size is None
    classes = predictor.predict(red_image(np.full((5, 7), 2))[None])
    assert predictor.runner.shapes == [(1, 5, 7, 3)]
    np.testing.assert_array_equal(classes, 2)


@pytest.mark.parametrize(
    "train, expected",
    [
        ({"height": 360, "width": 480}, (360, 480)),
        ({"height": 360}, None),
        ({"height": 0, "width": 480}, None),
        (None, None),
    ],
)
def test_training_size_reads_the_configuration(train, expected):
    config = {} if train is None else {"train": train}
    assert inference.training_size(config) == expected


def test_predict_files_batches_equal_sizes_and_reports_bad_files(tmp_path):
    sizes = {"a": (8, 8), "b": (6, 10), "c": (8, 8), "d": (8, 8)}
    for i, (name, size) in enumerate(sizes.items()):
        write_rgb(tmp_path / f"{name}.png", red_image(np.full(size, i % 3)))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    paths = [str(tmp_path / f"{n}.png") for n in ("a", "broken", "b", "c", "d")]
    predictor = fake_predictor()
    results = list(inference.predict_files(predictor, paths, batch_size=2))

    assert predictor.runner.shapes == [(2, 8, 8, 3), (1, 6, 10, 3), (1, 8, 8, 3)]
    by_path = {r.path: r for r in results}
    assert sorted(by_path) == sorted(paths)
    assert "broken.png" in by_path[paths[1]].error
    assert by_path[paths[1]].classes is None
    for i, name in enumerate(sizes):
        result = by_path[str(tmp_path / f"{name}.png")]
        assert result.error is None
        assert result.classes.shape == sizes[name]
        np.testing.assert_array_equal(result.classes, i % 3)
        assert result.image.shape == (*sizes[name], 3)


def test_find_images_expands_directories_globs_and_notes_the_rest(tmp_path):
    for name in ("b.png", "a.JPG", "notes.txt", ".hidden.png"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    (tmp_path / "sub" / "c.bmp").write_bytes(b"")
    (tmp_path / "sub" / "deeper" / "d.bmp").write_bytes(b"")
    found = inference.find_images(
        [
            str(tmp_path),
            str(tmp_path / "sub" / "*.bmp"),
            str(tmp_path / "b.png"),
            str(tmp_path / "missing.png"),
            str(tmp_path / "none*.png"),
        ]
    )
    assert found.paths == [
        str(tmp_path / "a.JPG"),
        str(tmp_path / "b.png"),
        str(tmp_path / "sub" / "c.bmp"),
    ]
    assert found.skipped == [str(tmp_path / "notes.txt")]
    assert found.unmatched == [str(tmp_path / "missing.png"), str(tmp_path / "none*.png")]
    # Directories inside a directory are named, not searched; `**` searches.
    assert found.subdirectories == [str(tmp_path / "sub")]
    assert inference.find_images([str(tmp_path / "**" / "*.bmp")]).paths == [
        str(tmp_path / "sub" / "c.bmp"),
        str(tmp_path / "sub" / "deeper" / "d.bmp"),
    ]


def test_overlay_blends_colours_over_the_image():
    image = np.full((1, 2, 3), 100, np.uint8)
    classes = np.array([[0, IGNORE]])
    blended = inference.overlay(image, classes, PALETTE, alpha=0.25)
    # 0.75 * 100 + 0.25 * (200, 0, 0); the ignore id is painted black.
    np.testing.assert_array_equal(blended[0, 0], [125, 75, 75])
    np.testing.assert_array_equal(blended[0, 1], [75, 75, 75])


def test_default_palette_is_distinct_and_never_black():
    palette = inference.default_palette(40)
    assert len(set(palette)) == 40 and (0, 0, 0) not in palette
    assert palette[:3] == ((128, 0, 0), (0, 128, 0), (128, 128, 0))  # VOC 1-3


# --- Evaluation ----------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [{}, {"batch_size": 2}, {"height": 4, "width": 4}],
    ids=["full_resolution", "batched", "resized"],
)
def test_evaluate_matches_the_hand_counted_confusion_matrix(
    tmp_path, checkpoint, options, monkeypatch
):
    monkeypatch.setenv("TF_ENET_CACHE", str(tmp_path / "cache"))
    dataset = data.get_dataset("folder", write_folder_dataset(tmp_path / "data"))
    predictor = inference.load_predictor(checkpoint)
    progress = []
    results = inference.evaluate(
        predictor, dataset, "val", on_batch=lambda *a: progress.append(a), **options
    )
    # Resized to 4x4, the red channel keeps its 4-pixel blocks and the logits
    # (linear in the red value) come back to 8x8 with the same argmax.
    assert results["confusion_matrix"] == CONFUSION
    np.testing.assert_allclose([results["per_class_iou"][c] for c in CLASSES], PER_CLASS_IOU)
    assert results["mean_iou"] == pytest.approx(MEAN_IOU)
    assert results["global_accuracy"] == pytest.approx(GLOBAL_ACCURACY)
    assert results["class_accuracy"] == pytest.approx(CLASS_ACCURACY)
    assert results["num_images"] == 2
    assert progress[-1] == (2, 2)


def test_evaluate_refuses_a_model_with_other_classes(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_ENET_CACHE", str(tmp_path / "cache"))
    dataset = data.get_dataset("folder", write_folder_dataset(tmp_path / "data"))
    path = str(tmp_path / "four.keras")
    pixel_model(4).save(path)
    with pytest.raises(inference.ModelError, match="outputs 4 classes but folder"):
        inference.evaluate(inference.load_predictor(path), dataset, "val")


def rewrite_val_masks(root, saved):
    for name in ("a", "b"):
        path = os.path.join(root, "masks", "val", f"{name}.png")
        label = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        assert cv2.imwrite(path, np.uint8(saved(label)))


def test_evaluate_warns_about_masks_that_look_saved_as_0_255(tmp_path, checkpoint, monkeypatch):
    # Every pixel that is not road saved as 255, the ignore id: 88 of the
    # 128 pixels (LABEL_A's 24 car and 8 ignore, LABEL_B's 56 sky). Scored,
    # only road counts: said before the model runs, then scored as asked.
    monkeypatch.setenv("TF_ENET_CACHE", str(tmp_path / "cache"))
    root = write_folder_dataset(tmp_path / "data")
    rewrite_val_masks(root, lambda label: np.where(label == 0, 0, IGNORE))
    warned = []
    monkeypatch.setattr(
        evaluation.logging, "warning", lambda message, *args: warned.append(message % args)
    )
    results = inference.evaluate(
        inference.load_predictor(checkpoint), data.get_dataset("folder", root), "val"
    )
    assert warned == [
        "folder split 'val': class 'car' has no pixels while 69% of pixels are 255, the "
        "ignore id — were the masks saved as 0/255? Save class c as the value c (e.g. "
        "mask // 255 for a 0/255 binary mask)."
    ]
    # Road's 40 pixels: the 16 predicted road and 16 predicted car of
    # LABEL_A's rows 0-3, and LABEL_B's column 0, predicted sky.
    assert results["confusion_matrix"] == [[16, 16, 8], [0, 0, 0], [0, 0, 0]]


def test_evaluate_refuses_a_split_without_labelled_pixels(tmp_path, checkpoint, monkeypatch):
    monkeypatch.setenv("TF_ENET_CACHE", str(tmp_path / "cache"))
    root = write_folder_dataset(tmp_path / "data")
    rewrite_val_masks(root, lambda label: np.full_like(label, IGNORE))
    batches = []
    with pytest.raises(data.DatasetError, match="has no labelled pixels: all 2 masks"):
        inference.evaluate(
            inference.load_predictor(checkpoint),
            data.get_dataset("folder", root),
            "val",
            on_batch=lambda *a: batches.append(a),
        )
    assert batches == []  # refused before the model ran


def test_offset_confusion_matrices_count_one_matrix_per_offset(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_ENET_CACHE", str(tmp_path / "cache"))
    dataset = data.get_dataset("folder", write_folder_dataset(tmp_path / "data"))
    progress = []
    matrices = logit_adjustment.offset_confusion_matrices(
        pixel_model(3),
        dataset,
        "val",
        [np.zeros(3), np.float32([0, 0, 10])],
        on_batch=lambda *a: progress.append(a),
    )
    assert matrices.shape == (2, 3, 3) and matrices.dtype == np.int64
    np.testing.assert_array_equal(matrices[0], CONFUSION)
    # Everything predicted sky: each row's labelled pixels (40, 24, 56) in column 2.
    np.testing.assert_array_equal(matrices[1], [[0, 0, 40], [0, 0, 24], [0, 0, 56]])
    assert progress == [(1, 2), (2, 2)]
    with pytest.raises(ValueError, match=r"offsets\[0\]. must hold 3 per-class offsets"):
        logit_adjustment.offset_confusion_matrices(pixel_model(3), dataset, "val", [[0.0, 1.0]])


@pytest.mark.parametrize("integer_logits", [False, True])
def test_offset_argmax_is_the_argmax_of_every_shifted_logit(integer_logits):
    rng = np.random.RandomState(4)
    logits = rng.normal(0, 3, (2, 40, 30, 6)).astype("float32")
    if integer_logits:  # many exact ties, resolved to the first class
        logits = np.round(logits).astype("float32")
    offsets = [np.zeros(6, "float32")] + [
        (-alpha * np.log(rng.uniform(0.2, 8.0, 6))).astype("float32") for alpha in (0.1, 0.5, 1.0)
    ]
    results = logit_adjustment.offset_argmax(logits, offsets)
    for classes, offset in zip(results, offsets):
        np.testing.assert_array_equal(classes, np.argmax(logits + offset, axis=-1))
    # Large logits: pixels far from a tie are not ranked again, yet exact.
    wide = logits * 100
    for classes, offset in zip(logit_adjustment.offset_argmax(wide, offsets), offsets):
        np.testing.assert_array_equal(classes, np.argmax(wide + offset, axis=-1))


def test_confusion_matrix_of_split_can_score_at_the_model_size(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_ENET_CACHE", str(tmp_path / "cache"))
    dataset = data.get_dataset("folder", write_folder_dataset(tmp_path / "data"))
    # Labels resized (nearest) 8x8 -> 4x4 keep rows/columns 1, 3, 5, 7:
    # a: labels rows (0, 0, 1, ignore), predictions columns (0, 0, 1, 1);
    # b: labels all 2 (column 0 dropped), predictions all 2.
    matrix = inference.confusion_matrix_of_split(
        pixel_model(3), dataset, "val", input_size=(4, 4), resize_labels=True
    )
    np.testing.assert_array_equal(matrix, [[4, 4, 0], [2, 2, 0], [0, 0, 16]])
    with pytest.raises(ValueError, match="records no training size"):
        inference.confusion_matrix_of_split(pixel_model(3), dataset, "val", resize_labels=True)


def test_confusion_matrix_of_split_counts_a_seeded_sample(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_ENET_CACHE", str(tmp_path / "cache"))
    dataset = data.get_dataset("folder", write_folder_dataset(tmp_path / "data"))
    progress = []
    matrix = inference.confusion_matrix_of_split(
        pixel_model(3),
        dataset,
        "val",
        sample=1,
        seed=3,
        on_batch=lambda *a: progress.append(a),
    )
    # a alone: [[16, 16, 0], [12, 12, 0], 0]; b alone: [[0, 0, 8], 0, [0, 0, 56]].
    assert matrix.tolist() in (
        [[16, 16, 0], [12, 12, 0], [0, 0, 0]],
        [[0, 0, 8], [0, 0, 0], [0, 0, 56]],
    )
    assert progress == [(1, 1)]


def test_confusion_matrix_of_split_batches_a_split_of_mixed_sizes(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_ENET_CACHE", str(tmp_path / "cache"))
    root = write_folder_dataset(tmp_path / "data")
    # A third image of another size, labelled with what the model predicts.
    red = np.random.RandomState(0).randint(0, 3, (6, 10))
    write_rgb(os.path.join(root, "images", "val", "c.png"), red_image(red))
    assert cv2.imwrite(os.path.join(root, "masks", "val", "c.png"), np.uint8(red))
    dataset = data.get_dataset("folder", root)
    extra = np.diag(np.bincount(red.ravel(), minlength=3))
    batches = []
    matrix = inference.confusion_matrix_of_split(
        pixel_model(3),
        dataset,
        "val",
        batch_size=3,
        on_batch=lambda *a: batches.append(a),
    )
    np.testing.assert_array_equal(matrix, np.array(CONFUSION) + extra)
    # a and b (8x8) run as one batch, c (6x10) alone: no padding.
    assert batches == [(2, 3), (3, 3)]


def test_evaluate_runs_at_the_training_size_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_ENET_CACHE", str(tmp_path / "cache"))
    dataset = data.get_dataset("folder", write_folder_dataset(tmp_path / "data"))
    config = {**run_config(), "train": {"height": 4, "width": 4}}
    path = write_checkpoint(tmp_path / "run", pixel_model(3), config)
    predictor = inference.load_predictor(path)
    results = inference.evaluate(predictor, dataset, "val")
    assert results["input_size"] == [4, 4]
    assert results["confusion_matrix"] == CONFUSION  # 4-pixel blocks survive 8->4->8
    own = inference.evaluate(predictor, dataset, "val", height=8, width=8)
    assert own["input_size"] == [8, 8]
    assert own["confusion_matrix"] == CONFUSION


@pytest.mark.slow
@pytest.mark.skipif(
    not os.path.isdir(os.path.join(CAMVID, "val")),
    reason="needs CamVid's val split (data/CamVid or TF_ENET_CAMVID)",
)
def test_shipped_model_segments_an_upscaled_frame_at_its_training_scale():
    # A CamVid val frame (360x480) and its labels (11 = void), upscaled 3x.
    image = cv2.imread(os.path.join(CAMVID, "val", "0016E5_07959.png"))
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    labels = cv2.imread(os.path.join(CAMVID, "valannot", "0016E5_07959.png"), cv2.IMREAD_UNCHANGED)
    big = cv2.resize(image, (1440, 1080), interpolation=cv2.INTER_LINEAR)
    big_labels = labels.repeat(3, 0).repeat(3, 1)
    predictor = inference.load_predictor(os.path.join(REPO, "checkpoints", "enet_camvid"))
    assert predictor.training_size == (360, 480)

    def accuracy(classes, truth):
        labelled = truth != 11
        return (classes[labelled] == truth[labelled]).mean()

    original = accuracy(predictor.predict(image[None])[0], labels)
    classes = predictor.predict(big[None])[0]
    assert classes.shape == (1080, 1440)
    upscaled = accuracy(classes, big_labels)
    # At its own size the model sees every object 3x too large.
    own_size = accuracy(predictor.predict(big[None], input_size=(1080, 1440))[0], big_labels)
    assert original > 0.93
    assert abs(upscaled - original) < 0.01
    assert own_size < original - 0.05
