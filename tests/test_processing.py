"""The TensorFlow-free pre- and post-processing of a Predictor.

References are TensorFlow's own resizes (the path these functions replace)
and hand-made images whose labels are known.
"""

import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tf_enet import data, inference
from tf_enet.inference import processing, tf_runtimes

from inference_helpers import CLASSES, IGNORE, PALETTE, RecordingRunner, pixel_model, red_image


@pytest.mark.parametrize("size", [(7, 9), (31, 17), (64, 80), (5, 120)])
def test_resize_images_is_tensorflows_antialiased_bilinear(size):
    images = np.random.RandomState(0).uniform(0, 255, (2, 32, 48, 3)).astype(np.float32)
    expected = tf.image.resize(images, size, "bilinear", antialias=True).numpy()
    np.testing.assert_allclose(processing.resize_images(images, size), expected, atol=2e-3)
    plain = tf.image.resize(images, size, "bilinear").numpy()
    np.testing.assert_allclose(
        processing.resize_images(images, size, antialias=False), plain, atol=2e-3
    )


@pytest.mark.parametrize("size", [(7, 9), (64, 80), (360, 480)])
def test_resize_logits_is_tensorflows_bilinear(size):
    logits = np.random.RandomState(1).normal(0, 5, (1, 24, 32, 11)).astype(np.float32)
    expected = tf.image.resize(logits, size, "bilinear").numpy()
    np.testing.assert_allclose(processing.resize_logits(logits, size), expected, atol=1e-4)


def test_resize_labels_is_tensorflows_nearest():
    labels = np.arange(6 * 10).reshape(6, 10)
    expected = tf.image.resize(labels[..., None], (4, 7), "nearest").numpy()[..., 0]
    np.testing.assert_array_equal(processing.resize_labels(labels, (4, 7)), expected)


def test_a_portrait_image_is_fitted_not_stretched():
    # A 16x8 portrait image on a model trained at 8x8... stretched, its rows
    # would be squeezed 2x; fitted, it runs as 8x4 content beside padding.
    red = np.random.RandomState(2).randint(0, 3, (16, 8))
    image = red_image(red)[None].astype(np.float32)
    runner = RecordingRunner()
    info = data.DatasetInfo("folder", CLASSES, PALETTE, IGNORE)
    predictor = inference.Predictor(runner, info, {"train": {"height": 8, "width": 8}})
    labels = predictor.predict(image)
    assert runner.shapes == [(1, 8, 8, 3)]
    # Independently: the model (the pixel model's logits k * R - k^2 / 2) on
    # the image resized by TensorFlow to 8x4, logits resized back to 16x8.
    content = tf.image.resize(image, (8, 4), "bilinear", antialias=True).numpy()
    k = np.arange(3, dtype=np.float32)
    logits = content[..., :1] * k - 0.5 * k**2
    expected = np.argmax(tf.image.resize(logits, (16, 8), "bilinear").numpy(), -1)
    np.testing.assert_array_equal(labels, expected)


def test_a_landscape_image_of_the_training_aspect_is_only_resized():
    box = processing.fit_size((720, 960), (360, 480))
    assert box.content_size == box.input_size == (360, 480)
    assert processing.fit_size((480, 360), (360, 480)).content_size == (360, 270)


def test_xla_compiles_one_shape_on_a_folder_of_many_sizes():
    runner = tf_runtimes.KerasRunner(pixel_model(3), jit_compile=True)
    for size in ((8, 8), (6, 10), (12, 4), (8, 8)):
        runner(np.zeros((1, *size, 3), np.float32))
    assert runner._call._compiled.experimental_get_tracing_count() == 1
    assert runner._call._traced.experimental_get_tracing_count() == 1


def test_labels_of_a_300_class_model_are_written_16_bit(tmp_path):
    # Class 280 everywhere: a uint8 PNG would hold 280 % 256 = 24.
    model = pixel_model(300)
    conv = model.get_layer("logits")
    bias = np.zeros(300, np.float32)
    bias[280] = 1.0
    conv.set_weights([np.zeros((1, 1, 3, 300), np.float32), bias])
    predictor = inference.Predictor.from_model(model)
    path = str(tmp_path / "a.png")
    assert cv2.imwrite(path, np.zeros((4, 6, 3), np.uint8))
    (result,) = inference.predict_files(predictor, [path])
    written = inference.write_prediction(result, str(tmp_path), "a", predictor.info.palette)
    labels = cv2.imread(os.path.join(tmp_path, "a_labels.png"), cv2.IMREAD_UNCHANGED)
    assert labels.dtype == np.uint16 and labels.shape == (4, 6)
    assert np.all(labels == 280)
    assert len(written) == 3
    # A 3-class model's labels stay 8-bit.
    assert inference.files.label_image(np.zeros((2, 2), np.int32), 3).dtype == np.uint8
