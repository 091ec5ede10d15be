"""Layers Keras does not provide: argmax pooling/unpooling, shape helpers and
fused batch normalization."""

from tf_enet.layers.batch_normalization import BatchNormalization
from tf_enet.layers.max_pooling_with_argmax import MaxPoolingWithArgmax2D
from tf_enet.layers.max_unpooling import MaxUnpooling2D
from tf_enet.layers.padding import ChannelPadding, CropToReference, PadToMultiple

__all__ = [
    "BatchNormalization",
    "ChannelPadding",
    "CropToReference",
    "MaxPoolingWithArgmax2D",
    "MaxUnpooling2D",
    "PadToMultiple",
]
