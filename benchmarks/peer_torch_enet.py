"""ENet in PyTorch, the peer that `compare.py` times tf_enet against.

Written from the paper (Paszke, Chaurasia, Kim, Culurciello, "ENet: A Deep
Neural Network Architecture for Real-Time Semantic Segmentation",
arXiv:1606.02147, Table 1 and Sec. 3) with the layer configuration of
`tf_enet.build_enet(num_classes)`, so both frameworks run the same network:

- initial block: a 3x3 stride-2 convolution with 13 filters beside 2x2 max
  pooling of the 3 input channels, concatenated to 16 channels, then batch
  norm and PReLU;
- bottlenecks: a 1x1 projection to a quarter of the channels (2x2 stride 2
  when downsampling), the main convolution (3x3, dilated 3x3, or 5x1 then
  1x5 for "asymmetric"), a 1x1 expansion, spatial dropout (0.01 in stage 1,
  0.1 after) and the shortcut; batch norm after each convolution and the
  activation after the projection, the main convolution and the addition;
- downsampling shortcut: 2x2 max pooling that keeps its indices, zero
  channels appended; upsampling shortcut: 1x1 convolution, batch norm and
  max unpooling with the matching encoder indices; upsampling branch: 3x3
  stride-2 transposed convolution;
- PReLU (one slope per channel) in the encoder, ReLU in the decoder;
  convolutions without bias, except the final 2x2 stride-2 transposed
  convolution ("fullconv") and the encoder-stage classifier;
- batch norm momentum 0.1 and epsilon 1e-5 (Torch's; Keras's 0.9 is the
  same rate);
- TensorFlow's "same" padding where the paper leaves it open: the stride-2
  3x3 convolution pads only the bottom and right, and the stride-2 3x3
  transposed convolution keeps the first `2 * size` rows and columns, so
  that with tf_enet's weights the peer computes tf_enet's logits.

Like tf_enet's model, it takes RGB pixels in [0, 255], normalises them with
the ImageNet mean and standard deviation, pads height and width to a
multiple of 8 and crops the logits back. Tensors are NCHW, PyTorch's own
layout.

    model = ENet(12).eval()
    with torch.inference_mode():
        logits = model(images)  # [batch, 12, height, width]
"""

import torch
import torch.nn.functional as F
from torch import nn

# The same statistics as `tf_enet.model.PIXEL_MEAN` and `PIXEL_STD`.
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)
OUTPUT_STRIDE = 8

_BN_MOMENTUM = 0.1
_BN_EPSILON = 1e-5

# Stages 2 and 3 after bottleneck2.0 (Table 1): (kind, dilation or kernel).
DILATED_STAGE = (
    ("regular", 1),
    ("dilated", 2),
    ("asymmetric", 5),
    ("dilated", 4),
    ("regular", 1),
    ("dilated", 8),
    ("asymmetric", 5),
    ("dilated", 16),
)


def _activation(kind, channels):
    if kind == "prelu":
        return nn.PReLU(channels)
    if kind == "relu":
        return nn.ReLU()
    raise ValueError(f"`activation` must be 'prelu' or 'relu'; received {kind!r}.")


def _batch_norm(channels):
    return nn.BatchNorm2d(channels, eps=_BN_EPSILON, momentum=_BN_MOMENTUM)


