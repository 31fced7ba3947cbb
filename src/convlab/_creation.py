"""Functions that make tensors: ``tensor``, ``zeros``, ``ones``, ``rand``, ``arange``, DLPack."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from convlab import _dtype, _random
from convlab._tensor import Tensor, backend_for

__all__ = [
    "tensor",
    "as_tensor",
    "zeros",
    "ones",
    "full",
    "empty",
    "rand",
    "randn",
    "arange",
    "zeros_like",
    "ones_like",
    "from_dlpack",
    "from_numpy",
]


def _to_array(data: Any, dtype: np.dtype | None, backend: Any, copy: bool) -> Any:
    """``data`` as an array of ``backend`` with convlab's dtype rules."""
    if isinstance(data, Tensor):
        if data._backend is not backend:
            data = backend.asarray(data._backend.to_numpy(data._data))
        else:
            data = data._data
    python_data = (
        not hasattr(data, "dtype")
        and not hasattr(data, "__array__")
        and not hasattr(data, "__cuda_array_interface__")
    )
    if backend.name == "cpu" and hasattr(data, "__cuda_array_interface__"):
        data = data.get()  # pragma: no cover - CuPy array to host
    try:
        array = backend.asarray(data) if dtype is None else backend.asarray(data, dtype=dtype)
    except (ValueError, TypeError) as err:
        raise TypeError(f"data: cannot convert {type(data).__name__} to a tensor ({err})") from None
    if dtype is None and python_data and array.dtype == np.float64:
        array = array.astype(_dtype.default_float)
    _dtype.resolve_dtype(array.dtype, "data")
    if copy and array is data:
        array = array.copy()
    return array


def tensor(
    data: Any, dtype: Any = None, device: Any = "cpu", requires_grad: bool = False
) -> Tensor:
    """A new tensor holding a copy of ``data`` (a list, number, array or tensor).

    Python floats become float32 and Python ints int64, as in PyTorch; NumPy arrays keep
    their dtype.

    Raises:
        TypeError: For data of an unsupported type or dtype.
    """
    backend = backend_for(device)
    t = Tensor._wrap(_to_array(data, _dtype.resolve_dtype(dtype), backend, copy=True), backend)
    if requires_grad:
        t.requires_grad = True
    return t


def as_tensor(data: Any, dtype: Any = None, device: Any = "cpu") -> Tensor:
    """Like :func:`tensor`, but shares memory with ``data`` where it can."""
    if (
        isinstance(data, Tensor)
        and dtype is None
        and (device is None or backend_for(device) is data._backend)
    ):
        return data
    backend = backend_for(device)
    return Tensor._wrap(_to_array(data, _dtype.resolve_dtype(dtype), backend, copy=False), backend)


