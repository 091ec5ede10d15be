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
import json
import sys

from absl import flags

from tf_enet import cli
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
    if len(argv) > 1:
        print(f"error: unexpected arguments: {' '.join(argv[1:])}", file=sys.stderr)
        return 2
    from tf_enet import artifacts, data
    from tf_enet.training import TrainingError, train

    options = {f.name: FLAGS[f.name].value for f in dataclasses.fields(TrainConfig)}
    if options["verbose"] is None:
        options["verbose"] = 1 if sys.stdout.isatty() else 2
    try:
        config = TrainConfig(**options)
        results = train(config, overwrite=FLAGS.overwrite)
    except (ValueError, TrainingError, data.DatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(artifacts.to_strict_json(results), indent=2))
    return 0


def main():
    """The `tf-enet-train` command."""
    # Defined here, not at import: importing this module (for
    # `define_flags`) leaves absl's global flags alone.
    define_flags()
    cli.run(_main)
