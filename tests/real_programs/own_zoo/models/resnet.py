"""ResNet-18/34/50 for CIFAR: a 3x3 stem without pooling, four stages of basic (two 3x3) or
bottleneck (1x1, 3x3, 1x1 with 4x expansion) blocks, global average pooling and a linear head."""

import torch
import torch.nn as nn
import torch.nn.functional as F


def projection(in_channels, out_channels, stride):
    """1x1 convolution + batch norm that matches a shortcut to the residual branch's shape."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm, added to the (projected) input."""

    expansion = 1

    def __init__(self, in_channels, channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        if stride != 1 or in_channels != channels:
            self.shortcut = projection(in_channels, channels, stride)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (4x), added to the (projected) input."""

    expansion = 4

    def __init__(self, in_channels, channels, stride=1):
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = projection(in_channels, out_channels, stride)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += self.shortcut(x)
        return self.relu(out)


class ResNet(nn.Module):
    """A residual network.

    Args:
        block: ``BasicBlock`` or ``Bottleneck``.
        depths: Number of blocks in each of the four stages.
        num_classes: Number of output logits.
        width: Channels of the first stage (64 in the paper); each later stage doubles them.
    """

    def __init__(self, block, depths, num_classes=10, width=64):
        super().__init__()
        self.in_channels = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        stages = []
        for index, depth in enumerate(depths):
            stride = 1 if index == 0 else 2
            stages.append(self._stage(block, width * 2**index, depth, stride))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(self.in_channels, num_classes)

    def _stage(self, block, channels, depth, stride):
        blocks = []
        for s in [stride] + [1] * (depth - 1):
            blocks.append(block(self.in_channels, channels, s))
            self.in_channels = channels * block.expansion
        return nn.Sequential(*blocks)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def resnet18(**kwargs):
    """ResNet-18; `kwargs` go to ``ResNet``."""
    return ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)


def resnet34(**kwargs):
    """ResNet-34; `kwargs` go to ``ResNet``."""
    return ResNet(BasicBlock, [3, 4, 6, 3], **kwargs)


def resnet50(**kwargs):
    """ResNet-50 (bottleneck blocks); `kwargs` go to ``ResNet``."""
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)
