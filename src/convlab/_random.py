"""Random number generators: one per device, all seeded by :func:`manual_seed`."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = [
    "manual_seed",
    "host_generator",
    "draw_seed",
    "device_random",
    "get_rng_state",
    "set_rng_state",
]

_host = np.random.default_rng()


def manual_seed(seed: int) -> int:
    """Seed every backend's generator (initialisation, ``rand``/``randn``, dropout).

    Raises:
        TypeError: If ``seed`` is not an int.
        ValueError: If ``seed`` is negative.
    """
    global _host
    if isinstance(seed, bool) or not isinstance(seed, (numbers.Integral, np.integer)):
        raise TypeError(f"seed: expected an int, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed: expected an int >= 0, got {seed}")
    _host = np.random.default_rng(int(seed))
    from convlab.backend import get_backend

    gpu = get_backend("gpu")
    if gpu.is_available():
        gpu.xp.random.seed(int(seed) % 2**32)
    return int(seed)


def host_generator() -> np.random.Generator:
    """The NumPy generator behind CPU randomness and every parameter initialisation.

    Initial weights are drawn here and then moved, so a seed gives the same model on any device.
    """
    return _host


def get_rng_state() -> dict:
    """The CPU generator's state (a dict of ints and strings; save it with ``convlab.save``)."""
    return dict(_host.bit_generator.state)


def set_rng_state(state: dict) -> None:
    """Restore a state from :func:`get_rng_state`, so a resumed run draws the same numbers.

    Raises:
        ValueError: If ``state`` is not a generator state of NumPy's default bit generator.
    """
    try:
        _host.bit_generator.state = dict(state)
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"state: not a generator state from get_rng_state ({err})") from None


def draw_seed() -> int:
    """A uint64 seed from the host generator, for a kernel's own counter-based stream."""
    return int(_host.integers(0, 2**64, dtype=np.uint64))


def dropout_threshold(p: float) -> int:
    """The 32-bit threshold a uniform 32-bit draw must reach for an element to be kept with
    probability ``1 - p`` (to 2**-32): what both backends' dropout kernels compare with."""
    return min(round(p * 2**32), 2**32 - 1)


def device_random(backend: Any, shape: tuple, dtype: Any) -> Any:
    """Uniform [0, 1) samples drawn on ``backend``'s device (dropout masks, ``rand``)."""
    if backend.name == "cpu":
        return _host.random(shape, dtype=np.dtype(dtype))
    return backend.xp.random.random(shape, dtype=dtype)  # pragma: no cover - GPU


def device_normal(backend: Any, shape: tuple, dtype: Any) -> Any:
    """Standard normal samples drawn on ``backend``'s device."""
    if backend.name == "cpu":
        return _host.standard_normal(shape, dtype=np.dtype(dtype))
    return backend.xp.random.standard_normal(shape, dtype=dtype)  # pragma: no cover - GPU
