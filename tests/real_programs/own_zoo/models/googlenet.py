"""GoogLeNet (Inception v1) for CIFAR: a 3x3 stem, nine inception modules in three groups
separated by max pools, global average pooling. Each module runs four branches in parallel
(1x1; 1x1 -> 3x3; 1x1 -> 3x3 -> 3x3 in place of the paper's 5x5; 3x3 max pool -> 1x1) and
concatenates them along the channels."""

import torch
import torch.nn as nn


def conv_bn_relu(in_channels, out_channels, kernel_size):
    """k x k convolution with 'same' padding, batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(True),
    )


class Inception(nn.Module):
    """The four parallel branches of an inception module, concatenated."""

    def __init__(self, in_channels, n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj):
        super().__init__()
        self.branch1 = conv_bn_relu(in_channels, n1x1, 1)
        self.branch2 = nn.Sequential(
            conv_bn_relu(in_channels, n3x3_reduce, 1), conv_bn_relu(n3x3_reduce, n3x3, 3)
        )
        self.branch3 = nn.Sequential(
            conv_bn_relu(in_channels, n5x5_reduce, 1),
            conv_bn_relu(n5x5_reduce, n5x5, 3),
            conv_bn_relu(n5x5, n5x5, 3),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1), conv_bn_relu(in_channels, pool_proj, 1)
        )
        self.out_channels = n1x1 + n3x3 + n5x5 + pool_proj

    def forward(self, x):
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, 1)


# the paper's table 1, (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj); None = max pool
TABLE = [
    (64, 96, 128, 16, 32, 32),
    (128, 128, 192, 32, 96, 64),
    None,
    (192, 96, 208, 16, 48, 64),
    (160, 112, 224, 24, 64, 64),
    (128, 128, 256, 24, 64, 64),
    (112, 144, 288, 32, 64, 64),
    (256, 160, 320, 32, 128, 128),
    None,
    (256, 160, 320, 32, 128, 128),
    (384, 192, 384, 48, 128, 128),
]


class GoogLeNet(nn.Module):
    """Args:
    num_classes: Number of output logits.
    shrink: Divides every channel count of the paper's table (1 = full size).
    """

    def __init__(self, num_classes=10, shrink=1):
        super().__init__()
        stem = 192 // shrink
        self.pre_layers = conv_bn_relu(3, stem, 3)
        layers = []
        channels = stem
        for row in TABLE:
            if row is None:
                layers.append(nn.MaxPool2d(3, stride=2, padding=1))
            else:
                module = Inception(channels, *[max(n // shrink, 1) for n in row])
                layers.append(module)
                channels = module.out_channels
        self.inceptions = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(channels, num_classes)

    def forward(self, x):
        out = self.inceptions(self.pre_layers(x))
        out = self.avgpool(out)
        return self.linear(out.flatten(1))
