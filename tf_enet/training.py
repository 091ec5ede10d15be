"""Training ENet the paper's way: encoder first, then the whole network.

`train(TrainConfig(...))` runs both stages (Paszke et al. 2016, Sec. 5.1):
the encoder alone on labels downsampled 8x, then the full network
initialised from it, with Adam, L2 weight decay and a class-weighted
cross-entropy. Everything needed to resume, evaluate and predict is written
to the checkpoint directory:

    <checkpoint_dir>/config.json         every option, classes, palette,
                                         class weights, ignore id, input
                                         normalisation
    <checkpoint_dir>/model.keras         best full model by val mIoU,
                                         logit adjustment folded in
    <checkpoint_dir>/best.json           its epoch, scores and logit
                                         adjustment
    <checkpoint_dir>/done.json           written when the stage finished
    <checkpoint_dir>/history.csv         per-epoch losses and IoUs
    <checkpoint_dir>/backup/             weights + optimizer state of the
                                         last completed epoch (resume)
    <checkpoint_dir>/encoder/...         the same for the encoder stage
    <checkpoint_dir>/logs/               TensorBoard (also the learning
                                         rate)

After the full stage the best model's logits are adjusted for the class
weights (`tf_enet.calibration`): the strength is chosen on the training
split, folded into the last layer's bias and recorded in `best.json`.

Killing the process at any moment and running it again continues from the
last completed epoch; model files are written to a temporary name and
renamed, so the best model on disk is never half-written.

With `strategy="multi_worker"` every worker runs `train` with the same
config and a `checkpoint_dir` on storage they all see; only the chief
writes there, and the other workers read the chief's backup to resume.
"""

import csv
import dataclasses
import json
import math
import os
import shutil
import uuid

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tf_enet import calibration
from tf_enet import data as data_lib
from tf_enet import metrics as metrics_lib
from tf_enet.losses import WeightedSparseCategoricalCrossentropy
from tf_enet.model import (
    OUTPUT_STRIDE,
    PIXEL_MEAN,
    PIXEL_STD,
    build_enet,
    build_enet_encoder,
    transfer_weights,
)

DEFAULT_DATA_DIRS = {
    "camvid": "data/CamVid",
    "cityscapes": "data/cityscapes",
    "folder": "data/custom",
}
STAGES = ("both", "encoder", "full")
SCHEDULES = ("step", "poly", "cosine")
STRATEGIES = ("default", "mirrored", "multi_worker")
# Options that may change between runs in one checkpoint directory: more
# epochs extend a run; a moved dataset or directory is the same run; the
# rest do not change what is trained (a changed logit adjustment is redone
# on the trained model).
RESUMABLE_CHANGES = frozenset(
    {"epochs", "encoder_epochs", "data_dir", "checkpoint_dir", "verbose",
     "overwrite", "logit_adjustment"}
)
LOGIT_ADJUSTMENTS = ("auto", "off")
CONFIG_FILE = "config.json"
# Everything `train` writes into a checkpoint directory; `--overwrite`
# removes these (and nothing else) before starting another run there.
RUN_FILES = ("config.json", "model.keras", "best.json", "done.json",
             "history.csv", "backup", "encoder", "logs")


