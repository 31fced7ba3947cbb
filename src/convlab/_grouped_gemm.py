"""Grouped convolution as one batched GEMM over a backend's own im2col / GEMM / col2im hooks.

The default of :class:`convlab._backend_base.BackendBase`'s grouped hooks, written once
against ``backend.xp``. It leans on the column layout: row ``(c*KH + kh)*KW + kw`` of the
im2col matrix belongs to input channel ``c``, so group ``g``'s rows are one contiguous block
and the (N, C*KH*KW, P) columns *are* (N*groups, C/groups*KH*KW, P) matrices without a copy.
Output channels are grouped the same way, so every product is a plain reshape:

* forward: ``Y[n, g] = W[g] @ cols[n, g]``;
* input gradient: ``cols[n, g] = W[g]^T @ dY[n, g]``, then col2im;
* weight gradient: ``dW[g] = sum_n dY[n, g] @ cols[n, g]^T``, summed over the images in a
  fixed order (deterministic).

The images go through in chunks whose columns fit :func:`convlab.get_workspace_limit`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from convlab import _settings

if TYPE_CHECKING:
    from convlab._backend_base import BackendBase, ConvGeometry

__all__ = ["forward", "backward_data", "backward_weight"]


def _chunk(n: int, per_image: int, itemsize: int) -> int:
    """Images per chunk: as many as the workspace limit allows, at least one."""
    return max(1, min(n, _settings.get_workspace_limit() // max(per_image * itemsize, 1)))


def _sizes(channels: int, weight: Any, geom: ConvGeometry, groups: int) -> tuple:
    """(rows of the whole column matrix, rows per group, output channels per group, pixels)."""
    taps = geom.kernel[0] * geom.kernel[1]
    return (
        channels * taps,
        weight.shape[1] * taps,
        weight.shape[0] // groups,
        geom.out_hw[0] * geom.out_hw[1],
    )


def _tiled(xp: Any, w3: Any, m: int) -> Any:
    """(groups, r, c) ``w3`` repeated for ``m`` images as a contiguous (m*groups, r, c): the
    weight is small next to the columns, and the GEMM then needs no broadcast batch axis."""
    groups, r, c = w3.shape
    return xp.ascontiguousarray(xp.broadcast_to(w3, (m, groups, r, c))).reshape(m * groups, r, c)


def forward(
    backend: BackendBase,
    x: Any,
    weight: Any,
    bias: Any | None,
    y: Any,
    geom: ConvGeometry,
    groups: int,
) -> None:
    """``y`` = the grouped convolution of contiguous ``x`` (plus ``bias``)."""
    xp = backend.xp
    n = x.shape[0]
    rows, k, og, p = _sizes(x.shape[1], weight, geom, groups)
    step = _chunk(n, rows * p, x.itemsize)
    w3 = weight.reshape(groups, og, k)
    cols = xp.empty((step, rows, p), x.dtype)
    for n0 in range(0, n, step):
        m = min(step, n - n0)
        backend._im2col_into(x[n0 : n0 + m], cols[:m], geom)
        backend._gemm_into(
            _tiled(xp, w3, m),
            cols[:m].reshape(m * groups, k, p),
            y[n0 : n0 + m].reshape(m * groups, og, p),
        )
    if bias is not None:
        y += bias[:, None, None]


def backward_data(
    backend: BackendBase,
    grad_output: Any,
    weight: Any,
    dx: Any,
    geom: ConvGeometry,
    groups: int,
) -> None:
    """``dx`` = the input gradient of the grouped convolution."""
    xp = backend.xp
    n = dx.shape[0]
    rows, k, og, p = _sizes(dx.shape[1], weight, geom, groups)
    step = _chunk(n, rows * p, dx.itemsize)
    w_t = weight.reshape(groups, og, k).transpose(0, 2, 1)
    cols = xp.empty((step, rows, p), dx.dtype)
    for n0 in range(0, n, step):
        m = min(step, n - n0)
        backend._gemm_into(
            _tiled(xp, w_t, m),
            grad_output[n0 : n0 + m].reshape(m * groups, og, p),
            cols[:m].reshape(m * groups, k, p),
        )
        backend._col2im_into(cols[:m], dx[n0 : n0 + m], geom)


def backward_weight(
    backend: BackendBase,
    grad_output: Any,
    x: Any,
    dw: Any,
    db: Any | None,
    geom: ConvGeometry,
    groups: int,
) -> None:
    """``dw`` (and ``db`` unless None) = the grouped convolution's parameter gradients."""
    xp = backend.xp
    n = x.shape[0]
    rows, k, og, p = _sizes(x.shape[1], dw, geom, groups)
    step = _chunk(n, rows * p, x.itemsize)
    cols = xp.empty((step, rows, p), x.dtype)
    # one (og, k) product per image and group, summed over the chunk's images afterwards
    part = xp.empty((step * groups, og, k), x.dtype)
    dw3 = dw.reshape(groups, og, k)
    for n0 in range(0, n, step):
        m = min(step, n - n0)
        backend._im2col_into(x[n0 : n0 + m], cols[:m], geom)
        backend._gemm_into(
            grad_output[n0 : n0 + m].reshape(m * groups, og, p),
            cols[:m].reshape(m * groups, k, p).transpose(0, 2, 1),
            part[: m * groups],
        )
        total = part[: m * groups].reshape(m, groups, og, k).sum(axis=0)
        if n0 == 0:
            dw3[...] = total
        else:
            dw3 += total
    if db is not None:
        db[...] = grad_output.sum(axis=(0, 2, 3))
