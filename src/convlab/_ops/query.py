"""Questions about objects and tensors: ``is_tensor``, ``is_floating_point``, ``numel``."""

from __future__ import annotations

from typing import Any

from convlab._tensor import Tensor

__all__ = ["is_tensor", "is_floating_point", "numel"]


def is_tensor(obj: Any) -> bool:
    """Whether ``obj`` is a :class:`convlab.Tensor`."""
    return isinstance(obj, Tensor)


def _tensor(t: Any, what: str) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{what}: expected a Tensor as input, got {type(t).__name__}")
    return t


def is_floating_point(t: Tensor) -> bool:
    """Whether ``t``'s dtype is a floating-point type."""
    return bool(_tensor(t, "is_floating_point")._data.dtype.kind == "f")


def numel(t: Tensor) -> int:
    """The number of elements of ``t``."""
    return int(_tensor(t, "numel")._data.size)
