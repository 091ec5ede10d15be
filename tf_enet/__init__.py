"""tf_enet: ENet real-time semantic segmentation in TensorFlow 2 / Keras 3.

Importing the package registers its layers with Keras, so saved `.keras`
models load with `keras.saving.load_model(path)` in safe mode.
"""

from tf_enet import layers
from tf_enet import losses  # registers the loss saved with trained models
from tf_enet.model import (
    ENet,
    ENetConfig,
    build_enet,
    build_enet_encoder,
    transfer_weights,
)

__version__ = "0.1.0"

__all__ = [
    "ENet",
    "ENetConfig",
    "build_enet",
    "build_enet_encoder",
    "layers",
    "losses",
    "transfer_weights",
]