class InitialBlock(nn.Module):
    """3x3 stride-2 convolution (13 filters) beside 2x2 max pooling: 16 channels."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 13, 3, stride=2, bias=False)
        self.bn = _batch_norm(16)
        self.activation = _activation("prelu", 16)

    def forward(self, x):
        conv = self.conv(F.pad(x, (0, 1, 0, 1)))  # "same" for even sizes
        x = torch.cat([conv, F.max_pool2d(x, 2)], dim=1)
        return self.activation(self.bn(x))


class Bottleneck(nn.Module):
    """Regular, dilated or asymmetric bottleneck with an identity shortcut.

    Args:
        channels: int. Input and output channels.
        activation: str. "prelu" or "relu".
        dropout: float. Spatial dropout rate of the branch.
        kind: str. "regular", "dilated" or "asymmetric".
        size: int. The dilation ("dilated") or the kernel length
            ("asymmetric"); ignored for "regular".
    """

    def __init__(self, channels, activation, dropout, kind="regular", size=1):
        super().__init__()
        internal = channels // 4
        self.projection = nn.Conv2d(channels, internal, 1, bias=False)
        self.projection_bn = _batch_norm(internal)
        self.projection_activation = _activation(activation, internal)
        if kind == "asymmetric":
            self.conv = nn.Sequential(
                nn.Conv2d(internal, internal, (size, 1), padding=(size // 2, 0), bias=False),
                nn.Conv2d(internal, internal, (1, size), padding=(0, size // 2), bias=False),
            )
        elif kind in ("regular", "dilated"):
            dilation = size if kind == "dilated" else 1
            self.conv = nn.Conv2d(
                internal, internal, 3, padding=dilation, dilation=dilation, bias=False
            )
        else:
            raise ValueError(
                f"`kind` must be 'regular', 'dilated' or 'asymmetric'; received {kind!r}."
            )
        self.conv_bn = _batch_norm(internal)
        self.conv_activation = _activation(activation, internal)
        self.expansion = nn.Conv2d(internal, channels, 1, bias=False)
        self.expansion_bn = _batch_norm(channels)
        self.dropout = nn.Dropout2d(dropout)
        self.activation = _activation(activation, channels)

    def forward(self, x):
        branch = self.projection_activation(self.projection_bn(self.projection(x)))
        branch = self.conv_activation(self.conv_bn(self.conv(branch)))
        branch = self.dropout(self.expansion_bn(self.expansion(branch)))
        return self.activation(x + branch)


class DownsamplingBottleneck(nn.Module):
    """Bottleneck halving the resolution; returns (outputs, pooling indices)."""

    def __init__(self, in_channels, channels, activation, dropout):
        super().__init__()
        internal = channels // 4
        self.extra_channels = channels - in_channels
        self.projection = nn.Conv2d(in_channels, internal, 2, stride=2, bias=False)
        self.projection_bn = _batch_norm(internal)
        self.projection_activation = _activation(activation, internal)
        self.conv = nn.Conv2d(internal, internal, 3, padding=1, bias=False)
        self.conv_bn = _batch_norm(internal)
        self.conv_activation = _activation(activation, internal)
        self.expansion = nn.Conv2d(internal, channels, 1, bias=False)
        self.expansion_bn = _batch_norm(channels)
        self.dropout = nn.Dropout2d(dropout)
        self.activation = _activation(activation, channels)

    def forward(self, x):
        main, indices = F.max_pool2d(x, 2, return_indices=True)
        main = F.pad(main, (0, 0, 0, 0, 0, self.extra_channels))
        branch = self.projection_activation(self.projection_bn(self.projection(x)))
        branch = self.conv_activation(self.conv_bn(self.conv(branch)))
        branch = self.dropout(self.expansion_bn(self.expansion(branch)))
        return self.activation(main + branch), indices


class UpsamplingBottleneck(nn.Module):
    """Bottleneck doubling the resolution with the encoder's pooling indices."""

    def __init__(self, in_channels, channels, activation):
        super().__init__()
        internal = channels // 4
        self.main_conv = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.main_bn = _batch_norm(channels)
        self.projection = nn.Conv2d(in_channels, internal, 1, bias=False)
        self.projection_bn = _batch_norm(internal)
        self.projection_activation = _activation(activation, internal)
        self.transposed_conv = nn.ConvTranspose2d(internal, internal, 3, stride=2, bias=False)
        self.conv_bn = _batch_norm(internal)
        self.conv_activation = _activation(activation, internal)
        self.expansion = nn.Conv2d(internal, channels, 1, bias=False)
        self.expansion_bn = _batch_norm(channels)
        self.activation = _activation(activation, channels)

    def forward(self, x, indices):
        height, width = 2 * x.shape[2], 2 * x.shape[3]
        main = F.max_unpool2d(self.main_bn(self.main_conv(x)), indices, 2)
        branch = self.projection_activation(self.projection_bn(self.projection(x)))
        # [batch, internal, 2h + 1, 2w + 1] -> "same": the first 2h rows, 2w columns
        branch = self.transposed_conv(branch)[:, :, :height, :width]
        branch = self.conv_activation(self.conv_bn(branch))
        branch = self.expansion_bn(self.expansion(branch))
        return self.activation(main + branch)


