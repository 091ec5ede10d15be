"""Trains ENet: `python train.py --dataset camvid`.

Runs the paper's two stages (encoder on 1/8-size labels, then the full
network) and writes the best model, config.json, history.csv, TensorBoard
logs and resumable state to --checkpoint_dir. Run the same command again
after an interruption to resume from the last completed epoch.
"""

import dataclasses
import json
import sys

from absl import app, flags



def _define_flags():
    from tf_enet.training import DEFAULT_DATA_DIRS, SCHEDULES, STAGES, STRATEGIES

    f = flags
    f.DEFINE_enum("dataset", "camvid", ["camvid", "cityscapes", "folder"], "Dataset layout.")
    f.DEFINE_string(
        "data_dir", None,
        "Dataset root. Default: " + ", ".join(f"{k}: {v}" for k, v in DEFAULT_DATA_DIRS.items()) + ".",
    )
    f.DEFINE_string("checkpoint_dir", None, "Run directory. Default: runs/<dataset>.")
    f.DEFINE_integer("height", 360, "Training crop height.")
    f.DEFINE_integer("width", 480, "Training crop width.")
    f.DEFINE_integer("batch_size", 10, "Global batch size, split across replicas (the paper: 10).")
    f.DEFINE_integer("epochs", 300, "Epochs of the full-network stage.")
    f.DEFINE_integer("encoder_epochs", 100, "Epochs of the encoder-only stage.")
    f.DEFINE_enum("stages", "both", list(STAGES),
                  "both: encoder on 1/8 labels, then the full network initialised "
                  "from it (the paper); encoder or full: only that stage.")
    f.DEFINE_float("learning_rate", 5e-4, "Initial Adam learning rate.")
    f.DEFINE_float("weight_decay", 2e-4, "L2 weight decay on conv kernels (Torch-style).")
    f.DEFINE_enum("lr_schedule", "step", list(SCHEDULES),
                  "step: x lr_decay_factor every lr_decay_epochs; poly: (1 - t)^0.9; cosine.")
    f.DEFINE_integer("lr_decay_epochs", 100, "Step schedule period in epochs.")
    f.DEFINE_float("lr_decay_factor", 0.1, "Step schedule factor.")
    f.DEFINE_enum("class_weighting", "mfb", ["mfb", "enet", "none"],
                  "mfb: median frequency balancing; enet: 1/ln(1.02 + p); none.")
    f.DEFINE_string("logit_adjustment", "auto",
                    "After training, subtract alpha * log(class weight) from the best "
                    "model's logits (undoes the weighting's bias toward rare classes). "
                    "auto: alpha in 0, 0.1, ..., 1 with the best train-split mIoU; "
                    "off; or alpha itself, e.g. 0.5.")
    f.DEFINE_integer("num_initial_blocks", 1, "Number of initial blocks.")
    f.DEFINE_integer("stage_two_repeat", 2, "Repeats of the dilated stage (2 = the paper).")
    f.DEFINE_bool("skip_connections", False, "Add encoder features to the decoder.")
    f.DEFINE_bool("augment", True, "Random scale, crop and horizontal flip.")
    f.DEFINE_float("min_scale", 0.75, "Smallest random scale.")
    f.DEFINE_float("max_scale", 1.5, "Largest random scale.")
    f.DEFINE_integer("limit", None, "Train on only the first N images (quick trials).")
    f.DEFINE_integer("val_limit", None, "Validate on only the first N images.")
    f.DEFINE_integer("validation_freq", 1, "Validate every N epochs.")
    f.DEFINE_enum("strategy", "default", list(STRATEGIES),
                  "tf.distribute strategy: default (one device), mirrored (all "
                  "GPUs of this machine), multi_worker (several machines, each "
                  "running this command with its TF_CONFIG; see the README).")
    f.DEFINE_bool("jit_compile", False, "XLA-compile the training step (slower than oneDNN on CPU; try it on GPUs).")
    f.DEFINE_integer("seed", 0, "Random seed.")
    f.DEFINE_integer("verbose", None, "0 silent, 1 progress bar, 2 a line per epoch. "
                     "Default: 1 on a terminal, else 2.")
    f.DEFINE_bool("overwrite", False,
                  "Start over in a --checkpoint_dir that holds a different run, "
                  "deleting that run's files.")


_define_flags()
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    from tf_enet import data
    from tf_enet.training import TrainConfig, TrainingError, train

    names = {field.name for field in dataclasses.fields(TrainConfig)}
    options = {name: FLAGS[name].value for name in names if name in FLAGS}
    if options["checkpoint_dir"] is None:
        options["checkpoint_dir"] = f"runs/{FLAGS.dataset}"
    if options["verbose"] is None:
        options["verbose"] = 1 if sys.stdout.isatty() else 2
    try:
        config = TrainConfig(**options)
        results = train(config, overwrite=FLAGS.overwrite)
    except (ValueError, TrainingError, data.DatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    # absl exits with status 1 after --help; asking for help is no error.
    if {"--help", "--helpshort", "-h", "-?"} & set(sys.argv[1:]):
        app.usage(shorthelp=True, writeto_stdout=True, exitcode=0)
    app.run(main)
