"""MobileNetV2 (Sandler et al.) for CIFAR: inverted residual blocks that expand the channels
with a 1x1 convolution, filter them depthwise, and project back linearly, with an identity
shortcut where the shapes allow; ReLU6 activations."""

import torch.nn as nn

# (expansion, output channels, repeats, first stride); strides adapted to 32x32 inputs
SETTINGS = [
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def conv_bn(in_channels, out_channels, kernel_size, stride=1, groups=1, activation=True):
    """Convolution with 'same' padding and batch norm, optionally followed by a ReLU."""
    layers = [
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
    ]
    if activation:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """1x1 expansion, 3x3 depthwise convolution, linear 1x1 projection, identity shortcut where the
    shapes allow."""

    def __init__(self, in_channels, out_channels, expansion, stride):
        super().__init__()
        hidden = in_channels * expansion
        layers = []
        if expansion != 1:
            layers.append(conv_bn(in_channels, hidden, 1))
        layers.append(conv_bn(hidden, hidden, 3, stride=stride, groups=hidden))
        # the projection is linear: a ReLU here would destroy information in the narrow space
        layers.append(conv_bn(hidden, out_channels, 1, activation=False))
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x):
        if self.use_residual:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    """Args:
    num_classes: Number of output logits.
    width_mult: Scales every layer's channels.
    dropout: Dropout rate before the classifier (0 turns it off).
    """

    def __init__(self, num_classes=10, width_mult=1.0, dropout=0.2):
        super().__init__()
        channels = int(32 * width_mult)
        blocks = [conv_bn(3, channels, 3)]
        for expansion, out_channels, repeats, stride in SETTINGS:
            out_channels = int(out_channels * width_mult)
            for k in range(repeats):
                blocks.append(
                    InvertedResidual(channels, out_channels, expansion, stride if k == 0 else 1)
                )
                channels = out_channels
        last = int(1280 * width_mult)
        blocks.append(conv_bn(channels, last, 1))
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))

    def forward(self, x):
        x = self.features(x)
        x = x.mean([2, 3])
        return self.classifier(x)
