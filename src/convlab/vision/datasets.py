"""torchvision.datasets' names: MNIST, FashionMNIST, CIFAR10 (read from the official files,
``download=True`` fetches them) and FakeData.

The datasets are :mod:`convlab.data.vision`'s with torchvision's attributes: MNIST's ``data``
is a uint8 (N, H, W) tensor and ``targets`` an int64 tensor, CIFAR10's ``data`` a uint8
(N, H, W, C) NumPy array and ``targets`` a list of ints, ``classes`` and ``class_to_idx`` as
torchvision names them. Assigning ``data`` / ``targets`` (to keep a subset, say) changes what
the dataset yields. Items are ``(image, label)`` with the image handed to ``transform`` as
the uint8 array ``np.asarray`` makes of the PIL image torchvision hands over: (H, W) for one
channel, (H, W, C) for more (see :mod:`convlab.vision.transforms`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from convlab.data import vision as _data
from convlab.data.dataset import Dataset, _check_index
from convlab.data.vision import DatasetDownloadError, DatasetFormatError, DatasetNotFoundError
from convlab.vision.folder import DatasetFolder, ImageFolder

__all__ = [
    "MNIST",
    "FashionMNIST",
    "CIFAR10",
    "CIFAR100",
    "FakeData",
    "DatasetFolder",
    "ImageFolder",
    "DatasetNotFoundError",
    "DatasetFormatError",
    "DatasetDownloadError",
]


def _as_numpy(value: Any) -> np.ndarray:
    from convlab._tensor import Tensor

    return value.numpy() if isinstance(value, Tensor) else np.asarray(value)


def _check_lengths(images: np.ndarray, labels: np.ndarray) -> None:
    if len(images) != len(labels):
        raise ValueError(
            f"data, targets: expected as many images as labels, got {len(images)} and "
            f"{len(labels)} (assign both, data first)"
        )


class _Pictures:
    """Items as torchvision's: the image as the (H, W[, C]) array ``np.asarray`` makes of
    the PIL image torchvision would hand over ((H, W) for one channel)."""

    _chw: np.ndarray
    _labels: np.ndarray
    transform: Callable[[Any], Any] | None
    target_transform: Callable[[int], Any] | None

    def _picture(self, i: int) -> np.ndarray:
        image = self._chw[i]
        return image[0].copy() if image.shape[0] == 1 else image.transpose(1, 2, 0).copy()

    def _label(self, i: int) -> int:
        return int(self._labels[i])

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        i = _check_index(index, len(self._labels))
        image: Any = self._picture(i)
        target: Any = self._label(i)
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[Any, Any]]:
        return [self[int(i)] for i in indices]


class _TorchvisionMNIST(_Pictures):
    """torchvision's MNIST attributes over :class:`convlab.data.MNIST`'s arrays."""

    @property
    def data(self) -> Any:
        """The images, a uint8 (N, H, W) tensor sharing memory with the dataset."""
        from convlab._creation import from_numpy

        return from_numpy(self._chw[:, 0])

    @data.setter
    def data(self, value: Any) -> None:
        images = _as_numpy(value)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(
                f"data: expected uint8 (N, H, W) images, got {images.dtype} {images.shape}"
            )
        self._chw = np.ascontiguousarray(images[:, None])

    @property
    def targets(self) -> Any:
        """The labels, an int64 (N,) tensor sharing memory with the dataset."""
        from convlab._creation import from_numpy

        return from_numpy(self._labels)

    @targets.setter
    def targets(self, value: Any) -> None:
        labels = _as_numpy(value).astype(np.int64).reshape(-1)
        _check_lengths(self._chw, labels)
        self._labels = labels

    @property
    def class_to_idx(self) -> dict[str, int]:
        """Class name -> label."""
        return {name: i for i, name in enumerate(self.classes)}  # type: ignore[attr-defined]


class MNIST(_TorchvisionMNIST, _data.MNIST):
    """:class:`convlab.data.MNIST` with torchvision's argument order and attributes.

    Args:
        root: The folder holding the files (or torchvision's ``MNIST/raw`` below it).
        train: The training images, else the test images.
        transform: Applied to each uint8 (28, 28) picture.
        target_transform: Applied to each int label.
        download: Fetch the files into ``root/MNIST/raw`` if they are missing.
    """

    classes = [
        "0 - zero",
        "1 - one",
        "2 - two",
        "3 - three",
        "4 - four",
        "5 - five",
        "6 - six",
        "7 - seven",
        "8 - eight",
        "9 - nine",
    ]

    def __init__(
        self,
        root: Any,
        train: bool = True,
        transform: Callable[[np.ndarray], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        download: bool = False,
    ) -> None:
        super().__init__(root, train, transform, target_transform, download)
        self.root, self.train = root, train


class FashionMNIST(_TorchvisionMNIST, _data.FashionMNIST):
    """:class:`convlab.data.vision.FashionMNIST` with torchvision's attributes (see
    :class:`MNIST`); files in ``root/FashionMNIST/raw``."""

    classes = list(_data.FashionMNIST.classes)

    def __init__(
        self,
        root: Any,
        train: bool = True,
        transform: Callable[[np.ndarray], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        download: bool = False,
    ) -> None:
        super().__init__(root, train, transform, target_transform, download)
        self.root, self.train = root, train


class _TorchvisionCIFAR(_Pictures):
    """torchvision's CIFAR attributes over :class:`convlab.data.CIFAR10`'s arrays."""

    classes: Any

    def _init_targets(self) -> None:
        self._target_list: list[int] = self._labels.tolist()

    def _label(self, i: int) -> int:
        return int(self._target_list[i])

    @property
    def data(self) -> Any:
        """The images, uint8 (N, H, W, C), a view of the dataset's (N, C, H, W) array."""
        return self._chw.transpose(0, 2, 3, 1)

    @data.setter
    def data(self, value: Any) -> None:
        images = _as_numpy(value)
        if images.ndim != 4 or images.dtype != np.uint8:
            raise ValueError(
                f"data: expected uint8 (N, H, W, C) images, got {images.dtype} {images.shape}"
            )
        self._chw = np.ascontiguousarray(images.transpose(0, 3, 1, 2))

    @property
    def targets(self) -> Any:
        """The labels, a list of ints; changing an entry changes what the dataset yields."""
        return self._target_list

    @targets.setter
    def targets(self, value: Any) -> None:
        labels = _as_numpy(value).astype(np.int64).reshape(-1)
        _check_lengths(self._chw, labels)
        self._labels, self._target_list = labels, labels.tolist()

    @property
    def class_to_idx(self) -> dict[str, int]:
        """Class name -> label."""
        return {name: i for i, name in enumerate(self.classes)}


