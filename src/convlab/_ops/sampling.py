"""Random sampling: ``rand_like``, ``randint``, ``randperm``, ``normal``, ``bernoulli``,
``multinomial``; each takes ``generator=`` (a :class:`convlab.Generator`).

Draws come from the generator (or the default one) on the host and are copied to the device,
except the plain ``rand``/``randn`` of a GPU tensor without a generator, drawn on the GPU.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from convlab import _dtype, _random
from convlab._tensor import Tensor, backend_for

__all__ = [
    "rand_like",
    "randn_like",
    "randint",
    "randint_like",
    "randperm",
    "normal",
    "bernoulli",
    "multinomial",
    "poisson",
]


def _finish(array: Any, backend: Any, requires_grad: bool) -> Tensor:
    t = Tensor._wrap(array if backend.name == "cpu" else backend.asarray(array), backend)
    if requires_grad:
        t.requires_grad = True
    return t


def _like(t: Any, dtype: Any, device: Any, what: str) -> tuple[Any, Any]:
    if not isinstance(t, Tensor):
        raise TypeError(f"{what}: expected a Tensor as input, got {type(t).__name__}")
    backend = t._backend if device is None else backend_for(device)
    return backend, _dtype.resolve_dtype(dtype) or t._data.dtype


def rand_like(
    t: Tensor,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    generator: Any = None,
) -> Tensor:
    """Uniform [0, 1) samples of ``t``'s shape (and dtype / device unless given)."""
    backend, dtype = _like(t, dtype, device, "rand_like")
    _float_only(dtype, "rand_like")
    array = _random.device_random(backend, t.shape, dtype, generator)
    return _finish(array, backend, requires_grad)


def randn_like(
    t: Tensor,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    generator: Any = None,
) -> Tensor:
    """Standard normal samples of ``t``'s shape (and dtype / device unless given)."""
    backend, dtype = _like(t, dtype, device, "randn_like")
    _float_only(dtype, "randn_like")
    array = _random.device_normal(backend, t.shape, dtype, generator)
    return _finish(array, backend, requires_grad)


def _float_only(dtype: Any, what: str) -> None:
    if not _dtype.is_floating(np.dtype(dtype)):
        raise TypeError(f"{what}: expected a floating-point dtype, got {dtype}")


def _size(size: Any, what: str) -> tuple[int, ...]:
    from convlab._creation import _size as sizes

    if isinstance(size, (numbers.Integral, np.integer)) and not isinstance(size, bool):
        size = (size,)
    if not isinstance(size, (tuple, list)):
        raise TypeError(f"{what}: expected size to be a tuple of ints, got {size!r}")
    return tuple(sizes(tuple(size)))


