"""DenseNet-BC (Huang et al.) for CIFAR: dense blocks whose layers each add `growth_rate` new
channels concatenated onto their input, and transitions (batch norm, 1x1 convolution that
compresses by `reduction`, 2x2 average pool) between the blocks."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv to 4 x growth, BN-ReLU-3x3 conv to growth, concatenated to the input."""

    def __init__(self, in_channels, growth_rate):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, 4 * growth_rate, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth_rate)
        self.conv2 = nn.Conv2d(4 * growth_rate, growth_rate, 3, padding=1, bias=False)

    def forward(self, x):
        new = self.conv1(F.relu(self.bn1(x)))
        new = self.conv2(F.relu(self.bn2(new)))
        return torch.cat([x, new], dim=1)


class Transition(nn.Module):
    """Batch norm, ReLU, 1x1 convolution to `out_channels`, 2x2 average pool."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x):
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNet(nn.Module):
    """Args:
    block_sizes: Layers in each of the four dense blocks.
    growth_rate: Channels each layer adds.
    reduction: Fraction of the channels a transition keeps.
    num_classes: Number of output logits.
    """

    def __init__(self, block_sizes, growth_rate=32, reduction=0.5, num_classes=10):
        super().__init__()
        channels = 2 * growth_rate
        self.conv1 = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        stages = []
        for index, size in enumerate(block_sizes):
            layers = []
            for _ in range(size):
                layers.append(DenseLayer(channels, growth_rate))
                channels += growth_rate
            stages.append(nn.Sequential(*layers))
            if index < len(block_sizes) - 1:
                kept = int(math.floor(channels * reduction))
                stages.append(Transition(channels, kept))
                channels = kept
        self.features = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(channels)
        self.linear = nn.Linear(channels, num_classes)

    def forward(self, x):
        out = self.features(self.conv1(x))
        out = F.relu(self.bn(out))
        out = F.adaptive_avg_pool2d(out, 1)
        return self.linear(torch.flatten(out, 1))


def densenet121(**kwargs):
    """DenseNet-121's block sizes (6, 12, 24, 16); `kwargs` go to ``DenseNet``."""
    return DenseNet([6, 12, 24, 16], **kwargs)
