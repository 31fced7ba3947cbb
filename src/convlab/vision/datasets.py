"""torchvision.datasets' names: MNIST, FashionMNIST, CIFAR10 (read from the official files,
``download=True`` fetches them) and FakeData."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from convlab.data.dataset import Dataset, _check_index
from convlab.data.vision import (
    CIFAR10,
    MNIST,
    DatasetDownloadError,
    DatasetFormatError,
    DatasetNotFoundError,
    FashionMNIST,
)

__all__ = [
    "MNIST",
    "FashionMNIST",
    "CIFAR10",
    "FakeData",
    "DatasetNotFoundError",
    "DatasetFormatError",
    "DatasetDownloadError",
]


class FakeData(Dataset):
    """Random images and labels, the same for the same index (torchvision's ``FakeData``).

    Args:
        size: Number of images.
        image_size: (C, H, W) of each image.
        num_classes: Labels are drawn from ``0 .. num_classes - 1``.
        transform: Applied to each uint8 (C, H, W) image.
        target_transform: Applied to each int label.
        random_offset: Added to the index to seed each image's draw.

    Unlike torchvision, which draws a normal float image with PyTorch's generator and turns
    it into a PIL image, each item is uniform uint8 pixels drawn by NumPy's PCG64 seeded
    with ``index + random_offset``: the values differ from torchvision's, their use (data of
    the right shape and type, stable per index, independent of the global seed) does not.

    Raises:
        ValueError: If a size is negative or ``num_classes`` < 1.
    """

    def __init__(
        self,
        size: int = 1000,
        image_size: Sequence[int] = (3, 224, 224),
        num_classes: int = 10,
        transform: Callable[[np.ndarray], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        random_offset: int = 0,
    ) -> None:
        if int(size) < 0:
            raise ValueError(f"size: expected an int >= 0, got {size!r}")
        if len(image_size) != 3 or any(int(d) < 1 for d in image_size):
            raise ValueError(f"image_size: expected (C, H, W) of sizes >= 1, got {image_size!r}")
        if int(num_classes) < 1:
            raise ValueError(f"num_classes: expected an int >= 1, got {num_classes!r}")
        for name, fn in (("transform", transform), ("target_transform", target_transform)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name}: expected a callable or None, got {type(fn).__name__}")
        self.size, self.num_classes = int(size), int(num_classes)
        self.image_size = tuple(int(d) for d in image_size)
        self.transform, self.target_transform = transform, target_transform
        self.random_offset = int(random_offset)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        i = _check_index(index, self.size)
        rng = np.random.default_rng(i + self.random_offset)
        image: Any = rng.integers(0, 256, self.image_size, dtype=np.uint8)
        target: Any = int(rng.integers(0, self.num_classes))
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target
