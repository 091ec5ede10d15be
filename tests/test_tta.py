"""Test-time augmentation of a Predictor (`tta`): "flip" and "flip+scales"
against references computed by hand, and "none" unchanged bit for bit."""

import os

import cv2
import numpy as np
import pytest

from tf_enet import data, inference
from tf_enet.inference import processing

from inference_helpers import CLASSES, IGNORE, PALETTE, RecordingRunner, pixel_model, red_image

SAMPLE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "data",
    "samples",
    "0016E5_07959.jpg",
)


def _sample():
    """A CamVid frame, float32 `[1, 360, 480, 3]`: the shipped model's own size."""
    return cv2.cvtColor(cv2.imread(SAMPLE), cv2.COLOR_BGR2RGB)[None].astype(np.float32)


class ColumnRunner:
    """Two classes: logit 0 is a tenth of the red channel, logit 1 the column + 0.5.

    Logit 1 depends on where a pixel lies in the model input, so the mirror's
    logits flipped back have it reversed: [3.5, 2.5, 1.5, 0.5] for 4 columns.
    """

    num_classes = 2

    def __init__(self):
        self.shapes = []

    def __call__(self, images):
        self.shapes.append(images.shape)
        columns = np.arange(images.shape[2], dtype=np.float32) + np.float32(0.5)
        column_logits = np.broadcast_to(columns, images.shape[:3])
        return np.stack([images[..., 0] / np.float32(10), column_logits], -1)


def _predictor(runner, tta, config=None):
    classes = CLASSES[: runner.num_classes]
    info = data.DatasetInfo("folder", classes, PALETTE[: runner.num_classes], IGNORE)
    return inference.Predictor(runner, info, config, "fake", "keras", tta)


def test_flip_averages_the_logits_of_the_image_and_its_mirror_flipped_back():
    image = red_image([[0, 0, 30, 30]] * 2)[None]  # [1, 2, 4, 3], run at its own size
    runner = ColumnRunner()
    # Without flip: logit 0 = red / 10 = [0, 0, 3, 3] against logit 1 =
    # [0.5, 1.5, 2.5, 3.5]; the last column goes to class 1.
    np.testing.assert_array_equal(_predictor(runner, "none").predict(image)[0], [[1, 1, 0, 1]] * 2)
    runner.shapes.clear()
    flip = _predictor(runner, "flip")
    # With flip: logit 0 is [0, 0, 3, 3] in both views (the mirror's red,
    # flipped back); logit 1 averages [0.5, 1.5, 2.5, 3.5] and its reverse, 2.
    np.testing.assert_array_equal(
        flip.content_logits(image)[0], [[[0, 2], [0, 2], [3, 2], [3, 2]]] * 2
    )
    np.testing.assert_array_equal(flip.predict(image)[0], [[1, 1, 0, 0]] * 2)
    # The image and its mirror run as one batch.
    assert runner.shapes == [(2, 2, 4, 3)] * 2


def test_flip_on_the_shipped_tflite_model_is_the_mean_of_its_runs_by_hand():
    predictor = inference.load_predictor(tta="flip")
    assert predictor.runtime == "tflite" and predictor.tta == "flip"
    image = _sample()
    fixed = predictor.runner.fixed  # the TFLite runner of the 360x480 conversion
    mirrored = fixed(np.ascontiguousarray(image[:, :, ::-1]))[:, :, ::-1]
    expected = (fixed(image) + mirrored) / 2  # [1, 360, 480, 11]
    np.testing.assert_allclose(predictor.content_logits(image), expected, rtol=0, atol=1e-5)
    labels = predictor.predict(image)
    # Ties within float error are not worth a flaky test: nearly every pixel.
    assert np.mean(labels == np.argmax(expected, -1)) > 0.9999
    # Flipping changes the answer somewhere (else the test checks nothing).
    assert np.any(labels != inference.load_predictor().predict(image))


def test_tta_none_is_the_prediction_without_augmentation_bit_for_bit():
    predictor = inference.load_predictor()
    assert predictor.tta == "none"
    fixed = predictor.runner.fixed
    frame = _sample()
    portrait = np.ascontiguousarray(frame[:, :, 120:360])  # 360x240
    box = processing.fit_size((360, 240), (360, 480))  # 360x240 content, 240 columns padded
    # The formulas the predictor computed before test-time augmentation.
    np.testing.assert_array_equal(predictor.content_logits(frame), fixed(frame))
    np.testing.assert_array_equal(
        predictor.content_logits(portrait),
        processing.unletterbox(fixed(processing.letterbox(portrait, box)), box),
    )
    np.testing.assert_array_equal(
        predictor.content_logits(portrait, input_size=(360, 480)),
        fixed(processing.resize_images(portrait, (360, 480))),
    )


def test_flip_scales_runs_the_larger_scale_in_windows_of_the_model_size():
    runner = RecordingRunner()  # the pixel model: logits k * R - k^2 / 2
    predictor = _predictor(runner, "flip+scales", {"train": {"height": 8, "width": 8}})
    image = red_image(np.full((16, 16), 2))[None]
    logits = predictor.content_logits(image)
    # Scale 1: the image and its mirror at 8x8, one call. Scale 1.25: 10x10,
    # covered by 2x2 windows of 8x8 at rows and columns 0 and 2.
    assert runner.shapes == [(2, 8, 8, 3)] * 5
    # Every window and view of a uniform image has the same logits, so the
    # mean (overlaps counted once each) is them: [0, 1.5, 2].
    np.testing.assert_allclose(logits, np.broadcast_to([0, 1.5, 2], (1, 8, 8, 3)), atol=1e-5)
    # A portrait image: 8x4 content (padded to 8x8) becomes 10x5 at 1.25,
    # padded to 10x8: two windows, at rows 0 and 2.
    runner.shapes.clear()
    portrait = red_image(np.full((16, 8), 2))[None]
    assert predictor.content_logits(portrait).shape == (1, 8, 4, 3)
    assert runner.shapes == [(2, 8, 8, 3)] * 3
    assert predictor.predict(portrait).shape == (1, 16, 8)


def test_flip_on_a_keras_model_keeps_each_pixels_own_class():
    # The pixel model reads each pixel's class from its red channel: the
    # mirror's logits flipped back are the image's, so labels are the reds.
    red = np.random.RandomState(3).randint(0, 3, (6, 9))
    predictor = inference.Predictor.from_model(pixel_model(3), tta="flip")
    np.testing.assert_array_equal(predictor.predict(red_image(red)[None])[0], red)


@pytest.mark.parametrize(
    "size, window, expected",
    [(8, 8, [0]), (10, 8, [0, 2]), (600, 480, [0, 120]), (1000, 480, [0, 260, 520])],
)
def test_windows_cover_a_length_from_edge_to_edge(size, window, expected):
    assert processing.window_starts(size, window) == expected


def test_a_scaled_letterbox_grows_its_input_only_where_the_content_outgrows_it():
    box = processing.fit_size((360, 240), (360, 480))
    assert processing.scale_letterbox(box, 1) is box
    assert processing.scale_letterbox(box, 1.25) == processing.Letterbox((450, 480), (450, 300))


def test_an_unknown_tta_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match=r"Unknown tta 'mirror'; expected one of \('none'"):
        inference.load_predictor(tta="mirror")
