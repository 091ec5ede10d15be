"""The training loop: both stages of the paper, resumable, distributed.

`train(TrainConfig(...))` runs the encoder on labels downsampled 8x, then
the full network initialised from it (Paszke et al. 2016, Sec. 5.1), with
Adam, L2 weight decay and a class-weighted cross-entropy.
"""

import contextlib
import os

import keras
import tensorflow as tf
from absl import logging

from tf_enet import artifacts
from tf_enet import data as data_lib
from tf_enet import logit_adjustment as adjustment_math
from tf_enet import metrics as metrics_lib
from tf_enet.conversions import write_runtime_model
from tf_enet.losses import WeightedSparseCategoricalCrossentropy
from tf_enet.model import OUTPUT_STRIDE, build_enet, build_enet_encoder, transfer_weights
from tf_enet.training import callbacks as callbacks_lib
from tf_enet.training import disk_space, distribute, failures, fine_tuning, run_directory
from tf_enet.training.errors import TrainingError
from tf_enet.training.logit_adjustment import adjust_logits
from tf_enet.training.run_lock import RunLock
from tf_enet.training.warmup import LinearWarmup


def learning_rate_schedule(config, steps_per_epoch, epochs):
    """The learning rate as a function of the optimizer step, warm-up included."""
    schedule = _decay_schedule(config, steps_per_epoch, epochs)
    warmup_steps = min(config.warmup_epochs, epochs) * steps_per_epoch
    return LinearWarmup(schedule, warmup_steps) if warmup_steps else schedule


def _decay_schedule(config, steps_per_epoch, epochs):
    total_steps = max(1, steps_per_epoch * epochs)
    if config.lr_schedule == "poly":
        return keras.optimizers.schedules.PolynomialDecay(
            config.learning_rate, total_steps, end_learning_rate=0.0, power=0.9
        )
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(config.learning_rate, total_steps)
    period = steps_per_epoch * config.lr_decay_epochs
    boundaries = list(range(period, total_steps, period))
    values = [config.learning_rate * config.lr_decay_factor**i for i in range(len(boundaries) + 1)]
    if not boundaries:
        return config.learning_rate
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def stage_plan(config):
    if config.stages == "both":
        return ("encoder", "full")
    return (config.stages,)


