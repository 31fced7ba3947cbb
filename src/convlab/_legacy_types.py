"""PyTorch's legacy tensor types: ``FloatTensor([1, 2])``, ``LongTensor(3)``,
``isinstance(t, LongTensor)``.

Calling one builds a :class:`convlab.Tensor` of its dtype with the legacy constructor's rules
(sizes as ints, or one sequence / array); ``isinstance`` checks the dtype (and the device, for the
``convlab.cuda`` variants), as in PyTorch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlab import _dtype
from convlab._tensor import Tensor

__all__ = [
    "FloatTensor",
    "DoubleTensor",
    "HalfTensor",
    "LongTensor",
    "IntTensor",
    "ShortTensor",
    "CharTensor",
    "ByteTensor",
    "BoolTensor",
    "cuda_types",
]


class _LegacyTensorType(type):
    _dtype: np.dtype
    _device: str

    def __instancecheck__(cls, obj: Any) -> bool:
        return (
            isinstance(obj, Tensor)
            and obj.dtype == cls._dtype
            and (obj._backend.name == "cpu") == (cls._device == "cpu")
        )

    def __call__(cls, *args: Any, device: Any = None) -> Tensor:
        return Tensor(*args, dtype=cls._dtype, device=device or cls._device)


def _make(name: str, dtype: Any, device: str) -> Any:
    doc = (
        f"A {np.dtype(dtype)} tensor on the {device.upper()}: ``{name}(data)`` or "
        f"``{name}(*sizes)``."
    )
    return _LegacyTensorType(
        name, (), {"_dtype": np.dtype(dtype), "_device": device, "__doc__": doc}
    )


_TYPES = {
    "FloatTensor": _dtype.float32,
    "DoubleTensor": _dtype.float64,
    "HalfTensor": _dtype.float16,
    "LongTensor": _dtype.int64,
    "IntTensor": _dtype.int32,
    "ShortTensor": _dtype.int16,
    "CharTensor": _dtype.int8,
    "ByteTensor": _dtype.uint8,
    "BoolTensor": _dtype.bool_,
}

FloatTensor = _make("FloatTensor", _dtype.float32, "cpu")
DoubleTensor = _make("DoubleTensor", _dtype.float64, "cpu")
HalfTensor = _make("HalfTensor", _dtype.float16, "cpu")
LongTensor = _make("LongTensor", _dtype.int64, "cpu")
IntTensor = _make("IntTensor", _dtype.int32, "cpu")
ShortTensor = _make("ShortTensor", _dtype.int16, "cpu")
CharTensor = _make("CharTensor", _dtype.int8, "cpu")
ByteTensor = _make("ByteTensor", _dtype.uint8, "cpu")
BoolTensor = _make("BoolTensor", _dtype.bool_, "cpu")

#: The ``convlab.cuda.FloatTensor`` ... variants (GPU tensors), by name.
cuda_types = {name: _make(name, dtype, "gpu") for name, dtype in _TYPES.items()}
