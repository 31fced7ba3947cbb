"""torchvision.transforms' names, with torchvision's image layouts.

As in torchvision, an image is either a tensor, (..., C, H, W), or a picture: a PIL image
or the NumPy array ``np.asarray`` makes of one, (H, W, C) or (H, W) for one channel. The
datasets of :mod:`convlab.vision` hand transforms such arrays where torchvision hands PIL
images, and every transform here takes both kinds and returns the kind it was given (a PIL
image stays a PIL image). :class:`ToTensor` turns a picture into a float32 (C, H, W) tensor
in [0, 1]; :class:`Normalize` takes tensors only, as torchvision's.

(:mod:`convlab.data.transforms` is convlab's own set, where arrays are (C, H, W).)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from convlab.data.loader import sample_rng
from convlab.data.transforms import Compose

__all__ = [
    "Compose",
    "ToTensor",
    "Normalize",
    "Resize",
    "CenterCrop",
    "Pad",
    "RandomCrop",
    "RandomResizedCrop",
    "PILToTensor",
    "ToPILImage",
    "RandomHorizontalFlip",
    "RandomVerticalFlip",
    "Grayscale",
    "Lambda",
    "InterpolationMode",
]


class _Kind:
    """What an image came as, to return the result as the same kind."""

    def __init__(self, kind: str, ndim: int) -> None:
        self.kind, self.ndim = kind, ndim


def _is_pil(image: Any) -> bool:
    return hasattr(image, "mode") and hasattr(image, "size") and hasattr(image, "getbands")


def _to_chw(image: Any, name: str = "img") -> tuple[np.ndarray, _Kind]:
    """(C, H, W) array (or (..., C, H, W) for a batch tensor) and the image's kind."""
    from convlab._tensor import Tensor

    if isinstance(image, Tensor):
        if image.device.type != "cpu":
            raise ValueError(f"{name}: transforms run on CPU tensors, got one on {image.device}")
        array = image.numpy()
        if array.ndim < 2:
            raise ValueError(f"{name}: expected a (..., H, W) tensor, got shape {array.shape}")
        return (array[None] if array.ndim == 2 else array), _Kind("tensor", array.ndim)
    if _is_pil(image):
        array, kind = np.asarray(image), "pil"
    elif isinstance(image, np.ndarray):
        array, kind = image, "array"
    else:
        raise TypeError(
            f"{name}: expected a PIL image, a NumPy array (H, W[, C]) or a tensor, "
            f"got {type(image).__name__}"
        )
    if array.ndim == 2:
        return array[None], _Kind(kind, 2)
    if array.ndim == 3:
        return array.transpose(2, 0, 1), _Kind(kind, 3)
    raise ValueError(f"{name}: expected an (H, W) or (H, W, C) picture, got shape {array.shape}")


def _from_chw(array: np.ndarray, kind: _Kind, squeeze: bool | None = None) -> Any:
    """``array`` as ``kind``: a tensor as is, a picture back to (H, W[, C]) (one channel as
    (H, W) when the input was, or when ``squeeze``)."""
    if kind.kind == "tensor":
        from convlab._creation import from_numpy

        out = array[0] if kind.ndim == 2 else array
        return from_numpy(np.ascontiguousarray(out))
    one = (kind.ndim == 2 if squeeze is None else squeeze) and array.shape[0] == 1
    picture = np.ascontiguousarray(array[0] if one else array.transpose(1, 2, 0))
    if kind.kind == "pil":
        from PIL import Image

        return Image.fromarray(picture)
    return picture


def _pil_bits(image: Any) -> np.ndarray:
    """A PIL image's pixels; mode "1" (bits) as 0 / 255, as torchvision."""
    array = np.asarray(image)
    return array.astype(np.uint8) * 255 if image.mode == "1" else array


class ToTensor:
    """A picture (PIL image, or (H, W[, C]) array) -> (C, H, W) tensor, as torchvision.

    uint8 pixels become float32 in [0, 1]; other dtypes are kept unscaled.

    Raises:
        TypeError: If ``pic`` is not a PIL image or a NumPy array (a tensor, say).
        ValueError: If the array is not 2-d or 3-d.
    """

    def __call__(self, pic: Any) -> Any:
        from convlab._creation import from_numpy

        if _is_pil(pic):
            array = _pil_bits(pic)
        elif isinstance(pic, np.ndarray):
            array = pic
        else:
            raise TypeError(f"pic: expected a PIL image or a NumPy array, got {type(pic).__name__}")
        if array.ndim not in (2, 3):
            raise ValueError(f"pic: expected an (H, W) or (H, W, C) array, got shape {array.shape}")
        chw = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
        if chw.dtype == np.uint8:  # divided, not multiplied by 1/255: torchvision's bits
            chw = chw.astype(np.float32) / np.float32(255)
        return from_numpy(np.ascontiguousarray(chw))

    def __repr__(self) -> str:
        return "ToTensor()"


