"""The command lines: `tf-enet-train`, `-predict`, `-evaluate`, `-export`.

Each command is a module here with absl flags and a `main()` that hands its
`_main(argv)`-style function to `run`:

    def main():
        cli.run(_main)

`run` answers `--help` (exit status 0) from the flags alone, and keeps
TensorFlow's start-up messages a user cannot act on off the terminal: the
C++ log lines printed while TensorFlow loads and finds its devices (the
oneDNN notice, the CPU instruction notice, "could not find cuda drivers",
cuInit's error on machines without a GPU), Python warnings raised inside
TensorFlow, Keras and the exporters, and the INFO lines TensorFlow and
tf2onnx log (a SavedModel export lists hundreds of renamed tensors). absl's
`-v 1` (`--verbosity=1`) shows all of them, as does a `TF_CPP_MIN_LOG_LEVEL`
set by the user for the C++ lines.

The documented switches do most of it: `TF_CPP_MIN_LOG_LEVEL=2` (set by
`import tf_enet`), warnings filters, the Python loggers' levels and an absl
log filter. Three kinds of line ignore every switch, and only those are
filtered from file descriptor 2 (`filtered_stderr`): the start-up lines
TensorFlow 2.21 logs before `absl::InitializeLog` (the level does not apply
yet), the int8 quantizer's `fully_quantize: ...` (a printf) and LiteRT's
"Created TensorFlow Lite XNNPACK delegate" (its own INFO log).

Flag and argument errors are one `error:` line with exit status 2: `run`
registers the checks the commands share (`register_validators`) and parses
the flags itself; commands catch `tf_enet.errors.TfEnetError`, the base of
every error a user can act on, and print it as one line too.

A command module imports TensorFlow (and every module that does) inside its
main function, never at the top: its flags are then defined and parsed, and
`--help` answered, without loading TensorFlow.
"""

import contextlib
import importlib.util
import logging as std_logging
import os
import re
import sys
import tempfile
import warnings

from absl import app, flags
from absl import logging as absl_logging

import tf_enet
from tf_enet.defaults import QUIET_CPP_LOG_LEVEL, install_hint

FLAGS = flags.FLAGS

HELP_ARGS = ("-h", "--help", "-?", "--helpshort")
# --model of the commands that run any format.
MODEL_HELP = (
    "Checkpoint directory, .keras file, SavedModel directory, .tflite/.onnx "
    "file, or a preset name (the default: the shipped CamVid model)."
)
# --tta of the commands that run a model (`tf_enet.defaults.TTA_MODES`).
TTA_HELP = (
    "Test-time augmentation, the views' logits averaged: none; flip (also the "
    "left-right mirror: 2.5x the time per image); flip+scales (both also at "
    "1.25x the model's size, in windows of that size: 14x)."
)
FULL_HELP_ARG = "--helpfull"
# The packages of the `[train]` extra: the light install runs .tflite/.onnx
# models without them; a command that needs one names the extra.
TRAIN_PACKAGES = ("tensorflow", "keras", "tensorboard", "tf_keras")

# absl's --verbosity from which TensorFlow's own messages are shown (DEBUG).
SHOW_TENSORFLOW_VERBOSITY = 1
# Start-up lines TensorFlow prints while it loads and looks for devices;
# all are INFO notices or the error of a CUDA library without a GPU.
_STARTUP_NOISE = re.compile(
    "|".join(
        (
            r"All log messages before absl::InitializeLog\(\) is called",
            r"oneDNN custom operations are on",
            r"Could not find cuda drivers",
            r"cpu_feature_guard\.cc",
            r"^To enable the following instructions:",
            r"failed call to cuInit",
            r"Unable to register cu(DNN|FFT|BLAS) factory",
            r"computation placer already registered",
            r"TF-TRT Warning: Could not find TensorRT",
            # TFLite's interpreter, when it applies XNNPack at allocation.
            r"Created TensorFlow Lite XNNPACK delegate for CPU",
            # The TFLite converter's quantizer, on every int8 conversion.
            r"^fully_quantize: \d+, inference_type: \d+, input_inference_type:",
        )
    )
)
# Python loggers of libraries whose INFO messages are about their internals.
_QUIET_LOGGERS = ("tensorflow", "tf2onnx")
# Modules whose Python warnings are about their own internals, not about
# anything a user of the command line can change.
_WARNING_MODULES = (
    r"(tensorflow|tf_keras|keras|tf2onnx|onnx|onnxruntime|google\.protobuf"
    r"|h5py|absl)(\.|$)"
)


