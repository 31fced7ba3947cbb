"""torchvision.transforms' names for CHW images (NumPy arrays, PIL images or tensors).

``Compose``, ``ToTensor``, ``Normalize`` and ``RandomHorizontalFlip`` are
:mod:`convlab.data.transforms`'; ``Resize``, ``CenterCrop``, ``Pad``, ``RandomCrop`` (with
torchvision's arguments), ``Grayscale`` and ``Lambda`` are here.
``ToTensor`` turns the uint8 (C, H, W) or (H, W) array a convlab dataset yields into a
float32 (C, H, W) tensor in [0, 1], as torchvision's does for the PIL image its datasets
yield.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from convlab.data.loader import sample_rng
from convlab.data.transforms import (
    Compose,
    Normalize,
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
    "Pad",
    "Grayscale",
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


# torchvision's padding modes, which are NumPy's np.pad modes of the same names.
_PAD_MODES = ("constant", "edge", "reflect", "symmetric")


def _padding(value: Any) -> tuple[int, int, int, int]:
    """torchvision's padding as (left, top, right, bottom): one int, (left/right, top/bottom)
    or all four."""
    sides = (value,) if isinstance(value, numbers.Integral) else tuple(value)
    if len(sides) not in (1, 2, 4) or any(
        isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0 for v in sides
    ):
        raise ValueError(f"padding: expected an int >= 0 or 2 or 4 of them, got {value!r}")
    if len(sides) == 1:
        sides = sides * 4
    elif len(sides) == 2:
        sides = sides * 2
    return int(sides[0]), int(sides[1]), int(sides[2]), int(sides[3])


def _check_mode(padding_mode: str) -> str:
    if padding_mode not in _PAD_MODES:
        raise ValueError(
            f"padding_mode: expected one of {sorted(_PAD_MODES)}, got {padding_mode!r}"
        )
    return padding_mode


def _pad(
    array: np.ndarray, sides: tuple[int, int, int, int], fill: float, padding_mode: str
) -> np.ndarray:
    left, top, right, bottom = sides
    widths = [(0, 0)] * (array.ndim - 2) + [(top, bottom), (left, right)]
    if padding_mode == "constant":
        return np.pad(array, widths, mode="constant", constant_values=fill)
    return np.pad(array, widths, mode=padding_mode)  # type: ignore[call-overload]


class Pad:
    """Pad an image's borders, as torchvision.

    Args:
        padding: One int for every side, (left/right, top/bottom), or (left, top, right,
            bottom).
        fill: The value of constant padding.
        padding_mode: ``"constant"``, ``"edge"`` (repeat the border), ``"reflect"`` (mirror
            without the border) or ``"symmetric"`` (mirror with it).

    Raises:
        ValueError: For a bad padding or mode.
    """

    def __init__(self, padding: Any, fill: float = 0, padding_mode: str = "constant") -> None:
        self.padding, self.fill = _padding(padding), fill
        self.padding_mode = _check_mode(padding_mode)

    def __call__(self, image: Any) -> Any:
        array, was_tensor = _as_array(image)
        _check_image(array)
        return _like(_pad(array, self.padding, self.fill, self.padding_mode), was_tensor)

    def __repr__(self) -> str:
        return f"Pad(padding={self.padding}, fill={self.fill}, padding_mode={self.padding_mode})"


class RandomCrop:
    """Cut a random ``size`` window after optional padding, with torchvision's arguments.

    Args:
        size: (h, w) or one int for a square.
        padding: Added first, as :class:`Pad`'s (None: none).
        pad_if_needed: Pad an image smaller than ``size`` (by the shortfall on both sides of
            that dimension, as torchvision) instead of failing.
        fill: The value of constant padding.
        padding_mode: As :class:`Pad`'s.

    The window is drawn from :func:`convlab.data.sample_rng` (uniform over the positions,
    as torchvision; the draws differ from PyTorch's generator's).

    Raises:
        ValueError: For a bad argument, or an image smaller than ``size`` without
            ``pad_if_needed``.
    """

    def __init__(
        self,
        size: Any,
        padding: Any = None,
        pad_if_needed: bool = False,
        fill: float = 0,
        padding_mode: str = "constant",
    ) -> None:
        sizes = _size(size)
        self.size = (sizes[0], sizes[-1])
        self.padding = None if padding is None else _padding(padding)
        self.pad_if_needed, self.fill = bool(pad_if_needed), fill
        self.padding_mode = _check_mode(padding_mode)

    def __call__(self, image: Any) -> Any:
        array, was_tensor = _as_array(image)
        _check_image(array)
        if self.padding is not None:
            array = _pad(array, self.padding, self.fill, self.padding_mode)
        th, tw = self.size
        h, w = array.shape[-2:]
        if self.pad_if_needed and (h < th or w < tw):
            dw, dh = max(tw - w, 0), max(th - h, 0)
            array = _pad(array, (dw, dh, dw, dh), self.fill, self.padding_mode)
            h, w = array.shape[-2:]
        if h < th or w < tw:
            raise ValueError(
                f"size: crop ({th}, {tw}) is larger than the (padded) image ({h}, {w}); "
                f"pass pad_if_needed=True to pad it"
            )
        rng = sample_rng()
        top, left = int(rng.integers(0, h - th + 1)), int(rng.integers(0, w - tw + 1))
        out = np.ascontiguousarray(array[..., top : top + th, left : left + tw])
        return _like(out, was_tensor)

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class Grayscale:
    """RGB (3, H, W) -> grey (1, H, W), or the grey value in every channel.

    Args:
        num_output_channels: 1, or 3 (the grey copied into each).

    uint8 images use PIL's ``convert("L")`` (ITU-R 601-2 luma in 16-bit fixed point, what
    torchvision does to its PIL images); float images ``0.2989 R + 0.587 G + 0.114 B``, as
    torchvision does to tensors.

    Raises:
        ValueError: If ``num_output_channels`` is not 1 or 3, or the image is not RGB.
    """

    def __init__(self, num_output_channels: int = 1) -> None:
        if num_output_channels not in (1, 3):
            raise ValueError(f"num_output_channels: expected 1 or 3, got {num_output_channels!r}")
        self.num_output_channels = num_output_channels

    def __call__(self, image: Any) -> Any:
        array, was_tensor = _as_array(image)
        if array.ndim < 3 or array.shape[-3] != 3:
            raise ValueError(f"image: expected an RGB (3, H, W) image, got shape {array.shape}")
        r, g, b = (array[..., c, :, :] for c in range(3))
        if array.dtype == np.uint8:
            wide = [channel.astype(np.uint32) for channel in (r, g, b)]
            grey = ((wide[0] * 19595 + wide[1] * 38470 + wide[2] * 7471 + 0x8000) >> 16).astype(
                np.uint8
            )
        else:
            grey = (0.2989 * r + 0.587 * g + 0.114 * b).astype(array.dtype)
        out = np.repeat(grey[..., None, :, :], self.num_output_channels, axis=-3)
        return _like(np.ascontiguousarray(out), was_tensor)

    def __repr__(self) -> str:
        return f"Grayscale(num_output_channels={self.num_output_channels})"


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