class ENet(nn.Module):
    """ENet (Table 1 of the paper), or its encoder with a 1x1 classifier.

    Args:
        num_classes: int. Number of classes (logit channels).
        encoder_only: bool. Build the paper's first training stage: the
            encoder and a 1x1 convolution to `num_classes`, whose logits are
            at 1/8 of the (padded) input size.

    Input shape:
        float `[batch, 3, height, width]`, RGB pixels in [0, 255].

    Output shape:
        `[batch, num_classes, height, width]`, or with `encoder_only`
        `[batch, num_classes, ceil(height / 8), ceil(width / 8)]`.
    """

    def __init__(self, num_classes, encoder_only=False):
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"`num_classes` must be a positive integer; received {num_classes!r}.")
        self.encoder_only = encoder_only
        self.register_buffer(
            "pixel_mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "pixel_std", torch.tensor(PIXEL_STD).view(1, 3, 1, 1), persistent=False
        )
        self.initial_block = InitialBlock()
        self.bottleneck1_0 = DownsamplingBottleneck(16, 64, "prelu", 0.01)
        self.stage1 = nn.Sequential(*(Bottleneck(64, "prelu", 0.01) for _ in range(4)))
        self.bottleneck2_0 = DownsamplingBottleneck(64, 128, "prelu", 0.1)
        self.stages2_3 = nn.Sequential(
            *(
                Bottleneck(128, "prelu", 0.1, kind, size)
                for _ in range(2)
                for kind, size in DILATED_STAGE
            )
        )
        if encoder_only:
            self.classifier = nn.Conv2d(128, num_classes, 1)
            return
        self.bottleneck4_0 = UpsamplingBottleneck(128, 64, "relu")
        self.stage4 = nn.Sequential(*(Bottleneck(64, "relu", 0.0) for _ in range(2)))
        self.bottleneck5_0 = UpsamplingBottleneck(64, 16, "relu")
        self.stage5 = Bottleneck(16, "relu", 0.0)
        self.fullconv = nn.ConvTranspose2d(16, num_classes, 2, stride=2)

    def forward(self, images):
        height, width = images.shape[2], images.shape[3]
        x = (images - self.pixel_mean) / self.pixel_std
        x = F.pad(x, (0, -width % OUTPUT_STRIDE, 0, -height % OUTPUT_STRIDE))
        x = self.initial_block(x)
        x, indices1 = self.bottleneck1_0(x)
        x = self.stage1(x)
        x, indices2 = self.bottleneck2_0(x)
        x = self.stages2_3(x)
        if self.encoder_only:
            return self.classifier(x)
        x = self.stage4(self.bottleneck4_0(x, indices2))
        x = self.stage5(self.bottleneck5_0(x, indices1))
        return self.fullconv(x)[:, :, :height, :width]


def count_trainable_parameters(module):
    """Number of trainable parameters (batch norm statistics are buffers)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def convolution_kernels(module):
    """The kernels of every convolution, the parameters weight decay applies to.

    tf_enet's training puts its L2 penalty on convolution kernels only (not
    biases, batch norm or PReLU); the peer's optimizer does the same with
    these in their own parameter group.
    """
    return [m.weight for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
