"""Distribution: the `tf.distribute` strategies training runs under."""

import json
import os

import tensorflow as tf

from tf_enet.training.errors import TrainingError


def make_strategy(name):
    """The `tf.distribute` strategy called `name` (see `STRATEGIES`).

    "mirrored" replicates over every GPU, or, without GPUs, over the logical
    CPU devices (one unless configured otherwise). "multi_worker" reads the
    cluster from `TF_CONFIG`; it has to be created before any other
    TensorFlow op runs in the process.
    """
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or (tf.config.list_logical_devices("CPU"))
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi_worker":
        try:
            cluster = json.loads(os.environ.get("TF_CONFIG", ""))
            cluster["cluster"], cluster["task"]["type"], cluster["task"]["index"]
        except (ValueError, KeyError, TypeError):
            raise TrainingError(
                "--strategy=multi_worker needs the TF_CONFIG environment "
                "variable: JSON with the cluster and this worker's task, e.g. "
                '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                '"task": {"type": "worker", "index": 0}}; received '
                f"{os.environ.get('TF_CONFIG')!r}. See the README's "
                "'Training on several machines'."
            ) from None
        return _MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


class _MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """A MultiWorkerMirroredStrategy that Keras 3's `fit` can train with.

    Keras 3 calls `reduce` in two ways this strategy rejects
    (keras-team/keras#20585):

    - `fit` and `evaluate` reduce one whole input batch, a nested
      `(images, labels)` structure, only to learn its shapes. Nested values
      get this worker's own value per leaf: the shapes Keras needs, and no
      collective on batches whose shapes may differ between workers.
    - Every step reduces the scalar logs (loss, metrics) with `axis=0`.
      Scalars are averaged over the replicas instead (`axis=None`), which is
      what MirroredStrategy does with them.
    """

    def reduce(self, reduce_op, value, axis):
        if isinstance(value, (tuple, list, dict)):
            return tf.nest.map_structure(lambda v: self.experimental_local_results(v)[0], value)
        if axis is not None and all(
            v.shape.rank == 0 for v in self.experimental_local_results(value)
        ):
            axis = None
        return super().reduce(reduce_op, value, axis)


def is_chief(strategy):
    """Whether this process writes the run's files.

    True except on the non-chief workers of a multi-worker strategy (the
    chief is the "chief" task, or worker 0 when the cluster has none).
    """
    return strategy.extended.should_checkpoint


def barrier(strategy):
    """Returns once every worker of a multi-worker strategy has got here."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return

    def count():
        context = tf.distribute.get_replica_context()
        return context.all_reduce("sum", tf.ones([]))

    tf.function(lambda: strategy.run(count))()
