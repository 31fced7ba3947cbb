"""Matrix products on the backend's GEMM kernel: ``matmul`` (and its checked forms ``mm``,
``bmm``, ``addmm``, ``dot``, ``mv``), ``outer`` and the ``linear`` layer."""

from __future__ import annotations

import math
from typing import Any

from convlab._ops._util import pair_operands, unbroadcast
from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = [
    "matmul",
    "linear",
    "mm",
    "bmm",
    "addmm",
    "dot",
    "mv",
    "outer",
    "addmv",
    "addr",
    "baddbmm",
    "addbmm",
]


class MatMul(Function):
    follows_autocast = True

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

    follows_autocast = True
    fresh_grads = True

    def forward(self, x: Any, weight: Any, bias: Any = None) -> Any:
        self.x, self.weight, self.has_bias = x, weight, bias is not None
        x2 = _rows(x)
        out = self.backend.matmul(x2, weight, trans_b=True)
        if bias is not None:
            self.backend._add_rows_(out, bias)
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
            gb = bk._sum_rows(g2)
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


def _check_dims(t: Any, ndim: int, what: str, name: str) -> None:
    from convlab._tensor import Tensor as _T

    if not isinstance(t, _T):
        raise TypeError(f"{what}: expected {name} to be a Tensor, got {type(t).__name__}")
    if t.ndim != ndim:
        raise RuntimeError(f"{what}: {name} must be a {ndim}-D tensor, got shape {t.shape}")


def _check_dtypes(a: Tensor, b: Tensor, what: str) -> None:
    if a._data.dtype != b._data.dtype:
        raise RuntimeError(
            f"{what}: expected both operands to have the same dtype, got {a.dtype} and {b.dtype}"
        )


def mm(a: Tensor, b: Tensor) -> Tensor:
    """The product of two matrices, ``(n, m) @ (m, p)``.

    Raises:
        RuntimeError: If an operand is not 2-D, the inner sizes differ or the dtypes differ.
    """
    _check_dims(a, 2, "mm", "input")
    _check_dims(b, 2, "mm", "mat2")
    if a.shape[1] != b.shape[0]:
        raise RuntimeError(
            f"mm: mat1 and mat2 shapes cannot be multiplied ({a.shape[0]}x{a.shape[1]} and "
            f"{b.shape[0]}x{b.shape[1]})"
        )
    _check_dtypes(a, b, "mm")
    return MatMul.apply(a, b)


def bmm(a: Tensor, b: Tensor) -> Tensor:
    """Batched matrix products, ``(B, n, m) @ (B, m, p)`` (no broadcasting).

    Raises:
        RuntimeError: If an operand is not 3-D or the batch / inner sizes differ.
    """
    _check_dims(a, 3, "bmm", "input")
    _check_dims(b, 3, "bmm", "mat2")
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise RuntimeError(
            f"bmm: expected shapes (B, n, m) and (B, m, p), got {a.shape} and {b.shape}"
        )
    _check_dtypes(a, b, "bmm")
    return MatMul.apply(a, b)


def addmm(
    input: Any,  # noqa: A002 - PyTorch's name
    mat1: Tensor,
    mat2: Tensor,
    *,
    beta: Any = 1,
    alpha: Any = 1,
) -> Tensor:
    """``beta * input + alpha * (mat1 @ mat2)``; ``input`` broadcasts to the product."""
    return _scaled_sum(input, mm(mat1, mat2), beta, alpha)


def dot(a: Tensor, b: Tensor) -> Tensor:
    """The inner product of two 1-D tensors of the same size (a 0-d tensor)."""
    _check_dims(a, 1, "dot", "input")
    _check_dims(b, 1, "dot", "tensor")
    if a.shape != b.shape:
        raise RuntimeError(
            f"dot: expected 1-D tensors of the same size, got {a.shape[0]} and {b.shape[0]}"
        )
    _check_dtypes(a, b, "dot")
    return MatMul.apply(a, b)


def mv(a: Tensor, v: Tensor) -> Tensor:
    """A matrix times a vector, ``(n, m) @ (m,)``."""
    _check_dims(a, 2, "mv", "input")
    _check_dims(v, 1, "mv", "vec")
    if a.shape[1] != v.shape[0]:
        raise RuntimeError(
            f"mv: size mismatch, got input ({a.shape[0]}x{a.shape[1]}) and vec ({v.shape[0]})"
        )
    _check_dtypes(a, v, "mv")
    return MatMul.apply(a, v)


def outer(a: Tensor, b: Tensor) -> Tensor:
    """The outer product of two 1-D tensors, ``(n,) x (m,) -> (n, m)``."""
    from convlab._ops import arith, shape

    _check_dims(a, 1, "outer", "input")
    _check_dims(b, 1, "outer", "vec2")
    return arith.mul(shape.reshape(a, (a.shape[0], 1)), shape.reshape(b, (1, b.shape[0])))


def _scaled_sum(input: Any, product: Tensor, beta: Any, alpha: Any) -> Tensor:  # noqa: A002
    from convlab._ops import arith

    if alpha != 1:
        product = arith.mul(product, alpha)
    if beta == 0:  # PyTorch ignores input (even NaN in it) when beta is 0
        return product
    return arith.add(arith.mul(input, beta) if beta != 1 else input, product)


def addmv(
    input: Any,  # noqa: A002 - PyTorch's name
    mat: Tensor,
    vec: Tensor,
    *,
    beta: Any = 1,
    alpha: Any = 1,
) -> Tensor:
    """``beta * input + alpha * (mat @ vec)``."""
    return _scaled_sum(input, mv(mat, vec), beta, alpha)


def addr(
    input: Any,  # noqa: A002 - PyTorch's name
    vec1: Tensor,
    vec2: Tensor,
    *,
    beta: Any = 1,
    alpha: Any = 1,
) -> Tensor:
    """``beta * input + alpha * outer(vec1, vec2)``."""
    return _scaled_sum(input, outer(vec1, vec2), beta, alpha)


def baddbmm(
    input: Any,  # noqa: A002 - PyTorch's name
    batch1: Tensor,
    batch2: Tensor,
    *,
    beta: Any = 1,
    alpha: Any = 1,
) -> Tensor:
    """``beta * input + alpha * bmm(batch1, batch2)``."""
    return _scaled_sum(input, bmm(batch1, batch2), beta, alpha)


def addbmm(
    input: Any,  # noqa: A002 - PyTorch's name
    batch1: Tensor,
    batch2: Tensor,
    *,
    beta: Any = 1,
    alpha: Any = 1,
) -> Tensor:
    """``beta * input + alpha * sum_b(batch1[b] @ batch2[b])``."""
    from convlab._ops.reduce import sum as _sum

    return _scaled_sum(input, _sum(bmm(batch1, batch2), 0), beta, alpha)