def check_input_size(predictor, height, width):
    """Refuses `--height/--width` other than a fixed-size export's own size.

    Raises:
        tf_enet.inference.ModelError: naming the export's size and the
            flags to drop or change.
    """
    fixed = predictor.input_size
    if fixed is None or height is None or (height, width) == tuple(fixed):
        return
    from tf_enet import inference  # pylint: disable=import-outside-toplevel

    raise inference.ModelError(
        f"{predictor.path} was exported for {fixed[0]}x{fixed[1]} images and runs "
        f"only at that size: omit --height/--width (images are resized to it) or "
        f"pass --height {fixed[0]} --width {fixed[1]}."
    )


# Flags several commands define, each checked the same way by `run`.
_POSITIVE_FLAGS = ("batch_size", "limit", "num_representative", "height", "width")


def register_validators(flag_values=FLAGS):
    """Registers the checks the commands share on whichever flags they define.

    `--height` and `--width` come together or not at all; counts and sizes
    (`_POSITIVE_FLAGS`) are positive when given. absl runs the checks when
    it parses the command line; `run` prints a failure as one `error:` line.

    Args:
        flag_values: absl FlagValues holding the command's flags.
    """
    defined = set(flag_values)
    if {"height", "width"} <= defined:
        flags.register_multi_flags_validator(
            ["height", "width"],
            lambda values: (values["height"] is None) == (values["width"] is None),
            message="give both --height and --width, or neither.",
            flag_values=flag_values,
        )
    for name in _POSITIVE_FLAGS:
        if name in defined:
            flags.register_validator(
                name,
                lambda value: value is None or value >= 1,
                message=f"--{name} must be positive.",
                flag_values=flag_values,
            )


def run(main, argv=None, *, load_tensorflow=True, takes_arguments=False):
    """Runs a command: help from the flags alone, then `main` quietly.

    Args:
        main: callable taking the positional arguments left after absl
            parsed the flags (program name first) and returning the exit
            status. Its module's docstring opens `--help`.
        argv: list of str or None. The command line, program name first;
            None reads `sys.argv`.
        load_tensorflow: bool. Import TensorFlow (start-up lines filtered)
            before `main`. False for commands that run without it, which
            wrap whatever may load it in `filtered_stderr`.
        takes_arguments: bool. Whether `main` takes positional arguments;
            if not, any is refused.

    Raises:
        SystemExit: always, with `main`'s exit status (0 after `--help`, 2
            after a flag or argument error, printed as one `error:` line).
    """
    argv = list(sys.argv if argv is None else argv)
    words = set(_flag_words(argv[1:]))
    if words & (set(HELP_ARGS) | {FULL_HELP_ARG}):
        module = sys.modules[main.__module__]
        sys.stdout.write(help_text(module, full=FULL_HELP_ARG in words, program=argv[0]))
        sys.exit(0)
    register_validators()
    app.run(
        lambda args: _run_quietly(main, args, load_tensorflow),
        argv=argv,
        flags_parser=lambda args: _parse_flags(args, takes_arguments),
    )


def _parse_flags(argv, takes_arguments):
    """absl's parsing, with any error as one `error:` line and exit status 2."""
    try:
        args = FLAGS(argv)
    except flags.Error as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    if len(args) > 1 and not takes_arguments:
        print(f"error: unexpected arguments: {' '.join(args[1:])}", file=sys.stderr)
        sys.exit(2)
    return args


def help_text(module, *, full=False, program=None):
    """The `--help` text of a command module.

    Args:
        module: the command's module. Its docstring comes first, then the
            flags it defines (and those other `tf_enet` modules define for
            it).
        full: bool. List every flag absl knows, as `--helpfull`.
        program: str or None. Shown as the command's name.

    Returns:
        str ending with a newline.
    """
    doc = (module.__doc__ or f"USAGE: {program or module.__name__} [flags]").strip()
    if full:
        flag_text = FLAGS.get_help()
    else:
        names = [module.__name__] + sorted(
            name
            for name in FLAGS.flags_by_module_dict()
            if name.startswith("tf_enet.") and name != module.__name__
        )
        # absl heads each module's flags with its name; one list reads better.
        flag_text = "".join(FLAGS.module_help(name).replace(f"\n{name}:", "", 1) for name in names)
        flag_text += (
            "\n  -v,--verbosity: 1 also shows TensorFlow's start-up logs and"
            "\n    warnings (hidden by default)."
            f"\n  {FULL_HELP_ARG}: list every flag."
        )
    return f"{doc}\n\nflags:{flag_text.rstrip()}\n"


