"""Independent NumPy references, written straight from the definitions (float64, loops).

Nothing here shares code with convlab: convolution is a loop over kernel taps, pooling a loop
over windows, so a bug in convlab's im2col / GEMM / packing cannot hide in the reference.
"""

from __future__ import annotations

import math

import numpy as np


def out_size(size, kernel, stride, padding, dilation):
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def pool_out_size(size, kernel, stride, padding, dilation, ceil_mode):
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    length = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (length - 1) * stride >= size + padding:
        length -= 1
    return length


def _contract(spec, a, b):
    return np.einsum(spec, a, b, optimize=True)


def _tap_view(xp, kh, kw, oh, ow, stride, dilation):
    """x_padded[:, :, kh*dh + sh*i, kw*dw + sw*j] for all output pixels (i, j)."""
    sh, sw = stride
    dh, dw = dilation
    return xp[
        :, :, kh * dh : kh * dh + sh * (oh - 1) + 1 : sh, kw * dw : kw * dw + sw * (ow - 1) + 1 : sw
    ]


def conv2d(x, w, b, stride, padding, dilation):
    """Cross-correlation as a sum over kernel taps."""
    x = x.astype(np.float64)
    w = w.astype(np.float64)
    n, c, h, wd = x.shape
    o, _, kh_, kw_ = w.shape
    oh = out_size(h, kh_, stride[0], padding[0], dilation[0])
    ow = out_size(wd, kw_, stride[1], padding[1], dilation[1])
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    y = np.zeros((n, o, oh, ow))
    for kh in range(kh_):
        for kw in range(kw_):
            y += _contract(
                "nchw,oc->nohw", _tap_view(xp, kh, kw, oh, ow, stride, dilation), w[:, :, kh, kw]
            )
    if b is not None:
        y += b.astype(np.float64)[None, :, None, None]
    return y


def conv2d_grads(x, w, dy, stride, padding, dilation):
    """(dx, dw, db) of sum(conv2d(x, w) * dy), each tap's contribution added explicitly."""
    x = x.astype(np.float64)
    w = w.astype(np.float64)
    dy = dy.astype(np.float64)
    n, c, h, wd = x.shape
    o, _, kh_, kw_ = w.shape
    oh, ow = dy.shape[2:]
    ph, pw = padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for kh in range(kh_):
        for kw in range(kw_):
            dw[:, :, kh, kw] = _contract(
                "nohw,nchw->oc", dy, _tap_view(xp, kh, kw, oh, ow, stride, dilation)
            )
            _tap_view(dxp, kh, kw, oh, ow, stride, dilation)[...] += _contract(
                "nohw,oc->nchw", dy, w[:, :, kh, kw]
            )
    dx = dxp[:, :, ph : ph + h, pw : pw + wd]
    return dx, dw, dy.sum(axis=(0, 2, 3))


def unfold(x, kernel, stride, padding, dilation):
    """(N, C, H, W) -> (N, C*KH*KW, OH*OW), one tap at a time."""
    n, c, h, wd = x.shape
    oh = out_size(h, kernel[0], stride[0], padding[0], dilation[0])
    ow = out_size(wd, kernel[1], stride[1], padding[1], dilation[1])
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    cols = np.zeros((n, c, kernel[0], kernel[1], oh * ow), x.dtype)
    for kh in range(kernel[0]):
        for kw in range(kernel[1]):
            cols[:, :, kh, kw] = _tap_view(xp, kh, kw, oh, ow, stride, dilation).reshape(n, c, -1)
    return cols.reshape(n, c * kernel[0] * kernel[1], oh * ow)


def fold(cols, size, kernel, stride, padding, dilation):
    """Adjoint of ``unfold``: every column entry added back to its pixel (float64)."""
    n, rows, _ = cols.shape
    c = rows // (kernel[0] * kernel[1])
    oh = out_size(size[0], kernel[0], stride[0], padding[0], dilation[0])
    ow = out_size(size[1], kernel[1], stride[1], padding[1], dilation[1])
    ph, pw = padding
    xp = np.zeros((n, c, size[0] + 2 * ph, size[1] + 2 * pw))
    blocks = cols.astype(np.float64).reshape(n, c, kernel[0], kernel[1], oh, ow)
    for kh in range(kernel[0]):
        for kw in range(kernel[1]):
            _tap_view(xp, kh, kw, oh, ow, stride, dilation)[...] += blocks[:, :, kh, kw]
    return xp[:, :, ph : ph + size[0], pw : pw + size[1]]


