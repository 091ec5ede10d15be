"""Tests of the Cityscapes benchmark scores (class/category IoU and iIoU)."""

import json
import os

import cv2
import numpy as np
import pytest

from tf_enet import data
from tf_enet.data import cityscapes
from tf_enet.metrics_cityscapes import AVERAGE_INSTANCE_SIZE, CityscapesIoU

ROAD, PERSON, RIDER, CAR, TRUCK, IGNORE = 0, 11, 12, 13, 14, 255
NAN = float("nan")


def hand_example():
    """Two persons (24000: 2 px, 24001: 1 px), one car (26000: 3 px)."""
    labels = np.array([[PERSON, PERSON, PERSON, CAR], [CAR, CAR, ROAD, IGNORE]])
    predictions = np.array([[PERSON, ROAD, PERSON, TRUCK], [CAR, CAR, ROAD, ROAD]])
    instance_ids = np.array([[24000, 24000, 24001, 26000], [26000, 26000, 7, 0]])
    return labels, predictions, instance_ids


def test_scores_of_a_hand_computed_example():
    metric = CityscapesIoU()
    metric.update(*hand_example())
    scores = metric.result()
    iou = scores["per_class_iou"]
    # road: tp 1, fp 1 (a person pixel); person: tp 2, fn 1; car: tp 2,
    # fn 1 (as truck); truck: fp 1; rider and the rest: no pixels.
    np.testing.assert_allclose(iou[[ROAD, PERSON, CAR, TRUCK]], [1 / 2, 2 / 3, 2 / 3, 0])
    assert np.isnan(iou[RIDER]) and np.isnan(iou[1])
    assert scores["class_iou"] == pytest.approx((1 / 2 + 2 / 3 + 2 / 3 + 0) / 4)

    # Instance weights w = average size / instance size. person: 24000
    # gives tp 1 and fn 1 at w = S/2, 24001 tp 1 at w = S, no false
    # positives: (S/2 + S) / (S/2 + S + S/2) = 0.75. car: (2 S/3) / S.
    iiou = scores["per_class_iiou"]
    np.testing.assert_allclose(iiou[[PERSON, CAR, TRUCK]], [0.75, 2 / 3, 0])
    assert np.isnan(iiou[ROAD]) and np.isnan(iiou[RIDER])
    assert scores["class_iiou"] == pytest.approx((0.75 + 2 / 3 + 0) / 3)

    # Categories flat (road), human (person), vehicle (car + truck): the
    # car pixel predicted as truck is a vehicle true positive.
    names = list(scores["category_names"])
    flat, human, vehicle = (names.index(n) for n in ("flat", "human", "vehicle"))
    category_iou = scores["per_category_iou"]
    np.testing.assert_allclose(category_iou[[flat, human, vehicle]], [1 / 2, 2 / 3, 1])
    assert scores["category_iou"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    category_iiou = scores["per_category_iiou"]
    np.testing.assert_allclose(category_iiou[[human, vehicle]], [0.75, 1])
    assert np.isnan(category_iiou[flat])
    assert scores["category_iiou"] == pytest.approx((0.75 + 1) / 2)
    assert scores["num_images"] == 1
    assert scores["confusion"].sum() == 7  # the ignore pixel is left out


def test_a_batch_counts_instances_image_by_image():
    labels, predictions, instances = hand_example()
    # A second image reusing the same instance ids, with a person false
    # positive, so that merging instances across images changes the iIoU.
    predictions_b = predictions.copy()
    predictions_b[1, 2] = PERSON
    batch = CityscapesIoU()
    batch.update(
        np.stack([labels, labels]),
        np.stack([predictions, predictions_b]),
        np.stack([instances, instances]),
    )
    one_by_one = CityscapesIoU()
    one_by_one.update(labels, predictions, instances)
    one_by_one.update(labels, predictions_b, instances)
    for key in ("per_class_iou", "per_class_iiou", "per_category_iiou"):
        np.testing.assert_allclose(batch.result()[key], one_by_one.result()[key], equal_nan=True)
    # person iIoU by hand: tp 3 S, fn S (twice the first image), fp 1.
    size = AVERAGE_INSTANCE_SIZE["person"]
    assert batch.result()["per_class_iiou"][PERSON] == pytest.approx(3 * size / (4 * size + 1))
    assert batch.result()["num_images"] == 2


def test_instances_outside_the_benchmark_and_crowds_carry_no_weight():
    # A caravan instance (29001) and a person crowd (plain id 24).
    labels = np.array([[IGNORE, IGNORE, PERSON, PERSON]])
    predictions = np.array([[CAR, CAR, ROAD, ROAD]])
    instance_ids = np.array([[29001, 29001, 24, 24]])
    metric = CityscapesIoU()
    metric.update(labels, predictions, instance_ids)
    scores = metric.result()
    # person: no instance weight, 2 pixels missed, so iIoU 0 / (0 + 0 + 0)
    # has no value, while the plain IoU is 0.
    assert np.isnan(scores["per_class_iiou"][PERSON])
    assert scores["per_class_iou"][PERSON] == 0
    assert np.isnan(scores["class_iiou"]) and np.isnan(scores["per_class_iou"][CAR])


def test_bad_inputs_are_refused():
    metric = CityscapesIoU()
    labels, predictions, instances = hand_example()
    with pytest.raises(ValueError, match="same shape"):
        metric.update(labels, predictions[:, :3], instances)
    with pytest.raises(ValueError, match=r"class ids in \[0, 19\); received \[255\]"):
        metric.update(labels, np.full_like(predictions, 255), instances)
    with pytest.raises(ValueError, match="expects"):
        metric.update(labels.ravel(), predictions.ravel(), instances.ravel())
    assert metric.result()["num_images"] == 0
    assert np.isnan(metric.result()["class_iou"])


# --- Cross-check with the official evaluation -------------------------------

# label id -> training class id, and back, from the dataset's table.
TRAIN_TO_LABEL = {train: label for label, train in cityscapes.LABEL_ID_TO_TRAIN_ID.items()}
STUFF_LABELS = [0, 1, 4, 7, 8, 9, 11, 12, 13, 17, 19, 20, 21, 22, 23]
THING_LABELS = [24, 25, 26, 27, 28, 29, 31, 32, 33]


def write_png(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), array)


