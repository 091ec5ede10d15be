"""tf_enet: ENet real-time semantic segmentation in TensorFlow 2 / Keras 3.

    import tf_enet
    model = tf_enet.ENet.from_preset("enet_camvid")  # the trained CamVid model
    model = tf_enet.build_enet(12)                    # an untrained network
    tf_enet.list_presets()                            # ("enet_camvid",)

`import tf_enet` alone loads neither TensorFlow nor Keras: the names below
load their module on first use (PEP 562), so the command lines parse their
flags and answer `--help` without TensorFlow. tf_enet's layers and loss are
registered with Keras when a model name (`ENet`, `build_enet`, ...) is first
used, or at once if Keras was imported before tf_enet; `.keras` files saved
from tf_enet models then load with `keras.saving.load_model(path)` in safe
mode (`import keras, tf_enet` is enough).

Using tf_enet from Python is as quiet as its commands: `import tf_enet` sets
`TF_CPP_MIN_LOG_LEVEL=2` unless it is set already, so TensorFlow's C++ INFO
and WARNING lines (a converter's, a session's) stay off the terminal and
errors still show. It takes effect when tf_enet is imported before
TensorFlow; `TF_CPP_MIN_LOG_LEVEL=0` in the environment shows everything.
"""

import importlib
import os
import sys

from tf_enet.defaults import QUIET_CPP_LOG_LEVEL

__version__ = "0.1.0"

# The user's own TensorFlow C++ log level (None: tf_enet chose it), which
# `-v 1` on a command restores.
USER_CPP_LOG_LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_CPP_LOG_LEVEL)

# Public name -> the module defining it.
_MODEL_NAMES = ("ENet", "ENetConfig", "build_enet", "build_enet_encoder", "transfer_weights")
_LAZY_NAMES = {
    **{name: "tf_enet.model" for name in _MODEL_NAMES},
    "list_presets": "tf_enet.artifacts",
}
_SUBMODULES = ("layers", "losses", "presets")

__all__ = sorted([*_LAZY_NAMES, *_SUBMODULES])


def __getattr__(name):
    if name in _LAZY_NAMES:
        module = _LAZY_NAMES[name]
        if module == "tf_enet.model":
            # A model saved compiled names tf_enet's loss: register it too.
            importlib.import_module("tf_enet.losses")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"tf_enet.{name}")
    raise AttributeError(f"module 'tf_enet' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


if "keras" in sys.modules:
    # TensorFlow is loaded already, so registering costs little: after
    # `import keras, tf_enet`, saved tf_enet models load by name.
    __getattr__("ENet")
