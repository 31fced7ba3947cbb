"""The fused float32 cross-entropy's row passes on the CPU backend (``_xent.pyx``): when they
apply, and the two calls with their output arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from convlab import _settings
from convlab._cpu import _gemm, _xent
from convlab._cpu.backend import CPUBackend

__all__ = ["applies", "logsumexp_rows", "softmax_scaled_rows"]


def applies(backend: Any, logits: Any) -> bool:
    """Whether ``logits`` (2-D) take the fused passes: float32 on the CPU backend with its
    AVX-512 kernels selected (elsewhere NumPy's formulation is as fast as what we have)."""
    return (
        isinstance(backend, CPUBackend)
        and _xent.AVAILABLE
        and logits.dtype == np.float32
        and logits.ndim == 2
        and _gemm.get_isa() == "avx512"
    )


def logsumexp_rows(logits: np.ndarray) -> np.ndarray:
    """``log(sum(exp(logits[r])))`` of each row (the maximum taken out first)."""
    logits = np.ascontiguousarray(logits)
    lse = np.empty(logits.shape[0], logits.dtype)
    _xent.logsumexp_rows(logits, lse, _settings.get_num_threads())
    return lse


def softmax_scaled_rows(logits: np.ndarray, lse: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """``exp(logits[r] - lse[r]) * coef[r]`` of each row, in one pass."""
    logits = np.ascontiguousarray(logits)
    out = np.empty_like(logits)
    _xent.softmax_scaled_rows(
        logits,
        np.ascontiguousarray(lse, logits.dtype),
        np.ascontiguousarray(coef, logits.dtype),
        out,
        _settings.get_num_threads(),
    )
    return out
