"""The `--format web` page in headless Chromium, against the Python predictor.

The CamVid preset is exported as a site with the real onnxruntime-web
(downloaded once from the npm registry and cached, as `tf-enet-export`
does), served on 127.0.0.1 and opened in headless Chromium on
WebAssembly. The labels the page computes for the sample frames, a large
photo and an EXIF-rotated photo are compared with `load_predictor()`'s.

Skipped with the reason when Chromium is not installed (Debian: apt-get
install chromium) or the runtime cannot be downloaded.
"""

import base64
import json
import os
import shutil

import cv2
import numpy as np
import pytest
from PIL import Image

from tf_enet import data, inference, web
from tf_enet.web import runtime

from browser import Chromium, StaticServer, find_chromium

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        find_chromium() is None,
        reason="headless Chromium not found (Debian: apt-get install chromium)",
    ),
]

SAMPLES_DIR = os.path.join(os.path.dirname(__file__), "..", "data", "samples")
SAMPLES = sorted(os.path.join(SAMPLES_DIR, name) for name in os.listdir(SAMPLES_DIR))
# The share of pixels on which the page and the Python predictor must agree.
MIN_AGREEMENT = 0.999
READY = "window.enet && window.enet.status !== 'loading' && window.enet.status"
# The latest labels as base64, in chunks (fromCharCode takes few arguments).
LABELS = """(() => {
  const labels = window.enet.result.labels;
  let text = "";
  for (let i = 0; i < labels.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, labels.subarray(i, i + 0x8000));
  }
  return btoa(text);
})()"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    try:
        runtime.read_runtime()
    except web.WebRuntimeError as error:
        pytest.skip(f"onnxruntime-web is not available: {error}")
    return web.export_web("enet_camvid", str(tmp_path_factory.mktemp("site")))


@pytest.fixture(scope="module")
def predictor():
    return inference.load_predictor()


@pytest.fixture(scope="module")
def browser():
    with Chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def page(site, browser):
    with StaticServer(site) as server:
        page = browser.new_page(f"{server.url}/?backend=wasm")
        assert page.wait_for(READY) == "ready", page.evaluate("window.enet.error")
        yield page


def _segment(page, path):
    """The page's labels for an image file, chosen as a user does."""
    name = os.path.basename(path)
    page.set_files("#file", [path])
    page.wait_for(
        f"window.enet.status === 'ready' && window.enet.result?.name === {json.dumps(name)}"
    )
    assert page.evaluate("window.enet.error") is None
    height, width = page.evaluate("[window.enet.result.height, window.enet.result.width]")
    labels = np.frombuffer(base64.b64decode(page.evaluate(LABELS)), np.uint8)
    return labels.reshape(height, width)


def _agreement(page_labels, python_labels):
    assert page_labels.shape == python_labels.shape
    return float(np.mean(page_labels == python_labels))


def test_the_page_runs_on_webassembly_with_the_model_classes(page):
    assert page.evaluate("window.enet.backend").startswith("WebAssembly, 1 thread")
    legend = page.evaluate(
        "[...document.querySelectorAll('#legend tbody tr')].map(r => r.cells[1].textContent)"
    )
    config = inference.read_model_config("enet_camvid")
    assert legend == config["dataset"]["class_names"]


@pytest.mark.parametrize("path", SAMPLES, ids=os.path.basename)
def test_sample_frames_get_the_labels_of_the_python_predictor(page, predictor, path):
    page_labels = _segment(page, path)
    python_labels = predictor.predict(data.decode_image_file(path)[None])[0]
    agreement = _agreement(page_labels, python_labels)
    print(f"{os.path.basename(path)}: {agreement:.5%} of pixels agree")
    assert agreement > MIN_AGREEMENT
    # The legend's shares are the label map's, to the shown 0.1 %.
    shares = page.evaluate(
        "[...document.querySelectorAll('#legend tbody tr')].map(r => r.cells[2].textContent)"
    )
    counts = np.bincount(page_labels.ravel(), minlength=len(shares))
    assert shares == [f"{100 * n / page_labels.size:.1f} %" for n in counts]


def test_a_large_photo_is_resized_as_the_predictor_resizes_it(page, predictor, tmp_path):
    # 4000x3000: the model runs at 360x480 (antialiased shrinking) and the
    # logits are resized back to the photo's full size.
    image = data.decode_image_file(SAMPLES[0])
    large = cv2.resize(image, (4000, 3000), interpolation=cv2.INTER_CUBIC)
    path = str(tmp_path / "large.jpg")
    Image.fromarray(large).save(path, quality=92)
    page_labels = _segment(page, path)
    python_labels = predictor.predict(data.decode_image_file(path)[None])[0]
    agreement = _agreement(page_labels, python_labels)
    print(f"4000x3000: {agreement:.5%} of pixels agree")
    assert agreement > MIN_AGREEMENT


