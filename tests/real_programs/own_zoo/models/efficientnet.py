"""EfficientNet-B0 (Tan & Le) for CIFAR: MBConv blocks (1x1 expansion, depthwise k x k
convolution, squeeze-excitation, linear 1x1 projection) with swish activations, stochastic depth
("drop connect") on the residual branch in training, and dropout before the classifier. Both
random parts are switched off by passing a rate of 0."""

import torch
import torch.nn as nn
import torch.nn.functional as F

# (expansion, output channels, repeats, kernel size, first stride), B0's table with the
# first two strides set to 1 for 32x32 inputs
STAGES = [
    (1, 16, 1, 3, 1),
    (6, 24, 2, 3, 1),
    (6, 40, 2, 5, 2),
    (6, 80, 3, 3, 2),
    (6, 112, 3, 5, 1),
    (6, 192, 4, 5, 2),
    (6, 320, 1, 3, 1),
]


def swish(x):
    """x * sigmoid(x) (the SiLU), written out as the paper defines it."""
    return x * torch.sigmoid(x)


def drop_connect(x, drop_rate):
    """Zero whole samples of the residual branch with probability `drop_rate`, scaling the kept
    ones so that the expectation is unchanged."""
    keep = 1.0 - drop_rate
    mask = torch.empty(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x * mask / keep


class SqueezeExcite(nn.Module):
    """Channel gate: global average, 1x1 reduce, activation, 1x1 expand, sigmoid, multiply."""

    def __init__(self, channels, squeezed):
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.expand = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, (1, 1))
        s = self.expand(F.silu(self.reduce(s)))
        return x * s.sigmoid()


class MBConv(nn.Module):
    """Mobile inverted bottleneck: 1x1 expansion, depthwise k x k, squeeze-excitation, 1x1
    projection, residual with drop connect where the shapes allow."""

    def __init__(self, in_channels, out_channels, expansion, kernel_size, stride, drop_rate):
        super().__init__()
        hidden = in_channels * expansion
        self.expansion = expansion
        self.drop_rate = drop_rate
        if expansion != 1:
            self.expand = nn.Conv2d(in_channels, hidden, 1, bias=False)
            self.bn0 = nn.BatchNorm2d(hidden)
        self.depthwise = nn.Conv2d(
            hidden,
            hidden,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=hidden,
            bias=False,
        )
        self.bn1 = nn.BatchNorm2d(hidden)
        self.se = SqueezeExcite(hidden, max(1, in_channels // 4))
        self.project = nn.Conv2d(hidden, out_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x):
        out = x
        if self.expansion != 1:
            out = swish(self.bn0(self.expand(out)))
        out = swish(self.bn1(self.depthwise(out)))
        out = self.bn2(self.project(self.se(out)))
        if not self.residual:
            return out
        if self.training and self.drop_rate > 0:
            out = drop_connect(out, self.drop_rate)
        return out + x


class EfficientNet(nn.Module):
    """Args:
    num_classes: Number of output logits.
    width_mult: Scales every layer's channels.
    dropout_rate: Dropout before the classifier (0 turns it off).
    drop_connect_rate: Largest stochastic-depth rate, reached by the last block (0 = off).
    """

    def __init__(self, num_classes=10, width_mult=1.0, dropout_rate=0.2, drop_connect_rate=0.2):
        super().__init__()
        channels = int(32 * width_mult)
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.SiLU()
        )
        total = sum(repeats for _, _, repeats, _, _ in STAGES)
        blocks = []
        for expansion, out_channels, repeats, kernel_size, stride in STAGES:
            out_channels = int(out_channels * width_mult)
            for k in range(repeats):
                rate = drop_connect_rate * len(blocks) / total
                blocks.append(
                    MBConv(
                        channels,
                        out_channels,
                        expansion,
                        kernel_size,
                        stride if k == 0 else 1,
                        rate,
                    )
                )
                channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.Conv2d(channels, 4 * channels, 1, bias=False),
            nn.BatchNorm2d(4 * channels),
            nn.SiLU(inplace=True),
        )
        self.dropout = nn.Dropout(dropout_rate)
        self.classifier = nn.Linear(4 * channels, num_classes)

    def forward(self, x):
        x = self.head(self.blocks(self.stem(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(self.dropout(x))


def efficientnet_b0(**kwargs):
    """EfficientNet-B0; `kwargs` go to ``EfficientNet``."""
    return EfficientNet(**kwargs)