def _int_bounds(low: Any, high: Any, what: str) -> tuple[int, int]:
    for name, v in (("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, (numbers.Integral, np.integer)):
            raise TypeError(f"{what}: expected {name} to be an int, got {v!r}")
    if high <= low:
        raise RuntimeError(f"{what}: expected low < high, got low={low}, high={high}")
    return int(low), int(high)


def randint(
    *args: Any,
    size: Any = None,
    generator: Any = None,
    dtype: Any = None,
    device: Any = "cpu",
    requires_grad: bool = False,
) -> Tensor:
    """Integers drawn uniformly from ``[low, high)``: ``randint(high, size)`` or
    ``randint(low, high, size)`` (int64 unless ``dtype`` says otherwise).

    Raises:
        TypeError: For a wrong number of arguments or non-int bounds.
        RuntimeError: If ``high <= low``.
    """
    bounds = list(args)
    if size is None and bounds and isinstance(bounds[-1], (tuple, list)):
        size = bounds.pop()
    if size is None or len(bounds) not in (1, 2):
        raise TypeError("randint: expected randint(high, size) or randint(low, high, size)")
    low, high = (0, bounds[0]) if len(bounds) == 1 else (bounds[0], bounds[1])
    low, high = _int_bounds(low, high, "randint")
    dtype = _dtype.resolve_dtype(dtype) or _dtype.int64
    rng = _random.numpy_generator(generator)
    array = rng.integers(low, high, size=_size(size, "randint")).astype(dtype)
    return _finish(array, backend_for(device), requires_grad)


def randint_like(
    t: Tensor,
    low: Any = 0,
    high: Any = None,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    generator: Any = None,
) -> Tensor:
    """Integers from ``[low, high)`` of ``t``'s shape; ``randint_like(t, high)`` starts at 0."""
    backend, dtype = _like(t, dtype, device, "randint_like")
    if high is None:
        low, high = 0, low
    low, high = _int_bounds(low, high, "randint_like")
    array = _random.numpy_generator(generator).integers(low, high, size=t.shape).astype(dtype)
    return _finish(array, backend, requires_grad)


def randperm(
    n: int,
    *,
    generator: Any = None,
    dtype: Any = None,
    device: Any = "cpu",
    requires_grad: bool = False,
) -> Tensor:
    """A random permutation of ``0``, ..., ``n - 1`` (int64 unless ``dtype`` says otherwise).

    Raises:
        RuntimeError: If ``n`` is negative.
    """
    if isinstance(n, bool) or not isinstance(n, (numbers.Integral, np.integer)):
        raise TypeError(f"randperm: expected n to be an int, got {n!r}")
    if n < 0:
        raise RuntimeError(f"randperm: expected n >= 0, got {n}")
    dtype = _dtype.resolve_dtype(dtype) or _dtype.int64
    array = _random.numpy_generator(generator).permutation(int(n)).astype(dtype)
    return _finish(array, backend_for(device), requires_grad)


def normal(
    mean: Any = 0.0,
    std: Any = 1.0,
    size: Any = None,
    *,
    generator: Any = None,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Normal samples with ``mean`` and ``std``: tensors (broadcast together, the result has
    their shape) or numbers with ``size``.

    Raises:
        RuntimeError: If ``std`` is negative, or numbers come without ``size``.
    """
    tensors = [v for v in (mean, std) if isinstance(v, Tensor)]
    if tensors:
        like = tensors[0]
        backend = like._backend if device is None else backend_for(device)
        dtype = _dtype.resolve_dtype(dtype) or like._data.dtype
        m = like._backend.to_numpy(mean._data) if isinstance(mean, Tensor) else mean
        s = like._backend.to_numpy(std._data) if isinstance(std, Tensor) else std
        shape = np.broadcast_shapes(np.shape(m), np.shape(s))
        if size is not None:
            shape = _size(size, "normal")
    else:
        if size is None:
            raise RuntimeError("normal: with a number mean and std, size= is required")
        backend = backend_for("cpu" if device is None else device)
        dtype = _dtype.resolve_dtype(dtype) or _dtype.default_float
        m, s, shape = mean, std, _size(size, "normal")
    if bool(np.any(np.asarray(s) < 0)):
        raise RuntimeError("normal: expected all std >= 0.0")
    _float_only(dtype, "normal")
    draws = _random.numpy_generator(generator).standard_normal(shape)
    array = (draws * s + m).astype(dtype)
    return _finish(array, backend, requires_grad)


def bernoulli(input: Tensor, p: Any = None, *, generator: Any = None) -> Tensor:  # noqa: A002
    """0/1 samples, 1 with the probability in each element of ``input`` (or ``p``), in
    ``input``'s dtype.

    Raises:
        RuntimeError: If a probability is outside [0, 1].
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"bernoulli: expected a Tensor as input, got {type(input).__name__}")
    probability = input._backend.to_numpy(input._data) if p is None else np.asarray(p)
    if bool(np.any((probability < 0) | (probability > 1))):
        raise RuntimeError("bernoulli: expected all probabilities in [0, 1]")
    u = _random.numpy_generator(generator).random(input.shape)
    array = (u < probability).astype(input._data.dtype)
    return _finish(array, input._backend, False)


def multinomial(
    input: Tensor,  # noqa: A002 - PyTorch's name
    num_samples: int,
    replacement: bool = False,
    *,
    generator: Any = None,
) -> Tensor:
    """Indices drawn by the (unnormalised) weights in each row of ``input`` (1-D or 2-D), as
    int64 of shape ``(num_samples,)`` or ``(rows, num_samples)``.

    Raises:
        RuntimeError: For negative or all-zero weights, or more samples than non-zero weights
            without replacement.
    """
    if not isinstance(input, Tensor) or input.ndim not in (1, 2):
        raise RuntimeError("multinomial: expected a 1-D or 2-D tensor of weights")
    weights = np.asarray(input._backend.to_numpy(input._data), dtype=np.float64)
    rows = weights.reshape(-1, weights.shape[-1])
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples <= 0:
        raise RuntimeError(f"multinomial: expected num_samples > 0, got {num_samples!r}")
    if not np.isfinite(rows).all() or (rows < 0).any():
        raise RuntimeError("multinomial: weights must be finite and non-negative")
    rng = _random.numpy_generator(generator)
    out = np.empty((rows.shape[0], num_samples), dtype=np.int64)
    for r, w in enumerate(rows):
        total = w.sum()
        if total <= 0:
            raise RuntimeError("multinomial: the weights of a row sum to zero")
        if not replacement and num_samples > int((w > 0).sum()):
            raise RuntimeError(
                f"multinomial: cannot draw {num_samples} samples without replacement from "
                f"{int((w > 0).sum())} non-zero weights"
            )
        out[r] = rng.choice(w.size, size=num_samples, replace=bool(replacement), p=w / total)
    array = out.reshape(num_samples) if input.ndim == 1 else out
    return _finish(array, input._backend, False)


def poisson(input: Tensor, generator: Any = None) -> Tensor:  # noqa: A002
    """Poisson samples with the rates in ``input`` (same dtype)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"poisson: expected a Tensor as input, got {type(input).__name__}")
    rates = input._backend.to_numpy(input._data)
    array = _random.numpy_generator(generator).poisson(rates).astype(input._data.dtype)
    return _finish(array, input._backend, False)
