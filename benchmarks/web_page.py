"""Times the `--format web` page in headless Chromium beside the Python paths.

    python benchmarks/web_page.py
    python benchmarks/web_page.py --repeats 20 --screenshot docs/web_page.png

Exports --model as a web page (or uses --site, an existing export), serves
it on 127.0.0.1 and opens it in headless Chromium on WebAssembly (one
thread: `http.server` sends no COOP/COEP headers). The sample frames of
data/samples (CamVid, 360x480) are chosen in turn, as a user chooses a
file; after --warmup frames, the median of --repeats frames is reported
for the whole frame (pixels read, resize, model, logits resized back,
argmax, overlay drawn, legend) and for the model call alone. Beside it, on
the same frames and machine: `load_predictor(--model).predict` (the
default Python path) and Python onnxruntime running the page's own
model.onnx with one thread, like the page. Needs Chromium (Debian:
apt-get install chromium) and tf2onnx.
"""

import os
import statistics
import sys
import tempfile

# Before TensorFlow loads: its C++ notices would bury the table.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import onnxruntime
from absl import app, flags

from tf_enet import data, inference, web

import common

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))
from browser import Chromium, StaticServer  # noqa: E402

SAMPLES = os.path.join(REPO, "data", "samples")

FLAGS = flags.FLAGS
flags.DEFINE_string("model", inference.DEFAULT_MODEL, "Preset name, checkpoint dir or .keras.")
flags.DEFINE_string("site", None, "An existing --format web export to time instead.")
flags.DEFINE_integer("warmup", 3, "Untimed frames first.")
flags.DEFINE_integer("repeats", 12, "Timed frames; the median is reported.")
flags.DEFINE_string("screenshot", None, "Also save the page with a sample frame as this PNG.")


def _page_times(page, paths):
    frames, models = [], []
    for i in range(FLAGS.warmup + FLAGS.repeats):
        path = paths[i % len(paths)]
        page.set_files("#file", [path])
        page.wait_for(
            "window.enet.status === 'ready' && "
            f"window.enet.result?.name === '{os.path.basename(path)}' && "
            f"window.enet.result.frameMs !== window.lastFrameMs"
        )
        frame, model = page.evaluate(
            "window.lastFrameMs = window.enet.result.frameMs;"
            "[window.enet.result.frameMs, window.enet.result.modelMs]"
        )
        if i >= FLAGS.warmup:
            frames.append(frame)
            models.append(model)
    return statistics.median(frames), statistics.median(models)


def main(argv):
    del argv
    paths = sorted(os.path.join(SAMPLES, n) for n in os.listdir(SAMPLES))
    images = [data.decode_image_file(p)[None] for p in paths]
    with tempfile.TemporaryDirectory() as tmp:
        site = FLAGS.site or web.export_web(FLAGS.model, os.path.join(tmp, "site"))
        with StaticServer(site) as server, Chromium() as browser:
            page = browser.new_page(f"{server.url}/?backend=wasm", width=1200, height=540)
            if (
                page.wait_for(
                    "window.enet && window.enet.status !== 'loading' && window.enet.status"
                )
                != "ready"
            ):
                sys.exit(f"The page failed: {page.evaluate('window.enet.error')}")
            backend = page.evaluate("window.enet.backend")
            version = browser.send("Browser.getVersion")["product"]
            frame_ms, model_ms = _page_times(page, paths)
            if FLAGS.screenshot:
                page.set_files("#file", [paths[0]])
                page.wait_for(f"window.enet.result?.name === '{os.path.basename(paths[0])}'")
                page.screenshot(FLAGS.screenshot)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            os.path.join(site, "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        name = session.get_inputs()[0].name
        predictor = inference.load_predictor(FLAGS.model)
        rounds = FLAGS.warmup + FLAGS.repeats
        onnx_s = common.median_seconds(
            lambda: [session.run(None, {name: i.astype(np.float32)}) for i in images],
            1,
            max(1, rounds // len(images)),
        ) / len(images)
        predictor_s = common.median_seconds(
            lambda: [predictor.predict(i) for i in images], 1, max(1, rounds // len(images))
        ) / len(images)

    print(common.machine_description())
    print(f"{version}; page on {backend}")
    print("command: python benchmarks/web_page.py " + " ".join(sys.argv[1:]))
    print(f"{len(paths)} sample frames, {images[0].shape[2]}x{images[0].shape[1]}\n")
    print("| path | ms per frame |")
    print("|---|---|")
    print(f"| page, headless Chromium, WebAssembly 1 thread: whole frame | {frame_ms:.1f} |")
    print(f"| page: the model call (onnxruntime-web) | {model_ms:.1f} |")
    print(f"| Python onnxruntime, the page's model.onnx, 1 thread | {1000 * onnx_s:.1f} |")
    print(f"| Python `load_predictor().predict` ({predictor.runtime}) | {1000 * predictor_s:.1f} |")


if __name__ == "__main__":
    app.run(main)
