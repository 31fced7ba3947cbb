"""ShuffleNet v2 (Ma et al.) for CIFAR. A basic unit splits the channels in two, transforms one
half (1x1, 3x3 depthwise, 1x1) and concatenates it back to the untouched half; a downsampling
unit transforms two copies of the input; both end with a channel shuffle."""

import torch
import torch.nn as nn
import torch.nn.functional as F

# output channels of the three stages and the final 1x1 convolution, by width multiplier
WIDTHS = {
    0.5: (48, 96, 192, 1024),
    1.0: (116, 232, 464, 1024),
    1.5: (176, 352, 704, 1024),
    2.0: (224, 488, 976, 2048),
}


def shuffle(x, groups=2):
    """Interleave the channels of `groups` equal groups."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def conv_bn(in_channels, out_channels, kernel_size=1, stride=1, depthwise=False, relu=True):
    """Convolution with 'same' padding and batch norm, optionally followed by a ReLU."""
    layers = [
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            kernel_size // 2,
            groups=in_channels if depthwise else 1,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicUnit(nn.Module):
    """Half the channels pass through, the other half is transformed; then shuffled."""

    def __init__(self, channels):
        super().__init__()
        half = channels // 2
        self.branch = nn.Sequential(
            conv_bn(half, half),
            conv_bn(half, half, 3, depthwise=True, relu=False),
            conv_bn(half, half),
        )

    def forward(self, x):
        kept, changed = x.chunk(2, dim=1)
        return shuffle(torch.cat([kept, self.branch(changed)], 1))


class DownUnit(nn.Module):
    """Both branches see the whole input at stride 2; concatenated and shuffled."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        half = out_channels // 2
        self.left = nn.Sequential(
            conv_bn(in_channels, in_channels, 3, stride=2, depthwise=True, relu=False),
            conv_bn(in_channels, half),
        )
        self.right = nn.Sequential(
            conv_bn(in_channels, half),
            conv_bn(half, half, 3, stride=2, depthwise=True, relu=False),
            conv_bn(half, half),
        )

    def forward(self, x):
        return shuffle(torch.cat([self.left(x), self.right(x)], 1))


class ShuffleNetV2(nn.Module):
    """Args:
    width_mult: 0.5, 1.0, 1.5 or 2.0 (the paper's network sizes).
    num_classes: Number of output logits.
    depths: Units per stage.
    """

    def __init__(self, width_mult=1.0, num_classes=10, depths=(4, 8, 4)):
        super().__init__()
        *stages, last = WIDTHS[width_mult]
        self.stem = conv_bn(3, 24, 3)
        units = []
        channels = 24
        for out_channels, depth in zip(stages, depths):
            units.append(DownUnit(channels, out_channels))
            units += [BasicUnit(out_channels) for _ in range(depth - 1)]
            channels = out_channels
        self.units = nn.Sequential(*units)
        self.head = conv_bn(channels, last)
        self.fc = nn.Linear(last, num_classes)

    def forward(self, x):
        x = self.head(self.units(self.stem(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)
