"""Measures ENet inference on every path the project ships.

    python benchmarks/inference.py
    python benchmarks/inference.py --sizes 360x480 --paths xla,tflite_int8

Paths: `keras_predict` (`model.predict`: `tf_enet.ENet`'s, which runs
arrays without tf.data), `keras_model_predict` (Keras's own
`keras.Model.predict` loop, which builds a tf.data pipeline per call),
`keras_predict_on_batch`,
`graph` (`tf.function`, oneDNN kernels), `xla` (`tf.function` with
`jit_compile=True`), `saved_model` (the exported `serving_default`
signature, uint8 in, classes and probabilities out), `tflite_float32`,
`tflite_float16` and `tflite_int8` (XNNPack, builtin ops, `--threads`
threads; `_fixed`: exported for the timed image size, `export.py --height
--width`), `onnx` (onnxruntime, when installed). The model is freshly
built with `--num_classes` (speed does not depend on the weights; pass
`--model` to time a checkpoint instead). Every path is timed after
`--warmup` calls as the median of `--repeats`, on random images. The FLOP
floor is the model's FLOPs (TensorFlow's profiler, multiply-add = 2) divided
by this machine's float32 matrix-product rate, measured here too.
"""

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

import tf_enet
from tf_enet import exporting, inference

import common

PATHS = (
    "keras_predict",
    "keras_model_predict",
    "keras_predict_on_batch",
    "graph",
    "xla",
    "saved_model",
    "tflite_float32",
    "tflite_float16",
    "tflite_int8",
    "tflite_float32_fixed",
    "tflite_float16_fixed",
    "tflite_int8_fixed",
    "onnx",
)

FLAGS = flags.FLAGS
flags.DEFINE_list("sizes", ["360x480", "512x1024"], "Image sizes, HEIGHTxWIDTH.")
flags.DEFINE_list("paths", list(PATHS), f"Paths to time, of {', '.join(PATHS)}.")
flags.DEFINE_integer("batch_size", 1, "Images per call.")
flags.DEFINE_integer("warmup", 3, "Untimed calls first.")
flags.DEFINE_integer("repeats", 10, "Timed calls; the median is reported.")
flags.DEFINE_integer("num_classes", 11, "Classes of the freshly built model.")
flags.DEFINE_string("model", None, "Time this checkpoint/.keras instead.")
flags.DEFINE_integer("threads", os.cpu_count(), "TFLite and onnxruntime threads.")


def _parse_size(text):
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise app.UsageError(f"--sizes takes HEIGHTxWIDTH; received {text!r}.") from None
    return height, width


def _runners(model, workdir, paths, calibration_size):
    """Callables taking float32 images, one per requested path."""
    runners = {}
    spec = tf.TensorSpec([None, None, None, 3], tf.float32)
    if "keras_predict" in paths:
        runners["keras_predict"] = lambda x: model.predict(x, verbose=0)
    if "keras_model_predict" in paths:
        runners["keras_model_predict"] = lambda x: keras.Model.predict(model, x, verbose=0)
    if "keras_predict_on_batch" in paths:
        runners["keras_predict_on_batch"] = model.predict_on_batch
    for name, jit in (("graph", False), ("xla", True)):
        if name in paths:
            function = tf.function(
                lambda x: model(x, training=False),
                input_signature=[spec],
                jit_compile=jit,
            )
            runners[name] = lambda x, f=function: f(x).numpy()
    if "saved_model" in paths:
        directory = os.path.join(workdir, "saved_model")
        exporting.export_saved_model(model, directory)
        serving = tf.saved_model.load(directory).signatures["serving_default"]
        runners["saved_model"] = lambda x: serving(images=tf.constant(x.astype(np.uint8)))[
            "classes"
        ].numpy()
    runners.update(_tflite_runners(model, workdir, paths, calibration_size))
    if "onnx" in paths:
        try:
            path = os.path.join(workdir, "enet.onnx")
            exporting.export_onnx(model, path)
            predictor = inference.load_predictor(path)
            runners["onnx"] = predictor.logits
        except (ImportError, exporting.ExportError, inference.ModelError) as error:
            print(f"skipping onnx: {error}")
    return runners


def _tflite_runners(model, workdir, paths, size, fixed=False):
    """TFLite runners; `fixed`: the `_fixed` paths, exported for `size`."""
    runners = {}
    for quantize in ("float32", "float16", "int8"):
        name = f"tflite_{quantize}" + ("_fixed" if fixed else "")
        if name not in paths:
            continue
        path = os.path.join(workdir, f"{name}_{size[0]}x{size[1]}.tflite")
        interpreter = common.tflite_interpreter(
            model, path, quantize, size, fixed=fixed, threads=FLAGS.threads
        )
        runners[name] = common.tflite_runner(interpreter)
    return runners


def main(argv):
    del argv
    unknown = sorted(set(FLAGS.paths) - set(PATHS))
    if unknown:
        raise app.UsageError(f"Unknown --paths {unknown}; choose from {PATHS}.")
    sizes = [_parse_size(s) for s in FLAGS.sizes]
    if FLAGS.model:
        model, _, _ = inference.load_keras_model(FLAGS.model)
    else:
        model = tf_enet.build_enet(FLAGS.num_classes)
    print(common.machine_description())
    peak = common.matmul_flops_per_second()
    print(f"float32 matmul: {peak / 1e9:.0f} GFLOP/s; TFLite/ONNX threads: {FLAGS.threads}")
    flops_of = tf.function(lambda x: model(x, training=False))
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        runners = _runners(model, workdir, FLAGS.paths, sizes[0])
        for height, width in sizes:
            flops = common.count_flops(flops_of, tf.TensorSpec([1, height, width, 3], tf.float32))
            floor_ms = 1000 * flops / peak
            images = (
                np.random.RandomState(0)
                .uniform(0, 255, (FLAGS.batch_size, height, width, 3))
                .astype("float32")
            )
            print(f"{height}x{width}: {flops / 1e9:.2f} GFLOP/image, floor {floor_ms:.1f} ms")
            if FLAGS.batch_size == 1:  # fixed-size exports take one image
                runners.update(
                    _tflite_runners(model, workdir, FLAGS.paths, (height, width), fixed=True)
                )
            for name in FLAGS.paths:
                if name not in runners:
                    continue
                seconds = common.median_seconds(
                    lambda run=runners[name], images=images: run(images),
                    warmup=FLAGS.warmup,
                    repeats=FLAGS.repeats,
                )
                ms = 1000 * seconds / FLAGS.batch_size
                rows.append(
                    [
                        name,
                        f"{height}x{width}",
                        FLAGS.batch_size,
                        f"{ms:.1f}",
                        f"{1000 / ms:.1f}",
                        f"{100 * floor_ms / ms:.0f}%",
                    ]
                )
    common.print_table(
        ["path", "size", "batch", "ms/image", "images/s", "share of FLOP floor"],
        rows,
    )


if __name__ == "__main__":
    app.run(main)
