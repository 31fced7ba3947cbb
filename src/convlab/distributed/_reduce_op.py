"""``ReduceOp``: the reductions ``all_reduce`` applies, under torch.distributed's names."""

from __future__ import annotations

from typing import Any

__all__ = ["ReduceOp"]


class _Op:
    """One reduction: its name (and ``repr``) as PyTorch prints them."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<ReduceOp.{self.name}>"

    def __reduce__(self) -> Any:
        return (getattr, (ReduceOp, self.name))


class ReduceOp:
    """The reductions of :func:`convlab.distributed.all_reduce` (``torch.distributed.ReduceOp``).

    ``SUM``, ``AVG`` (the sum divided by the group's size), ``PRODUCT``, ``MIN`` and ``MAX``.
    """

    SUM = _Op("SUM")
    AVG = _Op("AVG")
    PRODUCT = _Op("PRODUCT")
    MIN = _Op("MIN")
    MAX = _Op("MAX")


def check_op(op: Any) -> _Op:
    """``op`` if it is one of :class:`ReduceOp`'s members.

    Raises:
        ValueError: Otherwise.
    """
    members = (ReduceOp.SUM, ReduceOp.AVG, ReduceOp.PRODUCT, ReduceOp.MIN, ReduceOp.MAX)
    if not any(op is m for m in members):
        raise ValueError(f"op: expected one of ReduceOp.SUM, AVG, PRODUCT, MIN, MAX, got {op!r}")
    return op
