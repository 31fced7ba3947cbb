"""A test-only stand-in for the parts of torchvision own_zoo/train.py uses (torchvision is not
installed here), independent of convlab, so train.py runs unchanged against real PyTorch:
CIFAR10 read from the binary batches, and the transforms on torch tensors with torch's RNG."""

from torchvision import datasets, transforms

__all__ = ["datasets", "transforms"]
