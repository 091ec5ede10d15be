"""Values the library and the command lines share, written once.

This module imports nothing, so a command's `--help` (and absl's flag
definitions) read these without loading TensorFlow, NumPy or OpenCV; the
library modules that use them import them from here. The default model is
`tf_enet.artifacts.DEFAULT_PRESET`, beside the other on-disk names.
"""

# What prediction writes for each input `<stem>`: `<stem>_labels.png`
# (class ids), `<stem>_color.png` (the palette), `<stem>_overlay.jpg`.
OUTPUTS = ("labels", "color", "overlay")

# XLA runs ENet faster per image but compiles once per input shape, which
# pays off from about this many images of one size (measured with
# benchmarks/inference.py).
XLA_BREAK_EVEN_IMAGES = 60

# Test-time augmentation of a Predictor (`tf_enet.inference.Predictor`):
# "none"; "flip", the image and its left-right mirror; "flip+scales", both
# also at 1.25x the model's size, run in windows of the model's size.
TTA_MODES = ("none", "flip", "flip+scales")


def install_hint(extra):
    """How to add an extra to tf_enet, for errors naming a missing package.

    tf_enet installs from its checkout or a wheel built from it (README,
    "Install"), not from a package index, so `pip install "tf_enet[extra]"`
    would look for it where it is not.

    Args:
        extra: str. The extra's name, e.g. "train".

    Returns:
        str, e.g. `install the [train] extra (in the tf_enet checkout:
        pip install -e ".[train]")`.
    """
    return f'install the [{extra}] extra (in the tf_enet checkout: pip install -e ".[{extra}]")'


# TensorFlow's C++ log level while quiet (TF_CPP_MIN_LOG_LEVEL): errors
# only. `import tf_enet` sets it unless the user did, as the commands do.
QUIET_CPP_LOG_LEVEL = "2"
