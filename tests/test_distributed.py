"""Tests of training under tf.distribute: two replicas on two logical CPUs,
and two workers of a MultiWorkerMirroredStrategy cluster on 127.0.0.1.

TensorFlow fixes its devices and collective setup at start-up, so every
test runs its own Python process.
"""

import csv
import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from helpers import REPO, make_shapes_dataset, subprocess_env, train_flags

# Splits the one CPU into two logical devices before TensorFlow starts.
TWO_CPUS = """
import tensorflow as tf
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration()] * 2)
"""

# Runs train.py in this process, saving the weights and optimizer step of
# every model `fit` trains to $WEIGHTS_OUT.<model name>.npz.
RUN_TRAIN_PY = """
import os, runpy, sys
import keras
import numpy as np

_fit = keras.Model.fit

def fit(self, *args, **kwargs):
    history = _fit(self, *args, **kwargs)
    np.savez(
        f"{os.environ['WEIGHTS_OUT']}.{self.name}.npz",
        iterations=keras.ops.convert_to_numpy(self.optimizer.iterations),
        **{v.path: keras.ops.convert_to_numpy(v) for v in self.weights})
    return history

keras.Model.fit = fit
sys.argv = ["train.py"] + sys.argv[1:]
runpy.run_path("train.py", run_name="__main__")
"""


def run_python(code, args=(), env=None, timeout=300, prelude=""):
    result = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def last_json_line(text):
    return json.loads(text.strip().splitlines()[-1])


def test_two_replicas_compute_the_global_batch_loss_and_step(tmp_path):
    code = """
    import json
    import keras
    import numpy as np
    from tf_enet.losses import WeightedSparseCategoricalCrossentropy

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    rng = np.random.RandomState(0)
    labels = rng.randint(0, 3, (4, 6, 6))
    # The second replica's half is mostly ignored and of the heavy class:
    # per-replica normalisation would weigh its few pixels far more.
    labels[2:] = np.where(rng.uniform(size=(2, 6, 6)) < 0.8, 255, 1)
    images = rng.normal(size=(4, 6, 6, 2)).astype("float32")
    weights = [1.0, 5.0, 0.5]

    def make_model():
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(3, 1)])
        model.compile(keras.optimizers.SGD(0.5),
                      WeightedSparseCategoricalCrossentropy(class_weights=weights))
        return model

    loss = WeightedSparseCategoricalCrossentropy(class_weights=weights)
    logits = make_model()(images)
    halves = strategy.experimental_distribute_values_from_function(
        lambda context: (labels[2 * context.replica_id_in_sync_group:][:2],
                         logits[2 * context.replica_id_in_sync_group:][:2]))
    per_replica = strategy.run(lambda batch: loss(*batch), args=(halves,))
    summed = strategy.reduce("SUM", per_replica, axis=None)

    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    single = make_model()
    single_history = single.fit(data, verbose=0)
    with strategy.scope():
        mirrored = make_model()
    mirrored_history = mirrored.fit(data, verbose=0)
    print(json.dumps({
        "summed": float(summed), "whole": float(loss(labels, logits)),
        "single_loss": single_history.history["loss"][0],
        "mirrored_loss": mirrored_history.history["loss"][0],
        "max_weight_difference": max(
            float(np.abs(a - b).max())
            for a, b in zip(single.get_weights(), mirrored.get_weights())),
        "step_size": max(
            float(np.abs(a - b).max())
            for a, b in zip(single.get_weights(), make_model().get_weights())),
    }))
    """
    result = last_json_line(run_python(code, env=subprocess_env(tmp_path), prelude=TWO_CPUS).stdout)
    assert result["summed"] == pytest.approx(result["whole"], rel=1e-5)
    assert result["mirrored_loss"] == pytest.approx(result["single_loss"], rel=1e-5)
    assert result["step_size"] > 1e-2  # the step did move the weights...
    assert result["max_weight_difference"] < 1e-5  # ...equally on 1 or 2 replicas


