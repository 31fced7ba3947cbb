"""Data types (NumPy's dtype objects) and the rules for choosing them, as PyTorch does."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "bool_",
    "resolve_dtype",
    "default_float",
    "is_floating",
]

float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int8 = np.dtype(np.int8)
int16 = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)

#: Python floats and float lists become this, as in PyTorch.
default_float = float32

_SUPPORTED = {float16, float32, float64, int8, int16, int32, int64, uint8, bool_}


def resolve_dtype(dtype: Any, name: str = "dtype") -> np.dtype | None:
    """``None`` or a NumPy dtype convlab supports.

    Raises:
        TypeError: For anything that is not one of the supported dtypes.
    """
    if dtype is None:
        return None
    if dtype is float:
        return default_float
    if dtype is int:
        return int64
    if dtype is bool:
        return bool_
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise TypeError(
            f"{name}: expected a dtype such as convlab.float32, got {dtype!r}"
        ) from None
    if resolved not in _SUPPORTED:
        raise TypeError(
            f"{name}: expected one of float16/32/64, int8/16/32/64, uint8, bool, got {resolved}"
        )
    return resolved


def is_floating(dtype: np.dtype) -> bool:
    """Whether ``dtype`` is a floating-point type (the only kind that can require grad)."""
    return dtype.kind == "f"
