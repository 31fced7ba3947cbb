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
    "empty_like",
    "full_like",
    "linspace",
    "logspace",
    "eye",
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


def rand(
    *size: Any,
    generator: Any = None,
    dtype: Any = None,
    device: Any = "cpu",
    requires_grad: bool = False,
) -> Tensor:
    """Uniform samples from [0, 1), from ``generator`` (a :class:`convlab.Generator`) or the
    default generator (seeded by :func:`convlab.manual_seed`)."""
    return _make(
        lambda b, s, d: _random.device_random(b, s, _floating(d, "rand"), generator),
        size,
        dtype,
        device,
        requires_grad,
    )


def randn(
    *size: Any,
    generator: Any = None,
    dtype: Any = None,
    device: Any = "cpu",
    requires_grad: bool = False,
) -> Tensor:
    """Standard normal samples, from ``generator`` or the default generator."""
    return _make(
        lambda b, s, d: _random.device_normal(b, s, _floating(d, "randn"), generator),
        size,
        dtype,
        device,
        requires_grad,
    )


def _floating(dtype: Any, what: str) -> Any:
    if not _dtype.is_floating(np.dtype(dtype)):
        raise TypeError(f"{what}: expected a floating-point dtype, got {dtype}")
    return dtype


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


def zeros_like(
    t: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    """Zeros with ``t``'s shape, dtype and device unless overridden."""
    return zeros(t.shape, **_like_args(t, dtype, device), requires_grad=requires_grad)


def ones_like(
    t: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    """Ones with ``t``'s shape, dtype and device unless overridden."""
    return ones(t.shape, **_like_args(t, dtype, device), requires_grad=requires_grad)


def empty_like(
    t: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False
) -> Tensor:
    """An uninitialised tensor with ``t``'s shape, dtype and device unless overridden."""
    return empty(t.shape, **_like_args(t, dtype, device), requires_grad=requires_grad)


def full_like(
    t: Tensor,
    fill_value: Any,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """``fill_value`` everywhere, with ``t``'s shape, dtype and device unless overridden."""
    return full(t.shape, fill_value, **_like_args(t, dtype, device), requires_grad=requires_grad)


def _like_args(t: Any, dtype: Any, device: Any) -> dict[str, Any]:
    if not isinstance(t, Tensor):
        raise TypeError(f"input: expected a Tensor, got {type(t).__name__}")
    return {
        "dtype": t._data.dtype if dtype is None else dtype,
        "device": t._backend.name if device is None else device,
    }


def linspace(
    start: Any,
    end: Any,
    steps: int,
    *,
    dtype: Any = None,
    device: Any = "cpu",
    requires_grad: bool = False,
) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive.

    Raises:
        RuntimeError: If ``steps`` is negative.
    """
    if isinstance(steps, bool) or not isinstance(steps, (numbers.Integral, np.integer)):
        raise TypeError(f"steps: expected an int, got {steps!r}")
    if steps < 0:
        raise RuntimeError(f"linspace: number of steps must be non-negative, got {steps}")
    dtype = _dtype.resolve_dtype(dtype) or _dtype.default_float
    backend = backend_for(device)
    # computed in float64 and rounded once, so float32 results match PyTorch's to 1 ulp
    values = np.linspace(float(start), float(end), int(steps), dtype=np.float64)
    if dtype.kind in "iu":
        values = np.trunc(values)
    return _finish(backend, values.astype(dtype), requires_grad)


def logspace(
    start: Any,
    end: Any,
    steps: int,
    base: float = 10.0,
    *,
    dtype: Any = None,
    device: Any = "cpu",
    requires_grad: bool = False,
) -> Tensor:
    """``base ** linspace(start, end, steps)``."""
    exponents = linspace(start, end, steps, dtype=_dtype.float64)
    dtype = _dtype.resolve_dtype(dtype) or _dtype.default_float
    values = np.power(float(base), exponents.numpy())
    return _finish(backend_for(device), values.astype(dtype), requires_grad)


def eye(
    n: int,
    m: int | None = None,
    *,
    dtype: Any = None,
    device: Any = "cpu",
    requires_grad: bool = False,
) -> Tensor:
    """An ``n`` x ``m`` (default square) matrix with ones on the diagonal."""
    for name, v in (("n", n), ("m", m)):
        if v is not None and (
            isinstance(v, bool) or not isinstance(v, (numbers.Integral, np.integer)) or v < 0
        ):
            raise RuntimeError(f"eye: expected {name} to be a non-negative int, got {v!r}")
    dtype = _dtype.resolve_dtype(dtype) or _dtype.default_float
    backend = backend_for(device)
    return _finish(
        backend, backend.xp.eye(int(n), None if m is None else int(m), dtype=dtype), requires_grad
    )


def _finish(backend: Any, array: Any, requires_grad: bool) -> Tensor:
    t = Tensor._wrap(backend.asarray(array), backend)
    if requires_grad:
        t.requires_grad = True
    return t


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
