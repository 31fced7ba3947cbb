"""A test-only stand-in for torchvision (independent of convlab), so the unmodified
pytorch/examples programs run against real PyTorch here (torchvision is not installed):
datasets read the same local files as convlab, transforms and ``save_image`` use torch."""

from torchvision import datasets, models, transforms, utils

__all__ = ["datasets", "models", "transforms", "utils"]
