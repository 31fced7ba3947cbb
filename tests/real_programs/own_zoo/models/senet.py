"""SE-ResNet-18 (Hu et al., "Squeeze-and-Excitation Networks") for CIFAR: residual blocks whose
output channels are rescaled by a gate computed from their global average (squeeze), a
bottleneck of two 1x1 convolutions and a sigmoid (excitation)."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class SqueezeExcite(nn.Module):
    """Channel gate: global average, 1x1 reduce, activation, 1x1 expand, sigmoid, multiply."""

    def __init__(self, channels, reduction=16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x):
        s = F.avg_pool2d(x, kernel_size=x.size(2))
        s = F.relu(self.fc1(s))
        return x * torch.sigmoid(self.fc2(s))


class SEBlock(nn.Module):
    """A basic residual block whose branch is rescaled by squeeze-excitation."""

    def __init__(self, in_channels, channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.se = SqueezeExcite(channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(channels),
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(out)))
        return F.relu(out + self.shortcut(x))


class SENet(nn.Module):
    """Args:
    depths: Blocks per stage.
    num_classes: Number of output logits.
    width: Channels of the first stage; later stages double them.
    """

    def __init__(self, depths=(2, 2, 2, 2), num_classes=10, width=64):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        layers = []
        channels = width
        for index, depth in enumerate(depths):
            for k in range(depth):
                stride = 2 if index > 0 and k == 0 else 1
                layers.append(SEBlock(channels, width * 2**index, stride))
                channels = width * 2**index
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(channels, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.pool(self.layers(out))
        return self.linear(torch.flatten(out, 1))


def senet18(**kwargs):
    """SE-ResNet-18; `kwargs` go to ``SENet``."""
    return SENet((2, 2, 2, 2), **kwargs)
