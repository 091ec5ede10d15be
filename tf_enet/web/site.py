"""`export_web`: writes the static site of `tf_enet.web`."""

import importlib.resources
import os

from tf_enet import artifacts, exporting, inference
from tf_enet.web import runtime

MODEL_FILE = "model.onnx"
MODEL_INFO_FILE = "model_info.json"
RUNTIME_DIR = "ort"
# The version of `model_info.json`'s layout, which page.js checks.
MODEL_INFO_FORMAT = "tf_enet/web/1"
# The page's own files, package data of tf_enet.web.
STATIC_FILES = ("index.html", "page.js", "pixels.js", "style.css")


def model_info(config, info, input_size, fit="letterbox"):
    """The description of a model that the page reads (`model_info.json`).

    Args:
        config: dict or None. The model's configuration.
        info: DatasetInfo. Class names, palette and ignore id.
        input_size: (height, width) or None. The size the model runs at;
            None runs it at each image's own size.
        fit: str. How an image of another aspect ratio goes into
            `input_size`: "letterbox" (its aspect ratio kept, at the top
            left, the rest `pad_value`, as `Predictor.predict` does) or
            "stretch" (resized to it).

    Returns:
        dict, JSON-serialisable: "format", "model" (the ONNX file),
        "class_names", "palette", "ignore_index", "input" (the geometry:
        "height" and "width" or null, "resize" and "antialias" for the
        image, "layout" and "range" of the model's input) and "logits"
        (how they are resized back before the argmax), "runtime".
    """
    height, width = (None, None) if input_size is None else input_size
    return {
        "format": MODEL_INFO_FORMAT,
        "model": MODEL_FILE,
        "name": info.name,
        "class_names": list(info.class_names),
        "palette": [list(color) for color in info.palette],
        "ignore_index": info.ignore_index,
        "input": {
            "height": height,
            "width": width,
            "fit": fit,
            "pad_value": 0,
            "resize": "bilinear",
            "antialias": True,
            "layout": "NHWC",
            "range": [0, 255],
        },
        "logits": {"resize": "bilinear", "half_pixel_centers": True},
        "runtime": {"name": "onnxruntime-web", "version": runtime.VERSION},
    }


def export_web(model_path, output_dir, *, runtime_source=None, cache_dir=None):
    """Exports a Keras model as a static web page that segments images.

    The output directory is checked and the runtime found (downloaded
    once, see `tf_enet.web.runtime`) before the model is converted.

    Args:
        model_path: str. A checkpoint directory, a .keras file or a preset
            name.
        output_dir: str. The site's folder, created if missing; files of
            an earlier export there are replaced.
        runtime_source: str or None. A local onnxruntime-web tarball or
            package folder (`--web_runtime`); None downloads the pinned one.
        cache_dir: str or None. Where the downloaded runtime is cached;
            defaults to `$TF_ENET_CACHE`, else `~/.cache/tf_enet`.

    Returns:
        str. `output_dir`.

    Raises:
        OSError: `output_dir` cannot be written.
        WebRuntimeError: the runtime cannot be downloaded or read.
        ModelError: the model cannot be loaded.
        ExportError: the ONNX conversion failed.
    """
    output_dir = os.fspath(output_dir)
    inference.resolve_model_path(model_path)  # A missing model is named before any work.
    artifacts.ensure_writable_dir(output_dir, "--output")
    runtime_files = runtime.read_runtime(runtime_source, cache_dir=cache_dir)
    model, config, info = inference.load_keras_model(model_path)
    input_size = inference.training_size(config)
    exporting.export_onnx(
        model,
        os.path.join(output_dir, MODEL_FILE),
        config,
        source=os.fspath(model_path),
        input_size=input_size,
    )
    artifacts.write_json(
        os.path.join(output_dir, MODEL_INFO_FILE), model_info(config, info, input_size)
    )
    for name, contents in runtime_files.items():
        _write_bytes(os.path.join(output_dir, RUNTIME_DIR, name), contents)
    static = importlib.resources.files("tf_enet.web") / "static"
    for name in STATIC_FILES:
        _write_bytes(os.path.join(output_dir, name), (static / name).read_bytes())
    return output_dir


def _write_bytes(path, contents):
    def write(tmp_path):
        with open(tmp_path, "wb") as f:
            f.write(contents)

    artifacts.write_atomically(path, write)
