"""Random number generators: :class:`Generator` objects and the default one that
:func:`manual_seed` seeds (initialisation, ``rand``/``randn``, dropout, data order)."""

from __future__ import annotations

import numbers
import secrets
from typing import Any

import numpy as np

__all__ = [
    "Generator",
    "default_generator",
    "manual_seed",
    "seed",
    "initial_seed",
    "host_generator",
    "numpy_generator",
    "draw_seed",
    "device_random",
    "device_normal",
    "get_rng_state",
    "set_rng_state",
]

#: The seed a new ``Generator()`` starts from, as PyTorch's (``torch.Generator().initial_seed()``).
DEFAULT_SEED = 67280421310721

#: Bytes of a serialised state: PCG64's 128-bit state and increment, the buffered-uint32 flag
#: and value, then the initial seed.
_STATE_BYTES = 16 + 16 + 1 + 4 + 8

# The default generator's NumPy generator. A module global, not an attribute of
# ``default_generator``: DataLoader workers re-seed it by assigning ``_random._host``.
_host = np.random.default_rng()


def _check_seed(seed: Any, name: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, (numbers.Integral, np.integer)):
        raise TypeError(f"{name}: expected an int, got {seed!r}")
    value = int(seed)
    if value < 0:
        raise ValueError(f"{name}: expected an int >= 0, got {value}")
    if value >= 2**64:
        raise ValueError(f"{name}: expected an int < 2**64, got {value}")
    return value


def _device_key(device: Any) -> str:
    from convlab.backend import backend_name

    key = backend_name(device if isinstance(device, str) else str(device))
    if key is None:
        raise ValueError(f"device: expected 'cpu' or 'gpu' (or 'cuda'), got {device!r}")
    return key


class Generator:
    """A random number generator, passed as ``generator=`` to sampling functions, samplers,
    :class:`~convlab.utils.data.DataLoader` and :func:`~convlab.utils.data.random_split`.

    It draws on the host (NumPy's PCG64) for every device: a sample for a GPU tensor is drawn
    here and copied, so one seed gives the same numbers on any device. The streams are not
    PyTorch's (the same seed gives different numbers than in PyTorch).

    Args:
        device: ``"cpu"`` or ``"gpu"``/``"cuda"`` (recorded as ``device``; both draw on the
            host).

    Example:
        >>> import convlab
        >>> g = convlab.Generator().manual_seed(42)
        >>> a = convlab.randn(3, generator=g)
        >>> b = convlab.randn(3, generator=convlab.Generator().manual_seed(42))
        >>> bool((a == b).all())
        True
    """

    def __init__(self, device: Any = "cpu") -> None:
        self._device = _device_key(device)
        self._initial_seed = DEFAULT_SEED
        self._numpy = np.random.default_rng(DEFAULT_SEED)

    @property
    def device(self) -> Any:
        """The :class:`convlab.device` this generator was made for (equal to ``"cpu"``, or to
        ``"cuda"`` / ``"gpu"``)."""
        from convlab._device import CPU, CUDA

        return CPU if self._device == "cpu" else CUDA

    @property
    def _rng(self) -> np.random.Generator:
        return self._numpy

    def manual_seed(self, seed: int) -> Generator:
        """Restart the stream from ``seed`` and return this generator (so it can be chained).

        Raises:
            TypeError: If ``seed`` is not an int.
            ValueError: If ``seed`` is negative or not below 2**64.
        """
        self._initial_seed = _check_seed(seed)
        self._seeded = self._rng
        # in place: samplers and loaders holding this stream see the new seed, as in PyTorch
        self._rng.bit_generator.state = np.random.PCG64(self._initial_seed).state
        return self

    def seed(self) -> int:
        """Seed with a fresh non-deterministic 64-bit value and return it."""
        value = secrets.randbits(64)
        self.manual_seed(value)
        return value

    def initial_seed(self) -> int:
        """The seed this generator was last seeded with."""
        return self._initial_seed

    def get_state(self) -> Any:
        """The stream's position as a uint8 tensor (give it to :meth:`set_state`)."""
        from convlab._creation import tensor

        state = self._rng.bit_generator.state
        inner = state["state"]
        parts = [
            int(inner["state"]).to_bytes(16, "little"),
            int(inner["inc"]).to_bytes(16, "little"),
            int(state["has_uint32"]).to_bytes(1, "little"),
            int(state["uinteger"]).to_bytes(4, "little"),
            self._initial_seed.to_bytes(8, "little"),
        ]
        return tensor(np.frombuffer(b"".join(parts), dtype=np.uint8))

    def set_state(self, new_state: Any) -> Generator:
        """Restore a state from :meth:`get_state` (a uint8 tensor or array) and return self.

        Raises:
            TypeError: If ``new_state`` is not a uint8 tensor or array.
            ValueError: If it has the wrong length.
        """
        from convlab._tensor import Tensor

        array = new_state.numpy() if isinstance(new_state, Tensor) else new_state
        if not isinstance(array, np.ndarray) or array.dtype != np.uint8:
            raise TypeError(
                f"new_state: expected a uint8 tensor from get_state(), got {_describe(new_state)}"
            )
        if array.size != _STATE_BYTES:
            raise ValueError(
                f"new_state: expected {_STATE_BYTES} bytes from get_state(), got {array.size}"
            )
        raw = array.reshape(-1).tobytes()
        self._rng.bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {
                "state": int.from_bytes(raw[0:16], "little"),
                "inc": int.from_bytes(raw[16:32], "little"),
            },
            "has_uint32": raw[32],
            "uinteger": int.from_bytes(raw[33:37], "little"),
        }
        self._initial_seed = int.from_bytes(raw[37:45], "little")
        return self

    def __repr__(self) -> str:
        return f"<convlab.Generator device='{self.device}' initial_seed={self._initial_seed}>"


