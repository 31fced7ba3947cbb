"""``convlab.accelerator``: PyTorch's ``torch.accelerator`` API (the GPU, when there is one).

Example:
    >>> import convlab
    >>> device = (convlab.accelerator.current_accelerator()
    ...           if convlab.accelerator.is_available() else convlab.device("cpu"))
"""

from __future__ import annotations

from typing import Any

from convlab import cuda
from convlab._device import device

__all__ = [
    "is_available",
    "current_accelerator",
    "device_count",
    "current_device_index",
    "set_device_index",
    "synchronize",
]


def is_available() -> bool:
    """True when a GPU is available to convlab."""
    return cuda.is_available()


def current_accelerator(check_available: bool = False) -> device | None:
    """``device("cuda")`` (convlab's only accelerator type), or ``None``.

    Args:
        check_available: Return ``None`` unless a GPU is actually available (PyTorch's
            default, ``False``, reports the type this build supports; convlab reports CUDA
            only when CuPy is installed).
    """
    available = cuda.is_available() if check_available else _cupy_installed()
    return device("cuda") if available else None


def _cupy_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("cupy") is not None


def device_count() -> int:
    """Number of accelerators convlab can use (0 or 1)."""
    return cuda.device_count()


def current_device_index() -> int:
    """The index of the accelerator in use (0), or -1 without one."""
    return 0 if cuda.is_available() else -1


def set_device_index(index: Any) -> None:
    """Select the accelerator: only index 0 exists."""
    cuda.set_device(index)


def synchronize(device: Any = None) -> None:
    """Wait for the accelerator's queued work (a no-op without one)."""
    cuda.synchronize(device)
