"""`ENetModelHandler`: tf_enet models in Apache Beam's RunInference.

    import apache_beam as beam
    from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
    from tf_enet.beam import ENetModelHandler

    handler = KeyedModelHandler(ENetModelHandler("enet_camvid"))
    labels = keyed_images | RunInference(handler)  # (key, PredictionResult)

Each worker loads the model once with `tf_enet.inference.load_predictor`
and predicts with `Predictor.predict`, so the labels are those of
`tf-enet-predict` for the same model and image: a preset or a `.tflite`
model runs with LiteRT, without TensorFlow or a GPU. Beam's own TensorFlow
handler cannot serve here: it does not load Keras 3 SavedModels
(apache/beam#30616) and would need TensorFlow on every worker.
"""

import os
import tempfile

import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference import base

from tf_enet import artifacts, inference


def local_model_path(model, directory=None):
    """A local path for `model`, copying a model file from a remote file system.

    A preset name or a local path is returned as it is. A path on another
    Beam file system (`gs://`, `s3://`, ...) must be a single-file model
    (`.tflite` or `.onnx`); it is copied with its configuration
    (`<model>.json`, when present) into `directory`.

    Args:
        model: str. Preset name, local path or file system path.
        directory: str or None. Where copies go; None: a new temporary
            directory.

    Returns:
        str. A path `tf_enet.inference.load_predictor` accepts.

    Raises:
        tf_enet.inference.ModelError: a remote model that is not a single
            file, or that does not exist.
    """
    if FileSystems.get_scheme(model) in (None, "file"):
        return model
    name = model.rstrip("/").rsplit("/", 1)[-1]
    if os.path.splitext(name)[1] not in (".tflite", ".onnx"):
        raise inference.ModelError(
            f"--model {model}: on a remote file system only a .tflite or .onnx "
            f"file can be used (export one with tf-enet-export); copy other "
            f"kinds of model to each worker and give the local path."
        )
    if not FileSystems.exists(model):
        raise inference.ModelError(f"--model {model}: no such file.")
    directory = directory or tempfile.mkdtemp(prefix="tf_enet_model_")
    local = os.path.join(directory, name)
    sources = [model]
    if FileSystems.exists(model + artifacts.SIDECAR_SUFFIX):
        sources.append(model + artifacts.SIDECAR_SUFFIX)
    for source in sources:
        with FileSystems.open(source, compression_type="uncompressed") as remote:
            content = remote.read()
        with open(local + source[len(model) :], "wb") as file:
            file.write(content)
    return local


class ENetModelHandler(base.ModelHandler):
    """Segments decoded images with a tf_enet model in Beam's RunInference.

    Elements are RGB images, np.ndarray uint8 `[height, width, 3]`, of any
    sizes; a batch is predicted in groups of equal size (images of
    different sizes are never stacked). Each result is a
    `PredictionResult(example=image, inference=labels, model_id=model)`
    with labels np.ndarray int32 `[height, width]`, the image's size.

    Args:
        model: str. What `tf_enet.inference.load_predictor` takes (preset
            name, checkpoint directory, .keras/.tflite/.onnx file, ...), or
            a .tflite/.onnx file on a Beam file system (see
            `local_model_path`).
        input_size: (height, width) or None. Run the model at this size
            instead of its training size (see `Predictor.model_size`).
        min_batch_size: int. Fewest images Beam batches per call.
        max_batch_size: int. Most images Beam batches per call.
        large_model: bool. Load one model per machine, shared by its worker
            processes (Beam's `share_model_across_processes`), instead of
            one per process. The CamVid model is small (a few MB): leave it
            off unless memory is short.
    """

    def __init__(
        self,
        model=inference.DEFAULT_MODEL,
        *,
        input_size=None,
        min_batch_size=1,
        max_batch_size=4,
        large_model=False,
    ):
        super().__init__()
        if not 1 <= min_batch_size <= max_batch_size:
            raise ValueError(
                f"Expected 1 <= min_batch_size <= max_batch_size; received "
                f"{min_batch_size} and {max_batch_size}."
            )
        self.model = model
        self.input_size = None if input_size is None else tuple(int(v) for v in input_size)
        self.min_batch_size = min_batch_size
        self.max_batch_size = max_batch_size
        self.large_model = large_model

    def load_model(self):
        """Loads the model as a `tf_enet.inference.Predictor`."""
        return inference.load_predictor(local_model_path(self.model))

    def run_inference(self, batch, model, inference_args=None):
        """Predicts the labels of a batch of images.

        Args:
            batch: sequence of np.ndarray uint8 `[height, width, 3]`, RGB.
            model: Predictor, from `load_model`.
            inference_args: None; the handler takes no per-call arguments.

        Returns:
            list of PredictionResult, in the order of `batch`.
        """
        labels = [None] * len(batch)
        groups = {}  # (height, width) -> indices into batch
        for index, image in enumerate(batch):
            groups.setdefault(np.shape(image)[:2], []).append(index)
        for indices in groups.values():
            images = np.stack([batch[i] for i in indices])  # [group, height, width, 3]
            classes = model.predict(images, input_size=self.input_size)
            for index, label_map in zip(indices, classes):
                labels[index] = label_map
        return [
            base.PredictionResult(image, label_map, model_id=self.model)
            for image, label_map in zip(batch, labels)
        ]

    def get_num_bytes(self, batch):
        return sum(np.asarray(image).nbytes for image in batch)

    def get_metrics_namespace(self):
        return "tf_enet"

    def batch_elements_kwargs(self):
        return {"min_batch_size": self.min_batch_size, "max_batch_size": self.max_batch_size}

    def share_model_across_processes(self):
        return self.large_model

    def validate_inference_args(self, inference_args):
        if inference_args:
            raise ValueError(
                f"ENetModelHandler takes no inference_args; received {sorted(inference_args)}."
            )
