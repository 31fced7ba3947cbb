"""torchvision's names: ``datasets``, ``transforms``, ``utils`` and ``models``.

A program written for PyTorch changes ``from torchvision import datasets, transforms`` to
``from convlab.vision import datasets, transforms`` (and ``torchvision.utils`` to
``convlab.vision.utils``) and runs as before.

Differences from torchvision, as convlab has no PIL requirement: datasets hand transforms
the uint8 array ``np.asarray`` makes of the PIL image torchvision would hand, (H, W) or
(H, W, C), and every transform here takes such arrays as torchvision's take PIL images (PIL
images and tensors too); :func:`utils.save_image` writes PNG only.
"""

from __future__ import annotations

from convlab.vision import datasets, models, transforms, utils

__all__ = ["datasets", "models", "transforms", "utils"]