class TrainingError(RuntimeError):
    """Training cannot start or go on; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every option of a training run; defaults follow the paper.

    Args:
        dataset: str. "camvid", "cityscapes" or "folder".
        data_dir: str or None. Dataset root; None takes
            `DEFAULT_DATA_DIRS[dataset]`.
        checkpoint_dir: str. Where the run's files go.
        height: int. Training crop height.
        width: int. Training crop width.
        batch_size: int. Global batch size (the paper: 10), split evenly
            over the replicas of a distribution strategy.
        epochs: int. Epochs of the full-network stage.
        encoder_epochs: int. Epochs of the encoder stage.
        stages: str. "both" (the paper), "encoder" or "full".
        learning_rate: float. Initial Adam learning rate (5e-4).
        weight_decay: float. L2 weight decay on convolution kernels (2e-4),
            as Torch's `weightDecay`: adds `weight_decay * w` to gradients.
        lr_schedule: str. "step" (multiply by `lr_decay_factor` every
            `lr_decay_epochs`), "poly" (power 0.9) or "cosine".
        lr_decay_epochs: int. Step schedule period.
        lr_decay_factor: float. Step schedule factor.
        class_weighting: str. "mfb", "enet" or "none".
        logit_adjustment: "auto", "off" or float >= 0. Subtract
            `alpha * log(class_weights)` from the best model's logits
            (`tf_enet.calibration`): "auto" chooses alpha in 0, 0.1, ..., 1
            by mean IoU on the training split; a number is alpha itself.
        num_initial_blocks: int. See `tf_enet.ENetConfig`.
        stage_two_repeat: int. See `tf_enet.ENetConfig`.
        skip_connections: bool. See `tf_enet.ENetConfig`.
        augment: bool. Random scale, crop and flip.
        min_scale: float. Smallest random scale.
        max_scale: float. Largest random scale.
        limit: int or None. Train on only the first N images.
        val_limit: int or None. Validate on only the first N images.
        validation_freq: int. Validate every N epochs.
        strategy: str. "default" (one device), "mirrored" (this machine's
            GPUs) or "multi_worker" (several machines; see `make_strategy`).
        jit_compile: bool. XLA-compile the training step.
        seed: int. Seeds weights, shuffling and augmentation.
        verbose: int. Keras progress output: 0 silent, 1 progress bar,
            2 one line per epoch.
    """

    dataset: str = "camvid"
    data_dir: str = None
    checkpoint_dir: str = "runs/camvid"
    height: int = 360
    width: int = 480
    batch_size: int = 10
    epochs: int = 300
    encoder_epochs: int = 100
    stages: str = "both"
    learning_rate: float = 5e-4
    weight_decay: float = 2e-4
    lr_schedule: str = "step"
    lr_decay_epochs: int = 100
    lr_decay_factor: float = 0.1
    class_weighting: str = "mfb"
    logit_adjustment: object = "auto"
    num_initial_blocks: int = 1
    stage_two_repeat: int = 2
    skip_connections: bool = False
    augment: bool = True
    min_scale: float = 0.75
    max_scale: float = 1.5
    limit: int = None
    val_limit: int = None
    validation_freq: int = 1
    strategy: str = "default"
    jit_compile: bool = False
    seed: int = 0
    verbose: int = 1

    def __post_init__(self):
        def fail(name, expected):
            raise ValueError(
                f"`{name}` must be {expected}; received {getattr(self, name)!r}."
            )

        if self.dataset not in data_lib.DATASETS:
            fail("dataset", f"one of {sorted(data_lib.DATASETS)}")
        if self.data_dir is None:
            object.__setattr__(self, "data_dir", DEFAULT_DATA_DIRS[self.dataset])
        for name in ("height", "width", "batch_size", "lr_decay_epochs",
                     "validation_freq"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                fail(name, "a positive integer")
        for name in ("epochs", "encoder_epochs"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                fail(name, "a non-negative integer")
        for name in ("limit", "val_limit"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                fail(name, "a positive integer or None")
        if self.stages not in STAGES:
            fail("stages", f"one of {STAGES}")
        if self.lr_schedule not in SCHEDULES:
            fail("lr_schedule", f"one of {SCHEDULES}")
        if self.strategy not in STRATEGIES:
            fail("strategy", f"one of {STRATEGIES}")
        if self.class_weighting not in ("mfb", "enet", "none"):
            fail("class_weighting", "one of ('mfb', 'enet', 'none')")
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

    def to_dict(self):
        return dataclasses.asdict(self)

    @property
    def model_options(self):
        return {
            "num_initial_blocks": self.num_initial_blocks,
            "stage_two_repeat": self.stage_two_repeat,
            "skip_connections": self.skip_connections,
        }


def write_atomically(path, write):
    """Calls `write(tmp_path)` then renames it to `path` in one step."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    # `write` creates the file, so it gets the permissions of any new file
    # (mkstemp's would be 0600: unreadable to a server running as another user).
    tmp_path = os.path.join(directory, f".tmp-{uuid.uuid4().hex}{suffix}")
    try:
        write(tmp_path)
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


def write_json(path, value):
    def write(tmp_path):
        with open(tmp_path, "w", encoding="utf-8") as f:
            json.dump(value, f, indent=2, sort_keys=True)
            f.write("\n")

    write_atomically(path, write)


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def learning_rate_schedule(config, steps_per_epoch, epochs):
    """The learning rate as a function of the optimizer step."""
    total_steps = max(1, steps_per_epoch * epochs)
    if config.lr_schedule == "poly":
        return keras.optimizers.schedules.PolynomialDecay(
            config.learning_rate, total_steps, end_learning_rate=0.0, power=0.9
        )
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            config.learning_rate, total_steps
        )
    period = steps_per_epoch * config.lr_decay_epochs
    boundaries = list(range(period, total_steps, period))
    values = [
        config.learning_rate * config.lr_decay_factor**i
        for i in range(len(boundaries) + 1)
    ]
    if not boundaries:
        return config.learning_rate
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


class PerClassIoU(keras.callbacks.Callback):
    """Adds per-class IoU and accuracies of the validation pass to the logs.

    Reads the confusion matrix the compiled `MeanIoU` metric holds right
    after Keras's validation pass, so no second pass over the data is needed.
    """

    def __init__(self, metric, class_names):
        super().__init__()
        self.metric = metric
        self.class_names = class_names
        self.last_scores = None

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or "val_miou" not in logs:
            return
        result = metrics_lib.scores(keras.ops.convert_to_numpy(self.metric.total_cm))
        self.last_scores = result
        for name, iou in zip(self.class_names, result["per_class_iou"]):
            logs[f"val_iou_{name}"] = float(iou)
        logs["val_global_accuracy"] = result["global_accuracy"]
        logs["val_class_accuracy"] = result["class_accuracy"]


class LossGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss, before any checkpoint.

    Raising (instead of `stop_training`) keeps the epoch-end callbacks from
    saving the diverged weights, so the last good backup stays usable. It
    must come first in the callback list: at the end of an epoch it also
    checks the weights, which the last step may have broken without a
    non-finite loss showing yet.
    """

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._stop(f"The loss became {float(loss)} at batch {batch}")

    def on_epoch_end(self, epoch, logs=None):
        finite = [
            bool(keras.ops.all(keras.ops.isfinite(w)))
            for w in self.model.trainable_weights
        ]
        if not all(finite):
            self._stop(f"The weights became non-finite in epoch {epoch + 1}")

    def _stop(self, what):
        raise TrainingError(
            f"{what}; training stopped without saving this epoch. Lower "
            "--learning_rate or check the labels, then run the command again "
            "to resume from the last completed epoch (a changed learning "
            "rate needs --overwrite, or another --checkpoint_dir)."
        )


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
            variables = [
                v.value for v in self.model.non_trainable_variables
                if "float" in v.dtype
            ]

            def mean():
                context = tf.distribute.get_replica_context()
                return context.all_reduce(
                    "mean", [tf.identity(v) for v in variables])

            def sync():
                means = self.strategy.run(mean)
                for variable, value in zip(variables, means):
                    variable.assign(self.strategy.experimental_local_results(value)[0])

            self._sync = tf.function(sync)
        self._sync()


class BestModelCheckpoint(keras.callbacks.Callback):
    """Keeps the model with the best `monitor` value, written atomically.

    The best value survives restarts through `best.json` beside the model.
    """

    def __init__(self, path, monitor="val_miou", write=True):
        super().__init__()
        self.path = path
        self.record_path = os.path.join(os.path.dirname(path), "best.json")
        self.monitor = monitor
        self.write = write
        self.best = -math.inf

    def on_train_begin(self, logs=None):
        if os.path.exists(self.record_path) and os.path.exists(self.path):
            self.best = read_json(self.record_path)[self.monitor]

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not value > self.best:
            return
        self.best = float(value)
        if not self.write:
            return
        write_atomically(self.path, self.model.save)
        record = {k: float(v) for k, v in logs.items() if k.startswith("val_")}
        record.update({"epoch": epoch + 1, self.monitor: self.best})
        write_json(self.record_path, record)


class HistoryLogger(keras.callbacks.CSVLogger):
    """Appends each epoch's logs to a CSV file, keeping its columns.

    Keras's CSVLogger takes the columns from the first epoch of each `fit`;
    when a resumed run starts with an epoch that does not validate, they
    would differ from the header already in the file and put values under
    the wrong names. Missing values are written as "NA".

    Args:
        filename: str. The CSV file; created with a header if missing.
    """

    def __init__(self, filename):
        super().__init__(filename, append=True)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        header = _csv_rows(self.filename)[:1]
        if header and header[0][:1] == ["epoch"]:
            self.keys = header[0][1:]


def _csv_rows(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


class PredictionImages(keras.callbacks.Callback):
    """Writes a few validation images, labels and predictions to TensorBoard."""

    def __init__(self, log_dir, images, labels, palette, ignore_index):
        super().__init__()
        self.writer = tf.summary.create_file_writer(log_dir)
        self.images = images
        self.labels = labels
        self.palette = palette
        self.ignore_index = ignore_index

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or "val_miou" not in logs:
            return
        logits = self.model(self.images, training=False)
        predictions = keras.ops.convert_to_numpy(keras.ops.argmax(logits, -1))
        with self.writer.as_default(step=epoch):
            tf.summary.image(
                "validation/image", self.images.astype("uint8"), max_outputs=4
            )
            tf.summary.image(
                "validation/label",
                np.stack([data_lib.colorize(m, self.palette) for m in self.labels]),
                max_outputs=4,
            )
            tf.summary.image(
                "validation/prediction",
                np.stack([data_lib.colorize(p, self.palette) for p in predictions]),
                max_outputs=4,
            )
        self.writer.flush()


def make_strategy(name):
    """The `tf.distribute` strategy called `name` (see `STRATEGIES`).

    "mirrored" replicates over every GPU, or, without GPUs, over the logical
    CPU devices (one unless configured otherwise). "multi_worker" reads the
    cluster from `TF_CONFIG`; it has to be created before any other
    TensorFlow op runs in the process.
    """
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or (
            tf.config.list_logical_devices("CPU"))
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
            return tf.nest.map_structure(
                lambda v: self.experimental_local_results(v)[0], value)
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


def _barrier(strategy):
    """Returns once every worker of a multi-worker strategy has got here."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return

    def count():
        context = tf.distribute.get_replica_context()
        return context.all_reduce("sum", tf.ones([]))

    tf.function(lambda: strategy.run(count))()


def run_config(config, info, weights):
    """The JSON written beside the model: all evaluation and prediction need."""
    return {
        "format": "tf_enet/1",
        "train": config.to_dict(),
        "model": {"num_classes": info.num_classes, **config.model_options},
        "dataset": info.to_dict(),
        "class_weighting": config.class_weighting,
        "class_weights": [float(w) for w in weights],
        "input": {
            "channels": "RGB",
            "range": [0, 255],
            "mean": list(PIXEL_MEAN),
            "std": list(PIXEL_STD),
            "normalized_inside_model": True,
        },
    }


def check_checkpoint_dir(config, overwrite):
    """Refuses to mix a different run into an existing checkpoint directory.

    Returns:
        bool. Whether the directory holds this run (resume it); False for a
        new directory, or for a different run when `overwrite` is set.

    Raises:
        TrainingError: the directory holds a different run (or files
            without a config.json) and `overwrite` is False.
    """
    path = os.path.join(config.checkpoint_dir, CONFIG_FILE)
    if not os.path.exists(path):
        leftovers = [
            name for name in ("model.keras", "backup", "encoder")
            if os.path.exists(os.path.join(config.checkpoint_dir, name))
        ]
        if leftovers and not overwrite:
            raise TrainingError(
                f"{config.checkpoint_dir} holds {', '.join(leftovers)} but no "
                f"{CONFIG_FILE}; it is not a tf_enet run this command can "
                "resume. Choose another --checkpoint_dir."
            )
        return False
    try:
        previous = read_json(path)["train"]
    except (OSError, ValueError, KeyError) as error:
        raise TrainingError(f"Cannot read {path}: {error}") from None
    current = config.to_dict()
    # Options added to TrainConfig after the run started count as unchanged
    # while they keep their default.
    defaults = TrainConfig(dataset=current["dataset"]).to_dict()
    changed = sorted(
        key for key in set(previous) | set(current)
        if key not in RESUMABLE_CHANGES
        and previous.get(key, defaults.get(key)) != current.get(key)
    )
    if changed and not overwrite:
        details = ", ".join(
            f"{key}: {previous.get(key)!r} -> {current.get(key)!r}" for key in changed
        )
        raise TrainingError(
            f"{config.checkpoint_dir} holds a different run ({details}). "
            "Run the same command to resume it, choose another "
            "--checkpoint_dir, or pass --overwrite to start over there."
        )
    return not changed


def _stage_plan(config):
    if config.stages == "both":
        return ("encoder", "full")
    return (config.stages,)


def _datasets(config, dataset, stage, strategy):
    """The repeated training dataset and the validation dataset of a stage."""
    label_stride = OUTPUT_STRIDE if stage == "encoder" else 1
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise TrainingError(
            f"--batch_size {config.batch_size} must be a multiple of the "
            f"number of replicas ({replicas}), which share each batch."
        )
    train_args = dict(
        height=config.height, width=config.width, batch_size=config.batch_size,
        seed=config.seed, label_stride=label_stride, limit=config.limit,
        augment=config.augment, min_scale=config.min_scale,
        max_scale=config.max_scale,
    )
    val_args = dict(
        batch_size=config.batch_size, label_stride=label_stride,
        limit=config.val_limit,
    )
    if config.strategy == "default":
        train = data_lib.make_train_dataset(dataset, "train", **train_args)
        train = train.repeat()
    else:
        # Each input pipeline decodes only its own share of the files. The
        # shares may differ in size: repeating them and fixing the steps per
        # epoch keeps every worker running the same number of steps.
        train = strategy.distribute_datasets_from_function(
            lambda context: data_lib.make_train_dataset(
                dataset, "train", input_context=context, **train_args
            ).repeat()
        )
    if replicas == 1:
        val = data_lib.make_eval_dataset(dataset, "val", **val_args)
        return train, val
    # tf.distribute splits every batch over the replicas and gives a replica
    # whose share ran out an empty batch, which TensorFlow's convolutions
    # mishandle. Padding the split to whole batches with copies of its first
    # image, labelled ignore everywhere, gives every replica real images and
    # changes no score.
    num_val = len(dataset.files("val")[: config.val_limit])
    ignore = dataset.info.ignore_index
    val_args["batch_size"] = 1
    images = data_lib.make_eval_dataset(dataset, "val", **val_args).unbatch()
    padding = images.take(1).map(
        lambda image, mask: (image, tf.fill(tf.shape(mask), ignore))
    ).repeat(-num_val % config.batch_size)
    val = images.concatenate(padding).padded_batch(
        config.batch_size,
        padded_shapes=([None, None, 3], [None, None]),
        padding_values=(0.0, ignore),
    )
    num_batches = -(-num_val // config.batch_size)
    return train, val.apply(tf.data.experimental.assert_cardinality(num_batches))


def _compile(model, config, steps_per_epoch, epochs, weights, info):
    loss = WeightedSparseCategoricalCrossentropy(
        class_weights=weights, ignore_index=info.ignore_index
    )
    miou = keras.metrics.MeanIoU(
        num_classes=info.num_classes,
        ignore_class=info.ignore_index,
        sparse_y_pred=False,
        name="miou",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate_schedule(config, steps_per_epoch, epochs)
        ),
        loss=loss,
        metrics=[miou],
        jit_compile=config.jit_compile,
    )
    return miou


def _add_weight_decay(model, weight_decay):
    """L2 penalty on every convolution kernel (Torch-style weight decay).

    Set on the variables, not the layers' configs, so saved models carry no
    training-only regularizers.
    """
    if not weight_decay:
        return
    # Torch adds weight_decay * w to the gradient: the gradient of
    # (weight_decay / 2) * sum(w ** 2).
    regularizer = keras.regularizers.L2(weight_decay / 2)
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
            layer.kernel.regularizer = regularizer


def train(config, overwrite=False):
    """Trains ENet as `config` says, resuming what the directory holds.

    Args:
        config: TrainConfig.
        overwrite: bool. Start over in a checkpoint directory that holds a
            different run: its run files (`RUN_FILES`) are deleted first.

    Returns:
        dict: `checkpoint_dir`, `class_weights`, and per stage the best
        epoch and validation scores.

    Raises:
        TrainingError: the directory holds another run, the loss diverged,
            or the strategy is misconfigured.
        tf_enet.data.DatasetError: the dataset is missing or broken.
    """
    # First: a multi-worker strategy must exist before any other TF op.
    strategy = make_strategy(config.strategy)
    chief = is_chief(strategy)
    keras.utils.set_random_seed(config.seed)
    dataset = data_lib.get_dataset(config.dataset, config.data_dir)
    info = dataset.info
    same_run = check_checkpoint_dir(config, overwrite)
    stats = data_lib.scan(dataset, "train")
    data_lib.scan(dataset, "val")
    weights = data_lib.class_weights(stats, config.class_weighting)
    # Every worker has checked the directory before the chief changes it,
    # and sees the chief's config.json before reading anything else there.
    _barrier(strategy)
    config_path = os.path.join(config.checkpoint_dir, CONFIG_FILE)
    if chief:
        if not same_run:
            if overwrite:
                _remove_run_files(config.checkpoint_dir)
            logging.info("Starting a new run in %s", config.checkpoint_dir)
        write_json(config_path, run_config(config, info, weights))
    _barrier(strategy)
    if not chief:
        _check_shared_directory(config_path, config)

    results = {"checkpoint_dir": config.checkpoint_dir,
               "class_weights": [float(w) for w in weights]}
    for stage in _stage_plan(config):
        results[stage] = _train_stage(
            config, stage, dataset, weights, strategy, chief
        )
    if chief and "full" in _stage_plan(config):
        results["logit_adjustment"] = _adjust_logits(config, dataset, weights)
    return results


def _adjust_logits(config, dataset, weights):
    """Folds the configured logit adjustment into the best full model.

    Done once per best model: `best.json` records alpha with the last
    layer's bias before and after, and a new best model (a longer run) comes
    with a new record. A changed setting starts again from the trained bias.
    The record is written before an adjusted model and after a restored one,
    so a kill in between leaves a state the next run completes.

    Returns:
        dict or None: the record (alpha, how it was chosen, mean IoUs), or
        None when there is no model or nothing to adjust.
    """
    model_path = os.path.join(config.checkpoint_dir, "model.keras")
    record_path = os.path.join(config.checkpoint_dir, "best.json")
    if not (os.path.exists(model_path) and os.path.exists(record_path)):
        return None
    record = read_json(record_path)
    previous = record.pop("logit_adjustment", None)
    setting = config.logit_adjustment
    wanted = setting != "off" and not np.allclose(weights, weights[0])
    if previous is None and not wanted:
        return None
    model = keras.saving.load_model(model_path, compile=False)
    bias = calibration.logits_bias(model)
    same = previous is not None and previous["setting"] == setting
    if same and np.allclose(bias.numpy(), previous["bias"]):
        return previous
    if previous is not None:
        bias.assign(previous["trained_bias"])
    if not wanted:
        write_atomically(model_path, model.save)
        write_json(record_path, record)
        return None
    adjusted = previous if same else _choose_adjustment(config, dataset, weights, model)
    calibration.fold_adjustment(model, weights, adjusted["alpha"])
    adjusted["bias"] = bias.numpy().tolist()
    record["logit_adjustment"] = adjusted
    write_json(record_path, record)
    write_atomically(model_path, model.save)
    logging.info(
        "Logit adjustment alpha=%g: val mIoU %.4f -> %.4f", adjusted["alpha"],
        adjusted["val_mean_iou_before"], adjusted["val_mean_iou"],
    )
    return adjusted


def _choose_adjustment(config, dataset, weights, model):
    """Alpha (chosen on the training split for "auto") and its val scores."""
    setting = config.logit_adjustment
    adjusted = {
        "setting": setting,
        "trained_bias": calibration.logits_bias(model).numpy().tolist(),
    }
    if setting == "auto":
        logging.info("Choosing the logit adjustment on the training split")
        scores = calibration.adjustment_scores(
            model, dataset, weights, "train", limit=config.limit
        )
        alpha = calibration.best_alpha(scores)
        adjusted["train_mean_iou"] = {
            f"{a:g}": float(s["mean_iou"]) for a, s in scores.items()
        }
    else:
        alpha = float(setting)
    val = calibration.adjustment_scores(
        model, dataset, weights, "val", alphas=(0.0, alpha), limit=config.val_limit
    )
    adjusted.update(
        alpha=alpha,
        val_mean_iou_before=float(val[0.0]["mean_iou"]),
        val_mean_iou=float(val[alpha]["mean_iou"]),
    )
    return adjusted


def _remove_run_files(checkpoint_dir):
    for name in RUN_FILES:
        path = os.path.join(checkpoint_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)


def _check_shared_directory(config_path, config):
    """A non-chief worker checks it sees the chief's files."""
    # Paths may differ between machines; everything else must match.
    local = {"data_dir", "checkpoint_dir", "verbose"}
    current = {k: v for k, v in config.to_dict().items() if k not in local}
    try:
        chiefs = read_json(config_path)["train"]
        same = {k: v for k, v in chiefs.items() if k not in local} == current
    except (OSError, ValueError, KeyError):
        same = False
    if not same:
        raise TrainingError(
            f"This worker does not see the chief's {config_path} for this "
            "run: with --strategy=multi_worker every worker needs the same "
            "flags and a --checkpoint_dir on storage all workers share "
            "(the chief writes it, the others resume from it)."
        )


class _RestoreOnly(keras.callbacks.BackupAndRestore):
    """Restores the chief's backup on another worker; never writes it."""

    def on_train_batch_end(self, batch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass


def _trim_history(path, backup_dir):
    """Drops history rows of epochs the backup does not hold.

    A process killed after writing an epoch's row but before backing the
    epoch up repeats that epoch when resumed; its old row would be doubled.
    """
    metadata = os.path.join(backup_dir, "training_metadata.json")
    if not (os.path.exists(path) and os.path.exists(metadata)):
        return
    restored = read_json(metadata)["epoch"]
    rows = _csv_rows(path)
    if not rows or "epoch" not in rows[0]:
        return
    column = rows[0].index("epoch")
    kept = [rows[0]] + [r for r in rows[1:] if int(r[column]) < restored]
    if len(kept) == len(rows):
        return

    def write(tmp_path):
        with open(tmp_path, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(kept)

    write_atomically(path, write)


def _validation_epochs(config, epochs):
    """Every `validation_freq`-th epoch, the first (so the history has all
    columns) and the last (so a best model exists)."""
    return [
        e for e in range(1, epochs + 1)
        if e % config.validation_freq == 0 or e in (1, epochs)
    ]


def _train_stage(config, stage, dataset, weights, strategy, chief):
    info = dataset.info
    epochs = config.encoder_epochs if stage == "encoder" else config.epochs
    stage_dir = (
        os.path.join(config.checkpoint_dir, "encoder")
        if stage == "encoder" else config.checkpoint_dir
    )
    best_path = os.path.join(stage_dir, "model.keras")
    done_path = os.path.join(stage_dir, "done.json")
    backup_dir = os.path.join(stage_dir, "backup")
    if os.path.exists(done_path) and read_json(done_path)["epochs"] >= epochs:
        logging.info("The %s stage is complete in %s", stage, stage_dir)
        return read_json(done_path)

    train_ds, val_ds = _datasets(config, dataset, stage, strategy)
    num_train = len(dataset.files("train")[: config.limit])
    steps_per_epoch = num_train // config.batch_size

    with strategy.scope():
        builder = build_enet_encoder if stage == "encoder" else build_enet
        model = builder(info.num_classes, **config.model_options)
        encoder_path = os.path.join(config.checkpoint_dir, "encoder", "model.keras")
        if stage == "full" and os.path.exists(encoder_path):
            encoder = keras.saving.load_model(encoder_path, compile=False)
            copied = transfer_weights(encoder, model)
            logging.info("Initialised %d layers from %s", len(copied), encoder_path)
        _add_weight_decay(model, config.weight_decay)
        miou = _compile(model, config, steps_per_epoch, epochs, weights, info)

    per_class = PerClassIoU(miou, info.class_names)
    best = BestModelCheckpoint(best_path, write=chief)
    # LossGuard first: it must stop a diverged epoch before anything saves
    # it; then the replicas agree on the statistics that are saved.
    callbacks = [LossGuard(), SyncMovingStatistics(strategy), per_class, best]
    if chief:
        os.makedirs(stage_dir, exist_ok=True)
        history_path = os.path.join(stage_dir, "history.csv")
        _trim_history(history_path, backup_dir)
        log_dir = os.path.join(config.checkpoint_dir, "logs", stage)
        sample_images, sample_labels = next(iter(val_ds.take(1)))
        callbacks += [
            HistoryLogger(history_path),
            keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False),
            PredictionImages(
                os.path.join(log_dir, "images"), sample_images.numpy()[:4],
                sample_labels.numpy()[:4], info.palette, info.ignore_index,
            ),
            keras.callbacks.BackupAndRestore(
                backup_dir, double_checkpoint=True, delete_checkpoint=False
            ),
        ]
    else:
        callbacks.append(_RestoreOnly(backup_dir, double_checkpoint=True))
    model.fit(
        train_ds,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=val_ds,
        validation_freq=_validation_epochs(config, epochs),
        shuffle=False,  # the pipeline shuffles
        callbacks=callbacks,
        verbose=config.verbose if chief else 0,
    )
    summary = {"stage": stage, "epochs": epochs, "best_val_miou": best.best}
    if chief:
        if os.path.exists(best.record_path):
            summary.update(read_json(best.record_path))
        write_json(done_path, summary)
    # The next stage reads the chief's files (the encoder model): wait for
    # them on every worker.
    _barrier(strategy)
    if not chief and os.path.exists(done_path):
        summary = read_json(done_path)
    return summary
