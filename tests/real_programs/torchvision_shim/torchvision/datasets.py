"""torchvision.datasets.MNIST over the IDX files (never downloads), yielding uint8 (1, H, W)
NumPy images as convlab's datasets do, so both runs see the same pixels."""

import gzip
from pathlib import Path

import numpy as np
import torch


def _read_idx(path):
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


class MNIST:
    """torchvision's attributes: ``data`` a uint8 (N, H, W) tensor, ``targets`` int64."""

    def __init__(self, root, train=True, download=False, transform=None, target_transform=None):
        prefix = "train" if train else "t10k"
        images = _read_idx(Path(root) / f"{prefix}-images-idx3-ubyte.gz")
        labels = _read_idx(Path(root) / f"{prefix}-labels-idx1-ubyte.gz")
        self.data = torch.from_numpy(images.copy())
        self.targets = torch.from_numpy(labels.astype(np.int64))
        self.transform, self.target_transform = transform, target_transform

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        image, target = self.data[index].numpy()[None].copy(), int(self.targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target


__all__ = ["MNIST"]
