"""Pre-activation ResNet-18 (He et al., "Identity Mappings in Deep Residual Networks"): batch
norm and ReLU come before each convolution, and the shortcut leaves the sum un-activated."""

import torch.nn as nn
import torch.nn.functional as F


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3, BN-ReLU-conv3x3, plus the (projected) input."""

    def __init__(self, in_channels, channels, stride=1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.project = None
        if stride != 1 or in_channels != channels:
            self.project = nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False)

    def forward(self, x):
        pre = F.relu(self.bn1(x))
        # the projection sees the activated input, the identity the raw one
        shortcut = self.project(pre) if self.project is not None else x
        out = self.conv1(pre)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet(nn.Module):
    """Args:
    depths: Blocks per stage.
    num_classes: Number of output logits.
    width: Channels of the first stage; later stages double them.
    """

    def __init__(self, depths=(2, 2, 2, 2), num_classes=10, width=64):
        super().__init__()
        self.stem = nn.Conv2d(3, width, kernel_size=3, padding=1, bias=False)
        blocks = []
        channels = width
        for index, depth in enumerate(depths):
            out_channels = width * 2**index
            for k in range(depth):
                stride = 2 if index > 0 and k == 0 else 1
                blocks.append(PreActBlock(channels, out_channels, stride))
                channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(channels)
        self.linear = nn.Linear(channels, num_classes)

    def forward(self, x):
        out = self.blocks(self.stem(x))
        out = F.relu(self.bn(out))
        out = F.avg_pool2d(out, 4)
        return self.linear(out.view(out.size(0), -1))


def preact_resnet18(**kwargs):
    """PreActResNet-18; `kwargs` go to ``PreActResNet``."""
    return PreActResNet((2, 2, 2, 2), **kwargs)
