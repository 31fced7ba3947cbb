"""Dual Path Networks (Chen et al.) for CIFAR. Each block's output has a residual part, added to
the input's residual part as in ResNet, and a densely connected part, concatenated onto the
input's dense part as in DenseNet; the block's 3x3 convolution is grouped as in ResNeXt."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class DualPathBlock(nn.Module):
    """1x1, grouped 3x3, 1x1 bottleneck whose output feeds the residual path (its first `residual`
    channels) and the dense path (the rest)."""

    def __init__(self, in_channels, inner, residual, dense, stride, groups, project):
        super().__init__()
        self.residual = residual
        self.conv1 = nn.Conv2d(in_channels, inner, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, inner, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(inner)
        self.conv3 = nn.Conv2d(inner, residual + dense, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(residual + dense)
        self.shortcut = None
        if project:
            # the first block of a stage re-maps the input into both paths
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, residual + dense, 1, stride=stride, bias=False),
                nn.BatchNorm2d(residual + dense),
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.shortcut is not None:
            x = self.shortcut(x)
        r = self.residual
        residual = x[:, :r] + out[:, :r]
        dense = torch.cat([x[:, r:], out[:, r:]], 1)
        return F.relu(torch.cat([residual, dense], 1))


class DPN(nn.Module):
    """Args:
    inner: Bottleneck width of each stage.
    residual: Residual-path channels of each stage.
    depths: Blocks per stage.
    dense: Channels each block adds to the dense path, per stage.
    groups: Groups of the 3x3 convolutions.
    num_classes: Number of output logits.
    shrink: Divides every channel count and the number of groups (1 = full size).
    """

    def __init__(self, inner, residual, depths, dense, groups=32, num_classes=10, shrink=1):
        super().__init__()
        # `shrink` divides every channel count and the groups, keeping channels per group
        inner, residual, dense = (
            [n // shrink for n in sizes] for sizes in (inner, residual, dense)
        )
        groups //= shrink
        stem = 64 // shrink
        self.conv1 = nn.Conv2d(3, stem, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        blocks = []
        channels = stem
        for stage in range(4):
            for k in range(depths[stage]):
                blocks.append(
                    DualPathBlock(
                        channels,
                        inner[stage],
                        residual[stage],
                        dense[stage],
                        stride=2 if stage > 0 and k == 0 else 1,
                        groups=groups,
                        project=k == 0,
                    )
                )
                # the first block's shortcut starts the dense path at `dense` channels
                grown = dense[stage] * (k + 2)
                channels = residual[stage] + grown
        self.blocks = nn.Sequential(*blocks)
        self.linear = nn.Linear(channels, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.blocks(out)
        out = F.adaptive_avg_pool2d(out, (1, 1)).flatten(1)
        return self.linear(out)


def dpn26(**kwargs):
    """DPN-26: two blocks per stage; `kwargs` go to ``DPN``."""
    return DPN(
        (96, 192, 384, 768), (256, 512, 1024, 2048), (2, 2, 2, 2), (16, 32, 24, 128), **kwargs
    )


def dpn92(**kwargs):
    """DPN-92: (3, 4, 20, 3) blocks per stage; `kwargs` go to ``DPN``."""
    return DPN(
        (96, 192, 384, 768), (256, 512, 1024, 2048), (3, 4, 20, 3), (16, 32, 24, 128), **kwargs
    )
