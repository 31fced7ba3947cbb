"""ResNeXt-29 (Xie et al., "Aggregated Residual Transformations"): three stages of three
bottleneck blocks whose 3x3 convolution is split into `cardinality` groups; every stage doubles
the width of each group."""

import torch.nn as nn
import torch.nn.functional as F


class ResNeXtBlock(nn.Module):
    """1x1 reduce, grouped 3x3, 1x1 expand to twice the inner width, residual."""

    def __init__(self, in_channels, cardinality, group_width, stride):
        super().__init__()
        inner = cardinality * group_width
        out_channels = 2 * inner
        self.reduce = nn.Conv2d(in_channels, inner, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(inner)
        self.grouped = nn.Conv2d(
            inner, inner, 3, stride=stride, padding=1, groups=cardinality, bias=False
        )
        self.bn2 = nn.BatchNorm2d(inner)
        self.expand = nn.Conv2d(inner, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.reduce(x)))
        out = F.relu(self.bn2(self.grouped(out)))
        out = self.bn3(self.expand(out))
        return F.relu(out + self.shortcut(x))


class ResNeXt29(nn.Module):
    """Args:
    cardinality: Number of groups in every 3x3 convolution.
    group_width: Channels per group in the first stage (the "d" of "2x64d").
    num_classes: Number of output logits.
    """

    def __init__(self, cardinality=2, group_width=64, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        blocks = []
        channels = 64
        for stage in range(3):
            for k in range(3):
                stride = 2 if stage > 0 and k == 0 else 1
                block = ResNeXtBlock(channels, cardinality, group_width * 2**stage, stride)
                blocks.append(block)
                channels = block.bn3.num_features
        self.blocks = nn.Sequential(*blocks)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        out = self.blocks(self.stem(x))
        out = F.avg_pool2d(out, 8)
        return self.classifier(out.view(-1, self.classifier.in_features))


def resnext29_2x64d(**kwargs):
    """ResNeXt-29 with 2 groups of 64 channels; `kwargs` go to ``ResNeXt29``."""
    return ResNeXt29(2, 64, **kwargs)


def resnext29_4x32d(**kwargs):
    """ResNeXt-29 with 4 groups of 32 channels; `kwargs` go to ``ResNeXt29``."""
    return ResNeXt29(4, 32, **kwargs)
