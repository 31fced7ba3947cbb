"""torchvision.transforms' names for CHW images (NumPy arrays, PIL images or tensors).

``Compose``, ``ToTensor``, ``Normalize``, ``RandomCrop`` and ``RandomHorizontalFlip`` are
:mod:`convlab.data.transforms`'; ``Resize``, ``CenterCrop`` and ``Lambda`` are here.
``ToTensor`` turns the uint8 (C, H, W) or (H, W) array a convlab dataset yields into a
float32 (C, H, W) tensor in [0, 1], as torchvision's does for the PIL image its datasets
yield.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from convlab.data.transforms import (
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    ToTensor,
    _as_array,
    _check_image,
    _like,
)

__all__ = [
    "Compose",
    "ToTensor",
    "Normalize",
    "RandomCrop",
    "RandomHorizontalFlip",
    "Resize",
    "CenterCrop",
    "Lambda",
    "InterpolationMode",
]


class InterpolationMode:
    """torchvision's interpolation names (only ``BILINEAR`` is implemented)."""

    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"


def _size(value: Any) -> tuple[int, ...]:
    """``size`` as (edge,) or (h, w), each an int >= 1."""
    sizes = (value,) if isinstance(value, numbers.Integral) else tuple(value)
    if len(sizes) not in (1, 2) or any(
        isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1 for v in sizes
    ):
        raise ValueError(f"size: expected an int >= 1 or a pair (h, w) of them, got {value!r}")
    return tuple(int(v) for v in sizes)


def _resample_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of bilinear resampling with antialiasing.

    PIL's and PyTorch's ``antialias=True`` filter: a triangle stretched by the scale when
    shrinking, so every input pixel contributes; taps off the image are dropped and the
    rest renormalised (which, when enlarging, is plain bilinear with clamped edges).
    """
    scale = n_in / n_out
    support = max(scale, 1.0)
    weights = np.zeros((n_out, n_in))
    for i in range(n_out):
        center = (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        taps = np.arange(lo, hi)
        w = np.maximum(0.0, 1.0 - np.abs((taps - center + 0.5) / support))
        weights[i, lo:hi] = w / w.sum()
    return weights


_PRECISION_BITS = 22  # PIL's 8-bit resampling: 32 bits - 8 for pixels - 2 for headroom


def _fixed_point_pass(pixels: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    """One of PIL's uint8 resampling passes along ``axis``: weights rounded to 22-bit fixed
    point (half away from zero), sums started at one half, shifted back and clipped."""
    scale = float(1 << _PRECISION_BITS)
    fixed = np.trunc(weights * scale + np.where(weights < 0, -0.5, 0.5)).astype(np.int64)
    moved = np.moveaxis(pixels.astype(np.int64), axis, -1)
    sums = moved @ fixed.T + (1 << (_PRECISION_BITS - 1))
    return np.moveaxis(np.clip(sums >> _PRECISION_BITS, 0, 255).astype(np.uint8), -1, axis)


class Resize:
    """Resize an image's last two dimensions with (antialiased) bilinear interpolation.

    Args:
        size: (h, w), or one int: the smaller edge becomes ``size`` and the other keeps
            the aspect ratio (rounded down), as torchvision.
        interpolation: ``InterpolationMode.BILINEAR`` (the default; the only one offered).
        max_size: With an int ``size``, the most the longer edge may become.
        antialias: Must be True (torchvision's default; PIL images always antialias).

    A uint8 image stays uint8 and is resized as PIL does (what torchvision's datasets
    resize): widths, then heights, each pass in PIL's 22-bit fixed point and rounded to
    uint8. Float images keep their dtype and match ``interpolate(..., antialias=True)``.

    Raises:
        ValueError: For an invalid size, an unsupported interpolation, or
            ``antialias=False``.
    """

    def __init__(
        self,
        size: Any,
        interpolation: str = InterpolationMode.BILINEAR,
        max_size: int | None = None,
        antialias: bool = True,
    ) -> None:
        self.size = _size(size)
        if str(getattr(interpolation, "value", interpolation)) != InterpolationMode.BILINEAR:
            raise ValueError(
                f"interpolation: only 'bilinear' is implemented, got {interpolation!r}"
            )
        if max_size is not None and (len(self.size) != 1 or max_size <= self.size[0]):
            raise ValueError(
                f"max_size: expected None, or an int larger than an int size, got {max_size!r} "
                f"for size={size!r}"
            )
        if antialias is not True:
            raise ValueError("antialias: only True (torchvision's default) is implemented")
        self.max_size = max_size

    def _output_size(self, h: int, w: int) -> tuple[int, int]:
        if len(self.size) == 2:
            return self.size[0], self.size[1]
        short, long = min(h, w), max(h, w)
        new_short, new_long = self.size[0], int(self.size[0] * long / short)
        if self.max_size is not None and new_long > self.max_size:
            new_short, new_long = int(self.max_size * new_short / new_long), self.max_size
        return (new_short, new_long) if h <= w else (new_long, new_short)

    def __call__(self, image: Any) -> Any:
        array, was_tensor = _as_array(image)
        if array.ndim < 2:
            raise ValueError(f"image: expected (..., H, W), got shape {array.shape}")
        h, w = array.shape[-2:]
        oh, ow = self._output_size(h, w)
        if (oh, ow) == (h, w):
            return image
        rows, cols = _resample_matrix(h, oh), _resample_matrix(w, ow)
        if array.dtype != np.uint8:
            out = rows @ array.astype(np.float64) @ cols.T
            return _like(np.ascontiguousarray(out.astype(array.dtype)), was_tensor)
        # PIL resizes uint8 in two passes, widths then heights, each in fixed point.
        wide = array if ow == w else _fixed_point_pass(array, cols, axis=-1)
        out = wide if oh == h else _fixed_point_pass(wide, rows, axis=-2)
        return _like(np.ascontiguousarray(out), was_tensor)

    def __repr__(self) -> str:
        size = self.size[0] if len(self.size) == 1 else self.size
        return f"Resize(size={size}, interpolation=bilinear, max_size={self.max_size})"


class CenterCrop:
    """Cut the central ``size`` window, padding with zeros where the image is smaller.

    Args:
        size: (h, w) or one int for a square.

    The window's top-left corner is ``round((H - h) / 2)``, ``round((W - w) / 2)`` with
    Python's rounding, as torchvision.
    """

    def __init__(self, size: Any) -> None:
        sizes = _size(size)
        self.size = (sizes[0], sizes[-1])

    def __call__(self, image: Any) -> Any:
        array, was_tensor = _as_array(image)
        _check_image(array)
        h, w = array.shape[-2:]
        ch, cw = self.size
        if ch > h or cw > w:  # torchvision pads first, the odd pixel after the image
            top, left = max(ch - h, 0) // 2, max(cw - w, 0) // 2
            padded = np.zeros(array.shape[:-2] + (max(h, ch), max(w, cw)), array.dtype)
            padded[..., top : top + h, left : left + w] = array
            array, (h, w) = padded, padded.shape[-2:]
        top, left = int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))
        out = np.ascontiguousarray(array[..., top : top + ch, left : left + cw])
        return _like(out, was_tensor)

    def __repr__(self) -> str:
        return f"CenterCrop(size={self.size})"


class Lambda:
    """Apply ``lambd``, a user function, as a transform.

    Raises:
        TypeError: If ``lambd`` is not callable.
    """

    def __init__(self, lambd: Callable[[Any], Any]) -> None:
        if not callable(lambd):
            raise TypeError(f"lambd: expected a callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, image: Any) -> Any:
        return self.lambd(image)

    def __repr__(self) -> str:
        return "Lambda()"
