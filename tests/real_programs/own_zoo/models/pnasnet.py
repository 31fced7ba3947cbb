"""A PNASNet-style network (Liu et al., "Progressive Neural Architecture Search") for CIFAR:
stacks of cells whose branches are separable convolutions (depthwise k x k, then pointwise
1x1) and max pools, summed in pairs and concatenated; reduction cells halve the resolution."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class SepConv(nn.Module):
    """Depthwise k x k convolution, pointwise 1x1 convolution, batch norm."""

    def __init__(self, in_channels, out_channels, kernel_size, stride):
        super().__init__()
        self.depthwise = nn.Conv2d(
            in_channels,
            in_channels,
            kernel_size,
            stride,
            padding=kernel_size // 2,
            groups=in_channels,
            bias=False,
        )
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return self.bn(self.pointwise(self.depthwise(x)))


class Cell(nn.Module):
    """Two blocks: (sep 7x7 + 3x3 max pool) and (sep 5x5 + sep 3x3), concatenated and mixed
    back to `out_channels` by a 1x1 convolution."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.stride = stride
        self.sep7 = SepConv(in_channels, out_channels, 7, stride)
        self.sep5 = SepConv(in_channels, out_channels, 5, stride)
        self.sep3 = SepConv(in_channels, out_channels, 3, stride)
        self.pool_proj = None
        if stride == 2 or in_channels != out_channels:
            self.pool_proj = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)
            )
        self.mix = nn.Sequential(
            nn.Conv2d(2 * out_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)
        )

    def forward(self, x):
        pooled = F.max_pool2d(x, 3, stride=self.stride, padding=1)
        if self.pool_proj is not None:
            pooled = self.pool_proj(pooled)
        first = F.relu(self.sep7(x) + pooled)
        second = F.relu(self.sep5(x) + self.sep3(x))
        return F.relu(self.mix(torch.cat([first, second], dim=1)))


class PNASNet(nn.Module):
    """Args:
    width: Channels of the first stage; the reduction cells double them.
    cells_per_stage: Normal cells between reductions.
    num_classes: Number of output logits.
    """

    def __init__(self, width=44, cells_per_stage=6, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        cells = []
        channels = width
        for stage in range(3):
            if stage > 0:
                cells.append(Cell(channels, 2 * channels, stride=2))
                channels *= 2
            cells += [Cell(channels, channels) for _ in range(cells_per_stage)]
        self.cells = nn.Sequential(*cells)
        self.linear = nn.Linear(channels, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.cells(out)
        out = F.avg_pool2d(out, 8)
        return self.linear(out.view(out.size(0), -1))
