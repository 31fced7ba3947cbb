"""``x[index] = value`` as a differentiable op (the in-place machinery stores its result)."""

from __future__ import annotations

from typing import Any

from convlab._ops._util import as_tensor_like, unbroadcast
from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = ["set_item"]


class SetItem(Function):
    def forward(self, x: Any, value: Any, index: Any = None) -> Any:
        self.index = index
        self.value_shape = value.shape
        out = x.copy()
        out[index] = value
        return out

    def backward(self, grad: Any) -> tuple:
        gx = gv = None
        if self.needs[0]:
            gx = grad.copy()
            gx[self.index] = 0
        if self.needs[1]:
            picked = grad[self.index]
            # the value was broadcast to the indexed region's shape: sum the stretched axes back
            gv = (
                unbroadcast(picked, self.value_shape)
                if picked.shape != self.value_shape
                else picked
            )
        return gx, gv


def set_item(x: Tensor, index: Any, value: Any) -> Tensor:
    """A copy of ``x`` with ``x[index] = value`` (``index`` already holds raw arrays)."""
    value_t = as_tensor_like(value, x, "value")
    if value_t._backend is not x._backend:
        raise RuntimeError(f"__setitem__: value is on {value_t.device}, the tensor on {x.device}")
    if value_t._data.dtype != x._data.dtype:
        value_t = value_t.to(dtype=x.dtype)
    return SetItem.apply(x, value_t, index=index)
