"""Keras's BackupAndRestore, naming its files when they fail."""

import keras

from tf_enet.training.errors import TrainingError
from tf_enet.training.failures import writing


class Backup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` whose errors name the backup and what to do.

    A failed write (a full disk) raises `failures.WriteError` naming the
    file. A backup whose two copies (`double_checkpoint=True`) both fail to
    load raises a `TrainingError` naming the directory: moving it away
    restarts the stage from its first epoch, and nothing else is lost.

    Args: as `keras.callbacks.BackupAndRestore`.
    """

    def on_train_begin(self, logs=None):
        try:
            super().on_train_begin(logs)
        except (OSError, ValueError) as error:
            reason = (str(error).splitlines() or [type(error).__name__])[0]
            raise TrainingError(
                f"The backup in {self.backup_dir} cannot be read (both copies; "
                f"{reason[:200]}). Move that directory away and run the same "
                "command to train this stage again from its first epoch; the "
                "best model so far is kept."
            ) from None

    def _save_model(self):
        with writing(self._weights_path):
            super()._save_model()
