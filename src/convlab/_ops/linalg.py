"""Matrix products on the backend's GEMM kernel: ``matmul`` and the ``linear`` layer."""

from __future__ import annotations

import math
from typing import Any

from convlab._ops._util import pair_operands, unbroadcast
from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = ["matmul", "linear"]


class MatMul(Function):
    def forward(self, a: Any, b: Any) -> Any:
        self.a, self.b = a, b
        return self.backend.matmul(a, b)

    def backward(self, grad: Any) -> tuple:
        bk = self.backend
        a, b = self.a, self.b
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g = grad
        # restore the axes the 1-D operands dropped: n (last) first, then m
        if b.ndim == 1:
            g = bk.xp.expand_dims(g, -1)
        if a.ndim == 1:
            g = bk.xp.expand_dims(g, -2)
        ga = gb = None
        if self.needs[0]:
            ga = unbroadcast(bk.matmul(g, b2, trans_b=True), a2.shape).reshape(a.shape)
        if self.needs[1]:
            if b2.ndim == 2 and a2.ndim > 2:
                # one matrix against a stack: a single GEMM over the folded stack
                # (sizes spelled out: -1 is ambiguous for an empty stack)
                rows = math.prod(a2.shape[:-1])
                gb = bk.matmul(
                    a2.reshape(rows, a2.shape[-1]), g.reshape(rows, g.shape[-1]), trans_a=True
                )
            else:
                gb = unbroadcast(bk.matmul(a2, g, trans_a=True), b2.shape)
            gb = gb.reshape(b.shape)
        return ga, gb


def _rows(array: Any) -> Any:
    """(..., k) as (rows, k), the sizes spelled out: -1 is ambiguous for an empty array."""
    return array.reshape(math.prod(array.shape[:-1]), array.shape[-1])


class Linear(Function):
    """``x @ weight.T + bias`` over the last dimension of ``x``, leading dimensions folded."""

    def forward(self, x: Any, weight: Any, bias: Any = None) -> Any:
        self.x, self.weight, self.has_bias = x, weight, bias is not None
        x2 = _rows(x)
        out = self.backend.matmul(x2, weight, trans_b=True)
        if bias is not None:
            out += bias
        return out.reshape(x.shape[:-1] + (weight.shape[0],))

    def backward(self, grad: Any) -> tuple:
        bk = self.backend
        g2 = _rows(grad)
        gx = gw = gb = None
        if self.needs[0]:
            gx = bk.matmul(g2, self.weight).reshape(self.x.shape)
        if self.needs[1]:
            gw = bk.matmul(g2, _rows(self.x), trans_a=True)
        if self.has_bias and self.needs[2]:
            gb = g2.sum(axis=0)
        return gx, gw, gb


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product with NumPy's broadcasting rules (``a @ b``).

    Raises:
        ValueError: If the inner dimensions differ (both shapes are shown).
    """
    a, b = pair_operands(a, b)
    return MatMul.apply(a, b)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias`` (``torch.nn.functional.linear``).

    Raises:
        ValueError: If ``x``'s last dimension is not ``weight``'s ``in_features``.
    """
    if weight.ndim != 2:
        raise ValueError(
            f"weight: expected 2 dimensions (out_features, in_features), got shape {weight.shape}"
        )
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input's last dimension must equal in_features "
            f"{weight.shape[1]}; got input shape {x.shape}, weight shape "
            f"{weight.shape}"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"bias: expected shape ({weight.shape[0]},), got {bias.shape}")
    return Linear.apply(x, weight, bias)
