"""Times tf_enet against ENet in PyTorch (the peer), in one run.

    pip install torch==2.13.0     # the CPU build; or the package's bench extra
    python benchmarks/compare.py
    python benchmarks/compare.py --height 360 --width 480 --repeats 20
    python benchmarks/compare.py --extra_sizes 512x1024

The peer is `peer_torch_enet.ENet`, written from the paper with the layer
configuration of `tf_enet.build_enet`, run eagerly with
`torch.set_num_threads(--threads)` under `torch.inference_mode()`. At batch 1,
on the same random image, each path gets `--warmup` untimed calls, then
`--repeats` rounds in which every path takes its turn (so a change of load on
the machine reaches all paths alike): an untimed call, which lets the other
runtime's threads settle, then a timed one. The median of a path's rounds is
reported:

    peer                      the peer's forward pass (logits): the baseline
    peer, labels              forward pass and argmax
    predictor, default        `tf_enet.inference.load_predictor(model)
                              .predict(image)`, what predict.py runs and what
                              Python users call (labels); the model runs at
                              the timed size (`input_size`); the runtime it
                              chose is printed below the table
    predictor, runtime=keras  the same in Keras (`runtime="keras"`), and with
                              `jit_compile=True` (XLA), labels and `logits`
    TFLite float32/int8 fixed `export.py --height --width` exports (with
                              `--quantize int8`, calibrated on random images,
                              and with `--int8_input int8`), `Interpreter.invoke`
                              with `--threads` threads

Training steps at `--batch_size` on a random batch at the first size, timed
the same way: tf_enet's `train_on_batch` compiled as train.py compiles it
(class-weighted loss, mean IoU metric, Adam, L2 weight decay on the kernels)
and the peer's (the same weighted cross-entropy, Adam with the same learning
rate and weight decay on the convolution kernels), for the full network and
the encoder stage (labels at 1/8 of the size). The ratio column is the
peer's time divided by the path's: above 1 is faster than the peer.

`--model` is a preset name or a checkpoint directory / `.keras` file; its
weights, classes and class weights are used (speed does not depend on them).
TensorFlow's intra-op threads are set to `--threads` too. On a machine
whose cores are oversubscribed by other jobs, `--omp_wait_policy PASSIVE`
keeps PyTorch's OpenMP threads from spinning while they wait (spinning
there slows PyTorch several times over); on free cores it slows PyTorch
instead, so leave it out for timings to publish.
"""

import os
import statistics
import sys
import tempfile
import time

import numpy as np

# Before TensorFlow loads: its C++ notices would bury the table.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf
from absl import app, flags, logging

from tf_enet import inference, training

import common

FLAGS = flags.FLAGS
flags.DEFINE_integer("height", 360, "Image height of the first column.")
flags.DEFINE_integer("width", 480, "Image width of the first column.")
flags.DEFINE_list("extra_sizes", [], "More columns, HEIGHTxWIDTH (e.g. 512x1024); inference only.")
flags.DEFINE_integer("warmup", 3, "Untimed calls of every path first.")
flags.DEFINE_integer("repeats", 10, "Timed rounds; the median is reported.")
flags.DEFINE_integer("batch_size", 10, "Images per training step.")
flags.DEFINE_integer("threads", 2, "Threads of PyTorch, TFLite and TensorFlow ops.")
flags.DEFINE_enum(
    "omp_wait_policy",
    None,
    ["ACTIVE", "PASSIVE"],
    "OMP_WAIT_POLICY for PyTorch's OpenMP threads (unset: PyTorch's default). "
    "PASSIVE only where other jobs oversubscribe the cores: it slows PyTorch "
    "on free cores.",
)
flags.DEFINE_string("model", "enet_camvid", "Preset name, checkpoint dir or .keras.")
PARTS = ("inference", "tflite", "training")
flags.DEFINE_list(
    "parts",
    list(PARTS),
    "What to time: inference (the peer and the predictors), tflite (the "
    "fixed-size exports), training.",
)

PEER = "peer: PyTorch ENet, eager"
DEFAULT_PREDICTOR = "predictor, default: predict, labels"
PEER_FULL_STEP = "peer: training step, full"
PEER_ENCODER_STEP = "peer: training step, encoder"


def _parse_size(text):
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise app.UsageError(f"--extra_sizes takes HEIGHTxWIDTH; received {text!r}.") from None
    return height, width


