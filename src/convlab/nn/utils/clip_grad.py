"""Gradient clipping with ``torch.nn.utils``'s norms, epsilon and in-place edits."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np

from convlab._tensor import Tensor

__all__ = [
    "clip_grad_norm_",
    "clip_grad_norm",
    "clip_grad_value_",
    "clip_grads_with_norm_",
    "get_total_norm",
]


def _tensor_list(tensors: Tensor | Iterable[Tensor], name: str) -> list[Tensor]:
    items = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}[{i}]: expected a Tensor, got {type(t).__name__}")
    return items


def _grads(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    """The ``grad`` of each parameter that has one."""
    return [p.grad for p in _tensor_list(parameters, "parameters") if p.grad is not None]


def _norm_type(norm_type: float | str) -> float:
    if isinstance(norm_type, str):
        if norm_type != "inf":
            raise ValueError(f"norm_type: expected a number or 'inf', got {norm_type!r}")
        return math.inf
    return float(norm_type)


def _vector_norm(xp: Any, a: Any, p: float) -> Any:
    """``torch.linalg.vector_norm`` of a whole array, in the array's dtype."""
    a = xp.abs(a)
    if a.size == 0:
        return xp.asarray(0, dtype=a.dtype)
    if p == math.inf:
        return a.max()
    if p == -math.inf:
        return a.min()
    if p == 0:
        return xp.asarray((a != 0).sum(), dtype=a.dtype)
    if p == 1:
        return a.sum()
    if p == 2:
        return xp.sqrt((a * a).sum())
    return (a ** a.dtype.type(p)).sum() ** a.dtype.type(1.0 / p)


def _tensor_norm(t: Tensor, p: float) -> Any:
    """``_vector_norm`` of a tensor's data; the 2-norm through the backend's sum of squares
    (on the CPU one parallel pass in float64, where NumPy's takes three on one thread)."""
    a = t._data
    if p == 2 and a.size and a.dtype.kind == "f":
        xp = t._backend.xp
        return xp.asarray(xp.sqrt(t._backend._sum_of_squares(a)), dtype=a.dtype)
    return _vector_norm(t._backend.xp, a, p)


def get_total_norm(
    tensors: Tensor | Iterable[Tensor],
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """The norm of the norms of ``tensors`` (as if they were one concatenated vector).

    Args:
        tensors: A tensor or an iterable of tensors (typically gradients).
        norm_type: The order of the norm: a number, ``inf`` or ``"inf"``.
        error_if_nonfinite: Raise if the total norm is nan or infinite.
        foreach: Accepted for PyTorch compatibility; ignored.

    Returns:
        A 0-d tensor (0.0 for no tensors).

    Raises:
        RuntimeError: If ``error_if_nonfinite`` and the norm is nan or infinite.
    """
    del foreach  # one fused path on every backend
    items = _tensor_list(tensors, "tensors")
    p = _norm_type(norm_type)
    if not items:
        from convlab import tensor as _make

        return _make(0.0)
    backend = items[0]._backend
    xp = backend.xp
    norms = [_tensor_norm(t, p) for t in items]
    dtype = np.result_type(*[n.dtype for n in norms])
    total = _vector_norm(xp, xp.stack([xp.asarray(n, dtype=dtype) for n in norms]), p)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"The total norm of order {p} for gradients from `parameters` is non-finite, so it "
            "cannot be clipped. To disable this error and scale the gradients by the non-finite "
            "norm anyway, set `error_if_nonfinite=False`"
        )
    return Tensor._wrap(xp.asarray(total, dtype=dtype), backend)


def clip_grads_with_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    total_norm: Tensor,
    foreach: bool | None = None,
) -> None:
    """Scale the gradients in place by ``min(1, max_norm / (total_norm + 1e-6))``.

    Args:
        parameters: A tensor or an iterable of tensors whose ``grad`` is scaled.
        max_norm: The largest allowed norm.
        total_norm: The norm to scale from (see :func:`get_total_norm`).
        foreach: Accepted for PyTorch compatibility; ignored.
    """
    del foreach
    grads = _grads(parameters)
    if not grads:
        return
    xp = total_norm._backend.xp
    norm = total_norm._data
    coef = xp.minimum(norm.dtype.type(max_norm) / (norm + norm.dtype.type(1e-6)), 1.0)
    for g in grads:
        # in place, so optimizers holding the grad tensor see the clipped values
        g._data *= coef.astype(g._data.dtype)


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Clip the gradients' total norm to ``max_norm``, in place (``torch.nn.utils``).

    Args:
        parameters: A tensor or an iterable of tensors whose ``grad`` is clipped.
        max_norm: The largest allowed norm.
        norm_type: The order of the norm: a number, ``inf`` or ``"inf"``.
        error_if_nonfinite: Raise if the total norm is nan or infinite.
        foreach: Accepted for PyTorch compatibility; ignored.

    Returns:
        The total norm of the gradients before clipping, a 0-d tensor.

    Raises:
        RuntimeError: If ``error_if_nonfinite`` and the norm is nan or infinite.
    """
    params = _tensor_list(parameters, "parameters")
    total = get_total_norm(_grads(params), norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(params, float(max_norm), total, foreach)
    return total


def clip_grad_norm(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Deprecated alias of :func:`clip_grad_norm_` (with PyTorch's warning)."""
    warnings.warn(
        "`torch.nn.utils.clip_grad_norm` is now deprecated in favor of "
        "`torch.nn.utils.clip_grad_norm_`.",
        FutureWarning,
        stacklevel=2,
    )
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(
    parameters: Tensor | Iterable[Tensor], clip_value: float, foreach: bool | None = None
) -> None:
    """Clamp each gradient element to ``[-clip_value, clip_value]``, in place.

    Args:
        parameters: A tensor or an iterable of tensors whose ``grad`` is clipped.
        clip_value: The bound.
        foreach: Accepted for PyTorch compatibility; ignored.
    """
    del foreach
    clip_value = float(clip_value)
    for g in _grads(parameters):
        g._backend.xp.clip(g._data, -clip_value, clip_value, out=g._data)
