"""RegNetX (Radosavovic et al., "Designing Network Design Spaces") for CIFAR: four stages of
X blocks (1x1, 3x3 grouped convolution with a fixed channels-per-group "group width", 1x1, and a
residual connection). The 200MF configuration is the default."""

import torch.nn as nn
import torch.nn.functional as F


class XBlock(nn.Module):
    """RegNet's X block: 1x1, grouped 3x3 (channels per group fixed), 1x1, residual."""

    def __init__(self, in_channels, out_channels, stride, group_width, bottleneck_ratio=1):
        super().__init__()
        inner = out_channels // bottleneck_ratio
        groups = inner // group_width
        self.a = nn.Sequential(
            nn.Conv2d(in_channels, inner, 1, bias=False), nn.BatchNorm2d(inner), nn.ReLU(True)
        )
        self.b = nn.Sequential(
            nn.Conv2d(inner, inner, 3, stride=stride, padding=1, groups=groups, bias=False),
            nn.BatchNorm2d(inner),
            nn.ReLU(True),
        )
        self.c = nn.Sequential(
            nn.Conv2d(inner, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)
        )
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x):
        identity = x if self.shortcut is None else self.shortcut(x)
        return F.relu(self.c(self.b(self.a(x))) + identity)


class RegNetX(nn.Module):
    """Args:
    depths: Blocks per stage.
    widths: Output channels per stage (multiples of `group_width`).
    group_width: Channels in each group of the 3x3 convolutions.
    num_classes: Number of output logits.
    stem: Channels of the stem convolution.
    """

    def __init__(self, depths, widths, group_width, num_classes=10, stem=32):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem, 3, padding=1, bias=False), nn.BatchNorm2d(stem), nn.ReLU(True)
        )
        stages = []
        channels = stem
        for index, (depth, width) in enumerate(zip(depths, widths)):
            blocks = []
            for k in range(depth):
                # no downsampling in the first stage: CIFAR images are small already
                stride = 2 if index > 0 and k == 0 else 1
                blocks.append(XBlock(channels, width, stride, group_width))
                channels = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        x = self.avgpool(self.stages(self.stem(x)))
        return self.fc(x.view(x.size(0), -1))


def regnetx_200mf(**kwargs):
    """RegNetX-200MF; `kwargs` go to ``RegNetX``."""
    return RegNetX((1, 1, 4, 7), (24, 56, 152, 368), group_width=8, **kwargs)


def regnetx_400mf(**kwargs):
    """RegNetX-400MF; `kwargs` go to ``RegNetX``."""
    return RegNetX((1, 2, 7, 12), (32, 64, 160, 384), group_width=16, **kwargs)
