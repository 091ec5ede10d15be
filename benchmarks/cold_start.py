"""Times the TensorFlow-free predictor against the TensorFlow path it replaced.

    python benchmarks/cold_start.py
    python benchmarks/cold_start.py --camvid_dir data/CamVid --repeats 50

Cold start: process start to the first labels of one 360x480 sample with
the preset, median of `--cold_repeats` fresh processes, for

    litert       `inference.load_predictor().predict(image)`: LiteRT, NumPy
                 and OpenCV, no TensorFlow imported
    tensorflow   the path before: `import tensorflow`, then the preset's
                 same fixed-size model in `tf.lite.Interpreter`, argmax

Steady state: per-image time of the two in one process (interleaved rounds,
median), and the number of pixels whose labels differ between them on
data/samples (and on CamVid val with `--camvid_dir`).
"""

import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2
import numpy as np
from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(REPO, "data", "samples")
PRESET_TFLITE = os.path.join(REPO, "tf_enet", "presets", "enet_camvid", "model_360x480.tflite")

FLAGS = flags.FLAGS
flags.DEFINE_integer("cold_repeats", 5, "Fresh processes per cold start; the median is shown.")
flags.DEFINE_integer("repeats", 30, "Timed in-process rounds; the median is shown.")
flags.DEFINE_string("camvid_dir", None, "CamVid root: also compare labels on its val split.")

_LITERT = """
import sys, cv2
from tf_enet import inference
image = cv2.cvtColor(cv2.imread(sys.argv[1]), cv2.COLOR_BGR2RGB)[None]
inference.load_predictor().predict(image)
assert "tensorflow" not in sys.modules
"""
_TENSORFLOW = """
import os, sys, cv2, numpy as np
import tensorflow as tf
image = cv2.cvtColor(cv2.imread(sys.argv[1]), cv2.COLOR_BGR2RGB)[None].astype(np.float32)
interpreter = tf.lite.Interpreter(model_path=sys.argv[2], num_threads=os.cpu_count())
interpreter.allocate_tensors()
interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
interpreter.invoke()
np.argmax(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]), -1)
"""


def _process_seconds(code, *args):
    times = []
    for _ in range(FLAGS.cold_repeats):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", code, *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _read(path):
    return cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)[None].astype(np.float32)


def main(argv):
    del argv
    samples = [os.path.join(SAMPLES, n) for n in sorted(os.listdir(SAMPLES))]
    print("command: python benchmarks/cold_start.py " + " ".join(sys.argv[1:]))
    print(f"{os.cpu_count()} CPU cores visible")
    litert_cold = _process_seconds(_LITERT, samples[0])
    tf_cold = _process_seconds(_TENSORFLOW, samples[0], PRESET_TFLITE)
    print(f"cold start to first labels, median of {FLAGS.cold_repeats} processes:")
    print(f"  litert (no TensorFlow)          {litert_cold:.2f} s")
    print(f"  tensorflow (tf.lite.Interpreter) {tf_cold:.2f} s")

    import tensorflow as tf

    from tf_enet import inference

    predictor = inference.load_predictor()
    interpreter = tf.lite.Interpreter(model_path=PRESET_TFLITE, num_threads=os.cpu_count())
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]

    def tf_labels(image):
        interpreter.set_tensor(input_index, image)
        interpreter.invoke()
        return np.argmax(interpreter.get_tensor(output_index), -1)

    images = [_read(path) for path in samples]
    paths = {"litert": predictor.predict, "tensorflow": tf_labels}
    times = {name: [] for name in paths}
    for run in paths.values():
        run(images[0])
    for round_ in range(FLAGS.repeats):
        for name, run in paths.items():
            start = time.perf_counter()
            run(images[round_ % len(images)])
            times[name].append(time.perf_counter() - start)
    print(f"steady state, 360x480, batch 1, median of {FLAGS.repeats} interleaved rounds:")
    for name, values in times.items():
        print(f"  {name:<10} {1000 * statistics.median(values):.1f} ms/image")

    splits = {"data/samples": samples}
    if FLAGS.camvid_dir:
        val = os.path.join(FLAGS.camvid_dir, "val")
        splits["CamVid val"] = [os.path.join(val, n) for n in sorted(os.listdir(val))]
    for name, files in splits.items():
        differing = total = 0
        for path in files:
            image = _read(path)
            differing += int((predictor.predict(image) != tf_labels(image)).sum())
            total += image[0, ..., 0].size
        print(f"labels differing, {name} ({len(files)} images): {differing} of {total} pixels")


if __name__ == "__main__":
    app.run(main)
