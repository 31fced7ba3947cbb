"""Bit patterns of the binary first layer's lookup tables, shared by the layer
(``convlab._ops.binary``) and the backends' kernels."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np


def pattern_bits(n_bits: int, n_patterns: Optional[int] = None) -> np.ndarray:
    """(n_bits, n_patterns) float64: whether bit j of pattern p is set (patterns 0..2**n_bits-1
    unless ``n_patterns`` says how many table entries there are)."""
    p = np.arange(2 ** n_bits if n_patterns is None else n_patterns)
    return ((p[None, :] >> np.arange(n_bits)[:, None]) & 1).astype(np.float64)


def taps_from_histogram(hist: Any, chw: tuple, kernel: tuple, xp: Any) -> Any:
    """(Cout, C, KH, KW) per-tap sums from a 3-tap sub-row histogram (R, 8, Cout): a tap's
    sum is that of the bins whose pattern has its bit set."""
    cout = hist.shape[2]
    taps = xp.einsum("rpc,jp->crj", hist.astype(np.float64), xp.asarray(pattern_bits(3)))
    return xp.ascontiguousarray(
        taps.reshape(cout, chw[0], kernel[0], -1)[..., :kernel[1]].astype(hist.dtype))


def sum_row_runs(colsum: Any, row_starts: Any, xp: Any) -> Any:
    """Per-row column-class sums (OH, K, Cout) summed over each run of rows
    ``row_starts[i] .. row_starts[i+1] - 1``: (len(row_starts) - 1, K, Cout)."""
    bounds = [int(v) for v in row_starts]
    return xp.stack([colsum[a:b].sum(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])