def make_fixture(root, rng, num_images=3, height=48, width=96):
    """A Cityscapes val split with instances, and predictions for it.

    Label ids come in 8x8 blocks of stuff classes (ignored ones among
    them), with rectangles of thing instances (caravan, outside the
    benchmark, among them) and a person crowd region on top. Predictions
    are the truth with a fifth of the pixels, and some whole blocks,
    replaced by random classes.

    Returns:
        list of prediction arrays (training class ids), in the order of
        `files("val")`.
    """
    predictions = {}
    for i in range(num_images):
        blocks = rng.choice(STUFF_LABELS, (height // 8, width // 8))
        label_ids = np.kron(blocks, np.ones((8, 8), np.int64))
        instance_ids = label_ids.copy()
        for n in range(rng.randint(4, 9)):
            label = rng.choice(THING_LABELS)
            top, left = rng.randint(0, height - 4), rng.randint(0, width - 4)
            h, w = rng.randint(2, 20), rng.randint(2, 30)
            label_ids[top : top + h, left : left + w] = label
            instance_ids[top : top + h, left : left + w] = label * 1000 + n
        label_ids[:6, -10:] = 24
        instance_ids[:6, -10:] = 24  # a crowd: no instance number
        train_ids = data.Cityscapes.label_mapping.id_array()[label_ids]
        prediction = np.where(train_ids == IGNORE, rng.randint(0, 19, train_ids.shape), train_ids)
        noise = rng.rand(height, width) < 0.2
        prediction[noise] = rng.randint(0, 19, noise.sum())
        wrong_blocks = np.kron(rng.rand(height // 8, width // 8) < 0.15, np.ones((8, 8), bool))
        prediction[wrong_blocks] = (prediction[wrong_blocks] + 3) % 19

        name = f"city_{i:06d}_000019"
        write_png(
            root / "leftImg8bit" / "val" / "city" / f"{name}_leftImg8bit.png",
            np.zeros((height, width, 3), np.uint8),
        )
        gt = root / "gtFine" / "val" / "city"
        write_png(gt / f"{name}_gtFine_labelIds.png", label_ids.astype(np.uint8))
        write_png(gt / f"{name}_gtFine_instanceIds.png", instance_ids.astype(np.uint16))
        predictions[name] = prediction
    return predictions


def test_scores_match_the_official_cityscapes_evaluation(tmp_path, monkeypatch):
    official = pytest.importorskip(
        "cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling",
        reason="the cross-check needs cityscapesscripts (test extra)",
    )
    root = tmp_path / "cityscapes"
    predictions = make_fixture(root, np.random.RandomState(0))
    ds = data.get_dataset("cityscapes", str(root))
    triples = ds.files_with_instances("val")
    assert len(triples) == 3

    metric = CityscapesIoU()
    prediction_files, gt_files = [], []
    for _, label_path, instance_path in triples:
        name = os.path.basename(label_path)[: -len("_gtFine_labelIds.png")]
        label_ids = cv2.imread(label_path, cv2.IMREAD_UNCHANGED)
        labels = data.Cityscapes.label_mapping.id_array()[label_ids]
        metric.update(labels, predictions[name], cityscapes.read_instance_ids(instance_path))
        # The official script reads predictions as label ids.
        as_label_ids = np.vectorize(TRAIN_TO_LABEL.get)(predictions[name])
        prediction_files.append(str(tmp_path / "pred" / f"{name}_pred.png"))
        write_png(prediction_files[-1], as_label_ids.astype(np.uint8))
        gt_files.append(label_path)
    ours = metric.result()

    if not hasattr(np, "in1d"):
        # cityscapesscripts 2.3 calls np.in1d, which NumPy 2.4 removed;
        # np.isin flattened is its documented replacement.
        monkeypatch.setattr(
            np,
            "in1d",
            lambda a, b, invert=False: np.isin(a, b, invert=invert).ravel(),
            raising=False,
        )
    for key, value in (
        ("quiet", True),
        ("JSONOutput", False),
        ("evalInstLevelScore", True),
        ("evalPixelAccuracy", False),
    ):
        monkeypatch.setattr(official.args, key, value)
    theirs = official.evaluateImgLists(prediction_files, gt_files, official.args)

    assert ours["class_iou"] == pytest.approx(theirs["averageScoreClasses"], abs=1e-4)
    assert ours["class_iiou"] == pytest.approx(theirs["averageScoreInstClasses"], abs=1e-4)
    assert ours["category_iou"] == pytest.approx(theirs["averageScoreCategories"], abs=1e-4)
    assert ours["category_iiou"] == pytest.approx(theirs["averageScoreInstCategories"], abs=1e-4)
    for i, name in enumerate(ours["class_names"]):
        np.testing.assert_allclose(
            [ours["per_class_iou"][i], ours["per_class_iiou"][i]],
            [theirs["classScores"][name], theirs["classInstScores"][name]],
            atol=1e-4,
        )
    for i, name in enumerate(ours["category_names"]):
        np.testing.assert_allclose(
            [ours["per_category_iou"][i], ours["per_category_iiou"][i]],
            [theirs["categoryScores"][name], theirs["categoryInstScores"][name]],
            atol=1e-4,
        )
    # The fixture exercises every score: instances of several classes and
    # both instance categories.
    assert np.isfinite(ours["per_class_iiou"]).sum() >= 6
    assert np.isfinite(ours["per_category_iiou"]).sum() == 2
    assert 0.3 < ours["class_iiou"] < 0.95


def test_instance_files_pair_with_the_masks(tmp_path):
    root = tmp_path / "cityscapes"
    make_fixture(root, np.random.RandomState(1), num_images=2, height=16, width=16)
    ds = data.get_dataset("cityscapes", str(root))
    pairs = ds.files("val")
    triples = ds.files_with_instances("val")
    assert [t[:2] for t in triples] == pairs
    assert ds.instance_files("val") == [t[2] for t in triples]
    for _, mask, instances in triples:
        assert instances == mask.replace("_labelIds.png", "_instanceIds.png")
        assert cityscapes.read_instance_ids(instances).dtype == np.int32

    os.remove(triples[1][2])
    with pytest.raises(
        data.DatasetError,
        match=r"1 Cityscapes labelIds masks .*"
        r"city_000001_000019_gtFine_instanceIds.png",
    ):
        ds.files_with_instances("val")


def test_the_test_split_has_no_instances(tmp_path):
    write_png(
        tmp_path / "leftImg8bit" / "test" / "berlin" / "berlin_000000_000019_leftImg8bit.png",
        np.zeros((4, 4, 3), np.uint8),
    )
    ds = data.get_dataset("cityscapes", str(tmp_path))
    with pytest.raises(data.DatasetError, match="'test' has no public annotations"):
        ds.files_with_instances("test")


def test_instance_ids_keep_16_bits(tmp_path):
    path = tmp_path / "x_gtFine_instanceIds.png"
    ids = np.array([[26001, 7], [33012, 0]], np.uint16)
    write_png(path, ids)
    np.testing.assert_array_equal(cityscapes.read_instance_ids(path), ids)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(data.DatasetError, match="bad.png: not a readable PNG"):
        cityscapes.read_instance_ids(tmp_path / "bad.png")


def test_summary_is_plain_json():
    metric = CityscapesIoU()
    metric.update(*hand_example())
    summary = metric.summary()
    assert list(summary["per_class_iiou"]) == [
        "person",
        "rider",
        "car",
        "truck",
        "bus",
        "train",
        "motorcycle",
        "bicycle",
    ]
    assert list(summary["per_category_iiou"]) == ["human", "vehicle"]
    assert len(summary["per_class_iou"]) == 19 and len(summary["per_category_iou"]) == 7
    assert summary["per_class_iiou"]["person"] == pytest.approx(0.75)
    assert summary["per_category_iou"]["flat"] == pytest.approx(0.5)
    assert summary["class_iou"] == metric.result()["class_iou"]
    assert summary["num_images"] == 1
    # Plain floats throughout, so json.dumps takes it as it is.
    assert json.loads(json.dumps(summary))["category_iiou"] == pytest.approx(0.875)


def test_evaluate_reports_the_benchmark_scores_of_each_image(tmp_path):
    # evaluate() pairs every image with its instanceIds file: its scores
    # equal CityscapesIoU fed the same images directly.
    from tf_enet import inference

    predictions = make_fixture(tmp_path, np.random.RandomState(3))
    dataset = data.get_dataset("cityscapes", str(tmp_path))
    stems = [
        os.path.basename(image).replace("_leftImg8bit.png", "") for image, _ in dataset.files("val")
    ]
    ordered = iter([predictions[stem] for stem in stems])

    def runner(images):  # one image per call: the fixture's prediction
        return np.eye(19, dtype=np.float32)[next(ordered)][None]

    predictor = inference.Predictor(runner, dataset.info)
    results = inference.evaluate(predictor, dataset, "val")
    expected = CityscapesIoU()
    for (_, label_path, instance_path), stem in zip(dataset.files_with_instances("val"), stems):
        label_ids = cv2.imread(label_path, cv2.IMREAD_UNCHANGED)
        train_ids = data.Cityscapes.label_mapping.id_array()[label_ids]
        expected.update(train_ids, predictions[stem], cityscapes.read_instance_ids(instance_path))
    got, want = results["cityscapes"], expected.summary()
    assert got.keys() == want.keys() and got["num_images"] == 3
    for key, value in want.items():
        assert got[key] == pytest.approx(value, nan_ok=True), key
    assert 0 < got["class_iiou"] < 1 and 0 < got["category_iou"] < 1
    from tf_enet.cli.evaluate import format_table

    table = format_table(results, "val")
    assert f"  {'class iIoU':<14}{100 * got['class_iiou']:7.2f}\n" in table
    assert f"  {'category IoU':<14}{100 * got['category_iou']:7.2f}\n" in table