class PILToTensor:
    """A picture -> its (C, H, W) tensor, dtype kept, values unscaled (torchvision's).

    Raises:
        TypeError: If ``pic`` is not a PIL image or a NumPy array.
    """

    def __call__(self, pic: Any) -> Any:
        if not (_is_pil(pic) or isinstance(pic, np.ndarray)):
            raise TypeError(f"pic: expected a PIL image or a NumPy array, got {type(pic).__name__}")
        array, kind = _to_chw(_pil_bits(pic) if _is_pil(pic) else pic, "pic")
        return _from_chw(array, _Kind("tensor", 3))

    def __repr__(self) -> str:
        return "PILToTensor()"


class ToPILImage:
    """A (C, H, W) tensor or an (H, W[, C]) array -> a PIL image (needs Pillow).

    Args:
        mode: PIL's mode, or None: ``L``, ``LA``, ``RGB`` or ``RGBA`` by channel count.

    Float values are scaled by 255 and truncated to uint8, as torchvision's
    ``pic.mul(255).byte()`` (values outside [0, 1] are not clipped there either).

    Raises:
        TypeError: If ``pic`` is neither a tensor nor an array.
        ValueError: For more than four channels.
    """

    _MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}

    def __init__(self, mode: str | None = None) -> None:
        self.mode = mode

    def __call__(self, pic: Any) -> Any:
        from PIL import Image

        from convlab._tensor import Tensor

        if not isinstance(pic, (Tensor, np.ndarray)):
            raise TypeError(f"pic: expected a tensor or a NumPy array, got {type(pic).__name__}")
        array, _ = _to_chw(pic, "pic")
        if array.ndim != 3 or array.shape[0] not in self._MODES:
            raise ValueError(f"pic: expected 1 to 4 channels, got shape {array.shape}")
        if array.dtype.kind == "f":
            array = (array * 255).astype(np.uint8)
        picture = array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)
        mode = self.mode or self._MODES[array.shape[0]]
        return Image.fromarray(np.ascontiguousarray(picture), mode)

    def __repr__(self) -> str:
        return f"ToPILImage(mode={self.mode})"


class Normalize:
    """``(tensor - mean[c]) / std[c]`` per channel of a float (..., C, H, W) tensor.

    Args:
        mean: One value per channel (or one for all).
        std: One value per channel (or one for all).
        inplace: Write the result into the tensor (``sub_`` / ``div_``).

    Runs as tensor operations, as torchvision's: on the tensor's device, recorded by
    autograd (a program may normalise inside its model).

    Raises:
        TypeError: If the image is not a float tensor (as torchvision).
        ValueError: If a std is zero, or the channel counts do not match.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False):
        self.mean = [float(m) for m in np.asarray(mean, dtype=np.float64).reshape(-1)]
        self.std = [float(v) for v in np.asarray(std, dtype=np.float64).reshape(-1)]
        self.inplace = inplace

    def __call__(self, tensor: Any) -> Any:
        from convlab._creation import tensor as as_tensor
        from convlab._tensor import Tensor

        if not isinstance(tensor, Tensor):
            raise TypeError(f"tensor: expected a tensor image, got {type(tensor).__name__}")
        if tensor.ndim < 3:
            raise ValueError(f"tensor: expected (..., C, H, W), got shape {tuple(tensor.shape)}")
        if not tensor.is_floating_point():
            raise TypeError(f"tensor: expected a float tensor, got {tensor.dtype}")
        channels = tensor.shape[-3]
        if len(self.mean) not in (1, channels) or len(self.std) not in (1, channels):
            raise ValueError(
                f"mean, std: expected 1 or {channels} values each for {channels} channels, "
                f"got {len(self.mean)} and {len(self.std)}"
            )
        mean = as_tensor(self.mean, dtype=tensor.dtype, device=tensor.device).reshape(-1, 1, 1)
        std = as_tensor(self.std, dtype=tensor.dtype, device=tensor.device).reshape(-1, 1, 1)
        if bool((std == 0).any()):
            raise ValueError(f"std: evaluates to zero in {tensor.dtype}, got {self.std}")
        if self.inplace:
            return tensor.sub_(mean).div_(std)
        return (tensor - mean) / std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


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
        array, kind = _to_chw(image)
        h, w = array.shape[-2:]
        oh, ow = self._output_size(h, w)
        if (oh, ow) == (h, w):
            return image
        rows, cols = _resample_matrix(h, oh), _resample_matrix(w, ow)
        if array.dtype != np.uint8:
            out = rows @ array.astype(np.float64) @ cols.T
            return _from_chw(np.ascontiguousarray(out.astype(array.dtype)), kind)
        # PIL resizes uint8 in two passes, widths then heights, each in fixed point.
        wide = array if ow == w else _fixed_point_pass(array, cols, axis=-1)
        out = wide if oh == h else _fixed_point_pass(wide, rows, axis=-2)
        return _from_chw(np.ascontiguousarray(out), kind)

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
        array, kind = _to_chw(image)
        h, w = array.shape[-2:]
        ch, cw = self.size
        if ch > h or cw > w:  # torchvision pads first, the odd pixel after the image
            top, left = max(ch - h, 0) // 2, max(cw - w, 0) // 2
            padded = np.zeros(array.shape[:-2] + (max(h, ch), max(w, cw)), array.dtype)
            padded[..., top : top + h, left : left + w] = array
            array, (h, w) = padded, padded.shape[-2:]
        top, left = int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))
        out = np.ascontiguousarray(array[..., top : top + ch, left : left + cw])
        return _from_chw(out, kind)

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
        array, kind = _to_chw(image)
        return _from_chw(_pad(array, self.padding, self.fill, self.padding_mode), kind)

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
        array, kind = _to_chw(image)
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
        return _from_chw(out, kind)

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror the image left-right with probability ``p`` (drawn from
    :func:`convlab.data.sample_rng`).

    Raises:
        ValueError: If ``p`` is not in [0, 1].
    """

    _axis = -1

    def __init__(self, p: float = 0.5) -> None:
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"p: expected a probability in [0, 1], got {p!r}")
        self.p = float(p)

    def __call__(self, image: Any) -> Any:
        if sample_rng().random() >= self.p:
            return image
        array, kind = _to_chw(image)
        return _from_chw(np.flip(array, axis=self._axis), kind)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


