"""Deep Layer Aggregation (Yu et al.) for CIFAR. Trees of residual blocks whose outputs are
merged by "root" nodes (concatenate, 1x1 convolution, batch norm, ReLU). ``DLA`` feeds each
root every earlier level of its tree (iterative plus hierarchical aggregation); ``SimpleDLA``
uses plain binary trees whose roots merge two subtrees."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a (projected) shortcut."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Root(nn.Module):
    """Concatenates its inputs and mixes them with a 1x1 convolution, batch norm and ReLU."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, parts):
        return F.relu(self.bn(self.conv(torch.cat(parts, 1))))


class Tree(nn.Module):
    """A DLA tree of depth `levels`: level k is a subtree of depth k on the previous level's
    output; the root merges all levels' outputs and the tree's first block's output."""

    def __init__(self, in_channels, out_channels, levels=1, stride=1):
        super().__init__()
        self.levels = levels
        self.prev_root = ResidualBlock(in_channels, out_channels, stride)
        self.subtrees = nn.ModuleList()
        for k in range(1, levels):
            self.subtrees.append(Tree(out_channels, out_channels, levels=k))
        self.last = ResidualBlock(out_channels, out_channels)
        self.root = Root((levels + 1) * out_channels, out_channels)

    def forward(self, x):
        out = self.prev_root(x)
        parts = [out]
        for subtree in reversed(self.subtrees):
            out = subtree(out)
            parts.append(out)
        parts.append(self.last(out))
        return self.root(parts)


class BinaryTree(nn.Module):
    """SimpleDLA's tree: two children (blocks at level 1, subtrees above) merged by a root."""

    def __init__(self, in_channels, out_channels, levels=1, stride=1):
        super().__init__()
        if levels == 1:
            self.left = ResidualBlock(in_channels, out_channels, stride)
            self.right = ResidualBlock(out_channels, out_channels)
        else:
            self.left = BinaryTree(in_channels, out_channels, levels - 1, stride)
            self.right = BinaryTree(out_channels, out_channels, levels - 1)
        self.root = Root(2 * out_channels, out_channels)

    def forward(self, x):
        left = self.left(x)
        right = self.right(left)
        return self.root([left, right])


def base_layer(in_channels, out_channels):
    """3x3 convolution, batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(True),
    )


class DLA(nn.Module):
    """Args:
    tree: ``Tree`` (DLA) or ``BinaryTree`` (SimpleDLA).
    num_classes: Number of output logits.
    width: Channels of the first layer; the trees use 2x, 4x, 8x, 16x and 32x.
    """

    def __init__(self, tree=Tree, num_classes=10, width=16):
        super().__init__()
        self.base = base_layer(3, width)
        self.layer1 = base_layer(width, width)
        self.layer2 = base_layer(width, 2 * width)
        self.layer3 = tree(2 * width, 4 * width, levels=1)
        self.layer4 = tree(4 * width, 8 * width, levels=2, stride=2)
        self.layer5 = tree(8 * width, 16 * width, levels=2, stride=2)
        self.layer6 = tree(16 * width, 32 * width, levels=1, stride=2)
        self.linear = nn.Linear(32 * width, num_classes)

    def forward(self, x):
        out = self.layer2(self.layer1(self.base(x)))
        out = self.layer6(self.layer5(self.layer4(self.layer3(out))))
        out = F.avg_pool2d(out, 4)
        return self.linear(out.view(out.size(0), -1))


def simple_dla(**kwargs):
    """SimpleDLA: ``DLA`` built from binary trees; `kwargs` go to ``DLA``."""
    return DLA(BinaryTree, **kwargs)
