"""Resizing (``interpolate``): nearest and (bi)linear, one spatial axis at a time.

Both modes are separable: each output position along an axis reads one (nearest) or two
(linear) input positions with fixed weights, so the op is a gather along each resized axis in
turn, and its gradient the matching scatter-add in reverse order. The source positions follow
PyTorch's CPU kernels, computed in the same precision (float32 scales for nearest, the input's
dtype for linear), so the same pixels are picked.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np

from convlab._ops._util import float_check
from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = [
    "interpolate",
    "upsample",
    "upsample_nearest",
    "upsample_bilinear",
    "scatter_add_axis",
]

_MODES = ("nearest", "nearest-exact", "linear", "bilinear")
_SPATIAL = {"linear": 1, "bilinear": 2}  # modes tied to one input rank (3-D, 4-D)


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


class Resample(Function):
    """Gather along each resized axis: ``plan`` holds per axis ``(axis, length, i0, w0, i1,
    w1)`` (``i1`` / ``w1`` None for nearest, ``w0`` None for an unweighted pick)."""

    def forward(self, x: Any, plan: tuple = ()) -> Any:
        xp = self.backend.xp
        self.plan = plan
        if not plan:  # same size: a copy, never the input itself
            return xp.array(x, copy=True)
        for axis, _, i0, w0, i1, w1 in plan:
            view = (-1,) + (1,) * (x.ndim - 1 - axis)
            picked = xp.take(x, i0, axis=axis)
            if i1 is None:
                x = picked
            else:
                x = picked * w0.reshape(view) + xp.take(x, i1, axis=axis) * w1.reshape(view)
        return x

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        for axis, length, i0, w0, i1, w1 in reversed(self.plan):
            if i1 is None:
                grad = scatter_add_axis(xp, grad, i0, length, axis)
                continue
            view = (-1,) + (1,) * (grad.ndim - 1 - axis)
            grad = scatter_add_axis(
                xp, grad * w0.reshape(view), i0, length, axis
            ) + scatter_add_axis(xp, grad * w1.reshape(view), i1, length, axis)
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
        input: ``(N, C, L)`` or ``(N, C, H, W)`` (``"nearest"`` also takes ``(N, C, D, H, W)``).
        size: Output spatial size: an int or one int per spatial dimension.
        scale_factor: Multiplier of the spatial size: a float or one per spatial dimension.
        mode: ``"nearest"``, ``"nearest-exact"``, ``"linear"`` (3-D) or ``"bilinear"`` (4-D).
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
            one convlab lacks (``bicubic``, ``trilinear``, ``area``, antialiasing).
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"interpolate: input: expected a Tensor, got {type(input).__name__}")
    if mode in ("bicubic", "trilinear", "area", "lanczos") or antialias:
        raise NotImplementedError(
            f"interpolate: mode {mode!r}{' with antialias' if antialias else ''} is not "
            f"supported by convlab (supported: {', '.join(_MODES)})"
        )
    if mode not in _MODES:
        raise ValueError(f"interpolate: mode: expected one of {', '.join(_MODES)}, got {mode!r}")
    nearest = mode.startswith("nearest")
    if nearest and align_corners is not None:
        raise ValueError(
            "interpolate: align_corners option can only be set with the interpolating modes: "
            "linear | bilinear | bicubic | trilinear"
        )
    dims = input.ndim - 2
    if not (1 <= dims <= 3) or (not nearest and dims != _SPATIAL[mode]):
        raise NotImplementedError(
            f"interpolate: got {input.ndim}D input, but mode {mode!r} needs "
            + ("3D, 4D or 5D" if nearest else f"{_SPATIAL[mode] + 2}D")
            + " input"
        )
    if not nearest:
        float_check(input, "interpolate")
    sizes, scales = _output_size(input, size, scale_factor, recompute_scale_factor)
    xp = input._backend.xp
    plan = []
    for k, (n, out, scale) in enumerate(zip(input.shape[2:], sizes, scales)):
        if out == n and (not nearest or (mode == "nearest" and dims == 2)):
            # PyTorch's kernels copy an axis that keeps its size whatever the scale, except
            # the 1-D / 3-D nearest and the nearest-exact ones
            continue
        if nearest:
            index = _nearest_index(n, out, scale, mode == "nearest-exact")
            plan.append((k + 2, n, xp.asarray(index), None, None, None))
        else:
            i0, i1, w0, w1 = _linear_plan(n, out, scale, bool(align_corners), input.dtype)
            plan.append((k + 2, n, xp.asarray(i0), xp.asarray(w0), xp.asarray(i1), xp.asarray(w1)))
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
