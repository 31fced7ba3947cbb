"""torchvision's ``DatasetFolder`` and ``ImageFolder``: one subfolder per class.

``ImageFolder``'s default loader reads an image with Pillow (needed only here) and hands the
transforms its uint8 RGB (H, W, 3) array (see :mod:`convlab.vision.transforms`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from convlab.data.dataset import Dataset, _check_index

__all__ = ["DatasetFolder", "ImageFolder", "IMG_EXTENSIONS", "default_loader"]

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def default_loader(path: str) -> np.ndarray:
    """The image at ``path`` as a uint8 RGB (H, W, 3) picture (Pillow's ``convert("RGB")``).

    Raises:
        ImportError: If Pillow is not installed (pass ``loader=`` to read without it).
    """
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is installed where the tests run
        raise ImportError(
            "ImageFolder's default loader reads images with Pillow: pip install pillow, "
            "or pass loader= (a function from a path to an image)"
        ) from None
    with open(path, "rb") as f:
        image = Image.open(f).convert("RGB")
    return np.asarray(image)


class DatasetFolder(Dataset):
    """Samples in ``root/<class>/**/<file>``, labelled by their class folder, as torchvision.

    Args:
        root: The folder holding one subfolder per class.
        loader: Reads a sample from its path.
        extensions: File name endings to keep (case-insensitive); or None with
            ``is_valid_file``.
        transform: Applied to each loaded sample.
        target_transform: Applied to each int label.
        is_valid_file: Says which paths to keep (instead of ``extensions``).
        allow_empty: Accept class folders without any valid file.

    Classes are the subfolder names, sorted, labelled 0, 1, ...; samples are listed class by
    class, each class's files in sorted walk order (symbolic links followed). Attributes as
    torchvision: ``classes``, ``class_to_idx``, ``samples`` (path, label), ``targets``.

    Raises:
        FileNotFoundError: If ``root`` has no class folder, or a class has no valid file
            (unless ``allow_empty``).
        ValueError: If both or neither of ``extensions`` and ``is_valid_file`` are given.
    """

    def __init__(
        self,
        root: Any,
        loader: Callable[[str], Any],
        extensions: Sequence[str] | None = None,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        is_valid_file: Callable[[str], bool] | None = None,
        allow_empty: bool = False,
    ) -> None:
        if (extensions is None) == (is_valid_file is None):
            raise ValueError("extensions, is_valid_file: expected exactly one of them")
        for name, fn in (
            ("loader", loader),
            ("transform", transform),
            ("target_transform", target_transform),
        ):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name}: expected a callable, got {type(fn).__name__}")
        self.root = root
        self.loader, self.extensions = loader, None if extensions is None else tuple(extensions)
        self.transform, self.target_transform = transform, target_transform
        self.classes, self.class_to_idx = self.find_classes(os.fspath(root))
        self.samples = self.make_dataset(
            os.fspath(root), self.class_to_idx, self.extensions, is_valid_file, allow_empty
        )
        self.targets = [label for _, label in self.samples]

    @staticmethod
    def find_classes(directory: str) -> tuple[list[str], dict[str, int]]:
        """(sorted class folder names, name -> label)."""
        classes = sorted(entry.name for entry in os.scandir(directory) if entry.is_dir())
        if not classes:
            raise FileNotFoundError(f"root: couldn't find any class folder in {directory}")
        return classes, {name: i for i, name in enumerate(classes)}

    @staticmethod
    def make_dataset(
        directory: str,
        class_to_idx: dict[str, int],
        extensions: Sequence[str] | None = None,
        is_valid_file: Callable[[str], bool] | None = None,
        allow_empty: bool = False,
    ) -> list[tuple[str, int]]:
        """(path, label) for every valid file, class by class, in sorted walk order."""
        if is_valid_file is None:
            endings = tuple(e.lower() for e in extensions or ())

            def is_valid_file(path: str) -> bool:
                return path.lower().endswith(endings)

        samples: list[tuple[str, int]] = []
        empty: list[str] = []
        for name in sorted(class_to_idx):
            folder = os.path.join(directory, name)
            found = [
                os.path.join(where, file)
                for where, _, files in sorted(os.walk(folder, followlinks=True))
                for file in sorted(files)
                if is_valid_file(os.path.join(where, file))
            ]
            if not found:
                empty.append(name)
            samples.extend((path, class_to_idx[name]) for path in found)
        if empty and not allow_empty:
            kinds = f" Supported extensions: {', '.join(extensions)}" if extensions else ""
            raise FileNotFoundError(
                f"root: found no valid file for the classes {', '.join(empty)} in "
                f"{directory}.{kinds}"
            )
        return samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        path, target = self.samples[_check_index(index, len(self))]
        sample = self.loader(path)
        if self.transform is not None:
            sample = self.transform(sample)
        result: Any = target
        if self.target_transform is not None:
            result = self.target_transform(target)
        return sample, result

    def __repr__(self) -> str:
        name, classes = type(self).__name__, len(self.classes)
        return f"{name}({len(self)} samples, {classes} classes, {self.root})"


class ImageFolder(DatasetFolder):
    """:class:`DatasetFolder` of images (torchvision's ``IMG_EXTENSIONS``), read by
    :func:`default_loader` as uint8 RGB (H, W, 3) arrays; ``imgs`` is ``samples``.

    Args:
        root: The folder holding one subfolder per class.
        transform: Applied to each image.
        target_transform: Applied to each int label.
        loader: Reads an image from its path (Pillow's RGB by default).
        is_valid_file: Says which paths to keep (instead of the image extensions).
        allow_empty: Accept class folders without any image.

    Raises:
        FileNotFoundError: As :class:`DatasetFolder`.
    """

    def __init__(
        self,
        root: Any,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        loader: Callable[[str], Any] = default_loader,
        is_valid_file: Callable[[str], bool] | None = None,
        allow_empty: bool = False,
    ) -> None:
        super().__init__(
            root,
            loader,
            IMG_EXTENSIONS if is_valid_file is None else None,
            transform=transform,
            target_transform=target_transform,
            is_valid_file=is_valid_file,
            allow_empty=allow_empty,
        )
        self.imgs = self.samples
