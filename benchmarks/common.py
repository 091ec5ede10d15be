"""Timing, FLOP counting and machine description shared by the benchmarks."""

import os
import platform
import statistics
import time

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from tf_enet import exporting, presets, training
from tf_enet.model import OUTPUT_STRIDE, build_enet, build_enet_encoder


def model_path(model):
    """A preset name's directory, or `model` itself (a directory or file)."""
    return presets.preset_path(model) if model in presets.list_presets() else model


def median_seconds(run, warmup, repeats):
    """Median wall time of `run()` over `repeats` calls after `warmup` calls."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def random_calibration(shape, count=8):
    """int8 calibration data: `count` uniform [0, 255] images of `shape`.

    Speed does not depend on the calibration, so random images do.
    """

    def generate():
        rng = np.random.RandomState(1)
        for _ in range(count):
            yield [rng.uniform(0, 255, shape).astype("float32")]

    return generate


def tflite_interpreter(model, path, quantize, size, *, fixed, threads, int8_input="uint8"):
    """Exports `model` to `path` as TFLite and loads it with `threads` threads.

    Args:
        quantize: "float32", "float16" or "int8" (calibrated on
            `random_calibration` images of `size`).
        size: (height, width) of the timed images.
        fixed: bool. Export for exactly one image of `size`.
        int8_input: "uint8" or "int8", the int8 export's input type.
    """
    int8 = quantize == "int8"
    exporting.export_tflite(
        model,
        path,
        quantize=None if quantize == "float32" else quantize,
        representative=random_calibration((1, *size, 3)) if int8 else None,
        input_size=size if fixed else None,
        **({"int8_input": int8_input} if int8 else {}),
    )
    return Interpreter(model_path=path, num_threads=threads)


def tflite_runner(interpreter):
    """A callable running `interpreter` on float32 images, returning its output.

    Resizes the input tensor when the images' shape changes, and casts the
    images to the input's dtype: uint8 pixels for an int8 export, or
    pixel - 128 for one with an int8 input (zero point -128, scale 1).
    """
    state = {"shape": None}
    detail = interpreter.get_input_details()[0]
    output = interpreter.get_output_details()[0]

    def run(images):
        if state["shape"] != images.shape:
            interpreter.resize_tensor_input(detail["index"], list(images.shape))
            interpreter.allocate_tensors()
            state["shape"] = images.shape
        dtype = interpreter.get_input_details()[0]["dtype"]
        if dtype == np.int8:
            images = images - 128.0
        interpreter.set_tensor(detail["index"], images.astype(dtype))
        interpreter.invoke()
        return interpreter.get_tensor(output["index"])

    return run


def training_step(stage, info, weights, size, batch_size, *, jit_compile=False):
    """One `train_on_batch` call of ENet compiled as train.py compiles it.

    The model gets train.py's weight decay, class-weighted loss, mean IoU
    metric and Adam schedule (`tf_enet.training.compile_model`), and a fixed
    random batch: images in [0, 255] and labels in `[0, num_classes]`
    (the last being the ignore id when it is `num_classes`), at 1/8 of the
    size for the encoder stage as in training.

    Args:
        stage: "full" (`build_enet`) or "encoder" (`build_enet_encoder`).
        info: DatasetInfo. Number of classes and ignore id.
        weights: list of float. Class weights of the loss.
        size: (height, width) of the images.
        batch_size: int. Images per step.
        jit_compile: bool. XLA-compile the step.

    Returns:
        A callable taking no arguments that runs one step.
    """
    height, width = size
    config = training.TrainConfig(
        height=height, width=width, batch_size=batch_size, jit_compile=jit_compile
    )
    if stage == "encoder":
        model = build_enet_encoder(info.num_classes)
        stride = OUTPUT_STRIDE
    else:
        model = build_enet(info.num_classes)
        stride = 1
    training.add_weight_decay(model, config.weight_decay)
    training.compile_model(model, config, 10, 10, weights, info)
    rng = np.random.RandomState(0)
    images = rng.uniform(0, 255, (batch_size, height, width, 3)).astype("float32")
    labels = rng.randint(
        0,
        info.num_classes + 1,
        (batch_size, -(-height // stride), -(-width // stride)),
    ).astype("int32")
    return lambda: model.train_on_batch(images, labels)


def count_flops(function, *specs):
    """FLOPs of one call of a `tf.function`, multiply-add counted as 2.

    Uses TensorFlow's profiler on the traced graph, the same count the
    paper-comparison figures use.
    """
    concrete = function.get_concrete_function(*specs)
    graph = concrete.graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(graph=graph, options=options)
    return profile.total_float_ops


def matmul_flops_per_second(size=2048, repeats=5):
    """float32 GFLOP/s of a large matrix product: this machine's practical peak."""
    a = tf.random.normal([size, size])
    b = tf.random.normal([size, size])
    product = tf.function(lambda: tf.matmul(a, b))
    seconds = median_seconds(lambda: product().numpy(), warmup=2, repeats=repeats)
    return 2 * size**3 / seconds


def machine_description():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores visible; TensorFlow {tf.__version__} "
        f"(intra-op threads {tf.config.threading.get_intra_op_parallelism_threads() or 'auto'}, "
        f"inter-op {tf.config.threading.get_inter_op_parallelism_threads() or 'auto'}); "
        f"NumPy {np.__version__}"
    )


def print_table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = " | ".join(str(h).ljust(w) for h, w in zip(headers, widths))
    print(line)
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(row, widths)))