def test_a_panorama_keeps_its_aspect_ratio_as_in_the_predictor(page, predictor, tmp_path):
    # 200x960 inside 360x480: fitted to 100x480 and padded below; the
    # padding's logits are cropped off before the resize back.
    image = data.decode_image_file(SAMPLES[3])
    panorama = cv2.resize(image, (960, 400))[100:300]
    path = str(tmp_path / "panorama.png")
    Image.fromarray(panorama).save(path)
    page_labels = _segment(page, path)
    python_labels = predictor.predict(panorama[None])[0]
    agreement = _agreement(page_labels, python_labels)
    print(f"200x960 panorama: {agreement:.5%} of pixels agree")
    assert agreement > MIN_AGREEMENT


def test_an_exif_rotated_photo_is_segmented_the_right_way_up(page, predictor, tmp_path):
    upright = data.decode_image_file(SAMPLES[1])
    # Stored turned a quarter anticlockwise; EXIF orientation 6 tells
    # viewers to turn it a quarter clockwise, back upright.
    exif = Image.Exif()
    exif[0x0112] = 6
    path = str(tmp_path / "phone.jpg")
    Image.fromarray(np.rot90(upright)).save(path, quality=95, exif=exif)
    page_labels = _segment(page, path)
    assert page_labels.shape == upright.shape[:2]
    # tf_enet's decoder turns it upright too.
    python_labels = predictor.predict(data.decode_image_file(path)[None])[0]
    assert _agreement(page_labels, python_labels) > MIN_AGREEMENT


def test_a_file_that_is_not_an_image_gets_a_message(page, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not an image")
    page.set_files("#file", [str(path)])
    message = page.wait_for("window.enet.error")
    assert message.startswith("notes.txt is not an image this browser can decode")
    assert page.evaluate("document.getElementById('message').hidden") is False


def test_a_broken_model_file_gets_a_message(site, browser, tmp_path):
    broken = str(tmp_path / "broken")
    shutil.copytree(site, broken)
    with open(os.path.join(broken, "model.onnx"), "wb") as f:
        f.write(b"\x08\x07not an onnx model")
    with StaticServer(broken) as server:
        page = browser.new_page(f"{server.url}/?backend=wasm")
        assert page.wait_for(READY) == "error"
        message = page.evaluate("document.getElementById('message').textContent")
    assert message.startswith("Cannot load the model model.onnx:")
    assert "tf-enet-export --format web" in message


def test_a_missing_model_file_gets_a_message(site, browser, tmp_path):
    missing = str(tmp_path / "missing")
    shutil.copytree(site, missing)
    os.remove(os.path.join(missing, "model.onnx"))
    with StaticServer(missing) as server:
        page = browser.new_page(f"{server.url}/")
        assert page.wait_for(READY) == "error"
        message = page.evaluate("window.enet.error")
    assert message.startswith("Cannot load model.onnx: the server answered HTTP 404.")


def test_the_page_fits_a_phone_screen(site, browser):
    with StaticServer(site) as server:
        page = browser.new_page(f"{server.url}/?backend=wasm", width=390, height=844, mobile=True)
        assert page.wait_for(READY) == "ready"
        _segment(page, SAMPLES[0])
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        canvas = page.evaluate("document.getElementById('view').getBoundingClientRect().width")
    assert overflow <= 0
    assert canvas <= 390


def test_the_pixel_functions_follow_tensorflow_on_odd_sizes(page):
    # Resizes the sample frames never need (they are at the training size):
    # shrinking by non-integer factors (antialiased), enlarging, and one
    # axis each way. The reference is TensorFlow, as the predictor uses it.
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (37, 53, 4)).astype(np.uint8)
    logits = rng.normal(size=(9, 12, 5)).astype(np.float32)
    for height, width in [(20, 31), (80, 100), (10, 90)]:
        got = page.evaluate(f"""(async () => {{
          const px = await import("./pixels.js");
          const rgba = Uint8Array.from({json.dumps(rgba.ravel().tolist())});
          const logits = Float32Array.from({json.dumps(logits.ravel().tolist())});
          return [
            Array.from(px.resizeImage(rgba, 37, 53, {height}, {width})),
            Array.from(px.resizeArgmax(logits, 9, 12, 5, {height}, {width})),
          ];
        }})()""")
        image = np.asarray(got[0], np.float32).reshape(height, width, 3)
        expected = tf.image.resize(
            rgba[None, ..., :3].astype(np.float32), (height, width), "bilinear", antialias=True
        )[0]
        np.testing.assert_allclose(image, expected, atol=1e-3)
        labels = np.asarray(got[1]).reshape(height, width)
        resized = tf.image.resize(logits[None], (height, width), "bilinear")
        np.testing.assert_array_equal(labels, tf.argmax(resized, -1)[0].numpy())