class RandomVerticalFlip(RandomHorizontalFlip):
    """Mirror the image top-bottom with probability ``p`` (see
    :class:`RandomHorizontalFlip`)."""

    _axis = -2


class RandomResizedCrop:
    """Cut a random part of the image (area fraction in ``scale``, aspect ratio in ``ratio``)
    and resize it to ``size``, as torchvision's (ImageNet-style training).

    Args:
        size: Output (h, w), or one int for a square.
        scale: Range of the cut's area, as fractions of the image's.
        ratio: Range of the cut's width / height (drawn log-uniformly).
        interpolation: As :class:`Resize`'s (bilinear only).
        antialias: As :class:`Resize`'s (True only).

    Ten draws are tried (from :func:`convlab.data.sample_rng`) for a cut that fits; failing
    that, the central cut of the closest ratio, as torchvision.

    Raises:
        ValueError: For a bad size, or a range whose low end exceeds its high end.
    """

    def __init__(
        self,
        size: Any,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
        interpolation: str = InterpolationMode.BILINEAR,
        antialias: bool = True,
    ) -> None:
        sizes = _size(size)
        self.size = (sizes[0], sizes[-1])
        for name, pair in (("scale", scale), ("ratio", ratio)):
            if len(pair) != 2 or not 0 < pair[0] <= pair[1]:
                raise ValueError(f"{name}: expected (low, high) with 0 < low <= high, got {pair}")
        self.scale, self.ratio = tuple(scale), tuple(ratio)
        self._resize = Resize(self.size, interpolation, antialias=antialias)

    def get_params(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(top, left, h, w) of the cut."""
        rng, area = sample_rng(), height * width
        log_low, log_high = math.log(self.ratio[0]), math.log(self.ratio[1])
        for _ in range(10):
            target = area * rng.uniform(self.scale[0], self.scale[1])
            aspect = math.exp(rng.uniform(log_low, log_high))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = int(rng.integers(0, height - h + 1))
                left = int(rng.integers(0, width - w + 1))
                return top, left, h, w
        in_ratio = width / height
        if in_ratio < min(self.ratio):
            w, h = width, int(round(width / min(self.ratio)))
        elif in_ratio > max(self.ratio):
            w, h = int(round(height * max(self.ratio))), height
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, image: Any) -> Any:
        array, kind = _to_chw(image)
        top, left, h, w = self.get_params(*array.shape[-2:])
        cut = np.ascontiguousarray(array[..., top : top + h, left : left + w])
        return self._resize(_from_chw(cut, kind))

    def __repr__(self) -> str:
        return f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio})"


class Grayscale:
    """RGB -> grey: one channel, or the grey value in each of three.

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
        array, kind = _to_chw(image)
        if array.shape[-3] != 3:
            raise ValueError(f"img: expected an RGB image (3 channels), got shape {array.shape}")
        r, g, b = (array[..., c, :, :] for c in range(3))
        if array.dtype == np.uint8:
            wide = [channel.astype(np.uint32) for channel in (r, g, b)]
            grey = ((wide[0] * 19595 + wide[1] * 38470 + wide[2] * 7471 + 0x8000) >> 16).astype(
                np.uint8
            )
        else:
            grey = (0.2989 * r + 0.587 * g + 0.114 * b).astype(array.dtype)
        out = np.repeat(grey[..., None, :, :], self.num_output_channels, axis=-3)
        # A picture becomes PIL's "L" (H, W) or "RGB" (H, W, 3), a tensor (1 or 3, H, W).
        return _from_chw(out, kind, squeeze=self.num_output_channels == 1)

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
