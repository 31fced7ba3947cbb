"""torchvision.datasets.CIFAR10 over ``cifar-10-batches-bin`` (never downloads), yielding uint8
(3, 32, 32) NumPy images as convlab's CIFAR10 does, so both runs see the same pixels."""

from pathlib import Path

import numpy as np


class CIFAR10:
    """The CIFAR-10 training or test images and labels."""

    def __init__(self, root, train=True, download=False, transform=None, target_transform=None):
        folder = Path(root) / "cifar-10-batches-bin"
        names = [f"data_batch_{k}.bin" for k in range(1, 6)] if train else ["test_batch.bin"]
        records = np.concatenate(
            [np.fromfile(folder / name, np.uint8).reshape(-1, 3073) for name in names]
        )
        self.targets = [int(v) for v in records[:, 0]]
        self.data = records[:, 1:].reshape(-1, 3, 32, 32)
        self.transform, self.target_transform = transform, target_transform

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        image, target = self.data[index].copy(), self.targets[index]
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target


__all__ = ["CIFAR10"]
