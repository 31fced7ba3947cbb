"""``convlab.backends.cudnn``: accepted, without effect (convlab's GPU kernels are its own).

``benchmark``, ``deterministic``, ``enabled`` and ``allow_tf32`` are plain attributes so that
``torch.backends.cudnn.benchmark = True`` runs unchanged. convlab's kernels are deterministic
whatever ``deterministic`` says.
"""

from __future__ import annotations

__all__ = ["benchmark", "deterministic", "enabled", "allow_tf32", "is_available", "version"]

benchmark = False
deterministic = False
enabled = True
allow_tf32 = True


def is_available() -> bool:
    """False: convlab does not use cuDNN."""
    return False


def version() -> None:
    """None: convlab does not use cuDNN."""
    return None
