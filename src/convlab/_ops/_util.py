"""Helpers shared by the op modules: operand conversion and gradient un-broadcasting."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from convlab import _dtype
from convlab._tensor import Tensor


def as_tensor_like(value: Any, like: Tensor, name: str = "other") -> Tensor:
    """``value`` as a tensor on ``like``'s device; Python scalars take ``like``'s dtype.

    A Python float combined with an integer tensor becomes float32, as in PyTorch.
    """
    if isinstance(value, Tensor):
        return value
    backend = like._backend
    if isinstance(value, (bool, numbers.Number)) and not isinstance(value, np.ndarray):
        dtype = like._data.dtype
        if isinstance(value, float) and dtype.kind in "iub":
            dtype = _dtype.default_float
        elif isinstance(value, int) and dtype.kind == "b" and not isinstance(value, bool):
            dtype = _dtype.int64
        return Tensor._wrap(backend.xp.asarray(value, dtype=dtype), backend)
    try:
        array = backend.asarray(value)
    except Exception as err:  # noqa: BLE001 - reported with the argument's name
        raise TypeError(
            f"{name}: expected a Tensor, array or number, got {type(value).__name__}"
        ) from err
    return Tensor._wrap(array, backend)


def pair_operands(a: Any, b: Any) -> tuple:
    """Both operands as tensors on one device (at least one must be a tensor already)."""
    if isinstance(a, Tensor):
        return a, as_tensor_like(b, a)
    return as_tensor_like(a, b, "self"), b


def unbroadcast(grad: Any, shape: tuple) -> Any:
    """Sum ``grad`` over the dimensions that broadcasting added or stretched to reach ``shape``."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, size in enumerate(shape) if size == 1 and grad.shape[lead + i] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def normalize_dim(dim: int, ndim: int, name: str = "dim") -> int:
    """``dim`` in ``[0, ndim)``, negative dims counted from the end.

    Raises:
        IndexError: When ``dim`` is out of range, as in PyTorch.
    """
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {dim!r}")
    bound = max(ndim, 1)
    if not -bound <= dim < bound:
        raise IndexError(f"{name}: expected a dimension in [{-bound}, {bound - 1}], got {dim}")
    return int(dim) % bound


def float_check(t: Tensor, what: str) -> None:
    """Raise a TypeError unless ``t`` has a floating-point dtype."""
    if t._data.dtype.kind != "f":
        raise TypeError(f"{what}: expected a floating-point tensor, got dtype {t._data.dtype}")
