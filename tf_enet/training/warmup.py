"""Linear learning-rate warm-up in front of any Keras schedule."""

import keras


@keras.saving.register_keras_serializable(package="tf_enet")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Scales a schedule by `step / warmup_steps` during the first steps.

    The rate rises linearly from 0 to the wrapped schedule's own value at
    `warmup_steps`, then follows that schedule unchanged (the wrapped
    schedule keeps counting from step 0, as TF Model Garden's
    `LinearWarmup` does). Keras's `PolynomialDecay` has no warm-up of its
    own; `CosineDecay`'s starts its decay after the warm-up instead.

    Args:
        schedule: keras.optimizers.schedules.LearningRateSchedule or float.
            The rate after the warm-up.
        warmup_steps: int. Optimizer steps of the warm-up, >= 1.
    """

    def __init__(self, schedule, warmup_steps):
        if not isinstance(warmup_steps, int) or warmup_steps < 1:
            raise ValueError(
                f"`warmup_steps` must be a positive integer; received {warmup_steps!r}."
            )
        self.schedule = schedule
        self.warmup_steps = warmup_steps

    def _rate(self, step):
        if callable(self.schedule):
            return self.schedule(step)
        return keras.ops.convert_to_tensor(self.schedule, "float32")

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        fraction = keras.ops.minimum((step + 1.0) / self.warmup_steps, 1.0)
        return self._rate(step) * fraction

    def get_config(self):
        schedule = self.schedule
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            schedule = keras.saving.serialize_keras_object(schedule)
        return {"schedule": schedule, "warmup_steps": self.warmup_steps}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config["schedule"], dict):
            config["schedule"] = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(**config)