def _describe(value: Any) -> str:
    dtype = getattr(value, "dtype", None)
    return f"{type(value).__name__} of dtype {dtype}" if dtype is not None else repr(value)


class _DefaultGenerator(Generator):
    """The process's default generator: its NumPy generator is the module global ``_host``."""

    def __init__(self) -> None:
        super().__init__("cpu")
        self.seed()  # a fresh seed per process, as before there were Generator objects

    @property
    def _rng(self) -> np.random.Generator:
        return _host

    def initial_seed(self) -> int:
        """The seed last given to :func:`manual_seed` or, in a DataLoader worker (which seeds
        a new generator with ``base_seed + worker_id``), that worker's seed, as in PyTorch."""
        if _host is not self._seeded:
            entropy = getattr(getattr(_host.bit_generator, "seed_seq", None), "entropy", None)
            if isinstance(entropy, int):
                return entropy
        return self._initial_seed


#: The generator used when no ``generator=`` is given; :func:`manual_seed` seeds it.
default_generator: Generator = _DefaultGenerator()


def manual_seed(seed: int) -> Generator:
    """Seed every backend's default generator (initialisation, ``rand``/``randn``, dropout, data
    order) and return :data:`default_generator`.

    Raises:
        TypeError: If ``seed`` is not an int.
        ValueError: If ``seed`` is negative or not below 2**64.
    """
    default_generator.manual_seed(seed)
    from convlab.backend import get_backend

    gpu = get_backend("gpu")
    if gpu.is_available():
        gpu.xp.random.seed(int(seed) % 2**32)
    return default_generator


def seed() -> int:
    """Seed the default generators with a fresh non-deterministic value and return it."""
    value = secrets.randbits(63)
    manual_seed(value)
    return value


def initial_seed() -> int:
    """The seed the default generator was last seeded with."""
    return default_generator.initial_seed()


def host_generator() -> np.random.Generator:
    """The NumPy generator behind CPU randomness and every parameter initialisation.

    Initial weights are drawn here and then moved, so a seed gives the same model on any device.
    """
    return _host


def numpy_generator(generator: Any, name: str = "generator") -> np.random.Generator:
    """The NumPy generator to draw from for a ``generator=`` argument (None: the default).

    Raises:
        TypeError: If ``generator`` is not a :class:`Generator` (or a NumPy generator).
    """
    if generator is None:
        return _host
    if isinstance(generator, Generator):
        return generator._rng
    if isinstance(generator, np.random.Generator):
        return generator
    raise TypeError(f"{name}: expected a convlab.Generator, got {type(generator).__name__}")


def get_rng_state() -> dict:
    """The CPU generator's state (a dict of ints and strings; save it with ``convlab.save``)."""
    return dict(_host.bit_generator.state)


def set_rng_state(state: Any) -> None:
    """Restore a state from :func:`get_rng_state` (or a uint8 tensor from
    ``default_generator.get_state()``), so a resumed run draws the same numbers.

    Raises:
        ValueError: If ``state`` is not a generator state of NumPy's default bit generator.
    """
    if not isinstance(state, dict):
        default_generator.set_state(state)
        return
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


def _host_draw(draw: Any, generator: Any, backend: Any, shape: tuple, dtype: Any) -> Any:
    dtype = np.dtype(dtype)
    # NumPy draws float32 or float64 only; float16 is drawn as float32 and rounded
    wide = dtype if dtype in (np.float32, np.float64) else np.dtype(np.float32)
    values = draw(numpy_generator(generator), shape, wide).astype(dtype, copy=False)
    return values if backend.name == "cpu" else backend.asarray(values)


def device_random(backend: Any, shape: tuple, dtype: Any, generator: Any = None) -> Any:
    """Uniform [0, 1) samples for ``backend`` (dropout masks, ``rand``): from ``generator`` on
    the host when one is given, else from the device's default generator."""
    if backend.name == "cpu" or generator is not None:
        return _host_draw(lambda g, s, d: g.random(s, dtype=d), generator, backend, shape, dtype)
    return backend.xp.random.random(shape, dtype=dtype)  # pragma: no cover - GPU


def device_normal(backend: Any, shape: tuple, dtype: Any, generator: Any = None) -> Any:
    """Standard normal samples for ``backend`` (see :func:`device_random`)."""
    if backend.name == "cpu" or generator is not None:
        return _host_draw(
            lambda g, s, d: g.standard_normal(s, dtype=d), generator, backend, shape, dtype
        )
    return backend.xp.random.standard_normal(shape, dtype=dtype)  # pragma: no cover - GPU
