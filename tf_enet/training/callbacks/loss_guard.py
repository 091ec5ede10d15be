"""Stops a diverged run before anything saves it."""

import keras

from tf_enet.training.errors import TrainingError


class LossGuard(keras.callbacks.TerminateOnNaN):
    """Keras's `TerminateOnNaN(raise_error=True)`, which also checks weights.

    Raising (instead of `stop_training`) keeps the epoch-end callbacks from
    saving the diverged weights, so the last good backup stays usable. It
    must come first in the callback list: at the end of an epoch it also
    checks the weights, which the last step may have broken without a
    non-finite loss showing yet. The error says how to resume.
    """

    def __init__(self):
        super().__init__(raise_error=True)

    def on_batch_end(self, batch, logs=None):
        try:
            super().on_batch_end(batch, logs)
        except RuntimeError:
            self._stop(f"The loss became {float(logs['loss'])} at batch {batch}")

    def on_epoch_end(self, epoch, logs=None):
        finite = [bool(keras.ops.all(keras.ops.isfinite(w))) for w in self.model.trainable_weights]
        if not all(finite):
            self._stop(f"The weights became non-finite in epoch {epoch + 1}")

    def _stop(self, what):
        raise TrainingError(
            f"{what}; training stopped without saving this epoch. Lower "
            "--learning_rate or check the labels, then run the command again "
            "to resume from the last completed epoch (a changed learning "
            "rate needs --overwrite, or another --checkpoint_dir)."
        )