def _import_torch():
    try:
        import torch
    except ImportError:
        sys.exit(
            "compare.py times a PyTorch ENet beside tf_enet and needs PyTorch: "
            "pip install torch==2.13.0"
        )
    return torch


def time_round_robin(runners, warmup, repeats):
    """Median seconds per call of each runner, timed in interleaved rounds.

    In every round each runner has its turn: one untimed call, then one
    timed call. The untimed call lets the previous runner's thread pool (of
    another runtime) stop spinning before the timed one starts.

    Args:
        runners: dict of name -> callable taking no arguments.
        warmup: int. Untimed calls of each runner first.
        repeats: int. Rounds.

    Returns:
        dict of name -> median seconds.
    """
    for run in runners.values():
        for _ in range(warmup):
            run()
    times = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            run()
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _inference_runners(torch, peer, model_path, keras_model, size, workdir):
    """Zero-argument callables, one per inference path, on one image of `size`.

    Returns:
        (runners, runtime): dict of name -> callable, and the runtime the
        default predictor chose for `size` (`Predictor.runtime_at`).
    """
    images = np.random.RandomState(0).uniform(0, 255, (1, *size, 3)).astype("float32")
    peer_images = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())

    def peer_logits():
        with torch.inference_mode():
            return peer(peer_images)

    def peer_labels():
        with torch.inference_mode():
            return peer(peer_images).argmax(dim=1).numpy()

    default = inference.load_predictor(model_path)
    keras = inference.load_predictor(model_path, runtime="keras")
    xla = inference.load_predictor(model_path, runtime="keras", jit_compile=True)
    runners = {
        PEER: peer_logits,
        "peer: labels (forward + argmax)": peer_labels,
        DEFAULT_PREDICTOR: lambda: default.predict(images, input_size=size),
        "predictor, runtime='keras': predict, labels": lambda: keras.predict(
            images, input_size=size
        ),
        "predictor, runtime='keras', XLA: predict, labels": lambda: xla.predict(
            images, input_size=size
        ),
        "predictor, runtime='keras', XLA: logits": lambda: xla.logits(images),
    }
    exports = (
        ("float32", "uint8", "TFLite float32, fixed size: logits"),
        ("int8", "uint8", "TFLite int8, fixed size: logits"),
        ("int8", "int8", "TFLite int8, fixed size, int8 input: logits"),
    )
    for quantize, int8_input, label in exports if "tflite" in FLAGS.parts else ():
        name = f"{quantize}_{int8_input}_{size[0]}x{size[1]}"
        interpreter = common.tflite_interpreter(
            keras_model,
            os.path.join(workdir, f"enet_{name}.tflite"),
            quantize,
            size,
            fixed=True,
            threads=FLAGS.threads,
            int8_input=int8_input,
        )
        run = common.tflite_runner(interpreter)
        runners[label] = lambda run=run: run(images)
    return runners, default.runtime_at(size, size)


