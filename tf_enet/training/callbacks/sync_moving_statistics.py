"""BatchNorm statistics averaged over the replicas of a strategy."""

import keras
import tensorflow as tf


class SyncMovingStatistics(keras.callbacks.Callback):
    """Averages BatchNorm moving statistics over replicas and workers.

    Keras updates each replica's copy of a non-trainable variable on its own
    share of the batch, so under `tf.distribute` the copies drift apart and
    workers would validate and save different models. Averaging them before
    every validation and at the end of every epoch (before any checkpoint)
    makes all replicas hold the statistics of the whole data, as one device
    would. Every worker must have this callback at the same place.

    Args:
        strategy: tf.distribute.Strategy. Nothing happens with one replica.
    """

    def __init__(self, strategy):
        super().__init__()
        self.strategy = strategy
        self._sync = None

    def on_test_begin(self, logs=None):
        self.synchronize()

    def on_epoch_end(self, epoch, logs=None):
        self.synchronize()

    def synchronize(self):
        if self.strategy.num_replicas_in_sync < 2:
            return
        if self._sync is None:
            # Float ones only: the integer states of dropout's seed
            # generators advance alike everywhere.
            variables = [v.value for v in self.model.non_trainable_variables if "float" in v.dtype]

            def mean():
                context = tf.distribute.get_replica_context()
                return context.all_reduce("mean", [tf.identity(v) for v in variables])

            def sync():
                means = self.strategy.run(mean)
                for variable, value in zip(variables, means):
                    variable.assign(self.strategy.experimental_local_results(value)[0])

            self._sync = tf.function(sync)
        self._sync()
