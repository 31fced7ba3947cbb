"""``convlab.backends.mkldnn``: oneDNN, which convlab does not use (its CPU kernels are its own)."""

from __future__ import annotations

__all__ = ["is_available", "enabled"]

enabled = False


def is_available() -> bool:
    """False: convlab's CPU kernels are its own."""
    return False
