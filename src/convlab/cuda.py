"""``convlab.cuda``: PyTorch's ``torch.cuda`` queries for convlab's GPU backend.

convlab drives at most one NVIDIA GPU (through CuPy); these functions answer PyTorch programs'
usual questions about it without importing CuPy at ``import convlab`` time.

Example:
    >>> import convlab
    >>> device = "cuda" if convlab.cuda.is_available() else "cpu"
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "is_available",
    "device_count",
    "current_device",
    "set_device",
    "get_device_name",
    "synchronize",
    "manual_seed",
    "manual_seed_all",
    "empty_cache",
    "is_bf16_supported",
]


def _backend() -> Any:
    from convlab.backend import get_backend

    return get_backend("gpu")


def is_available() -> bool:
    """True when CuPy is installed and sees a CUDA device (never raises)."""
    return bool(_backend().is_available())


def device_count() -> int:
    """1 when a GPU is available (convlab uses one), else 0."""
    return 1 if is_available() else 0


def _require(what: str) -> Any:
    backend = _backend()
    if not backend.is_available():
        from convlab.backend import BackendUnavailableError

        raise BackendUnavailableError(
            f"convlab.cuda.{what}: no GPU is available ({backend.describe()})"
        )
    return backend


def _check_index(device: Any, what: str) -> None:
    if device is None:
        return
    from convlab._device import device as make_device

    index = device if isinstance(device, int) and not isinstance(device, bool) else None
    if index is None:
        parsed = make_device(device)
        if parsed.type != "cuda":
            raise ValueError(f"{what}: expected a CUDA device, got {device!r}")
        index = parsed.index or 0
    if index != 0:
        raise ValueError(f"{what}: convlab uses one GPU (index 0), got index {index}")


def current_device() -> int:
    """The index of the GPU in use: always 0.

    Raises:
        convlab.BackendUnavailableError: Without a GPU, as ``torch.cuda.current_device``.
    """
    _require("current_device")
    return 0


def set_device(device: Any) -> None:
    """Select the GPU: only index 0 (or ``"cuda"`` / ``"cuda:0"``) exists in convlab.

    Raises:
        ValueError: For another index.
    """
    _check_index(device, "set_device")


def get_device_name(device: Any = None) -> str:
    """The GPU's name and memory as the GPU backend describes it.

    Raises:
        convlab.BackendUnavailableError: Without a GPU.
    """
    _check_index(device, "get_device_name")
    return str(_require("get_device_name").describe())


def synchronize(device: Any = None) -> None:
    """Wait for every queued GPU kernel to finish (a no-op without a GPU)."""
    _check_index(device, "synchronize")
    backend = _backend()
    if backend.is_available():
        backend.synchronize()


def manual_seed(seed: int) -> None:
    """Seed the random numbers drawn for GPU tensors.

    convlab draws GPU random numbers from the same generator as CPU ones, so this seeds
    :func:`convlab.manual_seed`'s default generator, as PyTorch programs expect when they call
    both ``torch.manual_seed`` and ``torch.cuda.manual_seed`` with one seed.
    """
    from convlab._random import manual_seed as seed_default

    seed_default(seed)


manual_seed_all = manual_seed


def empty_cache() -> None:
    """Return CuPy's cached, unused GPU memory blocks to the driver (a no-op without a GPU)."""
    if is_available():
        import cupy

        pool = getattr(cupy, "get_default_memory_pool", None)
        if pool is not None:  # (the CUDA emulator used in tests has no memory pool)
            pool().free_all_blocks()


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """Whether the GPU computes in bfloat16 (compute capability 8.0 or newer)."""
    if not is_available():
        return False
    import cupy

    major = int(cupy.cuda.Device().compute_capability[:-1] or 0)
    return major >= 8


def __getattr__(name: str) -> Any:
    # ``convlab.cuda.FloatTensor`` etc.: created on first use so that importing this module
    # does not import the tensor machinery.
    from convlab._legacy_types import cuda_types

    if name in cuda_types:
        return cuda_types[name]
    raise AttributeError(f"module 'convlab.cuda' has no attribute {name!r}")
