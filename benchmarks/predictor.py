"""Times the default predictor against its Keras runtime and the PyTorch peer.

    python benchmarks/predictor.py
    python benchmarks/predictor.py --model checkpoints/enet_camvid --repeats 30

On the real frames of data/samples (CamVid, 360x480), at batch 1, in
interleaved rounds (every path once per round, so a change of load on the
machine reaches all alike), the median of the rounds:

    peer                 `peer_torch_enet.ENet` (PyTorch, eager,
                         `--threads` threads), forward pass and argmax
    predictor            `inference.load_predictor(--model).predict(image)`:
                         what predict.py runs with default options (for a
                         Keras model with a training size: its fixed-size
                         TFLite conversion)
    predictor, keras     the same with `runtime="keras"` (the path before
                         the TFLite runtime)

Cold start, process start to the first labels, is timed in fresh Python
processes (`--cold_repeats` each, median) beside a process that only imports
TensorFlow. The labels of both predictors are compared on every sample.
"""

import os
import statistics
import subprocess
import sys
import time

import numpy as np

# Before TensorFlow loads: its C++ notices would bury the table.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2
import tensorflow as tf
from absl import app, flags

from tf_enet import inference

import common

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(REPO, "data", "samples")

FLAGS = flags.FLAGS
flags.DEFINE_string("model", inference.DEFAULT_MODEL, "Preset name, checkpoint dir or .keras.")
flags.DEFINE_integer("warmup", 3, "Untimed calls of every path first.")
flags.DEFINE_integer("repeats", 20, "Timed rounds; the median is reported.")
flags.DEFINE_integer("cold_repeats", 3, "Fresh processes per cold start.")
flags.DEFINE_integer("threads", 2, "PyTorch threads and TensorFlow intra-op threads.")
flags.DEFINE_enum(
    "omp_wait_policy",
    None,
    ["PASSIVE", "ACTIVE"],
    "OMP_WAIT_POLICY for PyTorch's OpenMP threads (PASSIVE on a shared machine).",
)

_IMPORT_TF = "import tensorflow"
_FIRST_LABELS = """
import cv2, sys
import tensorflow
from tf_enet import inference
image = cv2.cvtColor(cv2.imread(sys.argv[1]), cv2.COLOR_BGR2RGB)[None]
inference.load_predictor(sys.argv[2], runtime=sys.argv[3]).predict(image)
"""


def _samples():
    names = sorted(n for n in os.listdir(SAMPLES) if n.endswith((".jpg", ".png")))
    return [
        cv2.cvtColor(cv2.imread(os.path.join(SAMPLES, n)), cv2.COLOR_BGR2RGB)[None] for n in names
    ], names


def _process_seconds(code, *args):
    """Median wall time of fresh `python -c code args` processes."""
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


def main(argv):
    del argv
    if FLAGS.omp_wait_policy:
        os.environ["OMP_WAIT_POLICY"] = FLAGS.omp_wait_policy
    try:
        import torch
    except ImportError:
        sys.exit("predictor.py times a PyTorch ENet beside tf_enet: pip install torch==2.13.0")
    import peer_torch_enet as peer_lib

    torch.set_num_threads(FLAGS.threads)
    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    images, names = _samples()
    start = time.perf_counter()
    default = inference.load_predictor(FLAGS.model)
    default.predict(images[0])
    in_process = time.perf_counter() - start
    keras_predictor = inference.load_predictor(FLAGS.model, runtime="keras")
    peer = peer_lib.ENet(default.num_classes).eval()

    print(common.machine_description())
    print(
        f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"model {default.path}, default runtime {default.runtime}"
    )
    print("command: python benchmarks/predictor.py " + " ".join(sys.argv[1:]))

    differing = [
        int((default.predict(image) != keras_predictor.predict(image)).sum()) for image in images
    ]
    print(
        "labels differing from runtime='keras' per sample: "
        + ", ".join(
            f"{name} {count}/{image[0, ..., 0].size}"
            for name, image, count in zip(names, images, differing)
        )
    )

    peer_images = [torch.from_numpy(i.transpose(0, 3, 1, 2).astype(np.float32)) for i in images]

    def peer_labels(index):
        with torch.inference_mode():
            return peer(peer_images[index]).argmax(dim=1).numpy()

    paths = {
        "peer (PyTorch, eager): forward + argmax": peer_labels,
        f"predictor ({default.runtime}): predict": lambda i: default.predict(images[i]),
        "predictor (runtime='keras'): predict": lambda i: keras_predictor.predict(images[i]),
    }
    for run in paths.values():
        for i in range(FLAGS.warmup):
            run(i % len(images))
    times = {name: [] for name in paths}
    for round_ in range(FLAGS.repeats):
        for name, run in paths.items():
            start = time.perf_counter()
            run(round_ % len(images))
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    peer_seconds = medians["peer (PyTorch, eager): forward + argmax"]
    rows = [[name, f"{1000 * s:.1f}", f"{peer_seconds / s:.2f}x"] for name, s in medians.items()]
    print()
    common.print_table(["path (360x480, batch 1)", "ms/image", "vs peer"], rows)
    print(f"\nmedians of {FLAGS.repeats} interleaved rounds after {FLAGS.warmup} warm-up calls")

    print(
        f"\nload_predictor + first predict in this process (TensorFlow and "
        f"tf_enet imported): {in_process:.2f} s"
    )
    image_file = os.path.join(SAMPLES, names[0])
    import_tf = _process_seconds(_IMPORT_TF)
    print(
        f"cold start, process start to first labels (median of "
        f"{FLAGS.cold_repeats} processes); importing TensorFlow alone: {import_tf:.2f} s"
    )
    for runtime in ("auto", "keras"):
        seconds = _process_seconds(_FIRST_LABELS, image_file, FLAGS.model, runtime)
        print(
            f"  runtime={runtime!r}: {seconds:.2f} s, {seconds - import_tf:.2f} s "
            f"beyond importing TensorFlow"
        )


if __name__ == "__main__":
    app.run(main)
