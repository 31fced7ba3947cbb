"""PyTorch top-level names that only configure or wrap: ``compile``, ``Size``,
``use_deterministic_algorithms`` and friends (the precision switch is :mod:`convlab._precision`).

convlab's kernels are hand-written and deterministic, so these accept PyTorch's arguments and
do what is meaningful here: ``compile`` returns the module or function unchanged (there is no
graph compiler), ``Size`` is a tuple with ``numel()``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "compile",
    "Size",
    "use_deterministic_algorithms",
    "are_deterministic_algorithms_enabled",
    "is_deterministic_algorithms_warn_only_enabled",
]

_deterministic = {"mode": False, "warn_only": False}


def compile(  # noqa: A001 - PyTorch's name
    model: Any = None,
    *,
    fullgraph: bool = False,
    dynamic: Any = None,
    backend: Any = "inductor",
    mode: Any = None,
    options: Any = None,
    disable: bool = False,
) -> Any:
    """``torch.compile``: returns ``model`` (a module or function) unchanged.

    convlab runs its own kernels directly; there is no graph compiler, so the program's
    numbers are what the uncompiled model computes. Usable as ``@compile`` and
    ``@compile(mode=...)``.
    """
    if model is None:
        return lambda fn: fn
    if not callable(model):
        raise TypeError(f"compile: expected a module or function, got {type(model).__name__}")
    return model


class Size(tuple[int, ...]):
    """``torch.Size``: a tuple of dimension sizes with ``numel()``."""

    def numel(self) -> int:
        """The number of elements a tensor of this shape holds."""
        count = 1
        for size in self:
            count *= int(size)
        return count

    def __repr__(self) -> str:
        return f"convlab.Size({list(self)})"


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Accepted: every convlab kernel is deterministic already (same inputs, same bits)."""
    _deterministic["mode"] = bool(mode)
    _deterministic["warn_only"] = bool(warn_only)


def are_deterministic_algorithms_enabled() -> bool:
    """What :func:`use_deterministic_algorithms` last set."""
    return bool(_deterministic["mode"])


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    """What :func:`use_deterministic_algorithms` last set for ``warn_only``."""
    return bool(_deterministic["warn_only"])