def test_letterbox_sizes_follow_pythons_rounding(page):
    # fitSize keeps the aspect ratio inside the input as Python's round()
    # does (halves to even): 20 * 5/8 = 12.5 -> 12. By hand:
    # 3000x4000 -> 360x480 (same ratio); 300x1000 -> scale 0.48 -> 144x480;
    # 1000x100 -> scale 0.36 -> 360x36; 359x480 is within a pixel: 360x480.
    cases = {
        (3000, 4000, 360, 480): [360, 480],
        (300, 1000, 360, 480): [144, 480],
        (1000, 100, 360, 480): [360, 36],
        (8, 20, 5, 100): [5, 12],
        (359, 480, 360, 480): [360, 480],
    }
    got = page.evaluate(f"""(async () => {{
      const px = await import("./pixels.js");
      return {json.dumps([list(c) for c in cases])}.map((c) => px.fitSize(...c));
    }})()""")
    assert got == list(cases.values())
    # A 2x2 image padded into 3x3 with 7, and 3x3 logits of 1 class cropped to 2x2.
    padded, cropped = page.evaluate("""(async () => {
      const px = await import("./pixels.js");
      const image = Float32Array.from([1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]);
      const logits = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      return [Array.from(px.padImage(image, 2, 2, 3, 3, 7)),
              Array.from(px.cropLogits(logits, 3, 1, 2, 2))];
    })()""")
    assert padded == [1, 1, 1, 2, 2, 2, 7, 7, 7, 3, 3, 3, 4, 4, 4] + [7] * 12
    assert cropped == [1, 2, 4, 5]


def test_the_label_png_holds_the_class_ids(page):
    # 8-bit for the preset's 11 classes; 16-bit (big-endian samples) for a
    # Uint16Array, as for more than 256 classes. Decoded by OpenCV.
    labels = _segment(page, SAMPLES[2])
    encoded = page.evaluate("""(async () => {
      const px = await import("./pixels.js");
      const r = window.enet.result;
      const wide = Uint16Array.from([0, 1, 300, 65535, 256, 7]);
      const base64 = async (blob) => {
        const bytes = new Uint8Array(await blob.arrayBuffer());
        let text = "";
        for (let i = 0; i < bytes.length; i += 0x8000) {
          text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
        }
        return btoa(text);
      };
      return [await base64(await px.encodeLabelPng(r.labels, r.height, r.width)),
              await base64(await px.encodeLabelPng(wide, 2, 3))];
    })()""")
    decoded = [
        cv2.imdecode(np.frombuffer(base64.b64decode(e), np.uint8), cv2.IMREAD_UNCHANGED)
        for e in encoded
    ]
    assert decoded[0].dtype == np.uint8
    np.testing.assert_array_equal(decoded[0], labels)
    assert decoded[1].dtype == np.uint16
    np.testing.assert_array_equal(decoded[1], [[0, 1, 300], [65535, 256, 7]])


def test_the_webcam_is_segmented_frame_after_frame(site, browser):
    with StaticServer(site) as server:
        page = browser.new_page(f"{server.url}/?backend=wasm")
        page.set_camera_permission(server.url, "granted")
        assert page.wait_for(READY) == "ready"
        page.evaluate("document.getElementById('webcam').click()")
        page.wait_for("window.enet.result?.name === 'webcam'")
        # The timing line counts the frames averaged, up to 10.
        timing = page.wait_for(
            "(/webcam, mean of (\\d+)/.exec(document.getElementById('timing').textContent)"
            " || [0, 0])[1] >= 2 && document.getElementById('timing').textContent"
        )
        page.evaluate("document.getElementById('webcam').click()")
        button = page.wait_for(
            "window.enet.status === 'ready' && document.getElementById('webcam').textContent"
        )
    assert "ms per frame" in timing
    assert button == "Start the webcam"


def test_a_refused_webcam_gets_a_message(site, browser):
    with StaticServer(site) as server:
        page = browser.new_page(f"{server.url}/?backend=wasm")
        page.set_camera_permission(server.url, "denied")
        assert page.wait_for(READY) == "ready"
        page.evaluate("document.getElementById('webcam').click()")
        message = page.wait_for("window.enet.error")
    assert message.startswith("The webcam was refused.")


def test_a_keras_file_without_a_training_size_runs_at_each_images_size(browser, tmp_path_factory):
    # A .keras file with no config.json beside it: generic class names, a
    # dynamic-size ONNX model, and the page runs it at the image's own size
    # (odd, so the model's padding to a multiple of 8 is exercised).
    from tf_enet.model import build_enet  # pylint: disable=import-outside-toplevel

    folder = tmp_path_factory.mktemp("keras_model")
    model_path = str(folder / "tiny.keras")
    build_enet(3).save(model_path)
    site_dir = web.export_web(model_path, str(folder / "site"))
    with open(os.path.join(site_dir, web.MODEL_INFO_FILE), encoding="utf-8") as f:
        described = json.load(f)
    assert described["class_names"] == ["class_0", "class_1", "class_2"]
    assert described["input"]["height"] is None
    image = data.decode_image_file(SAMPLES[0])[:203, :301]
    path = str(folder / "odd.png")
    Image.fromarray(image).save(path)
    with StaticServer(site_dir) as server:
        page = browser.new_page(f"{server.url}/?backend=wasm")
        assert page.wait_for(READY) == "ready", page.evaluate("window.enet.error")
        page_labels = _segment(page, path)
    python_labels = inference.load_predictor(model_path).predict(image[None])[0]
    assert _agreement(page_labels, python_labels) > MIN_AGREEMENT