def _windows(size, kernel, stride, padding, dilation, ceil_mode):
    """For each output position: the input positions of its window that lie in the input,
    as (position, offset-in-window) pairs in window order, and the offset of the first tap at
    or after position 0 (PyTorch's argmax for a window that misses the input)."""
    length = pool_out_size(size, kernel, stride, padding, dilation, ceil_mode)
    result = []
    for o in range(length):
        start = o * stride - padding
        first = next(i for i in range(10**6) if start + i * dilation >= 0)
        result.append(
            (
                [
                    (start + i * dilation, i)
                    for i in range(kernel)
                    if 0 <= start + i * dilation < size
                ],
                first,
            )
        )
    return result


def max_pool2d(x, kernel, stride, padding, dilation, ceil_mode):
    """Values and in-window argmax (i * KW + j) by scanning every window in order.

    PyTorch's rule: an element replaces the running maximum if it is larger or NaN.
    """
    n, c, h, w = x.shape
    rows = _windows(h, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    cols = _windows(w, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    y = np.empty((n, c, len(rows), len(cols)), x.dtype)
    arg = np.empty(y.shape, np.int64)
    for i, (row, row_first) in enumerate(rows):
        for j, (col, col_first) in enumerate(cols):
            best = np.full((n, c), -np.inf, x.dtype)
            best_at = np.full((n, c), row_first * kernel[1] + col_first)
            for hh, a in row:
                for ww, bb in col:
                    v = x[:, :, hh, ww]
                    take = (v > best) | np.isnan(v)
                    best = np.where(take, v, best)
                    best_at = np.where(take, a * kernel[1] + bb, best_at)
            y[:, :, i, j] = best
            arg[:, :, i, j] = best_at
    return y, arg


def max_pool2d_backward(dy, arg, input_shape, kernel, stride, padding, dilation):
    dx = np.zeros(input_shape)
    n, c, oh, ow = dy.shape
    for i in range(oh):
        for j in range(ow):
            hh = i * stride[0] - padding[0] + (arg[:, :, i, j] // kernel[1]) * dilation[0]
            ww = j * stride[1] - padding[1] + (arg[:, :, i, j] % kernel[1]) * dilation[1]
            for a in range(n):
                for b in range(c):
                    if 0 <= hh[a, b] < input_shape[2] and 0 <= ww[a, b] < input_shape[3]:
                        dx[a, b, hh[a, b], ww[a, b]] += dy[a, b, i, j]
    return dx


def _avg_divisor(o, size, kernel, stride, padding):
    start = o * stride - padding
    end = min(start + kernel, size + padding)
    return start, end


def avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    n, c, h, w = x.shape
    oh = pool_out_size(h, kernel[0], stride[0], padding[0], 1, ceil_mode)
    ow = pool_out_size(w, kernel[1], stride[1], padding[1], 1, ceil_mode)
    y = np.zeros((n, c, oh, ow))
    divisors = np.zeros((oh, ow))
    for i in range(oh):
        h0, h1 = _avg_divisor(i, h, kernel[0], stride[0], padding[0])
        for j in range(ow):
            w0, w1 = _avg_divisor(j, w, kernel[1], stride[1], padding[1])
            inside = x[:, :, max(h0, 0) : min(h1, h), max(w0, 0) : min(w1, w)].astype(np.float64)
            if divisor_override:
                d = divisor_override
            elif count_include_pad:
                d = (h1 - h0) * (w1 - w0)
            else:
                d = inside.shape[2] * inside.shape[3]
            divisors[i, j] = d
            y[:, :, i, j] = inside.sum(axis=(2, 3)) / d if inside.size else 0.0
    return y, divisors


def avg_pool2d_backward(dy, input_shape, kernel, stride, padding, divisors):
    dx = np.zeros(input_shape)
    h, w = input_shape[2:]
    for i in range(dy.shape[2]):
        h0, h1 = _avg_divisor(i, h, kernel[0], stride[0], padding[0])
        for j in range(dy.shape[3]):
            w0, w1 = _avg_divisor(j, w, kernel[1], stride[1], padding[1])
            dx[:, :, max(h0, 0) : min(h1, h), max(w0, 0) : min(w1, w)] += (
                dy[:, :, i, j].astype(np.float64) / divisors[i, j]
            )[:, :, None, None]
    return dx


def gemm_error_bound(a, b):
    """Worst-case rounding error of a float sum of products, per output element.

    |fl(a @ b) - a @ b| <= gamma_k * (|a| @ |b|), gamma_k = k u / (1 - k u) (Higham, 3.5);
    doubled for the rounding of the inputs' own products.
    """
    k = a.shape[-1]
    u = np.finfo(a.dtype).eps / 2
    gamma = k * u / (1 - k * u)
    return (
        2 * gamma * (np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)))
        + np.finfo(a.dtype).tiny
    )
