"""Which CPU algorithm computes each of a convolution's three products: one named plan.

The CPU backend has four ways to run a convolution (``docs/backends.rst`` explains when each
wins); this module is the only place that chooses among them, so a test or a benchmark can
ask which path a layer takes and then check it ran there.

* ``"rows"``: small output maps, the batch's pixels side by side in one GEMM
  (:mod:`convlab._cpu.conv_rows`);
* ``"winograd"``: Winograd F(4, 3) along the width for float32 3-wide kernels of stride 1
  (:mod:`convlab._cpu.conv_winograd`);
* ``"implicit"``: implicit GEMM, the column matrix never built (``_conv``);
* ``"gemm"`` (input gradient only): ``W^T @ dY`` then col2im.

Example:
    >>> from convlab._cpu.conv_plan import plan_conv2d
    >>> plan_conv2d((128, 64, 27, 60), (128, 64, 5, 3), (1, 1), (2, 1), (1, 1), "float32")
    ConvPlan(forward='winograd', data_gradient='gemm', weight_gradient='winograd')
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from convlab._cpu import conv_rows, conv_winograd

__all__ = ["ConvPlan", "plan_conv2d", "data_gradient_algorithm"]

# What one element of packing (the implicit path's im2col fill) or of col2im (the GEMM path)
# costs, in micro-kernel multiply-adds; measured on the chart CNN's layers (Zen 4). The fill is
# cheap when it can gather runs from a zero-padded copy (unit stride, padding that does not
# crop), dearer when it must check every tap against the image border.
_GATHER_COST = 4
_FILL_COST = 14
_COL2IM_COST = 14


class ConvPlan(NamedTuple):
    """The algorithm of each product of one convolution.

    Attributes:
        forward: ``"rows"``, ``"winograd"`` or ``"implicit"``.
        data_gradient: ``"rows"``, ``"winograd"``, ``"implicit"`` or ``"gemm"``.
        weight_gradient: ``"rows"``, ``"winograd"`` or ``"implicit"``.
    """

    forward: str
    data_gradient: str
    weight_gradient: str


def _tile_shape(itemsize: int) -> tuple[int, int]:
    from convlab._cpu import _gemm

    return _gemm.tile_shape(itemsize)


def _small_map(out_pixels: int, itemsize: int, channels: int) -> bool:
    # fewer output pixels per image than a GEMM panel: batch them (see conv_rows)
    return conv_rows.use_rows(out_pixels, _tile_shape(itemsize)[1], channels)


def transposed_padding(weight_shape: tuple, padding: tuple, dilation: tuple) -> tuple:
    """The padding of the stride-1 input gradient computed as a forward convolution of the
    output gradient with the flipped, transposed weight (negative: cropping)."""
    kh, kw = weight_shape[2:]
    return dilation[0] * (kh - 1) - padding[0], dilation[1] * (kw - 1) - padding[1]


@functools.lru_cache(maxsize=256)
def data_gradient_algorithm(
    weight_shape: tuple, height: int, padding: tuple, dilation: tuple, mr: int
) -> str:
    """``"implicit"`` or ``"gemm"`` for a stride-1 input gradient, from a per-pixel cost
    estimate (other strides always take ``"gemm"``).

    implicit: the transposed convolution; its GEMM has ``in_channels`` rows (rounded up to the
    micro-tile) and ``out_channels*KH*KW`` depth, of which the taps in the padding are skipped,
    and it packs every depth row. gemm: ``W^T @ dY`` has ``in_channels*KH*KW`` rows and
    ``out_channels`` depth, and col2im adds every row back. Per pixel, in multiply-adds;
    ``mr`` is the micro-kernel's row count.
    """
    cout, cin, kh, kw = weight_shape
    pad = dilation[0] * (kh - 1) - padding[0]  # the transposed convolution's padding
    out_h = height + 2 * padding[0] - dilation[0] * (kh - 1)
    inside = (
        sum(
            sum(0 <= row - pad + tap * dilation[0] < out_h for tap in range(kh))
            for row in range(height)
        )
        / (height * kh)
        if height
        else 1.0
    )
    rows = -(-cin // mr) * mr
    gathers = pad >= 0 and dilation[1] * (kw - 1) - padding[1] >= 0
    fill = _GATHER_COST if gathers else _FILL_COST
    implicit = rows * cout * kh * kw * inside + fill * cout * kh * kw
    gemm = cin * kh * kw * cout + _COL2IM_COST * cin * kh * kw
    return "implicit" if implicit < gemm else "gemm"


@functools.lru_cache(maxsize=512)
def plan_conv2d(
    x_shape: tuple,
    weight_shape: tuple,
    stride: tuple,
    padding: tuple,
    dilation: tuple,
    dtype: str,
    data_algorithm: str = "auto",
) -> ConvPlan:
    """The plan of a checked convolution of NCHW ``x_shape`` with OIHW ``weight_shape``.

    Args:
        x_shape, weight_shape: Shapes as tuples of ints.
        stride, padding, dilation: Pairs of ints.
        dtype: The operands' dtype name (``"float32"`` or ``"float64"``).
        data_algorithm: ``conv2d_backward_data``'s hint: ``"auto"``, ``"implicit"`` or
            ``"gemm"``.

    Returns:
        A :class:`ConvPlan`.
    """
    itemsize = np.dtype(dtype).itemsize
    kh, kw = weight_shape[2:]
    out_hw = tuple(
        (size + 2 * pad - dil * (k - 1) - 1) // s + 1
        for size, pad, dil, k, s in zip(x_shape[2:], padding, dilation, (kh, kw), stride)
    )
    small = _small_map(out_hw[0] * out_hw[1], itemsize, x_shape[1])
    winograd = conv_winograd.applies(
        x_shape, weight_shape, stride, padding, dilation, out_hw, dtype
    )
    forward = "rows" if small else "winograd" if winograd else "implicit"
    weight_gradient = forward
    if data_algorithm == "auto" and small:
        data_gradient = "rows"
    else:
        data_gradient = data_algorithm
        if data_gradient == "auto":
            data_gradient = (
                "gemm"
                if stride != (1, 1)
                else data_gradient_algorithm(
                    weight_shape, x_shape[2], padding, dilation, _tile_shape(itemsize)[0]
                )
            )
        if data_gradient == "implicit":
            flipped = (weight_shape[1], weight_shape[0], kh, kw)
            grad_shape = (x_shape[0], weight_shape[0]) + out_hw
            if conv_winograd.applies(
                grad_shape,
                flipped,
                (1, 1),
                transposed_padding(weight_shape, padding, dilation),
                dilation,
                tuple(x_shape[2:]),
                dtype,
            ):
                data_gradient = "winograd"
    return ConvPlan(forward, data_gradient, weight_gradient)