def from_numpy(array: np.ndarray) -> Tensor:
    """A CPU tensor sharing memory with ``array``."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"array: expected a numpy.ndarray, got {type(array).__name__}")
    _dtype.resolve_dtype(array.dtype, "array")
    return Tensor._wrap(array, backend_for("cpu"))


def _size(size: tuple) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for s in size:
        if isinstance(s, bool) or not isinstance(s, (numbers.Integral, np.integer)):
            raise TypeError(f"size: expected ints, got {size!r}")
        if s < 0:
            raise ValueError(f"size: expected non-negative sizes, got {tuple(size)}")
    return tuple(int(s) for s in size)


def _make(array_fn: Any, size: tuple, dtype: Any, device: Any, requires_grad: bool) -> Tensor:
    backend = backend_for(device)
    dtype = _dtype.resolve_dtype(dtype) or _dtype.default_float
    t = Tensor._wrap(array_fn(backend, _size(size), dtype), backend)
    if requires_grad:
        t.requires_grad = True
    return t


def zeros(
    *size: Any, dtype: Any = None, device: Any = "cpu", requires_grad: bool = False
) -> Tensor:
    """A tensor of zeros (float32 unless ``dtype`` says otherwise)."""
    return _make(lambda b, s, d: b.xp.zeros(s, dtype=d), size, dtype, device, requires_grad)


def ones(*size: Any, dtype: Any = None, device: Any = "cpu", requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    return _make(lambda b, s, d: b.xp.ones(s, dtype=d), size, dtype, device, requires_grad)


def empty(
    *size: Any, dtype: Any = None, device: Any = "cpu", requires_grad: bool = False
) -> Tensor:
    """An uninitialised tensor."""
    return _make(lambda b, s, d: b.xp.empty(s, dtype=d), size, dtype, device, requires_grad)


def full(
    size: Any, fill_value: Any, dtype: Any = None, device: Any = "cpu", requires_grad: bool = False
) -> Tensor:
    """A tensor filled with ``fill_value`` (its dtype follows the value when not given)."""
    if dtype is None:
        dtype = (
            _dtype.bool_
            if isinstance(fill_value, bool)
            else _dtype.int64
            if isinstance(fill_value, numbers.Integral)
            else _dtype.default_float
        )
    size = size if isinstance(size, (tuple, list)) else (size,)
    return _make(
        lambda b, s, d: b.xp.full(s, fill_value, dtype=d), tuple(size), dtype, device, requires_grad
    )


def rand(*size: Any, dtype: Any = None, device: Any = "cpu", requires_grad: bool = False) -> Tensor:
    """Uniform samples from [0, 1) (seeded by :func:`convlab.manual_seed`)."""
    return _make(_random.device_random, size, dtype, device, requires_grad)


def randn(
    *size: Any, dtype: Any = None, device: Any = "cpu", requires_grad: bool = False
) -> Tensor:
    """Standard normal samples (seeded by :func:`convlab.manual_seed`)."""
    return _make(_random.device_normal, size, dtype, device, requires_grad)


def arange(
    start: Any,
    end: Any = None,
    step: Any = 1,
    dtype: Any = None,
    device: Any = "cpu",
    requires_grad: bool = False,
) -> Tensor:
    """Values from ``start`` up to (not including) ``end`` in steps of ``step``."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("step: must be non-zero")
    if dtype is None:
        ints = all(isinstance(v, numbers.Integral) for v in (start, end, step))
        dtype = _dtype.int64 if ints else _dtype.default_float
    backend = backend_for(device)
    t = Tensor._wrap(
        backend.xp.arange(start, end, step, dtype=_dtype.resolve_dtype(dtype)), backend
    )
    if requires_grad:
        t.requires_grad = True
    return t


def zeros_like(t: Tensor, dtype: Any = None, device: Any = None) -> Tensor:
    """Zeros with ``t``'s shape, dtype and device unless overridden."""
    return zeros(t.shape, dtype=dtype or t.dtype, device=device or t.device)


def ones_like(t: Tensor, dtype: Any = None, device: Any = None) -> Tensor:
    """Ones with ``t``'s shape, dtype and device unless overridden."""
    return ones(t.shape, dtype=dtype or t.dtype, device=device or t.device)


def from_dlpack(obj: Any) -> Tensor:
    """A tensor sharing memory with any DLPack producer (NumPy, CuPy, PyTorch, ...).

    Raises:
        TypeError: If ``obj`` does not implement the DLPack protocol.
    """
    if isinstance(obj, Tensor):
        return obj
    if isinstance(obj, np.ndarray):
        # NumPy arrays share memory directly (NumPy 1.x cannot re-export read-only ones)
        _dtype.resolve_dtype(obj.dtype, "from_dlpack")
        return Tensor._wrap(obj, backend_for("cpu"))
    if not hasattr(obj, "__dlpack__"):
        raise TypeError(
            f"from_dlpack: expected an object with __dlpack__, got {type(obj).__name__}"
        )
    device_type = obj.__dlpack_device__()[0] if hasattr(obj, "__dlpack_device__") else 1
    if int(device_type) in (1, 3):  # kDLCPU, kDLCUDAHost
        backend = backend_for("cpu")
        array = np.from_dlpack(obj)
    else:
        backend = backend_for("gpu")
        array = backend.xp.from_dlpack(obj)
    _dtype.resolve_dtype(array.dtype, "from_dlpack")
    return Tensor._wrap(array, backend)
