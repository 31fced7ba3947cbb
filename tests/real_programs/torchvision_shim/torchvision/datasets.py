"""MNIST / FakeData yielding uint8 (C, H, W) NumPy images: the files are read by convlab's
NumPy-only reader, everything after (the transforms) is torch."""

from convlab.data.vision import MNIST as _MNIST
from convlab.vision.datasets import FakeData


class MNIST(_MNIST):
    def __init__(self, root, train=True, download=False, transform=None, target_transform=None):
        super().__init__(root, train, transform, target_transform)  # never downloads


__all__ = ["MNIST", "FakeData"]
