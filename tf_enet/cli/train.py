"""Trains ENet the paper's way: the encoder, then the whole network.

Writes the best model, config.json, history.csv, TensorBoard logs and
resumable state to --checkpoint_dir; run the same command again after an
interruption to resume from the last completed epoch. Everything the run
needs after its last epoch is checked before the first one.

Examples:
  tf-enet-train --dataset camvid --data_dir data/CamVid
  tf-enet-train --dataset folder --data_dir my_data --height 240 --width 320
"""

import dataclasses
import os
import sys

from absl import flags

from tf_enet import artifacts, cli
from tf_enet.errors import TfEnetError
from tf_enet.training.config import CHOICES, TrainConfig, option_help

FLAGS = flags.FLAGS
# Flags whose default the command line decides (the dataclass's would not
# fit a terminal), with the help text saying how.
_CLI_DEFAULTS = {"verbose": (None, " Default: 1 on a terminal, else 2.")}


def define_flags(flag_values=FLAGS):
    """Defines one flag per `TrainConfig` field, plus --overwrite.

    Names, defaults, choices and help come from `TrainConfig` (its fields,
    `CHOICES` and its docstring), so the options are written once.
    """
    helps = option_help()
    for field in dataclasses.fields(TrainConfig):
        name = field.name
        default, extra = _CLI_DEFAULTS.get(name, (field.default, ""))
        help_text = helps[name] + extra
        kind = field.type if isinstance(field.type, type) else object
        if name in CHOICES:
            flags.DEFINE_enum(
                name, default, list(CHOICES[name]), help_text, flag_values=flag_values
            )
        elif kind is bool:
            flags.DEFINE_bool(name, default, help_text, flag_values=flag_values)
        elif kind is int:
            flags.DEFINE_integer(name, default, help_text, flag_values=flag_values)
        elif kind is float:
            flags.DEFINE_float(name, default, help_text, flag_values=flag_values)
        else:
            flags.DEFINE_string(
                name,
                None if default is None else str(default),
                help_text,
                flag_values=flag_values,
            )
    flags.DEFINE_bool(
        "overwrite",
        False,
        "Start over in a --checkpoint_dir that holds a different run, deleting that run's files.",
        flag_values=flag_values,
    )


def _main(argv):
    from tf_enet.training import train

    options = {f.name: FLAGS[f.name].value for f in dataclasses.fields(TrainConfig)}
    if options["verbose"] is None:
        options["verbose"] = 1 if sys.stdout.isatty() else 2
    try:
        config = TrainConfig(**options)
        results = train(config, overwrite=FLAGS.overwrite)
    except (TfEnetError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("\n".join(summary_lines(results)))
    return 0


def _score(value):
    return "n/a" if value is None or value != value else f"{value:.4f}"


def summary_lines(results):
    """The lines `tf-enet-train` ends with: best epoch, scores, where the model is.

    Args:
        results: dict, as `tf_enet.training.train` returns it.

    Returns:
        list of str.
    """
    directory = results["checkpoint_dir"]
    lines = []
    for stage in ("encoder", "full"):
        record = results.get(stage)
        if not record:
            continue
        best = record.get(artifacts.VAL_MEAN_IOU, record.get("best_" + artifacts.VAL_MEAN_IOU))
        lines.append(
            f"{stage.capitalize()} stage: best epoch {record.get('epoch', 'n/a')} of "
            f"{record.get('epochs')}, val mean IoU {_score(best)}"
        )
    adjusted = results.get("logit_adjustment")
    if adjusted:
        lines.append(
            f"Logit adjustment (alpha {adjusted['alpha']:g}): val mean IoU "
            f"{_score(adjusted.get('val_mean_iou_before'))} -> "
            f"{_score(adjusted.get('val_mean_iou'))}"
        )
    if "full" in results:
        model = os.path.join(directory, artifacts.MODEL_FILE)
        lines.append(f"Model: {model} (scores in best.json, every epoch in history.csv)")
    else:
        model = os.path.join(directory, artifacts.ENCODER_DIR, artifacts.MODEL_FILE)
        lines.append(
            f"Encoder: {model}; run the same command with --stages full to train "
            "the full network from it."
        )
    return lines


def main():
    """The `tf-enet-train` command."""
    # Defined here, not at import: importing this module (for
    # `define_flags`) leaves absl's global flags alone.
    define_flags()
    cli.run(_main)
