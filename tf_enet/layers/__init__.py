"""Layers Keras does not provide: argmax pooling/unpooling and shape helpers."""

from tf_enet.layers.max_pooling_with_argmax import MaxPoolingWithArgmax2D
from tf_enet.layers.max_unpooling import MaxUnpooling2D
from tf_enet.layers.padding import ChannelPadding, CropToReference, PadToMultiple

__all__ = [
    "ChannelPadding",
    "CropToReference",
    "MaxPoolingWithArgmax2D",
    "MaxUnpooling2D",
    "PadToMultiple",
]
