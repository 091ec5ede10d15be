"""A web page that segments images in the browser: `--format web` exports.

    tf-enet-export --format web --output site/
    python -m http.server -d site

writes a folder of static files that runs the model on the viewer's own
machine, with nothing fetched from elsewhere at view time:

    index.html, page.js, pixels.js, style.css   the page (`static/`)
    model.onnx        the model in ONNX, fixed at its training size
    model.onnx.json   its configuration (as for any ONNX export)
    model_info.json   what the page needs: `MODEL_INFO_FORMAT` below
    ort/              the JavaScript runtime, onnxruntime-web (see `runtime`)

The page fits each image inside the training size with its aspect ratio
kept (bilinear, antialiased when shrinking, as `tf.image.resize`) and pads
it, runs the model, crops the padding's logits off and resizes the rest
(bilinear) back to the image's size before the argmax, as
`tf_enet.inference.Predictor.predict` does, so it labels images as
`tf-enet-predict` does. `model_info.json` records that geometry.
"""

from tf_enet.web.runtime import WebRuntimeError
from tf_enet.web.site import MODEL_INFO_FILE, MODEL_INFO_FORMAT, export_web

__all__ = ["MODEL_INFO_FILE", "MODEL_INFO_FORMAT", "WebRuntimeError", "export_web"]