def make_datasets(config, dataset, stage, strategy):
    """The repeated training dataset and the validation dataset of a stage."""
    label_stride = OUTPUT_STRIDE if stage == "encoder" else 1
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise TrainingError(
            f"--batch_size {config.batch_size} must be a multiple of the "
            f"number of replicas ({replicas}), which share each batch."
        )
    train_args = dict(
        height=config.height,
        width=config.width,
        batch_size=config.batch_size,
        seed=config.seed,
        label_stride=label_stride,
        limit=config.limit,
        augment=config.augment,
        min_scale=config.min_scale,
        max_scale=config.max_scale,
        color_jitter=config.color_jitter,
    )
    splits = config.training_splits
    # Validation runs the model at the training size, as prediction and
    # evaluation do by default: a dataset of larger images (Cityscapes at
    # half resolution) is scored at the scale the model learned.
    val_args = dict(
        batch_size=config.batch_size,
        label_stride=label_stride,
        limit=config.val_limit,
        height=config.height,
        width=config.width,
        resize_masks=True,
    )
    if config.strategy == "default":
        train = data_lib.make_train_dataset(dataset, splits, **train_args)
        train = train.repeat()
    else:
        # Each input pipeline decodes only its own share of the files. The
        # shares may differ in size: repeating them and fixing the steps per
        # epoch keeps every worker running the same number of steps.
        train = strategy.distribute_datasets_from_function(
            lambda context: data_lib.make_train_dataset(
                dataset, splits, input_context=context, **train_args
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
    padding = (
        images.take(1)
        .map(lambda image, mask: (image, tf.fill(tf.shape(mask), ignore)))
        .repeat(-num_val % config.batch_size)
    )
    val = images.concatenate(padding).padded_batch(
        config.batch_size,
        padded_shapes=([None, None, 3], [None, None]),
        padding_values=(0.0, ignore),
    )
    num_batches = -(-num_val // config.batch_size)
    return train, val.apply(tf.data.experimental.assert_cardinality(num_batches))


def compile_model(model, config, steps_per_epoch, epochs, weights, info):
    loss = WeightedSparseCategoricalCrossentropy(
        class_weights=weights, ignore_index=info.ignore_index
    )
    miou = metrics_lib.MeanIoU(
        num_classes=info.num_classes,
        ignore_class=info.ignore_index,
        name=artifacts.MEAN_IOU,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate_schedule(config, steps_per_epoch, epochs)),
        loss=loss,
        metrics=[miou],
        jit_compile=config.jit_compile,
    )
    return miou


def add_weight_decay(model, weight_decay):
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

    Everything the run needs after its last epoch (a writable directory,
    usable class weights for the logit adjustment, labelled pixels in both
    splits) is checked before its first epoch, so a finished run is never
    lost to a precondition.

    Args:
        config: TrainConfig.
        overwrite: bool. Start over in a checkpoint directory that holds a
            different run: its run files (`artifacts.RUN_FILES`) are
            deleted first.

    Returns:
        dict: `checkpoint_dir`, `class_weights`, and per stage the best
        epoch and validation scores.

    Raises:
        TrainingError: the directory holds another run or cannot be
            written, the loss diverged, or the strategy is misconfigured.
        tf_enet.data.DatasetError: the dataset is missing, broken, or
            cannot be a segmentation problem (see `data.check_trainable`).
    """
    # First: a multi-worker strategy must exist before any other TF op.
    strategy = distribute.make_strategy(config.strategy)
    chief = distribute.is_chief(strategy)
    keras.utils.set_random_seed(config.seed)
    dataset = data_lib.get_dataset(config.dataset, config.data_dir, **config.dataset_options)
    same_run = run_directory.check_checkpoint_dir(config, overwrite)
    try:
        artifacts.ensure_writable_dir(config.checkpoint_dir, "--checkpoint_dir")
    except OSError as error:
        raise TrainingError(str(error)) from None
    # Only the chief writes the directory; the other workers share it.
    with RunLock(config.checkpoint_dir) if chief else contextlib.nullcontext():
        try:
            return _train(config, overwrite, strategy, chief, dataset, same_run)
        except OSError as error:  # outside the stages: config.json, the adjustment
            where = error.filename or config.checkpoint_dir
            raise TrainingError(
                f"Cannot write {where}: {error.strerror or error}. Fix the cause and "
                "run the same command: it resumes from the last completed epoch."
            ) from None


def _train(config, overwrite, strategy, chief, dataset, same_run):
    info = dataset.info
    if chief:
        num_weights = build_enet(info.num_classes, **config.model_options).count_params()
        disk_space.check_free_space(
            config,
            disk_space.estimate(
                config,
                stage_plan(config),
                num_weights,
                lambda stage, epochs: validation_epochs(config, epochs),
            ),
        )
    source = fine_tuning.load_source(config.init_from) if config.init_from else None
    stats = data_lib.ScanResult.combine(
        data_lib.scan(dataset, split) for split in config.training_splits
    )
    val_stats = data_lib.scan(dataset, "val")
    for warning in data_lib.check_trainable(info, stats, val_stats):
        logging.warning(warning)
    weights = data_lib.class_weights(stats, config.class_weighting)
    if config.logit_adjustment != "off" and "full" in stage_plan(config):
        # The adjustment runs after the last epoch: its weights are checked now.
        try:
            adjustment_math.log_weights(weights, info.num_classes)
        except ValueError as error:
            raise TrainingError(
                f"{error} Pass --logit_adjustment off or another --class_weighting."
            ) from None
    # Every worker has checked the directory before the chief changes it,
    # and sees the chief's config.json before reading anything else there.
    distribute.barrier(strategy)
    config_path = os.path.join(config.checkpoint_dir, artifacts.CONFIG_FILE)
    if chief:
        if not same_run:
            if overwrite:
                run_directory.remove_run_files(config.checkpoint_dir)
            logging.info("Starting a new run in %s", config.checkpoint_dir)
        held_out = dataset.split_info()["held_out"].get("val")
        if held_out:
            logging.info(
                "%s has no val split: %d of its training images are held out "
                "as val (--val_fraction %g), listed in %s",
                config.data_dir,
                len(held_out["images"]),
                config.val_fraction,
                config_path,
            )
        artifacts.write_json(
            config_path,
            run_directory.run_config(config, dataset, weights, init_from=source and source[1]),
        )
    distribute.barrier(strategy)
    if not chief:
        run_directory.check_shared_directory(config_path, config)

    for line in short_schedule_warnings(config, dataset):
        logging.warning(line)
    results = {
        "checkpoint_dir": config.checkpoint_dir,
        "class_weights": [float(w) for w in weights],
    }
    for stage in stage_plan(config):
        results[stage] = train_stage(config, stage, dataset, weights, strategy, chief, source)
    if chief and "full" in stage_plan(config):
        results["logit_adjustment"] = adjust_logits(config, dataset, weights)
        results["runtime_model"] = write_runtime_model(config.checkpoint_dir)
    return results


# Optimizer steps below which a stage is warned about: the full network
# starts with a random decoder and needs several hundred steps to catch up
# with the encoder it was initialised from.
MIN_STAGE_STEPS = 400
# Settings that trained a few dozen images well (README, "Your own data").
SMALL_DATA_BATCH_SIZE = 4
SMALL_DATA_LEARNING_RATE = 2e-3


def steps_per_epoch(config, dataset):
    """Optimizer steps per epoch: one pass over the training split, at least 1.

    A split smaller than one batch still trains: the pipeline repeats it.
    """
    return max(1, num_training_images(config, dataset) // config.batch_size)


def num_training_images(config, dataset):
    """Images per epoch: each of `config.training_splits`, up to `limit`."""
    return sum(len(dataset.files(split)[: config.limit]) for split in config.training_splits)


def short_schedule_warnings(config, dataset):
    """One line per stage with fewer than `MIN_STAGE_STEPS` optimizer steps.

    Args:
        config: TrainConfig.
        dataset: tf_enet.data.SegmentationDataset.

    Returns:
        list of str, empty when every stage is long enough.
    """
    num_train = num_training_images(config, dataset)
    steps = steps_per_epoch(config, dataset)
    lines = []
    if config.init_from:
        return lines  # the network starts trained, decoder included
    advice = []
    if config.batch_size > SMALL_DATA_BATCH_SIZE:
        advice.append(f"lower --batch_size (e.g. {SMALL_DATA_BATCH_SIZE})")
    if config.learning_rate < SMALL_DATA_LEARNING_RATE:
        advice.append(f"raise --learning_rate (e.g. {SMALL_DATA_LEARNING_RATE:g})")
    advice.append("raise the epochs")
    for stage in stage_plan(config):
        epochs = config.encoder_epochs if stage == "encoder" else config.epochs
        if 0 < epochs * steps < MIN_STAGE_STEPS:
            lines.append(
                f"The {stage} stage has only {epochs * steps} optimizer steps "
                f"({epochs} epochs of {steps} batches of {config.batch_size} of "
                f"{num_train} images); it needs {MIN_STAGE_STEPS} or more to "
                f"train well. For a small dataset {', '.join(advice)} (see the "
                'README\'s "Your own data").'
            )
    return lines


def validation_epochs(config, epochs):
    """Every `validation_freq`-th epoch, the first (so the history has all
    columns) and the last (so a best model exists)."""
    return [e for e in range(1, epochs + 1) if e % config.validation_freq == 0 or e in (1, epochs)]


def _load_encoder(path):
    """The encoder stage's model, or a TrainingError saying how to redo it."""
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a damaged file.
        reason = (str(error).splitlines() or [type(error).__name__])[0]
        raise TrainingError(
            f"The encoder stage's model {path} cannot be read ({reason[:200]}). "
            f"Move {os.path.dirname(path)} away and run the same command to train "
            "the encoder stage again."
        ) from None


def train_stage(config, stage, dataset, weights, strategy, chief, source=None):
    info = dataset.info
    epochs = config.encoder_epochs if stage == "encoder" else config.epochs
    stage_dir = (
        os.path.join(config.checkpoint_dir, artifacts.ENCODER_DIR)
        if stage == "encoder"
        else config.checkpoint_dir
    )
    best_path = os.path.join(stage_dir, artifacts.MODEL_FILE)
    done_path = os.path.join(stage_dir, artifacts.DONE_FILE)
    backup_dir = os.path.join(stage_dir, artifacts.BACKUP_DIR)
    if os.path.exists(done_path) and artifacts.read_json(done_path)["epochs"] >= epochs:
        logging.info("The %s stage is complete in %s", stage, stage_dir)
        return artifacts.read_json(done_path)

    train_ds, val_ds = make_datasets(config, dataset, stage, strategy)
    steps = steps_per_epoch(config, dataset)
    done = failures.completed_epochs(stage_dir)
    if 0 < done < epochs:
        logging.info(
            "Resuming the %s stage from epoch %d of %d in %s", stage, done + 1, epochs, stage_dir
        )

    with strategy.scope():
        builder = build_enet_encoder if stage == "encoder" else build_enet
        model = builder(info.num_classes, **config.model_options)
        encoder_path = os.path.join(
            config.checkpoint_dir, artifacts.ENCODER_DIR, artifacts.MODEL_FILE
        )
        # A resumed stage goes on from its backup's weights instead.
        if not done and source is not None:
            fine_tuning.initialise(model, *source)
        if not done and stage == "full" and os.path.exists(encoder_path):
            # The encoder this run trained replaces the source's.
            encoder = _load_encoder(encoder_path)
            copied = transfer_weights(encoder, model)
            logging.info("Initialised %d layers from %s", len(copied), encoder_path)
        elif not done and stage == "full" and source is None:
            logging.warning(
                "No trained encoder in %s: the full network starts from random "
                "weights. The paper trains the encoder first (--stages both, or "
                "--stages encoder before --stages full in the same --checkpoint_dir).",
                os.path.dirname(encoder_path),
            )
        add_weight_decay(model, config.weight_decay)
        miou = compile_model(model, config, steps, epochs, weights, info)

    per_class = callbacks_lib.ClassScores(miou, info.class_names, stage)
    best = callbacks_lib.BestModelCheckpoint(best_path, write=chief, keep=config.select)
    # LossGuard first: it must stop a diverged epoch before anything saves
    # it; then the replicas agree on the statistics that are saved.
    callbacks = [
        callbacks_lib.LossGuard(),
        callbacks_lib.SyncMovingStatistics(strategy),
        per_class,
        callbacks_lib.EpochLine(info.num_classes),
        best,
    ]
    if chief:
        os.makedirs(stage_dir, exist_ok=True)
        history_path = os.path.join(stage_dir, artifacts.HISTORY_FILE)
        run_directory.trim_history(history_path, backup_dir)
        log_dir = os.path.join(config.checkpoint_dir, artifacts.LOGS_DIR, stage)
        sample_images, sample_labels = next(iter(val_ds.take(1)))
        callbacks += [
            callbacks_lib.HistoryLogger(history_path),
            keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False),
            callbacks_lib.PredictionImages(
                os.path.join(log_dir, "images"),
                sample_images.numpy()[:4],
                sample_labels.numpy()[:4],
                info.palette,
                info.ignore_index,
            ),
            callbacks_lib.Backup(backup_dir, double_checkpoint=True, delete_checkpoint=False),
        ]
    else:
        callbacks.append(callbacks_lib.RestoreOnly(backup_dir, double_checkpoint=True))
    logging.info(
        "%s stage: %d epochs of %d steps; TensorFlow builds the training "
        "step before the first one (up to a few minutes on a CPU)",
        stage.capitalize(),
        epochs,
        steps,
    )
    try:
        model.fit(
            train_ds,
            epochs=epochs,
            steps_per_epoch=steps,
            validation_data=val_ds,
            validation_freq=validation_epochs(config, epochs),
            shuffle=False,  # the pipeline shuffles
            callbacks=callbacks,
            verbose=config.verbose if chief else 0,
        )
    except (failures.WriteError, OSError, tf.errors.OpError) as error:
        raise failures.explain(error, dataset, stage, stage_dir, epochs) from None
    summary = {"stage": stage, "epochs": epochs, "best_" + artifacts.VAL_MEAN_IOU: best.best}
    if chief:
        if os.path.exists(best.record_path):
            summary.update(artifacts.read_json(best.record_path))
        artifacts.write_json(done_path, summary)
    # The next stage reads the chief's files (the encoder model): wait for
    # them on every worker.
    distribute.barrier(strategy)
    if not chief and os.path.exists(done_path):
        summary = artifacts.read_json(done_path)
    return summary