class CIFAR10(_TorchvisionCIFAR, _data.CIFAR10):
    """:class:`convlab.data.CIFAR10` with torchvision's attributes: ``data`` a uint8
    (N, 32, 32, 3) NumPy array (a view of the dataset's images), ``targets`` a list of ints
    (the dataset's own: changing an entry changes the label it yields).

    Args:
        root: The folder holding ``cifar-10-batches-py`` (or ``-bin``).
        train: The training images, else the test images.
        transform: Applied to each uint8 (32, 32, 3) picture.
        target_transform: Applied to each int label.
        download: Fetch and unpack the archive into ``root`` if the files are missing.
    """

    classes = list(_data.CIFAR10.classes)

    def __init__(
        self,
        root: Any,
        train: bool = True,
        transform: Callable[[np.ndarray], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        download: bool = False,
    ) -> None:
        super().__init__(root, train, transform, target_transform, download)
        self.root, self.train = root, train
        self._init_targets()


class CIFAR100(_TorchvisionCIFAR, _data.CIFAR100):
    """:class:`convlab.data.vision.CIFAR100` with torchvision's attributes (see
    :class:`CIFAR10`); labels are the 100 fine classes.

    Args:
        root: The folder holding ``cifar-100-python`` (or ``cifar-100-binary``).
        train: The training images, else the test images.
        transform: Applied to each uint8 (32, 32, 3) picture.
        target_transform: Applied to each int label.
        download: Fetch and unpack the archive into ``root`` if the files are missing.
    """

    classes = list(_data.CIFAR100.classes)

    def __init__(
        self,
        root: Any,
        train: bool = True,
        transform: Callable[[np.ndarray], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        download: bool = False,
    ) -> None:
        super().__init__(root, train, transform, target_transform, download)
        self.root, self.train = root, train
        self._init_targets()


class FakeData(Dataset):
    """Random images and labels, the same for the same index (torchvision's ``FakeData``).

    Args:
        size: Number of images.
        image_size: (C, H, W) of each image.
        num_classes: Labels are drawn from ``0 .. num_classes - 1``.
        transform: Applied to each uint8 (H, W, C) picture ((H, W) for one channel).
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
        chw = rng.integers(0, 256, self.image_size, dtype=np.uint8)
        # A picture, as the PIL image torchvision's FakeData makes: (H, W) or (H, W, C).
        image: Any = chw[0] if chw.shape[0] == 1 else chw.transpose(1, 2, 0)
        target: Any = int(rng.integers(0, self.num_classes))
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target
