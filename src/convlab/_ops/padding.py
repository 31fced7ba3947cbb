"""PyTorch's ``pad``: constant (negative widths crop), reflect, replicate and circular.

The non-constant modes are gathers: each output position along a padded axis reads one input
position (mirrored, clamped or wrapped), so they run on :class:`Resample`'s gather and its
scatter-add gradient.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from convlab._ops.interpolate import Resample
from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = ["pad"]

_MODES = ("constant", "reflect", "replicate", "circular")


class ConstantPad(Function):
    """Crop the negative widths, then pad the positive ones with ``value``; ``pairs`` holds
    one ``(before, after)`` per dimension."""

    def forward(self, x: Any, pairs: tuple = (), value: float = 0.0) -> Any:
        xp = self.backend.xp
        self.shape = x.shape
        self.crop = tuple(
            slice(max(-lo, 0), n - max(-hi, 0)) for (lo, hi), n in zip(pairs, x.shape)
        )
        widths = tuple((max(lo, 0), max(hi, 0)) for lo, hi in pairs)
        cropped = x[self.crop]
        self.inner = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, cropped.shape))
        out = xp.full(
            tuple(n + lo + hi for n, (lo, hi) in zip(cropped.shape, widths)), value, x.dtype
        )
        out[self.inner] = cropped
        return out

    def backward(self, grad: Any) -> tuple:
        gx = self.backend.xp.zeros(self.shape, grad.dtype)
        gx[self.crop] = grad[self.inner]
        return (gx,)


def _source_index(n: int, lo: int, hi: int, mode: str) -> np.ndarray:
    """The input position each output position reads along one axis."""
    if mode == "circular":
        # PyTorch crops first (negative widths), then wraps around what is left
        start, kept = max(-lo, 0), n - max(-lo, 0) - max(-hi, 0)
        return start + np.arange(-max(lo, 0), kept + max(hi, 0)) % kept
    j = np.arange(-lo, n + hi)
    if mode == "reflect":  # mirrored about the edge elements, which are not repeated
        j = np.abs(j)
        return np.where(j > n - 1, 2 * (n - 1) - j, j)
    return np.clip(j, 0, n - 1)  # replicate


def _pairs(pad: Any, ndim: int) -> list[tuple[int, int]]:
    """``pad`` (last dimension first, as PyTorch) as one (before, after) per dimension."""
    if not isinstance(pad, (tuple, list)) or not all(
        isinstance(p, (numbers.Integral, np.integer)) and not isinstance(p, bool) for p in pad
    ):
        raise TypeError(f"pad: expected a tuple of ints, got {pad!r}")
    if len(pad) % 2:
        raise RuntimeError("pad: Padding length must be divisible by 2")
    if len(pad) // 2 > ndim:
        raise RuntimeError(
            f"pad: Padding length should be less than or equal to two times the input "
            f"dimension but got padding length {len(pad)} and input of dimension {ndim}"
        )
    pairs = [(0, 0)] * ndim
    for k in range(len(pad) // 2):
        pairs[ndim - 1 - k] = (int(pad[2 * k]), int(pad[2 * k + 1]))
    return pairs


def pad(input: Tensor, pad: Any, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad ``input`` (``torch.nn.functional.pad``).

    Args:
        input: Any tensor (``"constant"``), or one with 1 or 2 more dimensions than padded
            ones (the other modes).
        pad: ``(left, right)`` for the last dimension, then ``(top, bottom)`` for the one
            before, and so on; negative widths crop.
        mode: ``"constant"``, ``"reflect"`` (mirror, edge not repeated), ``"replicate"``
            (repeat the edge) or ``"circular"`` (wrap around).
        value: The fill of ``"constant"`` (default 0).

    Raises:
        RuntimeError: For an odd or too long ``pad``, or widths the mode cannot serve (as
            PyTorch).
        NotImplementedError: For an unknown mode, or a non-constant mode on an input of a rank
            it does not take (as PyTorch).
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"pad: input: expected a Tensor, got {type(input).__name__}")
    if mode not in _MODES:
        raise NotImplementedError(
            f"pad: Unrecognised padding mode {mode} (expected one of {', '.join(_MODES)})"
        )
    pairs = _pairs(pad, input.ndim)
    if mode == "constant":
        for (lo, hi), n in zip(pairs, input.shape):
            if n + lo + hi < 0:
                raise RuntimeError(
                    f"pad: the padding {tuple(pad)} of input {input.shape} gives a negative size"
                )
        return ConstantPad.apply(
            input, pairs=tuple(pairs), value=0.0 if value is None else float(value)
        )
    if value is not None and value != 0:
        raise ValueError(f'pad: value: padding mode "{mode}" doesn\'t take in value argument')
    k = len(pad) // 2
    if not 1 <= k <= 3 or input.ndim not in (k + 1, k + 2):
        raise NotImplementedError(
            f"pad: padding size {len(pad)} is not supported for {input.ndim}D input tensor "
            f"in mode {mode!r}: {2 * k} values pad the last {k} dimensions of a {k + 1}D or "
            f"{k + 2}D input"
        )
    xp = input._backend.xp
    plan = []
    for axis in range(input.ndim - k, input.ndim):
        lo, hi = pairs[axis]
        n = input.shape[axis]
        limit = n - 1 if mode == "reflect" else n
        if mode != "replicate" and (lo > limit or hi > limit):
            raise RuntimeError(
                f"pad: padding ({lo}, {hi}) at dimension {axis} of input {input.shape} must be "
                + ("less than" if mode == "reflect" else "at most")
                + " the dimension's size in mode "
                + repr(mode)
            )
        if n == 0 or n + lo + hi < 0:
            raise RuntimeError(
                f"pad: cannot pad dimension {axis} of input {input.shape} "
                f"by ({lo}, {hi}) in mode {mode!r}"
            )
        if lo or hi:
            index = xp.asarray(_source_index(n, lo, hi, mode))
            plan.append((axis, n, ((index, None),)))
    return Resample.apply(input, plan=tuple(plan))
