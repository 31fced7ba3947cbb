"""A test-only stand-in for torchvision, so the unmodified pytorch/examples programs run
against real PyTorch here (torchvision is not installed): datasets read the same local files
as convlab's, transforms and ``save_image`` work on torch tensors."""

from torchvision import datasets, transforms, utils

__all__ = ["datasets", "transforms", "utils"]
