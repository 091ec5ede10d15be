"""The exception training raises for problems a user can act on."""


class TrainingError(RuntimeError):
    """Training cannot start or go on; the message says why and what to do."""
