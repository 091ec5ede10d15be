"""Timing, FLOP counting and machine description shared by the benchmarks."""

import os
import platform
import statistics
import time

import numpy as np
import tensorflow as tf

from tf_enet import export


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


def tflite_interpreter(model, path, quantize, size, *, fixed, threads):
    """Exports `model` to `path` as TFLite and loads it with `threads` threads.

    Args:
        quantize: "float32", "float16" or "int8" (calibrated on
            `random_calibration` images of `size`).
        size: (height, width) of the timed images.
        fixed: bool. Export for exactly one image of `size`.
    """
    int8 = quantize == "int8"
    export.export_tflite(
        model, path,
        quantize=None if quantize == "float32" else quantize,
        representative=random_calibration((1, *size, 3)) if int8 else None,
        input_size=size if fixed else None,
    )
    return tf.lite.Interpreter(model_path=path, num_threads=threads)


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
    widths = [
        max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)
    ]
    line = " | ".join(str(h).ljust(w) for h, w in zip(headers, widths))
    print(line)
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(row, widths)))
