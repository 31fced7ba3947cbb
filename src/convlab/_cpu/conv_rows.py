"""Convolution on small feature maps: one GEMM over the pixels of the whole batch.

The implicit-GEMM kernels (``_conv``) work image by image, so an image with fewer output
pixels than a GEMM panel (32 for float32) leaves most of every tile empty; a 1x1 output map
uses 1/32 of the machine. Here the column matrix of a chunk of images is built in row layout,
(images * OH * OW, taps * C), and multiplied once, so the tiles are full whatever the map size.

- The rows are cut from a channels-last copy of the input (cheap: the maps are small), so each
  tap is one contiguous run of C values.
- Taps that fall in the zero padding for every output pixel (8 of 9 for a 3x3 kernel on a
  1x1 map) are left out of the GEMM; their weight gradient is zero.
- The chunk of images is capped by the workspace limit (:func:`convlab.set_workspace_limit`).
"""

from __future__ import annotations

import numpy as np

from convlab import _settings
from convlab._cpu import _gemm, _im2col


def use_rows(out_pixels: int, panel: int, channels: int) -> bool:
    """Whether a map of ``out_pixels`` output pixels per image should take this path: when
    one image cannot fill a GEMM panel of ``panel`` pixels, or, for inputs of a few channels
    (a first layer on small images: ResNet9's 7x7 stride-4 conv), up to four panels, where
    the per-image kernels spend more on packing a shallow GEMM than on computing it."""
    return out_pixels <= panel or (channels <= 4 and out_pixels <= 4 * panel)


def _live(size: int, out: int, kernel: int, stride: int, pad: int, dilation: int) -> tuple:
    """[first, last + 1) of the kernel taps that land inside the input for some output."""
    live = [
        t
        for t in range(kernel)
        if any(0 <= o * stride - pad + t * dilation < size for o in range(out))
    ]
    return (live[0], live[-1] + 1) if live else (0, 0)


def _plan(x_shape: tuple, out_hw: tuple, geometry: tuple) -> tuple:
    kh, kw, sh, sw, ph, pw, dh, dw = geometry
    rows = _live(x_shape[2], out_hw[0], kh, sh, ph, dh)
    cols = _live(x_shape[3], out_hw[1], kw, sw, pw, dw)
    return rows, cols


def _chunks(n: int, pixels: int, depth: int, itemsize: int):
    per_image = max(pixels * depth * itemsize, 1)
    size = max(1, min(n, _settings.get_workspace_limit() // per_image))
    return [(n0, min(n0 + size, n)) for n0 in range(0, n, size)], size


def _hwc(x: np.ndarray, threads: int) -> np.ndarray:
    out = np.empty(x.shape[:1] + x.shape[2:] + x.shape[1:2], x.dtype)
    _im2col.to_channels_last(x, out, threads)
    return out


def _taps_last(weight: np.ndarray, rows: tuple, cols: tuple) -> np.ndarray:
    """(O, C, KH, KW) -> (O, taps*C) for the live taps, in the rows' (kh, kw, c) order."""
    live = weight[:, :, rows[0] : rows[1], cols[0] : cols[1]]
    return np.ascontiguousarray(live.transpose(0, 2, 3, 1)).reshape(weight.shape[0], -1)


def _out_rows(dy: np.ndarray) -> np.ndarray:
    """(N, O, OH, OW) -> (N*OH*OW, O), one row per output pixel."""
    n, o = dy.shape[:2]
    return np.ascontiguousarray(dy.reshape(n, o, -1).transpose(0, 2, 1)).reshape(-1, o)


def forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    y: np.ndarray,
    geometry: tuple,
    threads: int,
) -> None:
    """Fill ``y`` (N, O, OH, OW) with the convolution; ``geometry`` is (kh, kw, sh, sw, ph,
    pw, dh, dw)."""
    n, o, oh, ow = y.shape
    pixels = oh * ow
    rows_live, cols_live = _plan(x.shape, (oh, ow), geometry)
    w_live = _taps_last(weight, rows_live, cols_live)
    depth = w_live.shape[1]
    out = np.empty((n * pixels, o), y.dtype)
    if depth == 0:
        out[...] = 0
    else:
        x_hwc = _hwc(x, threads)
        chunks, size = _chunks(n, pixels, depth, x.itemsize)
        rows = np.empty((size * pixels, depth), x.dtype)
        for n0, n1 in chunks:
            part = rows[: (n1 - n0) * pixels]
            _im2col.im2col_rows(x_hwc, part, *geometry, n0, *rows_live, *cols_live, threads)
            # w_live.T is a (K, O) view: the GEMM reads any strides
            _gemm.gemm(part, w_live.T, out[n0 * pixels : n1 * pixels], False, threads)
    result = out.reshape(n, pixels, o).transpose(0, 2, 1)
    target = y.reshape(n, o, pixels)
    if bias is None:
        np.copyto(target, result)
    else:
        np.add(result, bias[:, None], out=target)


def backward_weight(
    dy: np.ndarray, x: np.ndarray, dw: np.ndarray, geometry: tuple, threads: int
) -> None:
    """Fill ``dw`` (O, C, KH, KW) with the weight gradient."""
    n, o = dy.shape[:2]
    pixels = dy.shape[2] * dy.shape[3]
    (r0, r1), (c0, c1) = rows_live, cols_live = _plan(x.shape, dy.shape[2:], geometry)
    depth = (r1 - r0) * (c1 - c0) * x.shape[1]
    dw[...] = 0
    if depth == 0:
        return
    dy_rows = _out_rows(dy)
    x_hwc = _hwc(x, threads)
    target = np.empty((o, depth), dw.dtype)
    chunks, size = _chunks(n, pixels, depth, x.itemsize)
    rows = np.empty((size * pixels, depth), x.dtype)
    for k, (n0, n1) in enumerate(chunks):
        part = rows[: (n1 - n0) * pixels]
        _im2col.im2col_rows(x_hwc, part, *geometry, n0, *rows_live, *cols_live, threads)
        _gemm.gemm(dy_rows[n0 * pixels : n1 * pixels].T, part, target, k > 0, threads)
    np.copyto(dw[:, :, r0:r1, c0:c1], target.reshape(o, r1 - r0, c1 - c0, -1).transpose(0, 3, 1, 2))


def backward_data(
    dy: np.ndarray, weight: np.ndarray, dx: np.ndarray, geometry: tuple, threads: int
) -> None:
    """Fill ``dx`` (N, C, H, W) with the input gradient."""
    n, o = dy.shape[:2]
    pixels = dy.shape[2] * dy.shape[3]
    rows_live, cols_live = _plan(dx.shape, dy.shape[2:], geometry)
    w_live = _taps_last(weight, rows_live, cols_live)
    depth = w_live.shape[1]
    if depth == 0:
        dx[...] = 0
        return
    dy_rows = _out_rows(dy)
    dx_hwc = np.empty(dx.shape[:1] + dx.shape[2:] + dx.shape[1:2], dx.dtype)
    chunks, size = _chunks(n, pixels, depth, dx.itemsize)
    rows = np.empty((size * pixels, depth), dx.dtype)
    for n0, n1 in chunks:
        part = rows[: (n1 - n0) * pixels]
        _gemm.gemm(dy_rows[n0 * pixels : n1 * pixels], w_live, part, False, threads)
        _im2col.col2im_rows(part, dx_hwc, *geometry, n0, *rows_live, *cols_live, threads)
    _im2col.from_channels_last(dx_hwc, dx, threads)
