"""ShuffleNet v1 (Zhang et al.) for CIFAR: units of grouped 1x1 convolutions with a channel
shuffle between them (so that information crosses the groups), a 3x3 depthwise convolution,
and either an identity shortcut added or, when downsampling, an average-pooled one concatenated."""

import torch
import torch.nn as nn
import torch.nn.functional as F


def channel_shuffle(x, groups):
    """(N, g*c, H, W) -> (N, c*g, H, W): interleave the channels of the groups."""
    n, channels, h, w = x.size()
    x = x.view(n, groups, channels // groups, h, w)
    x = x.permute(0, 2, 1, 3, 4)
    return x.reshape(n, channels, h, w)


class ShuffleUnit(nn.Module):
    """Grouped 1x1, channel shuffle, 3x3 depthwise, grouped 1x1; residual add or, when downsampling,
    concatenation with the pooled input."""

    def __init__(self, in_channels, out_channels, stride, groups, first_groups):
        super().__init__()
        self.stride = stride
        self.groups = first_groups
        if stride == 2:
            out_channels -= in_channels  # the pooled input fills the rest
        mid = out_channels // 4
        self.conv1 = nn.Conv2d(in_channels, mid, 1, groups=first_groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_channels, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = channel_shuffle(out, self.groups)
        out = self.bn2(self.conv2(out))
        out = self.bn3(self.conv3(out))
        if self.stride == 2:
            pooled = F.avg_pool2d(x, 3, stride=2, padding=1)
            return F.relu(torch.cat([out, pooled], 1))
        return F.relu(out + x)


class ShuffleNet(nn.Module):
    """Args:
    groups: Groups of the 1x1 convolutions.
    stage_channels: Output channels of the three stages.
    depths: Units per stage (the first of each downsamples).
    num_classes: Number of output logits.
    """

    def __init__(self, groups=2, stage_channels=(200, 400, 800), depths=(4, 8, 4), num_classes=10):
        super().__init__()
        channels = 24
        self.conv1 = nn.Conv2d(3, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        units = []
        for out_channels, depth in zip(stage_channels, depths):
            for k in range(depth):
                # the stem's 24 channels are too few to split into groups
                first_groups = 1 if channels == 24 else groups
                units.append(
                    ShuffleUnit(channels, out_channels, 2 if k == 0 else 1, groups, first_groups)
                )
                channels = out_channels
        self.units = nn.Sequential(*units)
        self.linear = nn.Linear(channels, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.units(out)
        out = F.adaptive_avg_pool2d(out, 1)
        return self.linear(out.view(out.size(0), -1))


def shufflenet_g2(**kwargs):
    """ShuffleNet with 2 groups; `kwargs` go to ``ShuffleNet``."""
    return ShuffleNet(2, (200, 400, 800), **kwargs)


def shufflenet_g3(**kwargs):
    """ShuffleNet with 3 groups; `kwargs` go to ``ShuffleNet``."""
    return ShuffleNet(3, (240, 480, 960), **kwargs)
