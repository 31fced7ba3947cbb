"""Adaptive average and max pooling (``torch.nn.functional.adaptive_*_pool{1,2}d``).

Output cell ``i`` of an axis of ``size`` inputs pooled to ``out`` cells covers PyTorch's bin
``[floor(i * size / out), ceil((i + 1) * size / out))``. The common cases run the backend's
pooling kernels: an output that divides the input is ordinary pooling with
``kernel = stride = size / out`` (a 1x1 output, global pooling, included). Any other size is
exact too: average pooling is separable, ``Y = A_h X A_w^T`` with ``A`` the bin-averaging
matrices (two small batched GEMMs, the transposed ones for the gradient), and max pooling
takes each bin's maximum in turn.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from convlab._ops import shape as _shape
from convlab._ops.conv import _batched
from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "adaptive_avg_pool1d",
    "adaptive_max_pool1d",
]


def bins(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive pooling bins ``(start, end)`` of an axis of ``size`` into ``out``."""
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]


def _averaging(xp: Any, size: int, out: int, dtype: Any) -> Any:
    """(out, size) matrix whose row ``i`` averages bin ``i``."""
    matrix = np.zeros((out, size), dtype)
    for i, (start, end) in enumerate(bins(size, out)):
        matrix[i, start:end] = 1.0 / (end - start)
    return xp.asarray(matrix)


def _output_size(output_size: Any, in_hw: tuple, what: str) -> tuple[int, int]:
    """``output_size`` (an int, or a pair whose None entries keep the input's size)."""
    sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * 2
    if len(sizes) != 2:
        raise ValueError(
            f"{what}: output_size: expected an int or a pair (entries may be None), "
            f"got {output_size!r}"
        )
    result = []
    for value, size in zip(sizes, in_hw):
        if value is None:
            value = size
        if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
            raise TypeError(
                f"{what}: output_size: expected ints or None, got {type(value).__name__} "
                f"(output_size={output_size!r})"
            )
        if value < 1:
            raise ValueError(f"{what}: output_size: expected sizes >= 1, got {output_size!r}")
        result.append(int(value))
    return result[0], result[1]


def _window(in_hw: tuple, out_hw: tuple) -> tuple[int, int] | None:
    """The ordinary pooling window (= stride) when the output divides the input."""
    if in_hw[0] % out_hw[0] or in_hw[1] % out_hw[1]:
        return None
    return in_hw[0] // out_hw[0], in_hw[1] // out_hw[1]


class AdaptiveAvgPool2d(Function):
    def forward(self, x: Any, out_hw: tuple = (1, 1)) -> Any:
        bk, xp = self.backend, self.backend.xp
        self.shape, self.out_hw = x.shape, out_hw
        self.window = _window(x.shape[2:], out_hw)
        if out_hw == (1, 1):  # global average pooling: one reduction per plane
            return bk.global_avg_pool2d(x)
        if self.window is not None:
            return bk.avg_pool2d(x, self.window, self.window)
        self.a_h = _averaging(xp, x.shape[2], out_hw[0], x.dtype)
        self.a_w = _averaging(xp, x.shape[3], out_hw[1], x.dtype)
        return xp.matmul(xp.matmul(self.a_h, x), self.a_w.T)

    def backward(self, grad: Any) -> tuple:
        bk, xp = self.backend, self.backend.xp
        if self.out_hw == (1, 1):
            scale = grad.dtype.type(1.0 / (self.shape[2] * self.shape[3]))
            return (xp.broadcast_to(grad * scale, self.shape).copy(),)
        if self.window is not None:
            return (bk.avg_pool2d_backward(grad, self.shape, self.window, self.window),)
        return (xp.matmul(xp.matmul(self.a_h.T, grad), self.a_w),)


