"""Resizing (``interpolate``): nearest, (bi/tri)linear and bicubic, one axis at a time.

These modes are separable: each output position along an axis reads one (nearest), two
(linear) or four (cubic) input positions with fixed weights, so the op is a weighted gather
along each resized axis in turn, and its gradient the matching scatter-add in reverse order.
The source positions follow PyTorch's CPU kernels, computed in the same precision (float32
scales for nearest, the input's dtype for the others), so the same pixels are picked.
``area`` is adaptive average pooling, as in PyTorch.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np

from convlab._ops import adaptive_pool as _adaptive
from convlab._ops import shape as _shape
from convlab._ops._util import float_check
from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = [
    "interpolate",
    "upsample",
    "upsample_nearest",
    "upsample_bilinear",
    "pixel_shuffle",
    "pixel_unshuffle",
    "scatter_add_axis",
]

_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area")
# modes tied to one input rank (3-D, 4-D, 5-D)
_SPATIAL = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


def scatter_add_axis(xp: Any, values: Any, index: Any, length: int, axis: int) -> Any:
    """``out`` of ``length`` along ``axis`` with ``out[index[j]] += values[j]`` (the adjoint of
    ``take(out, index, axis)``).

    NumPy sums the runs of equal indices (after a stable sort unless ``index`` is already
    non-decreasing) with ``add.reduceat``, exact and much faster than ``add.at``; CuPy, which
    has no ``reduceat``, scatters atomically.
    """
    moved = xp.moveaxis(values, axis, 0)
    out = xp.zeros((length,) + moved.shape[1:], values.dtype)
    if not hasattr(xp.add, "reduceat"):  # pragma: no cover - CuPy without reduceat
        import cupyx

        cupyx.scatter_add(out, index, moved)
        return xp.moveaxis(out, 0, axis)
    counts = xp.bincount(index, minlength=length)
    filled = xp.flatnonzero(counts)
    if filled.size:
        if index.size > 1 and bool((index[1:] < index[:-1]).any()):
            # runs need equal indices side by side (resizing's indices already are)
            moved = moved.take(xp.argsort(index, kind="stable"), axis=0)
        # the runs of the sorted values, one per input position that receives any
        starts = (xp.cumsum(counts) - counts)[filled]
        out[filled] = xp.add.reduceat(moved, starts, axis=0)
    return xp.moveaxis(out, 0, axis)


def _nearest_index(in_size: int, out_size: int, scale: float | None, exact: bool) -> np.ndarray:
    """PyTorch's ``nearest_idx`` / ``nearest_neighbor_exact_compute_source_index``."""
    dst = np.arange(out_size)
    if not exact and out_size == 2 * in_size:
        return dst >> 1
    # the scale is a C float: 1 / scale_factor when one was given, else in / out
    ratio = np.float32(1.0 / scale) if scale else np.float32(in_size) / np.float32(out_size)
    if exact:
        src = np.floor(((dst + 0.5) * np.float64(ratio)).astype(np.float32))
    else:
        src = np.floor(dst.astype(np.float32) * ratio)
    return np.minimum(src.astype(np.int64), in_size - 1)


