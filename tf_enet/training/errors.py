"""The exception training raises for problems a user can act on."""

from tf_enet.errors import TfEnetError


class TrainingError(TfEnetError, RuntimeError):
    """Training cannot start or go on; the message says why and what to do."""