def show_tensorflow_output():
    """Whether `-v`/`--verbosity` asks for TensorFlow's own messages."""
    return FLAGS["verbosity"].present and FLAGS.verbosity >= SHOW_TENSORFLOW_VERBOSITY


def quiet_tensorflow(load_tensorflow=True):
    """Hides TensorFlow's messages a command-line user cannot act on.

    Sets `TF_CPP_MIN_LOG_LEVEL` (unless already set) to errors only, ignores
    Python warnings raised inside TensorFlow, Keras and the exporters,
    raises TensorFlow's Python logger to ERROR, and imports TensorFlow with
    its start-up lines filtered out (any other line it prints still shows).
    Call it after parsing flags and before anything imports TensorFlow.

    Args:
        load_tensorflow: bool. Import TensorFlow now (False: only set the
            switches, for commands that may run without it).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_CPP_LOG_LEVEL)
    warnings.filterwarnings("ignore", module=_WARNING_MODULES)
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category)
    for name in _QUIET_LOGGERS:
        std_logging.getLogger(name).setLevel(std_logging.ERROR)
    # Parts of TensorFlow log through absl directly (a SavedModel export
    # lists hundreds of renamed tensors at INFO), where tf_enet's own
    # progress messages go too: drop only the libraries' records.
    absl_logger = absl_logging.get_absl_logger()
    if not any(isinstance(f, LibraryLogFilter) for f in absl_logger.filters):
        absl_logger.addFilter(LibraryLogFilter(_QUIET_LOGGERS))
    if load_tensorflow and "tensorflow" not in sys.modules:
        _import_tensorflow_filtered()


class LibraryLogFilter(std_logging.Filter):
    """Drops log records below WARNING written by code of the given packages.

    Args:
        packages: iterable of str. Top-level package names; records whose
            source file lies inside one of them (where it is installed) are
            dropped below WARNING. Packages that are not installed are
            ignored.
    """

    def __init__(self, packages):
        super().__init__()
        self.directories = tuple(
            os.path.join(location, "") for name in packages for location in _package_locations(name)
        )

    def filter(self, record):
        return record.levelno >= std_logging.WARNING or not (
            self.directories and record.pathname.startswith(self.directories)
        )


def _package_locations(name):
    """Where package `name` is installed, without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return []
    return list(spec.submodule_search_locations or []) if spec else []


def _flag_words(args):
    """The arguments before `--`, which ends absl's flags."""
    for arg in args:
        if arg == "--":
            return
        yield arg


class MessageFormatter(std_logging.Formatter):
    """Log records as plain messages; warnings and errors say what they are.

    Set on absl's handler by `run`, for every command, in place of its
    `I1205 08:41:45.36 trainer.py:305]` prefix, which says nothing to a
    user of the command.
    """

    def format(self, record):
        message = super().format(record)
        if record.levelno >= std_logging.WARNING:
            return f"{record.levelname.lower()}: {message}"
        return message


def _run_quietly(main, args, load_tensorflow=True):
    absl_logging.get_absl_handler().setFormatter(MessageFormatter())
    try:
        if not show_tensorflow_output():
            quiet_tensorflow(load_tensorflow)
        elif tf_enet.USER_CPP_LOG_LEVEL is None:
            # `import tf_enet` chose the quiet level; -v 1 shows everything.
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
        return main(args)
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in TRAIN_PACKAGES:
            raise
        program = os.path.basename(args[0]) if args else "this command"
        print(
            f"error: {program} needs TensorFlow here ({error.name} is not installed); "
            f"{install_hint('train')}",
            file=sys.stderr,
        )
        return 1


def _import_tensorflow_filtered():
    """Imports TensorFlow and lists its devices, dropping the start-up lines."""
    with filtered_stderr():
        import tensorflow as tf

        # Finding the devices loads CUDA, which logs cuInit's error on
        # machines without a GPU.
        tf.config.list_physical_devices()


@contextlib.contextmanager
def filtered_stderr():
    """Drops TensorFlow's notices a user cannot act on from stderr within.

    TensorFlow's C++ code (start-up, device discovery, TFLite's delegate)
    writes to file descriptor 2 directly, and part of it before its log
    level takes effect, so the lines are caught there; every other line is
    written through once the block ends. With `-v 1` nothing is filtered.
    """
    if show_tensorflow_output():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            lines = caught.read().decode("utf-8", "replace").splitlines(True)
            sys.stderr.write("".join(line for line in lines if not _STARTUP_NOISE.search(line)))
            sys.stderr.flush()
