"""``Parameter``: a tensor that a ``Module`` registers as learnable."""

from __future__ import annotations

from typing import Any

from convlab._tensor import Tensor

__all__ = ["Parameter"]


class Parameter(Tensor):
    """A leaf tensor that requires grad and is registered when assigned to a ``Module``.

    Args:
        data: A tensor or array; its values are shared, not copied.
        requires_grad: Whether it is trained.
    """

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        if data is None:
            from convlab._creation import empty

            data = empty(0)
        if not isinstance(data, Tensor):
            from convlab._creation import as_tensor

            data = as_tensor(data)
        source = data
        self._data = source._data
        self._backend = source._backend
        self._node = None
        self.grad = None
        self._hooks = None
        self._requires_grad = False
        self.requires_grad = requires_grad

    def __repr__(self) -> str:
        return "Parameter containing:\n" + Tensor.__repr__(self)