def _peer_training_step(torch, peer_lib, stage, info, weights, size, config):
    """The peer's training step, the counterpart of `common.training_step`."""
    model = peer_lib.ENet(info.num_classes, encoder_only=stage == "encoder").train()
    kernels = peer_lib.convolution_kernels(model)
    kernel_ids = {id(k) for k in kernels}
    others = [p for p in model.parameters() if id(p) not in kernel_ids]
    optimizer = torch.optim.Adam(
        [
            {"params": kernels, "weight_decay": config.weight_decay},
            {"params": others, "weight_decay": 0.0},
        ],
        lr=config.learning_rate,
    )
    loss_fn = torch.nn.CrossEntropyLoss(
        weight=torch.tensor(weights, dtype=torch.float32),
        ignore_index=info.ignore_index,
    )
    stride = peer_lib.OUTPUT_STRIDE if stage == "encoder" else 1
    height, width = size
    rng = np.random.RandomState(0)
    images = rng.uniform(0, 255, (config.batch_size, 3, height, width))
    labels = rng.randint(
        0,
        info.num_classes + 1,
        (config.batch_size, -(-height // stride), -(-width // stride)),
    )
    labels[labels == info.num_classes] = info.ignore_index
    images = torch.from_numpy(images.astype("float32"))
    labels = torch.from_numpy(labels.astype("int64"))

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def _training_runners(torch, peer_lib, info, weights, size):
    config = training.TrainConfig(height=size[0], width=size[1], batch_size=FLAGS.batch_size)
    runners = {}
    for stage, peer_name in (("full", PEER_FULL_STEP), ("encoder", PEER_ENCODER_STEP)):
        runners[peer_name] = _peer_training_step(
            torch, peer_lib, stage, info, weights, size, config
        )
        runners[f"tf_enet: training step, {stage} (train.py's compile)"] = common.training_step(
            stage,
            info,
            weights,
            size,
            FLAGS.batch_size,
            jit_compile=config.jit_compile,
        )
    return runners


def _baseline(name):
    """The peer row a path is compared with."""
    if "training step, full" in name:
        return PEER_FULL_STEP
    if "training step, encoder" in name:
        return PEER_ENCODER_STEP
    return PEER


def main(argv):
    del argv
    unknown = sorted(set(FLAGS.parts) - set(PARTS))
    if unknown:
        raise app.UsageError(f"Unknown --parts {unknown}; choose from {PARTS}.")
    if "tflite" in FLAGS.parts and "inference" not in FLAGS.parts:
        raise app.UsageError("--parts tflite needs inference (the peer) too.")
    sizes = [(FLAGS.height, FLAGS.width)] + [_parse_size(s) for s in FLAGS.extra_sizes]
    if FLAGS.omp_wait_policy:
        # Read by OpenMP when PyTorch loads it, so set before the import.
        os.environ["OMP_WAIT_POLICY"] = FLAGS.omp_wait_policy
    torch = _import_torch()
    logging.set_verbosity(logging.WARNING)  # the TFLite converter's notices
    import peer_torch_enet as peer_lib

    torch.set_num_threads(FLAGS.threads)
    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    model_path = common.model_path(FLAGS.model)
    keras_model, config, info = inference.load_keras_model(model_path)
    weights = (config or {}).get("class_weights") or [1.0] * info.num_classes

    print(common.machine_description())
    print(
        f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}; "
        f"TFLite and TensorFlow intra-op threads {FLAGS.threads}"
    )
    print(f"model: {model_path} ({info.num_classes} classes)")
    print("command: python benchmarks/compare.py " + " ".join(sys.argv[1:]))

    peer = peer_lib.ENet(info.num_classes).eval()
    columns = {}  # size -> {path: seconds per image}
    default_runtimes = {}  # size -> what the default predictor runs
    with tempfile.TemporaryDirectory() as workdir:
        for i, size in enumerate(sizes):
            seconds = {}
            if "inference" in FLAGS.parts:
                runners, default_runtimes[size] = _inference_runners(
                    torch, peer, model_path, keras_model, size, workdir
                )
                seconds.update(time_round_robin(runners, FLAGS.warmup, FLAGS.repeats))
            if "training" in FLAGS.parts and i == 0:
                runners = _training_runners(torch, peer_lib, info, weights, size)
                steps = time_round_robin(runners, FLAGS.warmup, FLAGS.repeats)
                seconds.update({k: v / FLAGS.batch_size for k, v in steps.items()})
            columns[size] = seconds

    names = list(dict.fromkeys(n for column in columns.values() for n in column))
    headers = ["path"]
    for height, width in sizes:
        headers += [f"{height}x{width} ms/image", f"{height}x{width} vs peer"]
    rows = []
    for name in names:
        row = [name]
        for size in sizes:
            column = columns[size]
            if name not in column:
                row += ["-", "-"]
                continue
            baseline = column.get(_baseline(name))
            ratio = f"{baseline / column[name]:.2f}x" if baseline else "-"
            row += [f"{1000 * column[name]:.1f}", ratio]
        rows.append(row)
    print()
    common.print_table(headers, rows)
    print(
        f"\nmedians of {FLAGS.repeats} interleaved rounds (an untimed call, then "
        f"a timed one) after {FLAGS.warmup} warm-up calls; inference at batch "
        f"1, training steps at batch {FLAGS.batch_size} (ms per image = step / "
        f"{FLAGS.batch_size}); "
        "'vs peer' = peer ms / path ms, against the peer's forward pass or its "
        "training step of the same stage."
    )
    for (height, width), runtime in default_runtimes.items():
        print(f"the default predictor runs {runtime} at {height}x{width}")


if __name__ == "__main__":
    app.run(main)
