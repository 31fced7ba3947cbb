"""VGG-11/13/16/19 with batch normalisation, sized for 32x32 inputs (five 2x2 max pools take the
feature map down to 1x1, so the classifier is a single linear layer)."""

import torch
import torch.nn as nn

# numbers are 3x3 convolution widths in units of `width`; "M" is a 2x2 max pool
LAYOUTS = {
    11: [1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"],
    13: [1, 1, "M", 2, 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"],
    16: [1, 1, "M", 2, 2, "M", 4, 4, 4, "M", 8, 8, 8, "M", 8, 8, 8, "M"],
    19: [1, 1, "M", 2, 2, "M", 4, 4, 4, 4, "M", 8, 8, 8, 8, "M", 8, 8, 8, 8, "M"],
}


class VGG(nn.Module):
    """A VGG network.

    Args:
        depth: 11, 13, 16 or 19 weight layers.
        num_classes: Number of output logits.
        width: Channels of the first stage (64 in the paper); later stages use 2x, 4x, 8x.
    """

    def __init__(self, depth=16, num_classes=10, width=64):
        super().__init__()
        layers = []
        channels = 3
        for item in LAYOUTS[depth]:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [
                    nn.Conv2d(channels, item * width, kernel_size=3, padding=1),
                    nn.BatchNorm2d(item * width),
                    nn.ReLU(inplace=True),
                ]
                channels = item * width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        x = self.features(x)
        return self.classifier(torch.flatten(x, 1))


def vgg11(**kwargs):
    """VGG-11; `kwargs` go to ``VGG``."""
    return VGG(11, **kwargs)


def vgg13(**kwargs):
    """VGG-13; `kwargs` go to ``VGG``."""
    return VGG(13, **kwargs)


def vgg16(**kwargs):
    """VGG-16; `kwargs` go to ``VGG``."""
    return VGG(16, **kwargs)


def vgg19(**kwargs):
    """VGG-19; `kwargs` go to ``VGG``."""
    return VGG(19, **kwargs)
