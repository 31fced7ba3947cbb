"""A test-only stand-in for torchvision (independent of convlab: torchvision is not installed
here), so that the programs in ``tests/real_programs/own_programs`` run against real PyTorch.
Datasets read the same local files as convlab's and hand PIL images to the transforms, as
torchvision does; transforms and ``save_image`` use torch and PIL."""

from torchvision import datasets, models, transforms, utils

__all__ = ["datasets", "models", "transforms", "utils"]
