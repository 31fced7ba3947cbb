"""Convolution with 3-wide kernels at stride 1 by Winograd F(4, 3) along the rows.

Each group of 4 output columns is computed from 6 input columns with 6 products per kernel
row instead of 12 (``_winograd`` holds the transforms). The KH x 3 convolution becomes six
KH x 1 convolutions, one per transform point, of the transformed input ``V[xi]`` with the
transformed weight ``U[xi] = G @ w``: the implicit-GEMM kernels run them with half the
multiply-adds of the direct convolution, and skip the padding rows as usual. The weight
gradient is transformed the same way (:func:`weight_gradient`).

Used for float32 when both channel counts are large enough for the GEMMs to dominate the
transforms (the chart CNN's layers 2-4, ResNet9's wider 3 x 3 convolutions). The rounding error
grows by the transforms' coefficients (up to 8): a few times that of the direct sum.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import numpy as np
from numpy.typing import DTypeLike

from convlab import _settings
from convlab._cpu import _conv, _winograd

# Where the transforms (memory-bound) pay for themselves, measured on 2 cores (AVX-512): both
# channel counts at least 64 (60-pixel chart rows 1.3x faster). Short rows once needed 8 tiles
# unless the channels were 128+; since images are grouped side by side (GROUP_COLUMNS) they
# no longer do: the I5 model's 64 -> 128 conv on 15-pixel rows (4 tiles), timed interleaved,
# takes 0.72-0.76 of the direct path's time forward, 0.79-0.81 for the input gradient and
# 0.91-0.99 for the weight gradient.
MIN_CHANNELS = 64
# output pixels per image of each KH x 1 convolution: fewer leave the GEMM panels half empty
MIN_TILE_PIXELS = 64
# transformed columns per grouped image (images side by side): 96+ filled the pixel panels
# and deepened the weight gradient's sums (the chart CNN's KH x 1 GEMMs 10-20 % faster with 8
# images of 15 tiles than with one)
GROUP_COLUMNS = 96


def applies(
    x_shape: tuple,
    w_shape: tuple,
    stride: tuple,
    padding: tuple,
    dilation: tuple,
    out_hw: tuple,
    dtype: DTypeLike,
) -> bool:
    """Whether this convolution takes the Winograd path."""
    if not (
        np.dtype(dtype) == np.float32
        and w_shape[3] == 3
        and stride == (1, 1)
        and dilation[1] == 1
        and 0 <= padding[1] <= 2
        and padding[0] >= 0
    ):
        return False
    channels, tiles = min(x_shape[1], w_shape[0]), -(-out_hw[1] // 4)
    return channels >= MIN_CHANNELS and out_hw[0] * tiles >= MIN_TILE_PIXELS


def _weights(weight: np.ndarray, threads: int) -> np.ndarray:
    """(6, O, C, KH, 1) float32: ``G @ w`` along the kernel width, in float64 first."""
    # a kernel, not einsum (7.8 ms for the chart CNN's layer 3, single-threaded) nor a BLAS
    # product (BLAS threads left spinning took the cores from the convolutions that follow)
    u = np.empty((6,) + weight.shape[:3] + (1,), np.float32)
    _winograd.weight_transform(weight.reshape(-1, 3), u.reshape(6, -1), threads)
    return u


def _chunks(n: int, per_image: int, tiles: int) -> Iterator[tuple[int, int, int]]:
    """``(first image, images, group)`` for each chunk of the batch: as many images as the
    workspace limit allows, a multiple of ``group``, the images laid side by side per group
    (``_winograd``'s grouped layout); a last chunk short of a group is one group."""
    group = 1
    while group * tiles < GROUP_COLUMNS and group < n:
        group *= 2
    size = max(1, min(n, _settings.get_workspace_limit() // per_image))
    group = min(group, size)
    size -= size % group
    n0 = 0
    while n0 < n:
        k = min(size, n - n0)
        g = min(group, k)
        k -= k % g
        yield n0, k, g
        n0 += k


def _transformed_chunks(
    x: np.ndarray, o: int, oh: int, ow: int, pad_w: int, threads: int
) -> Iterator[tuple[int, int, int, np.ndarray, np.ndarray, bool]]:
    """For each chunk of the batch: ``(first image, images, group, V, out, finite)``, ``V`` the
    chunk's input already transformed (6, N/g, C, H, g*T), ``out`` a (6, N/g, O, OH, g*T)
    buffer for the other side (the products, or the transformed output gradient), grouped
    alike, and ``finite`` False where the chunk's input holds an inf or NaN (the transforms
    would spread it over whole tiles: see ``_winograd.input_transform``)."""
    n, c, h, w = x.shape
    tiles = -(-ow // 4)
    # images per chunk: the transformed input and output of one image, six times each
    per_image = 6 * (c * h + o * oh) * tiles * x.itemsize
    chunks = list(_chunks(n, per_image, tiles))
    size = max(k for _, k, _ in chunks)
    # flat per transform point, so that a short last chunk is still contiguous per point
    v = np.empty((6, size * c * h * tiles), np.float32)
    out = np.empty((6, size * o * oh * tiles), np.float32)
    for n0, k, g in chunks:
        vk = v[:, : k * c * h * tiles].reshape(6, k // g, c, h, g * tiles)
        finite = _winograd.input_transform(
            x[n0 : n0 + k].reshape(-1, w), vk.reshape(6, -1, g * tiles), pad_w, c * h, g, threads
        )
        yield (
            n0,
            k,
            g,
            vk,
            out[:, : k * o * oh * tiles].reshape(6, k // g, o, oh, g * tiles),
            finite,
        )


def forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    y: np.ndarray,
    padding: tuple,
    dilation_h: int,
    threads: int,
) -> None:
    """Fill ``y`` (N, O, OH, OW) with the convolution of contiguous float32 ``x`` and
    ``weight`` (O, C, KH, 3) (+ contiguous float32 ``bias``), stride 1, where :func:`applies`."""
    _, o, oh, ow = y.shape
    if not np.isfinite(weight).all():  # small: the weight is read once per call anyway
        _direct_forward(x, weight, bias, y, padding, dilation_h, threads)
        return
    u = _weights(weight, threads)
    for n0, k, g, vk, mk, finite in _transformed_chunks(x, o, oh, ow, padding[1], threads):
        if not finite:
            _direct_forward(
                x[n0 : n0 + k], weight, bias, y[n0 : n0 + k], padding, dilation_h, threads
            )
            continue
        for xi in range(6):
            _conv.conv2d_forward(
                vk[xi], u[xi], None, mk[xi], 1, 1, padding[0], 0, dilation_h, 1, threads
            )
        _winograd.output_transform(
            mk.reshape(6, -1, mk.shape[-1]), y[n0 : n0 + k].reshape(-1, ow), bias, oh, o, g, threads
        )


def _direct_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    y: np.ndarray,
    padding: tuple,
    dilation_h: int,
    threads: int,
) -> None:
    """The same convolution by the implicit GEMM, which keeps an inf or NaN in the outputs
    whose windows hold it (as the direct sum, and PyTorch, do)."""
    _conv.conv2d_forward(x, weight, bias, y, 1, 1, padding[0], padding[1], dilation_h, 1, threads)


def weight_gradient(
    dy: np.ndarray,
    x: np.ndarray,
    dw: np.ndarray,
    db: np.ndarray | None,
    padding: tuple,
    dilation_h: int,
    threads: int,
) -> None:
    """Fill ``dw`` (O, C, KH, 3) (and ``db`` (O,) unless None) with the weight (bias) gradient
    of the convolution that :func:`forward` computes, from contiguous float32 ``dy``
    (N, O, OH, OW) and ``x`` (N, C, H, W), where :func:`applies`.

    The derivative of ``y = A^T [(G g) * (B^T d)]`` in ``g`` is ``G^T [(A dy) * (B^T d)]``: the
    input is transformed as in the forward, ``dy`` by ``A``, and six KH x 1 weight gradients
    (half the multiply-adds of the direct one) are summed over every tile before ``G^T`` maps
    them back to the 3 taps, once.
    """
    n, c = x.shape[:2]
    _, o, oh, ow = dy.shape
    du = np.empty((6, o, c, dw.shape[2], 1), np.float32)
    dbk = None if db is None else np.empty(o, np.float32)
    total = None
    for n0, k, g, vk, tk, finite in _transformed_chunks(x, o, oh, ow, padding[1], threads):
        finite &= _winograd.gradient_transform(
            dy[n0 : n0 + k].reshape(-1, ow), tk.reshape(6, -1, tk.shape[-1]), o * oh, g, threads
        )
        if not finite:
            # every chunk adds into the same sums: start again on the direct path
            _conv.conv2d_backward_weight(
                dy, x, dw, db, 1, 1, padding[0], padding[1], dilation_h, 1, threads
            )
            return
        for xi in range(6):
            # point 1 of A sums each tile's 4 gradients: its bias gradient is the sum of dy
            _conv.conv2d_backward_weight(
                tk[xi],
                vk[xi],
                du[xi],
                dbk if xi == 1 else None,
                1,
                1,
                padding[0],
                0,
                dilation_h,
                1,
                threads,
            )
        # partial sums of one reduction: adding them rounds no more often than one pass
        if total is None:
            total = du.copy() if n0 + k < n else du
            if db is not None:
                db[...] = dbk
        else:
            total += du
            if db is not None:
                db += dbk
    total = cast(np.ndarray, total)  # dy is not empty (a hook's contract): a chunk ran
    _winograd.weight_gradient_transform(total.reshape(6, -1), dw.reshape(-1, 3), threads)