def _linear_plan(
    in_size: int, out_size: int, scale: float | None, align_corners: bool, dtype: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Indices and weights of PyTorch's ``compute_indices_weights_linear``, in ``dtype``."""
    t = np.dtype(dtype).type
    if align_corners:
        ratio = t(in_size - 1) / t(out_size - 1) if out_size > 1 else t(0)
    else:
        ratio = t(1.0 / scale) if scale and scale > 0 else t(in_size) / t(out_size)
    dst = np.arange(out_size).astype(dtype)
    if align_corners:
        src = ratio * dst
    else:
        src = np.maximum(ratio * (dst + t(0.5)) - t(0.5), t(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    lambda1 = np.clip(src - i0.astype(dtype), 0, 1).astype(dtype)
    i1 = i0 + (i0 < in_size - 1)
    return i0, i1, (t(1) - lambda1).astype(dtype), lambda1


def _cubic_plan(
    in_size: int, out_size: int, scale: float | None, align_corners: bool, dtype: Any
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The four taps of PyTorch's bicubic kernel (``A = -0.75``, edge indices clamped), in
    ``dtype``."""
    t = np.dtype(dtype).type
    if align_corners:
        ratio = t(in_size - 1) / t(out_size - 1) if out_size > 1 else t(0)
    else:
        ratio = t(1.0 / scale) if scale and scale > 0 else t(in_size) / t(out_size)
    dst = np.arange(out_size).astype(dtype)
    # no clamping at 0 for cubic: the taps reach across the edge and are clamped instead
    src = ratio * dst if align_corners else ratio * (dst + t(0.5)) - t(0.5)
    base = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    lam = np.clip(src - base.astype(dtype), 0, 1).astype(dtype)
    a = t(-0.75)

    def near(x: np.ndarray) -> np.ndarray:  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: np.ndarray) -> np.ndarray:  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    weights = [far(lam + t(1)), near(lam), near(t(1) - lam), far(t(2) - lam)]
    return [(np.clip(base - 1 + k, 0, in_size - 1), w.astype(dtype)) for k, w in enumerate(weights)]


class Resample(Function):
    """A weighted gather along each axis of ``plan``: per axis ``(axis, length, taps)``, each
    tap an ``(index, weight)`` pair (``weight`` None for an unweighted pick), the output the
    sum of the taps. Nearest resizing and padding have one unweighted tap, linear two, cubic
    four."""

    def forward(self, x: Any, plan: tuple = ()) -> Any:
        xp = self.backend.xp
        self.plan = plan
        if not plan:  # same size: a copy, never the input itself
            return xp.array(x, copy=True)
        for axis, _, taps in plan:
            view = (-1,) + (1,) * (x.ndim - 1 - axis)
            out = None
            for index, weight in taps:
                picked = xp.take(x, index, axis=axis)
                if weight is not None:
                    picked *= weight.reshape(view)
                out = picked if out is None else out + picked
            x = out
        return x

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        for axis, length, taps in reversed(self.plan):
            view = (-1,) + (1,) * (grad.ndim - 1 - axis)
            total = None
            for index, weight in taps:
                part = grad if weight is None else grad * weight.reshape(view)
                part = scatter_add_axis(xp, part, index, length, axis)
                total = part if total is None else total + part
            grad = total
        return (grad,)


def _per_dim(value: Any, dims: int, name: str, input: Tensor) -> list:
    if isinstance(value, (tuple, list)):
        if len(value) != dims:
            raise ValueError(
                f"interpolate: {name}: expected {dims} values (one per spatial dimension of "
                f"the input of shape {input.shape}), got {tuple(value)}"
            )
        return list(value)
    return [value] * dims


def _output_size(
    input: Tensor, size: Any, scale_factor: Any, recompute: bool | None
) -> tuple[list[int], list[float | None]]:
    """Output sizes and the scales the kernels use, by PyTorch's rules."""
    dims = input.ndim - 2
    if size is not None and scale_factor is not None:
        raise ValueError("interpolate: only one of size or scale_factor should be defined")
    if size is not None:
        if recompute:
            raise ValueError(
                "interpolate: recompute_scale_factor is not meaningful with an explicit size"
            )
        sizes = _per_dim(size, dims, "size", input)
        if not all(
            isinstance(s, (numbers.Integral, np.integer)) and not isinstance(s, bool) for s in sizes
        ):
            raise TypeError(f"interpolate: size: expected ints, got {size!r}")
        if any(s <= 0 for s in sizes):
            raise ValueError(f"interpolate: size: expected positive sizes, got {size!r}")
        return [int(s) for s in sizes], [None] * dims
    if scale_factor is None:
        raise ValueError("interpolate: either size or scale_factor should be defined")
    scales = [float(s) for s in _per_dim(scale_factor, dims, "scale_factor", input)]
    if any(not math.isfinite(s) or s <= 0 for s in scales):
        raise ValueError(f"interpolate: scale_factor: expected positive values, got {scale_factor}")
    sizes = [int(math.floor(n * s)) for n, s in zip(input.shape[2:], scales)]
    if any(s <= 0 for s in sizes):
        raise ValueError(
            f"interpolate: the output size {tuple(sizes)} for input {input.shape} and "
            f"scale_factor {scale_factor} is empty"
        )
    # recompute_scale_factor=True: the kernels derive the scale from the sizes instead
    return sizes, [None] * dims if recompute else list(scales)


def interpolate(
    input: Tensor,
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Tensor:
    """Resize the spatial dimensions of ``input`` (``torch.nn.functional.interpolate``).

    Args:
        input: ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``, as the mode takes.
        size: Output spatial size: an int or one int per spatial dimension.
        scale_factor: Multiplier of the spatial size: a float or one per spatial dimension.
        mode: ``"nearest"`` / ``"nearest-exact"`` (3-D to 5-D), ``"linear"`` (3-D),
            ``"bilinear"`` / ``"bicubic"`` (4-D), ``"trilinear"`` (5-D) or ``"area"`` (3-D,
            4-D).
        align_corners: For the linear modes, whether the corner pixels' centres line up
            (default False); must be None for the nearest modes.
        recompute_scale_factor: With ``scale_factor``, derive the scale from the output size
            instead of using ``scale_factor`` itself.
        antialias: Only False is supported.

    Returns:
        The resized tensor, with ``input``'s batch and channel dimensions.

    Raises:
        ValueError: For a missing or doubled size / scale_factor, wrong lengths, a bad mode or
            ``align_corners`` with a nearest mode.
        NotImplementedError: For a mode that does not fit the input's rank (as PyTorch) or
            one convlab lacks (``lanczos``, antialiasing, 5-D ``area``).
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"interpolate: input: expected a Tensor, got {type(input).__name__}")
    if mode == "lanczos" or antialias:
        raise NotImplementedError(
            f"interpolate: mode {mode!r}{' with antialias' if antialias else ''} is not "
            f"supported by convlab (supported: {', '.join(_MODES)})"
        )
    if mode not in _MODES:
        raise ValueError(f"interpolate: mode: expected one of {', '.join(_MODES)}, got {mode!r}")
    nearest = mode.startswith("nearest")
    if (nearest or mode == "area") and align_corners is not None:
        raise ValueError(
            "interpolate: align_corners option can only be set with the interpolating modes: "
            "linear | bilinear | bicubic | trilinear"
        )
    dims = input.ndim - 2
    ranks = {"area": (1, 2)}.get(mode, (_SPATIAL[mode],) if mode in _SPATIAL else (1, 2, 3))
    if dims not in ranks:
        raise NotImplementedError(
            f"interpolate: got {input.ndim}D input, but mode {mode!r} needs "
            + " or ".join(f"{r + 2}D" for r in ranks)
            + " input"
        )
    if not nearest:
        float_check(input, "interpolate")
    if mode == "area":
        # PyTorch's area mode is adaptive average pooling to the output size (a scale factor
        # is turned into that size first)
        sizes, _ = _output_size(input, size, scale_factor, recompute_scale_factor or None)
        pool = _adaptive.adaptive_avg_pool1d if dims == 1 else _adaptive.adaptive_avg_pool2d
        return pool(input, sizes[0] if dims == 1 else tuple(sizes))
    sizes, scales = _output_size(input, size, scale_factor, recompute_scale_factor)
    xp = input._backend.xp
    plan = []
    for k, (n, out, scale) in enumerate(zip(input.shape[2:], sizes, scales)):
        if out == n and (
            mode in ("linear", "bilinear", "trilinear") or (mode == "nearest" and dims == 2)
        ):
            # PyTorch's kernels copy an axis that keeps its size whatever the scale in these
            # modes (not in bicubic, nearest-exact, or 1-D / 3-D nearest)
            continue
        taps: list[tuple[np.ndarray, np.ndarray | None]]
        if nearest:
            taps = [(_nearest_index(n, out, scale, mode == "nearest-exact"), None)]
        elif mode == "bicubic":
            taps = list(_cubic_plan(n, out, scale, bool(align_corners), input.dtype))
        else:
            i0, i1, w0, w1 = _linear_plan(n, out, scale, bool(align_corners), input.dtype)
            taps = [(i0, w0), (i1, w1)]
        on_device = tuple((xp.asarray(i), None if w is None else xp.asarray(w)) for i, w in taps)
        plan.append((k + 2, n, on_device))
    return Resample.apply(input, plan=tuple(plan))


def upsample(
    input: Tensor,
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
) -> Tensor:
    """Deprecated alias of :func:`interpolate` (``torch.nn.functional.upsample``), with
    PyTorch's warning."""
    warnings.warn(
        "`nn.functional.upsample` is deprecated. Use `nn.functional.interpolate` instead.",
        stacklevel=2,
    )
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size: Any = None, scale_factor: Any = None) -> Tensor:
    """Deprecated: :func:`interpolate` with ``mode="nearest"``
    (``torch.nn.functional.upsample_nearest``)."""
    warnings.warn(
        "`nn.functional.upsample_nearest` is deprecated. Use `nn.functional.interpolate` instead.",
        stacklevel=2,
    )
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size: Any = None, scale_factor: Any = None) -> Tensor:
    """Deprecated: :func:`interpolate` with ``mode="bilinear"`` and ``align_corners=True``
    (``torch.nn.functional.upsample_bilinear``)."""
    warnings.warn(
        "`nn.functional.upsample_bilinear` is deprecated. Use `nn.functional.interpolate` instead.",
        stacklevel=2,
    )
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def _pixel_check(input: Tensor, factor: Any, name: str, what: str) -> int:
    if isinstance(factor, bool) or not isinstance(factor, (numbers.Integral, np.integer)):
        raise TypeError(f"{what}: {name}: expected an int, got {factor!r}")
    if factor <= 0:
        raise ValueError(f"{what}: {name}: expected a positive int, got {factor}")
    if not isinstance(input, Tensor) or input.ndim < 3:
        raise ValueError(
            f"{what}: expected an input with at least 3 dimensions (*, C, H, W), got "
            f"{getattr(input, 'shape', type(input).__name__)}"
        )
    return int(factor)


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """Rearrange ``(*, C * r * r, H, W)`` into ``(*, C, H * r, W * r)``
    (``torch.nn.functional.pixel_shuffle``).

    Raises:
        ValueError: For fewer than 3 dimensions, a non-positive factor, or channels not
            divisible by its square.
    """
    r = _pixel_check(input, upscale_factor, "upscale_factor", "pixel_shuffle")
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise ValueError(
            f"pixel_shuffle: expected the channels ({c}, dimension -3 of {input.shape}) to be "
            f"divisible by the square of upscale_factor ({r * r})"
        )
    k = len(lead)
    x = _shape.reshape(input, (*lead, c // (r * r), r, r, h, w))
    x = _shape.permute(x, (*range(k), k, k + 3, k + 1, k + 4, k + 2))
    return _shape.reshape(x, (*lead, c // (r * r), h * r, w * r))


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """Rearrange ``(*, C, H * r, W * r)`` into ``(*, C * r * r, H, W)``, the inverse of
    :func:`pixel_shuffle` (``torch.nn.functional.pixel_unshuffle``).

    Raises:
        ValueError: For fewer than 3 dimensions, a non-positive factor, or a height or width
            not divisible by it.
    """
    r = _pixel_check(input, downscale_factor, "downscale_factor", "pixel_unshuffle")
    *lead, c, h, w = input.shape
    if h % r or w % r:
        raise ValueError(
            f"pixel_unshuffle: expected the height and width ({h}, {w}) to be divisible by "
            f"downscale_factor ({r})"
        )
    k = len(lead)
    x = _shape.reshape(input, (*lead, c, h // r, r, w // r, r))
    x = _shape.permute(x, (*range(k), k, k + 2, k + 4, k + 1, k + 3))
    return _shape.reshape(x, (*lead, c * r * r, h // r, w // r))
