"""Counting values: ``bincount`` and ``histc`` (no gradients, as in PyTorch)."""

from __future__ import annotations

from typing import Any

from convlab._tensor import Tensor

__all__ = ["bincount", "histc"]


def bincount(a: Tensor, weights: Tensor | None = None, minlength: int = 0) -> Tensor:
    """How often each value ``0``, ..., ``max(a)`` occurs in the 1-D non-negative integer
    tensor ``a`` (summed ``weights`` instead of counts when given).

    Raises:
        RuntimeError: If ``a`` is not 1-D, not integer, or has negative values.
    """
    if not isinstance(a, Tensor) or a.ndim != 1 or a._data.dtype.kind not in "iub":
        raise RuntimeError("bincount: expected a 1-D tensor of non-negative integers")
    if a.numel() and int(a._data.min()) < 0:
        raise RuntimeError("bincount: expected non-negative values")
    if minlength < 0:
        raise RuntimeError(f"bincount: minlength should be >= 0, got {minlength}")
    xp = a._backend.xp
    w = None if weights is None else weights._data
    counts = xp.bincount(a._data.astype("int64"), weights=w, minlength=minlength)
    if weights is None:
        counts = counts.astype("int64")
    elif weights._data.dtype.kind == "f" and weights._data.dtype.itemsize < 8:
        counts = counts.astype(weights._data.dtype)  # PyTorch keeps float32 weights' dtype
    return Tensor._wrap(counts, a._backend)


def histc(a: Tensor, bins: int = 100, min: Any = 0, max: Any = 0) -> Tensor:  # noqa: A002
    """A histogram of ``bins`` equal bins over ``[min, max]`` (the data's range when both are
    0); values outside are ignored. The result has ``a``'s dtype."""
    if not isinstance(a, Tensor) or a._data.dtype.kind != "f":
        raise RuntimeError("histc: expected a floating-point tensor")
    if bins <= 0:
        raise RuntimeError(f"histc: bins must be > 0, got {bins}")
    xp = a._backend.xp
    data = a._data.reshape(-1)
    low, high = float(min), float(max)
    if low == high and data.size:
        low, high = float(data.min()), float(data.max())
    if low == high:
        low, high = low - 1, high + 1
    if low > high:
        raise RuntimeError(f"histc: max must be larger than min, got min={min}, max={max}")
    counts, _ = xp.histogram(data, bins=bins, range=(low, high))
    return Tensor._wrap(counts.astype(a._data.dtype), a._backend)
