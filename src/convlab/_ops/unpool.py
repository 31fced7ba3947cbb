"""Max pooling with PyTorch's flat indices, and its partial inverse ``max_unpool2d``.

``max_pool2d(..., return_indices=True)`` runs the backend's max-pool kernel unchanged and
turns the in-window argmax it already returns into PyTorch's plane offsets ``h * W + w``;
``max_unpool2d`` scatters values back to those offsets (its gradient gathers them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlab import _validate as check
from convlab._ops._util import float_check
from convlab._ops.conv import MaxPool2d, _apply_nchw, _pool_stride
from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = [
    "max_pool2d_with_indices",
    "max_pool1d_with_indices",
    "max_unpool2d",
    "max_unpool1d",
]


class _MaxPool2dIndices(MaxPool2d):
    """:class:`MaxPool2d` (same kernel, same backward) that also reports flat indices."""

    def forward(
        self,
        x: Any,
        kernel_size: Any = None,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        ceil_mode: bool = False,
        indices: dict | None = None,
    ) -> Any:
        out = super().forward(x, kernel_size, stride, padding, dilation, ceil_mode)
        if indices is not None:
            xp = self.backend.xp
            kernel, strides, pads, dils = check.pool_params(kernel_size, stride, padding, dilation)
            oh, ow = out.shape[2:]
            arg = self.argmax.astype(np.int64)
            # window offset i * KW + j of output (r, c) -> input row r*s - p + i*d, same for cols
            rows = (
                xp.arange(oh, dtype=np.int64)[:, None] * strides[0]
                - pads[0]
                + (arg // kernel[1]) * dils[0]
            )
            cols = (
                xp.arange(ow, dtype=np.int64) * strides[1] - pads[1] + (arg % kernel[1]) * dils[1]
            )
            indices["value"] = rows * x.shape[3] + cols
        return out


def max_pool2d_with_indices(
    x: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> tuple[Tensor, Tensor]:
    """:func:`convlab.nn.functional.max_pool2d` with ``return_indices=True``.

    Returns:
        ``(pooled, indices)``: ``indices`` holds each maximum's int64 offset ``h * W + w``
        in its input plane, as PyTorch's.
    """
    holder: dict = {}
    out = _apply_nchw(
        _MaxPool2dIndices,
        x,
        "max_pool2d",
        kernel_size=kernel_size,
        stride=_pool_stride(stride),
        padding=padding,
        dilation=dilation,
        ceil_mode=bool(ceil_mode),
        indices=holder,
    )
    indices = Tensor._wrap(holder["value"], out._backend)
    return out, indices.reshape(out.shape)


def max_pool1d_with_indices(
    x: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> tuple[Tensor, Tensor]:
    """:func:`convlab.nn.functional.max_pool1d` with ``return_indices=True``: 1-D pooling
    as 2-D pooling of a height-1 plane, whose plane offsets are the positions along L."""
    from convlab._ops.conv import _batched, _one

    _batched(x, 3, "max_pool1d")
    stride = _pool_stride(stride)
    out, indices = max_pool2d_with_indices(
        x.unsqueeze(-2),
        _one(kernel_size, "kernel_size", 1),
        None if stride is None else _one(stride, "stride", 1),
        _one(padding, "padding", 0),
        _one(dilation, "dilation", 1),
        ceil_mode,
    )
    return out.squeeze(-2), indices.squeeze(-2)


class _MaxUnpool(Function):
    """Scatter (M, L) values to (M, P) planes at (M, L) offsets; the gradient gathers."""

    def forward(self, x: Any, indices: Any = None, plane: int = 0) -> Any:
        xp = self.backend.xp
        m = x.shape[0]
        self.rows = xp.arange(m)[:, None]
        self.indices = indices
        out = xp.zeros((m, plane), dtype=x.dtype)
        out[self.rows, indices] = x
        return out

    def backward(self, grad: Any) -> tuple:
        return grad[self.rows, self.indices], None


def _unpool_size(
    x: Tensor, kernel: tuple, strides: tuple, pads: tuple, output_size: Any, what: str
) -> tuple[int, int]:
    default = tuple((x.shape[-2 + i] - 1) * strides[i] - 2 * pads[i] + kernel[i] for i in range(2))
    if output_size is None:
        return default
    size = tuple(int(s) for s in output_size)
    if len(size) == x.ndim:
        size = size[-2:]
    if len(size) != 2:
        raise ValueError(f"{what}: output_size: expected 2 or {x.ndim} elements, got {len(size)}")
    for i in range(2):
        low, high = default[i] - strides[i], default[i] + strides[i]
        if not low < size[i] < high:
            raise ValueError(
                f"{what}: output_size: invalid size {size} for input {tuple(x.shape)}: each "
                f"size must lie strictly between {default[i] - strides[i]} and "
                f"{default[i] + strides[i]}"
            )
    return size


def max_unpool2d(
    input: Tensor,
    indices: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    output_size: Any = None,
) -> Tensor:
    """Put each value at its max-pool index in a zero plane (``torch.nn.functional.max_unpool2d``).

    Args:
        input: (N, C, H, W) or (C, H, W) pooled values, floating point.
        indices: The ``indices`` of ``max_pool2d(..., return_indices=True)``, input's shape.
        kernel_size: The pooling window.
        stride: The pooling stride (the window when None).
        padding: The pooling padding.
        output_size: The plane size (the last two of 2 or ``input.ndim`` numbers); else
            ``(H - 1) * stride - 2 * padding + kernel_size`` per axis.

    Returns:
        (N, C, OH, OW) (or (C, OH, OW)), zero except at the indices.

    Raises:
        ValueError: For a bad geometry or ``output_size``, or indices of another shape.
        IndexError: For an index outside the output plane (also a ``RuntimeError``).
        TypeError: For a non-float input or non-integer indices.
    """
    float_check(input, "max_unpool2d input")
    if not isinstance(indices, Tensor) or indices._data.dtype.kind not in "iu":
        raise TypeError("max_unpool2d: indices: expected an integer tensor (int64)")
    if input.ndim not in (3, 4):
        raise ValueError(
            f"max_unpool2d: expected a 3-d or 4-d input, got shape {tuple(input.shape)}"
        )
    if indices.shape != input.shape:
        raise ValueError(
            f"max_unpool2d: indices: expected the input's shape {tuple(input.shape)}, got "
            f"{tuple(indices.shape)}"
        )
    kernel, strides, pads, _ = check.pool_params(kernel_size, stride, padding)
    oh, ow = _unpool_size(input, kernel, strides, pads, output_size, "max_unpool2d")
    lead = tuple(input.shape[:-2])
    m = int(np.prod(lead))
    idx = indices._data.reshape(m, -1)
    if idx.size:
        xp = input._backend.xp
        low, high = int(xp.min(idx)), int(xp.max(idx))
        if low < 0 or high >= oh * ow:
            raise _IndexError(
                f"max_unpool2d: Found an invalid max index: {high if high >= oh * ow else low} "
                f"(output volumes are of size {oh}x{ow})"
            )
    flat = input.reshape(m, -1)
    out = _MaxUnpool.apply(flat, Tensor._wrap(idx, input._backend), plane=oh * ow)
    return out.reshape(*lead, oh, ow)


class _IndexError(IndexError, RuntimeError):
    """An unpooling index outside the plane: PyTorch raises ``RuntimeError``."""


def max_unpool1d(
    input: Tensor,
    indices: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    output_size: Any = None,
) -> Tensor:
    """:func:`max_unpool2d` over (N, C, L) or (C, L) (``torch.nn.functional.max_unpool1d``)."""

    def one(v: Any) -> Any:
        return (1, v[0] if isinstance(v, (tuple, list)) else v)

    size = None if output_size is None else (1, int(tuple(output_size)[-1]))
    out = max_unpool2d(
        input.unsqueeze(-2),
        indices.unsqueeze(-2),
        one(kernel_size),
        None if stride is None else one(stride),
        (0, padding[0] if isinstance(padding, (tuple, list)) else padding),
        size,
    )
    return out.squeeze(-2)