def test_moving_statistics_are_averaged_over_replicas(tmp_path):
    code = """
    import json
    import keras
    import numpy as np
    from tf_enet.training import SyncMovingStatistics

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = keras.Sequential([
            keras.Input((3,)), keras.layers.BatchNormalization(momentum=0.0)])
        model.compile("sgd", "mse")
    # Replica 0 sees inputs 0 and 2, replica 1 inputs 10 and 12.
    x = np.array([[0.0] * 3, [2.0] * 3, [10.0] * 3, [12.0] * 3], "float32")
    model.fit(x, x, batch_size=4, epochs=1, shuffle=False, verbose=0)
    moving_mean = model.layers[0].moving_mean.value

    def copies():
        return [float(v.numpy()[0])
                for v in strategy.experimental_local_results(moving_mean)]

    before = copies()
    sync = SyncMovingStatistics(strategy)
    sync.set_model(model)
    sync.on_test_begin()
    print(json.dumps({"before": before, "after": copies()}))
    """
    result = last_json_line(run_python(code, env=subprocess_env(tmp_path), prelude=TWO_CPUS).stdout)
    # Momentum 0: each copy holds its own half's mean, 1 and 11.
    assert result["before"] == pytest.approx([1.0, 11.0])
    assert result["after"] == pytest.approx([6.0, 6.0])


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def saved_weights(path):
    with np.load(path) as saved:
        return {name: saved[name] for name in saved.files}


@pytest.mark.slow
def test_train_py_mirrored_on_two_cpus(tmp_path):
    data_dir = make_shapes_dataset(tmp_path / "data", num_train=12, num_val=5, size=32)
    flags = train_flags(
        data_dir,
        tmp_path / "run",
        height=32,
        width=32,
        batch_size=4,
        stages="full",
        epochs=2,
        stage_two_repeat=1,
        strategy="mirrored",
    )
    out = tmp_path / "weights"
    result = run_python(
        TWO_CPUS + RUN_TRAIN_PY, flags, env=subprocess_env(tmp_path, WEIGHTS_OUT=str(out))
    )
    assert "Epoch 2/2" in result.stdout
    assert len(rows(tmp_path / "run" / "history.csv")) == 2
    # 12 images in batches of 4 (2 per replica): 3 steps per epoch.
    assert int(saved_weights(f"{out}.enet.npz")["iterations"]) == 6


@pytest.mark.slow
def test_two_workers_train_in_step_and_only_the_chief_writes(tmp_path):
    # 13 training images: shards of 7 and 6 files; 5 validation images in
    # batches of 4: the workers' validation shares differ too.
    data_dir = make_shapes_dataset(tmp_path / "data", num_train=13, num_val=5, size=32)
    run_dir = tmp_path / "run"
    flags = train_flags(
        data_dir,
        run_dir,
        height=32,
        width=32,
        batch_size=4,
        encoder_epochs=1,
        epochs=2,
        stage_two_repeat=1,
        strategy="multi_worker",
    )
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = subprocess_env(
            tmp_path, TF_CONFIG=json.dumps(tf_config), WEIGHTS_OUT=str(tmp_path / f"worker{index}")
        )
        log = open(tmp_path / f"worker{index}.log", "w")
        workers.append(
            (
                subprocess.Popen(
                    [sys.executable, "-c", RUN_TRAIN_PY, *flags],
                    cwd=REPO,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                ),
                log,
            )
        )
    try:
        for process, _ in workers:
            process.wait(timeout=600)
    finally:
        for process, log in workers:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    for (process, _), log in zip(workers, logs):
        assert process.returncode == 0, log[-5000:]

    for model in ("enet_encoder", "enet"):
        chief = saved_weights(tmp_path / f"worker0.{model}.npz")
        other = saved_weights(tmp_path / f"worker1.{model}.npz")
        assert chief.keys() == other.keys()
        for name in chief:
            np.testing.assert_array_equal(chief[name], other[name], err_msg=name)
    # 13 // 4 = 3 steps per epoch, the same on both workers.
    assert int(chief["iterations"]) == 6
    # The chief alone wrote the run: one history row per epoch, one
    # TensorBoard file, and only the chief printed progress.
    assert [r["epoch"] for r in rows(run_dir / "history.csv")] == ["0", "1"]
    assert [r["epoch"] for r in rows(run_dir / "encoder" / "history.csv")] == ["0"]
    assert len(os.listdir(run_dir / "logs" / "full" / "train")) == 1
    assert "Epoch 2/2" in logs[0] and "Epoch 2/2" not in logs[1]
    assert json.loads((run_dir / "done.json").read_text())["epochs"] == 2
