"""Training ENet the paper's way: encoder first, then the whole network.

`train(TrainConfig(...))` runs both stages (Paszke et al. 2016, Sec. 5.1):
the encoder alone on labels downsampled 8x, then the full network
initialised from it, with Adam, L2 weight decay and a class-weighted
cross-entropy. Everything needed to resume, evaluate and predict is written
to the checkpoint directory:

    <checkpoint_dir>/config.json         every option, classes, palette,
                                         class weights, ignore id, input
                                         normalisation
    <checkpoint_dir>/model.keras         best full model by val mean IoU,
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
weights (`tf_enet.logit_adjustment`): the strength is chosen on the training
split, folded into the last layer's bias and recorded in `best.json`.

Killing the process at any moment and running it again continues from the
last completed epoch; model files are written to a temporary name and
renamed, so the best model on disk is never half-written.

With `strategy="multi_worker"` every worker runs `train` with the same
config and a `checkpoint_dir` on storage they all see; only the chief
writes there, and the other workers read the chief's backup to resume.


The package, one concern per module:

    config.py           `TrainConfig`, every option and its checks
    errors.py           `TrainingError`
    run_directory.py    the run's config.json, resume checks, bookkeeping
    callbacks/          one Keras callback per module
    distribute.py       `tf.distribute` strategies and worker barriers
    logit_adjustment.py the adjustment of a finished run (math:
                        `tf_enet.logit_adjustment`)
    trainer.py          `train`: the stages, their data and compilation

Names load their module on first use (PEP 562), so `TrainConfig` and the
option lists are available without importing TensorFlow (the command line
builds its flags and answers `--help` from them).
"""

import importlib

# Public name -> the module defining it.
_NAMES = {
    "callbacks": [
        "BestModelCheckpoint",
        "ClassScores",
        "EpochLine",
        "HistoryLogger",
        "LossGuard",
        "PredictionImages",
        "SyncMovingStatistics",
    ],
    "config": [
        "LOGIT_ADJUSTMENTS",
        "RESUMABLE_CHANGES",
        "SCHEDULES",
        "STAGES",
        "STRATEGIES",
        "TrainConfig",
    ],
    "distribute": ["is_chief", "make_strategy"],
    "errors": ["TrainingError"],
    "run_directory": [
        "check_checkpoint_dir",
        "remove_run_files",
        "run_config",
        "trim_history",
    ],
    "trainer": [
        "add_weight_decay",
        "compile_model",
        "learning_rate_schedule",
        "num_training_images",
        "steps_per_epoch",
        "train",
        "validation_epochs",
    ],
}
_MODULE_OF = {name: module for module, names in _NAMES.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'tf_enet.training' has no attribute {name!r}")
    module = importlib.import_module(f"tf_enet.training.{_MODULE_OF[name]}")
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
