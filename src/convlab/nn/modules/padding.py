"""Padding layers: zero, constant, reflection, replication and circular, 1-D and 2-D."""

from __future__ import annotations

from typing import Any

from convlab._ops import padding as _padding
from convlab._tensor import Tensor
from convlab.nn.module import Module

__all__ = [
    "ZeroPad1d",
    "ZeroPad2d",
    "ConstantPad1d",
    "ConstantPad2d",
    "ReflectionPad1d",
    "ReflectionPad2d",
    "ReplicationPad1d",
    "ReplicationPad2d",
    "CircularPad1d",
    "CircularPad2d",
]


def _widths(padding: Any, n: int) -> tuple[int, ...]:
    """An int pads every side; otherwise ``2 * n`` ints, last dimension first."""
    if isinstance(padding, int):
        return (padding,) * (2 * n)
    widths = tuple(int(p) for p in padding)
    if len(widths) != 2 * n:
        raise ValueError(f"padding: expected an int or {2 * n} ints, got {tuple(padding)}")
    return widths


class _PadNd(Module):
    _dims = 2
    _mode = "constant"

    def __init__(self, padding: Any, value: float = 0.0) -> None:
        super().__init__()
        self.padding = _widths(padding, self._dims)
        self.value = value

    def forward(self, input: Tensor) -> Tensor:
        if self._mode == "constant":
            return _padding.pad(input, self.padding, "constant", self.value)
        return _padding.pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pad the last dimension with ``value`` (``torch.nn.ConstantPad1d``); ``padding`` is an
    int or ``(left, right)``."""

    _dims = 1


class ConstantPad2d(_ConstantPadNd):
    """Pad the last two dimensions with ``value`` (``torch.nn.ConstantPad2d``); ``padding`` is
    an int or ``(left, right, top, bottom)``."""

    _dims = 2


class ZeroPad1d(ConstantPad1d):
    """Pad the last dimension with zeros (``torch.nn.ZeroPad1d``)."""

    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    """Pad the last two dimensions with zeros (``torch.nn.ZeroPad2d``); ``padding`` is an int
    or ``(left, right, top, bottom)``."""

    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ReflectionPad1d(_PadNd):
    """Mirror the last dimension about its edge elements (``torch.nn.ReflectionPad1d``)."""

    _dims, _mode = 1, "reflect"


class ReflectionPad2d(_PadNd):
    """Mirror the last two dimensions about their edge elements
    (``torch.nn.ReflectionPad2d``); ``padding`` is an int or ``(left, right, top, bottom)``,
    each smaller than the dimension it pads."""

    _dims, _mode = 2, "reflect"


class ReplicationPad1d(_PadNd):
    """Repeat the edge elements of the last dimension (``torch.nn.ReplicationPad1d``)."""

    _dims, _mode = 1, "replicate"


class ReplicationPad2d(_PadNd):
    """Repeat the edge elements of the last two dimensions (``torch.nn.ReplicationPad2d``)."""

    _dims, _mode = 2, "replicate"


class CircularPad1d(_PadNd):
    """Wrap the last dimension around (``torch.nn.CircularPad1d``)."""

    _dims, _mode = 1, "circular"


class CircularPad2d(_PadNd):
    """Wrap the last two dimensions around (``torch.nn.CircularPad2d``)."""

    _dims, _mode = 2, "circular"
