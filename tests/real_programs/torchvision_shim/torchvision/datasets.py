"""torchvision.datasets.MNIST / FashionMNIST over the official IDX files and CIFAR10 over
the official binary version (never downloads).

Like torchvision: MNIST's ``data`` is a uint8 (N, H, W) tensor and ``targets`` int64; CIFAR10's
``data`` a uint8 (N, 32, 32, 3) array and ``targets`` a list; each item's image reaches the
transform as a PIL image. MNIST's files may lie in ``root`` itself or in torchvision's
``root/<ClassName>/raw``. (torchvision reads CIFAR-10's pickled Python version; the binary
version holds the same images and needs no unpickling.)
"""

import gzip
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def _read_idx(path):
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


class MNIST:
    """The IDX files of ``root`` (or ``root/MNIST/raw``)."""

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        prefix = "train" if train else "t10k"
        folder = Path(root)
        if not (folder / f"{prefix}-images-idx3-ubyte.gz").exists():
            folder = folder / type(self).__name__ / "raw"
        images = _read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
        labels = _read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
        self.data = torch.from_numpy(images.copy())
        self.targets = torch.from_numpy(labels.astype(np.int64))
        self.transform, self.target_transform = transform, target_transform
        self.root, self.train = root, train

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        image = Image.fromarray(self.data[index].numpy(), mode="L")
        target = int(self.targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target


class FashionMNIST(MNIST):
    """Zalando's clothes in MNIST's file format (``root/FashionMNIST/raw``)."""

    classes = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]


class CIFAR10:
    """``root/cifar-10-batches-bin``: records of one label byte and 3072 pixel bytes."""

    classes = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        names = [f"data_batch_{k}.bin" for k in range(1, 6)] if train else ["test_batch.bin"]
        folder = Path(root) / "cifar-10-batches-bin"
        records = np.concatenate(
            [np.fromfile(folder / name, np.uint8).reshape(-1, 3073) for name in names]
        )
        self.data = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
        self.targets = [int(v) for v in records[:, 0]]
        self.transform, self.target_transform = transform, target_transform
        self.root, self.train = root, train

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        image, target = Image.fromarray(self.data[index]), self.targets[index]
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target


__all__ = ["MNIST", "FashionMNIST", "CIFAR10"]
