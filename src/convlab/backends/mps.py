"""``convlab.backends.mps``: Apple's Metal backend, which convlab does not have."""

from __future__ import annotations

__all__ = ["is_available", "is_built"]


def is_available() -> bool:
    """False: convlab runs on the CPU and NVIDIA GPUs only."""
    return False


def is_built() -> bool:
    """False: convlab runs on the CPU and NVIDIA GPUs only."""
    return False
