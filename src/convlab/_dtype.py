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
    "half",
    "double",
    "short",
    "long",
    "get_default_dtype",
    "set_default_dtype",
    "finfo",
    "iinfo",
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


# PyTorch's short names (``torch.float``, ``torch.long``...); convlab exports them under those
# names, which cannot be module globals here without hiding the builtins ``resolve_dtype`` uses.
half = float16
double = float64
short = int16
long = int64


def get_default_dtype() -> np.dtype:
    """The dtype Python floats and ``zeros``/``rand``/... use by default (float32 at start)."""
    return default_float


def set_default_dtype(d: Any) -> None:
    """Make ``d`` (float16, float32 or float64) the default floating-point dtype.

    Raises:
        TypeError: For a dtype that is not floating-point.
    """
    global default_float
    resolved = resolve_dtype(d, "d")
    if resolved is None or resolved.kind != "f":
        raise TypeError(f"set_default_dtype: only floating-point types are supported, got {d!r}")
    default_float = resolved


def finfo(type: Any = None) -> np.finfo:  # noqa: A002 - PyTorch's name
    """Limits of a floating-point dtype (``bits``, ``eps``, ``max``, ``min``, ``tiny``,
    ``resolution``); the default dtype's when None."""
    resolved = default_float if type is None else resolve_dtype(type, "type")
    if resolved is None or resolved.kind != "f":
        raise TypeError(f"finfo: expected a floating-point dtype, got {type!r}")
    return np.finfo(resolved)


def iinfo(type: Any) -> np.iinfo:  # noqa: A002 - PyTorch's name
    """Limits of an integer dtype (``bits``, ``max``, ``min``)."""
    resolved = resolve_dtype(type, "type")
    if resolved is None or resolved.kind not in "iu":
        raise TypeError(f"iinfo: expected an integer dtype, got {type!r}")
    return np.iinfo(resolved)
