"""The options of a training run (`TrainConfig`) and their checks.

This module imports neither TensorFlow nor Keras (nor does `tf_enet.data`
until its pipelines are used): the command line derives its flags (names,
defaults, choices, help) from `TrainConfig` alone.
"""

import dataclasses
import math
import re

from tf_enet.data import DATASETS, DEFAULT_DATA_DIRS

STAGES = ("both", "encoder", "full")
SCHEDULES = ("step", "poly", "cosine")
STRATEGIES = ("default", "mirrored", "multi_worker")
# Which epoch's model a run keeps: the best by val mean IoU, or the last one
# (a rule fixed before training, for runs that train on their val split).
SELECTIONS = ("best", "last")
# Options that may change between runs in one checkpoint directory: more
# epochs extend a run; a moved dataset or directory is the same run; the
# rest do not change what is trained (a changed logit adjustment is redone
# on the trained model).
RESUMABLE_CHANGES = frozenset(
    {
        "epochs",
        "encoder_epochs",
        "data_dir",
        "checkpoint_dir",
        "verbose",
        "overwrite",
        "logit_adjustment",
    }
)
# Defaults of a run that starts from a trained model (`init_from`): its
# encoder is trained already, so only the full network trains, for fewer
# epochs than from scratch (README, "Fine-tuning", shows the comparison).
FINE_TUNING_DEFAULTS = {"stages": "full", "epochs": 100, "learning_rate": 5e-4}
# Defaults of a run from random weights (the paper's schedule).
SCRATCH_DEFAULTS = {"stages": "both", "epochs": 300, "learning_rate": 5e-4}
LOGIT_ADJUSTMENTS = ("auto", "off")
CLASS_WEIGHTINGS = ("mfb", "enet", "none")
# The options restricted to a list of values.
CHOICES = {
    "dataset": tuple(DATASETS),
    "stages": STAGES,
    "lr_schedule": SCHEDULES,
    "class_weighting": CLASS_WEIGHTINGS,
    "strategy": STRATEGIES,
    "select": SELECTIONS,
}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every option of a training run; defaults follow the paper.

    The command line's flags are these fields: same names, defaults and
    choices, and the text after each type below as help.

    Args:
        dataset: str. Dataset layout: camvid, cityscapes, sunrgbd (37
            classes) or folder (images/, masks/ and classes.json; see the
            README's "Your own data").
        data_dir: str or None. Dataset root. Default: data/CamVid,
            data/cityscapes, data/SUNRGBD or data/custom by --dataset.
        checkpoint_dir: str or None. Run directory: the best model,
            config.json, history.csv, TensorBoard logs and resumable state.
            Default: runs/<dataset>.
        height: int. Training crop height in pixels; prediction and
            evaluation run the model at this size by default.
        width: int. Training crop width in pixels.
        batch_size: int. Global batch size (the paper: 10), split evenly
            over the replicas of a distribution strategy.
        epochs: int or None. Epochs of the full-network stage. Default: 300,
            or 100 with --init_from.
        encoder_epochs: int. Epochs of the encoder-only stage.
        stages: str or None. both: the encoder on 1/8-size labels, then the
            full network initialised from it (the paper); encoder or full:
            only that stage. Default: both, or full with --init_from.
        learning_rate: float or None. Initial Adam learning rate. Default:
            5e-4, also with --init_from.
        init_from: str or None. Fine-tune: start from a trained model (a
            preset name such as enet_camvid, a run directory or a .keras
            file) instead of random weights. Every layer whose weight
            shapes fit is copied; the classifier is trained anew for this
            dataset's classes.
        weight_decay: float. L2 weight decay on convolution kernels, as
            Torch's weightDecay (adds weight_decay * w to the gradients).
        lr_schedule: str. step: multiply by lr_decay_factor every
            lr_decay_epochs; poly: (1 - t)^0.9; cosine.
        lr_decay_epochs: int. Step schedule period in epochs.
        lr_decay_factor: float. Step schedule factor.
        warmup_epochs: int. Epochs over which the learning rate rises
            linearly from 0 to the schedule's value (0: no warm-up).
        class_weighting: str. mfb: median frequency balancing; enet:
            1 / ln(1.02 + p) (the paper); none. A class without training
            pixels weighs 0 under mfb.
        logit_adjustment: str or float. After training, subtract alpha *
            log(class weight) from the best model's logits, undoing the
            weighting's bias toward rare classes (tf_enet.logit_adjustment;
            classes weighing 0 keep their logits). auto: alpha in 0, 0.1,
            ..., 1 with the best train-split mean IoU; off; or alpha itself,
            e.g. 0.5.
        num_initial_blocks: int. Number of initial blocks (the paper: 1).
        stage_two_repeat: int. Repeats of the dilated stage (the paper: 2).
        skip_connections: bool. Add encoder features to the decoder.
        augment: bool. Random scale, crop and horizontal flip.
        min_scale: float. Smallest random scale.
        max_scale: float. Largest random scale.
        color_jitter: float. Strength s of random brightness, contrast and
            saturation changes, each a factor drawn from [1 - s, 1 + s]
            (brightness as a shift of s * 64 grey levels); 0: none.
        train_splits: str. Comma-separated splits to train on, e.g.
            train,val for a final model; val scores of such a run are
            training figures, so it needs --select last.
        select: str. best: keep the epoch with the best val mean IoU; last:
            keep the last epoch (a rule fixed before training).
        limit: int or None. Train on only the first N images (quick trials).
        val_limit: int or None. Validate on only the first N images.
        val_fraction: float. Folder datasets without a val split: the share
            of the training images held out as val (at least one image),
            picked by file name with a fixed seed and recorded in
            config.json.
        validation_freq: int. Validate every N epochs (and on the first and
            last).
        strategy: str. tf.distribute strategy: default (one device),
            mirrored (all GPUs of this machine), multi_worker (several
            machines, each running this command with its TF_CONFIG; see the
            README).
        jit_compile: bool. XLA-compile the training step (slower than
            oneDNN on CPUs; try it on GPUs).
        seed: int. Random seed of weights, shuffling and augmentation.
        verbose: int. Progress output: 0 silent, 1 progress bar, 2 one line
            per epoch.
    """

    dataset: str = "camvid"
    data_dir: str = None
    checkpoint_dir: str = None
    height: int = 360
    width: int = 480
    batch_size: int = 10
    epochs: int = None
    encoder_epochs: int = 100
    stages: str = None
    learning_rate: float = None
    init_from: str = None
    weight_decay: float = 2e-4
    lr_schedule: str = "step"
    lr_decay_epochs: int = 100
    lr_decay_factor: float = 0.1
    warmup_epochs: int = 0
    class_weighting: str = "mfb"
    logit_adjustment: object = "auto"
    num_initial_blocks: int = 1
    stage_two_repeat: int = 2
    skip_connections: bool = False
    augment: bool = True
    min_scale: float = 0.75
    max_scale: float = 1.5
    color_jitter: float = 0.0
    train_splits: str = "train"
    select: str = "best"
    limit: int = None
    val_limit: int = None
    val_fraction: float = 0.1
    validation_freq: int = 1
    strategy: str = "default"
    jit_compile: bool = False
    seed: int = 0
    verbose: int = 1

    def __post_init__(self):
        def fail(name, expected):
            raise ValueError(f"`{name}` must be {expected}; received {getattr(self, name)!r}.")

        defaults = FINE_TUNING_DEFAULTS if self.init_from else SCRATCH_DEFAULTS
        for name, default in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                fail(name, f"one of {choices}")
        if self.data_dir is None:
            object.__setattr__(self, "data_dir", DEFAULT_DATA_DIRS[self.dataset])
        if self.checkpoint_dir is None:
            object.__setattr__(self, "checkpoint_dir", f"runs/{self.dataset}")
        for name in ("height", "width", "batch_size", "lr_decay_epochs", "validation_freq"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                fail(name, "a positive integer")
        for name in ("epochs", "encoder_epochs", "warmup_epochs"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                fail(name, "a non-negative integer")
        for name in ("limit", "val_limit"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                fail(name, "a positive integer or None")
        if self.logit_adjustment not in LOGIT_ADJUSTMENTS:
            try:
                alpha = float(self.logit_adjustment)
            except (TypeError, ValueError):
                alpha = math.nan
            if not alpha >= 0:
                fail("logit_adjustment", f"one of {LOGIT_ADJUSTMENTS} or a number >= 0")
            object.__setattr__(self, "logit_adjustment", alpha)
        if not self.learning_rate > 0:
            fail("learning_rate", "positive")
        if not self.weight_decay >= 0:
            fail("weight_decay", "non-negative")
        if not 0 < self.lr_decay_factor <= 1:
            fail("lr_decay_factor", "in (0, 1]")
        if not 0 < self.val_fraction < 1:
            fail("val_fraction", "in (0, 1)")
        if not 0 <= self.color_jitter < 1:
            fail("color_jitter", "in [0, 1)")
        splits = self.train_splits.split(",") if isinstance(self.train_splits, str) else []
        if not splits or not all(re.fullmatch(r"\w+", s) for s in splits):
            fail("train_splits", "split names separated by commas, e.g. train,val")
        if len(set(splits)) != len(splits):
            fail("train_splits", "distinct split names")
        if "val" in splits and self.select == "best":
            raise ValueError(
                "`train_splits` includes val, so the val scores are training figures "
                "and cannot choose the model; pass select='last' (--select last)."
            )

    @property
    def training_splits(self):
        """tuple of str: the splits `train_splits` names, in order."""
        return tuple(self.train_splits.split(","))

    def to_dict(self):
        return dataclasses.asdict(self)

    @property
    def dataset_options(self):
        """Keyword arguments of `tf_enet.data.get_dataset` for this dataset."""
        if self.dataset == "folder":
            return {"val_fraction": self.val_fraction}
        return {}

    @property
    def model_options(self):
        return {
            "num_initial_blocks": self.num_initial_blocks,
            "stage_two_repeat": self.stage_two_repeat,
            "skip_connections": self.skip_connections,
        }


def option_help():
    """The help text of every `TrainConfig` field, from its docstring.

    Returns:
        dict: field name -> its Args entry, the type word dropped and the
        lines joined (e.g. "height" -> "Training crop height.").
    """
    args = TrainConfig.__doc__.split("Args:", 1)[1]
    entries = re.findall(r"^ {8}(\w+): (.*?)(?=^ {8}\w+: |\Z)", args, re.M | re.S)
    text = {name: " ".join(body.split()) for name, body in entries}
    # "int. Training crop height." -> "Training crop height."
    return {name: re.sub(r"^\w+(?: or \w+)*\. ", "", body, count=1) for name, body in text.items()}
