"""A trained ENet rewritten into the ops TFLite runs fastest, for export.

`tflite_friendly(model)` returns a copy of a trained model that computes the
same function (up to float rounding; for int8, up to the activation ranges
it sets) with layers chosen for TFLite's XNNPack delegate;
`tf_enet.exporting.export_tflite` converts that copy. The copy shares the
original's weights and is never trained or saved. `uint8_input` edits an
int8 conversion so its uint8 input runs inside XNNPack.

    pooling.py       `WindowMaxPooling2D`, `WindowUnpooling2D`: argmax
                     pooling as window masks
    convolutions.py  `DepthToSpaceConv2D` (strided transposed convolutions),
                     `DepthwisePReLU`, `ChannelAffine`, `PooledChannelAffine`
    calibration.py   int8 ranges from calibration images, `Int8Range`
    rewrite.py       `tflite_friendly`: the passes that put them in place
    flatbuffer.py    `uint8_input`: the one edit of a converted model

Every replacement layer has a `get_config`, so a rewritten model's
configuration round-trips like any Keras model's.
"""

from tf_enet.lite.calibration import RANGES, Int8Range, calibrated_ranges
from tf_enet.lite.convolutions import (
    ChannelAffine,
    DepthToSpaceConv2D,
    DepthwisePReLU,
    PooledChannelAffine,
)
from tf_enet.lite.flatbuffer import uint8_input
from tf_enet.lite.pooling import ARITHMETIC_TIE, WindowMaxPooling2D, WindowUnpooling2D
from tf_enet.lite.rewrite import tflite_friendly

__all__ = [
    "ARITHMETIC_TIE",
    "ChannelAffine",
    "DepthToSpaceConv2D",
    "DepthwisePReLU",
    "Int8Range",
    "PooledChannelAffine",
    "RANGES",
    "WindowMaxPooling2D",
    "WindowUnpooling2D",
    "calibrated_ranges",
    "tflite_friendly",
    "uint8_input",
]
