"""Per-sample image transforms for CHW images (NumPy arrays or convlab tensors).

Random transforms draw from :func:`convlab.data.sample_rng`, so inside a
:class:`~convlab.data.DataLoader` they are reproducible from the loader's seed, whatever
``prefetch`` is.

Example:
    >>> import numpy as np
    >>> from convlab.data import transforms as T
    >>> augment = T.Compose([T.ToTensor(), T.RandomCrop(32, padding=4),
    ...                      T.RandomFlipHorizontal(), T.Normalize([0.5] * 3, [0.25] * 3)])
    >>> augment(np.zeros((3, 32, 32), np.uint8)).shape
    (3, 32, 32)
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from convlab.data.loader import sample_rng

__all__ = [
    "Compose",
    "ToTensor",
    "Normalize",
    "RandomCrop",
    "RandomFlipHorizontal",
    "RandomHorizontalFlip",
]


def _as_array(image: Any, name: str = "image") -> tuple[np.ndarray, bool]:
    """(array, was_tensor) for a CHW or HW image."""
    from convlab._tensor import Tensor

    if isinstance(image, Tensor):
        if image.device != "cpu":
            raise ValueError(
                f"{name}: transforms run on CPU tensors, got one on "
                f"{image.device}; move images to the GPU by batch instead"
            )
        return image.numpy(), True
    if isinstance(image, np.ndarray):
        return image, False
    if hasattr(image, "mode") and hasattr(image, "size"):  # a PIL image: HWC
        array = np.asarray(image)
        return (array.transpose(2, 0, 1) if array.ndim == 3 else array), False
    raise TypeError(
        f"{name}: expected a NumPy array, a convlab tensor or a PIL image, "
        f"got {type(image).__name__}"
    )


def _like(array: np.ndarray, was_tensor: bool) -> Any:
    if was_tensor:
        import convlab

        return convlab.from_numpy(np.ascontiguousarray(array))
    return array


def _check_image(array: np.ndarray, name: str = "image") -> None:
    if array.ndim not in (2, 3):
        raise ValueError(f"{name}: expected a (C, H, W) or (H, W) image, got shape {array.shape}")


class Compose:
    """Apply ``transforms`` in order."""

    def __init__(self, transforms: Sequence[Any]) -> None:
        for k, t in enumerate(transforms):
            if not callable(t):
                raise TypeError(f"transforms[{k}]: expected a callable, got {type(t).__name__}")
        self.transforms = list(transforms)

    def __call__(self, image: Any) -> Any:
        for t in self.transforms:
            image = t(image)
        return image

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(map(repr, self.transforms)) + "])"


class ToTensor:
    """Image -> float32 convlab tensor (C, H, W); uint8 values are scaled to [0, 1].

    NumPy arrays are taken as CHW (the layout of every convlab dataset), a 2-d array gains a
    channel dimension, and PIL images (HWC) are transposed, as torchvision does.
    """

    def __call__(self, image: Any) -> Any:
        import convlab

        array, _ = _as_array(image)
        _check_image(array)
        if array.ndim == 2:
            array = array[None]
        if array.dtype == np.uint8:
            out = array.astype(np.float32) * np.float32(1 / 255)
        else:
            out = array.astype(np.float32)
        return convlab.from_numpy(np.ascontiguousarray(out))

    def __repr__(self) -> str:
        return "ToTensor()"


class Normalize:
    """``(image - mean[c]) / std[c]`` per channel.

    Raises:
        ValueError: If a std is not positive, or the channel count does not match.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1)
        if self.mean.shape != self.std.shape:
            raise ValueError(
                f"mean, std: expected one value per channel each, got "
                f"{self.mean.size} and {self.std.size}"
            )
        if not np.all(self.std > 0) or not np.all(np.isfinite(self.mean)):
            raise ValueError(
                f"std: expected values > 0 (and a finite mean), got {self.std.tolist()}"
            )
        self._scale = (1 / self.std)[:, None, None]
        self._shift = (-self.mean / self.std)[:, None, None]

    def __call__(self, image: Any) -> Any:
        array, was_tensor = _as_array(image)
        if array.ndim != 3 or array.shape[0] != self.mean.size:
            raise ValueError(
                f"image: expected ({self.mean.size}, H, W) for "
                f"{self.mean.size} channel means, got shape {array.shape}"
            )
        out = array.astype(np.float32) * self._scale + self._shift
        return _like(out, was_tensor)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


def _pair(name: str, value: Any) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, numbers.Integral) else tuple(value)
    if len(pair) != 2 or any(
        isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0 for v in pair
    ):
        raise ValueError(f"{name}: expected an int >= 0 or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


class RandomCrop:
    """Pad by ``padding`` (with ``fill``) and cut a random ``size`` window.

    Args:
        size: Output (H, W) or one int for both; None keeps the input size, so the crop is a
            random shift by up to ``padding`` pixels (needle hw4's ``RandomCrop``).
        padding: Pixels added on every side before cropping.
        fill: Value of the padded pixels.

    Raises:
        ValueError: If the crop is larger than the padded image.
    """

    def __init__(self, size: Any | None = None, padding: Any = 0, fill: float = 0) -> None:
        self.size = None if size is None else _pair("size", size)
        if self.size is not None and min(self.size) < 1:
            raise ValueError(f"size: expected sizes >= 1, got {size!r}")
        self.padding = _pair("padding", padding)
        self.fill = fill

    def __call__(self, image: Any) -> Any:
        array, was_tensor = _as_array(image)
        _check_image(array)
        h, w = array.shape[-2:]
        ph, pw = self.padding
        oh, ow = self.size or (h, w)
        if oh > h + 2 * ph or ow > w + 2 * pw:
            raise ValueError(
                f"size: crop ({oh}, {ow}) is larger than the padded image "
                f"({h + 2 * ph}, {w + 2 * pw})"
            )
        rng = sample_rng()
        top = int(rng.integers(0, h + 2 * ph - oh + 1)) - ph
        left = int(rng.integers(0, w + 2 * pw - ow + 1)) - pw
        out = np.full(array.shape[:-2] + (oh, ow), self.fill, dtype=array.dtype)
        # Copy only the part of the window that lies on the image; the rest stays `fill`.
        y0, y1 = max(top, 0), min(top + oh, h)
        x0, x1 = max(left, 0), min(left + ow, w)
        if y0 < y1 and x0 < x1:
            out[..., y0 - top : y1 - top, x0 - left : x1 - left] = array[..., y0:y1, x0:x1]
        return _like(out, was_tensor)

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding}, fill={self.fill})"


class RandomFlipHorizontal:
    """Mirror the image left-right with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"p: expected a probability in [0, 1], got {p!r}")
        self.p = float(p)

    def __call__(self, image: Any) -> Any:
        array, was_tensor = _as_array(image)
        _check_image(array)
        if sample_rng().random() < self.p:
            return _like(np.ascontiguousarray(array[..., ::-1]), was_tensor)
        return image

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


class RandomHorizontalFlip(RandomFlipHorizontal):
    """torchvision's name for :class:`RandomFlipHorizontal`."""
