"""torchvision's names: ``datasets``, ``transforms``, ``utils`` and ``models``.

A program written for PyTorch changes ``from torchvision import datasets, transforms`` to
``from convlab.vision import datasets, transforms`` (and ``torchvision.utils`` to
``convlab.vision.utils``) and runs as before.

Differences from torchvision, as convlab has no PIL requirement: datasets hand transforms
the uint8 (C, H, W) NumPy array that :mod:`convlab.data`'s datasets yield instead of a PIL
image, and every transform here accepts that array (as well as PIL images and tensors);
:func:`utils.save_image` writes PNG only.
"""

from __future__ import annotations

from convlab.vision import datasets, models, transforms, utils

__all__ = ["datasets", "models", "transforms", "utils"]
