"""MobileNet v1 (Howard et al.) for CIFAR: a stack of depthwise separable convolutions (a 3x3
depthwise convolution, groups = channels, then a 1x1 pointwise one, each with batch norm and
ReLU) scaled by a width multiplier."""

import torch.nn as nn
import torch.nn.functional as F

# (output channels, stride) of the separable layers; the paper's list with the first stride
# dropped for 32x32 inputs
LAYERS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)]
LAYERS += [(512, 1)] * 5 + [(1024, 2), (1024, 1)]


class SeparableConv(nn.Module):
    """3x3 depthwise convolution then 1x1 pointwise convolution, each with batch norm and ReLU."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, 3, stride=stride, padding=1, groups=in_channels, bias=False
        )
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        x = F.relu(self.bn1(self.depthwise(x)))
        return F.relu(self.bn2(self.pointwise(x)))


class MobileNet(nn.Module):
    """Args:
    num_classes: Number of output logits.
    width_mult: Scales every layer's channels (the paper's alpha).
    """

    def __init__(self, num_classes=10, width_mult=1.0):
        super().__init__()
        channels = int(32 * width_mult)
        self.conv1 = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        layers = []
        for out_channels, stride in LAYERS:
            out_channels = int(out_channels * width_mult)
            layers.append(SeparableConv(channels, out_channels, stride))
            channels = out_channels
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.pool(self.layers(x))
        return self.fc(x.view(x.size(0), -1))