class AdaptiveMaxPool2d(Function):
    def forward(self, x: Any, out_hw: tuple = (1, 1), indices: dict | None = None) -> Any:
        bk, xp = self.backend, self.backend.xp
        n, c, h, w = x.shape
        self.shape, self.out_hw = x.shape, out_hw
        self.window = _window((h, w), out_hw)
        if out_hw == (1, 1):  # global max pooling: the kernel gives flat offsets directly
            y, self.flat = bk.global_max_pool2d(x)
            self.window = None
            if indices is not None:
                indices["value"] = self.flat
            return y
        if self.window is not None:
            y, self.argmax = bk.max_pool2d(x, self.window, self.window)
            if indices is not None:
                # window offsets -> PyTorch's flat offsets h * W + w inside the plane
                kh, kw = self.window
                arg = self.argmax.astype(np.int64)
                rows = xp.arange(out_hw[0], dtype=np.int64)[:, None] * kh + arg // kw
                cols = xp.arange(out_hw[1], dtype=np.int64) * kw + arg % kw
                indices["value"] = rows * w + cols
            return y
        y = xp.empty((n, c) + out_hw, x.dtype)
        flat = xp.empty((n, c) + out_hw, np.int64)
        # each bin's first maximum, or its first NaN (NaN propagates, as PyTorch)
        bk._adaptive_max_pool2d_into(
            xp.ascontiguousarray(x), bins(h, out_hw[0]), bins(w, out_hw[1]), y, flat
        )
        self.flat = flat
        if indices is not None:
            indices["value"] = flat
        return y

    def backward(self, grad: Any) -> tuple:
        bk, xp = self.backend, self.backend.xp
        if self.window is not None:
            return (
                bk.max_pool2d_backward(grad, self.argmax, self.shape, self.window, self.window),
            )
        n, c, h, w = self.shape
        if self.out_hw == (1, 1):  # one maximum per plane: a plain scatter
            dx = xp.zeros((n * c, h * w), grad.dtype)
            dx[xp.arange(n * c), self.flat.reshape(n * c)] = grad.reshape(n * c)
            return (dx.reshape(self.shape),)
        dx = xp.empty(self.shape, grad.dtype)
        bk._adaptive_max_pool2d_backward_into(grad, self.flat, dx)
        return (dx,)


def _pool(function: type[Function], x: Tensor, output_size: Any, what: str, **extra: Any) -> Tensor:
    unbatched = _batched(x, 4, what)
    if x.shape[-1] == 0 or x.shape[-2] == 0:
        raise ValueError(f"{what}: expected non-empty spatial dimensions, got shape {x.shape}")
    out_hw = _output_size(output_size, tuple(x.shape[-2:]), what)
    if unbatched:
        x = _shape.unsqueeze(x, 0)
    out = function.apply(x, out_hw=out_hw, **extra)
    return _shape.squeeze(out, 0) if unbatched else out


def adaptive_avg_pool2d(x: Tensor, output_size: Any) -> Tensor:
    """Average over PyTorch's adaptive bins (``torch.nn.functional.adaptive_avg_pool2d``).

    Args:
        x: (N, C, H, W) or unbatched (C, H, W).
        output_size: An int or an (OH, OW) pair; a None entry keeps that input size.

    Returns:
        (N, C, OH, OW) (or (C, OH, OW)).
    """
    return _pool(AdaptiveAvgPool2d, x, output_size, "adaptive_avg_pool2d")


def adaptive_max_pool2d(x: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """Maximum over PyTorch's adaptive bins (``torch.nn.functional.adaptive_max_pool2d``).

    Args:
        x: (N, C, H, W) or unbatched (C, H, W).
        output_size: An int or an (OH, OW) pair; a None entry keeps that input size.
        return_indices: Also return each maximum's flat offset ``h * W + w`` in its plane
            (int64, as PyTorch's).

    Returns:
        The pooled tensor, or ``(pooled, indices)`` with ``return_indices``.
    """
    holder: dict = {}
    out = _pool(
        AdaptiveMaxPool2d,
        x,
        output_size,
        "adaptive_max_pool2d",
        indices=holder if return_indices else None,
    )
    if not return_indices:
        return out
    indices = Tensor._wrap(holder["value"], out._backend)
    return out, indices.reshape(out.shape)


def _one_d(x: Tensor, what: str) -> Tensor:
    _batched(x, 3, what)
    return _shape.unsqueeze(x, -2)


def adaptive_avg_pool1d(x: Tensor, output_size: Any) -> Tensor:
    """``torch.nn.functional.adaptive_avg_pool1d`` over (N, C, L) or (C, L) ``x``."""
    size = _one_size(output_size, "adaptive_avg_pool1d")
    out = adaptive_avg_pool2d(_one_d(x, "adaptive_avg_pool1d"), (1, size))
    return _shape.squeeze(out, -2)


def adaptive_max_pool1d(x: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """``torch.nn.functional.adaptive_max_pool1d`` over (N, C, L) or (C, L) ``x``; the
    indices are offsets along L."""
    size = _one_size(output_size, "adaptive_max_pool1d")
    result = adaptive_max_pool2d(_one_d(x, "adaptive_max_pool1d"), (1, size), return_indices)
    if return_indices:
        return _shape.squeeze(result[0], -2), _shape.squeeze(result[1], -2)
    return _shape.squeeze(result, -2)


def _one_size(output_size: Any, what: str) -> int:
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 1:
            raise ValueError(
                f"{what}: output_size: expected an int or a 1-tuple, got {output_size!r}"
            )
        output_size = output_size[0]
    if isinstance(output_size, bool) or not isinstance(output_size, (numbers.Integral, np.integer)):
        raise TypeError(f"{what}: output_size: expected an int, got {type(output_size).__name__}")
    return int(output_size)
