"""The binary first layer's lookup tables, written once against an array module ``xp`` for
the backends' kernels (``convlab._cpu._binary``, ``convlab._gpu.binary``).

The kernel is cut into sub-rows of at most three taps (input channel, kernel row, three
consecutive kernel columns). At an output pixel a sub-row sees a 3-bit pattern ``p`` of the
input (bit ``j``: tap ``3 s + j`` of segment ``s``), so its contribution to output channel
``o`` is the table entry ``T[o, r, p]``, the sum of the sub-row's weights at the set bits of
``p``. The weight gradient runs the other way: a pattern histogram of the output gradient,
whose bins add up to the taps whose bit is set.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np


def pattern_bits(n_bits: int, n_patterns: int | None = None) -> np.ndarray:
    """(n_bits, n_patterns) float64: whether bit j of pattern p is set (patterns 0..2**n_bits-1
    unless ``n_patterns`` says how many table entries there are)."""
    p = np.arange(2**n_bits if n_patterns is None else n_patterns)
    return ((p[None, :] >> np.arange(n_bits)[:, None]) & 1).astype(np.float64)


@functools.lru_cache(maxsize=16)
def _sub_row_bits(kw: int) -> np.ndarray:
    """(KW, 8 * ceil(KW / 3)): [3 s + t, 8 s + p] is bit t of pattern p, for each segment s."""
    bits = np.kron(np.eye(-(-kw // 3)), pattern_bits(3))[:kw]
    bits.flags.writeable = False
    return bits


def sub_row_tables(weight: Any, xp: Any) -> Any:
    """(Cout, R, 8) tables of ``weight`` (Cout, C, KH, KW), R = C * KH * ceil(KW / 3): entry
    ``[o, r, p]`` sums sub-row r's weights at the set bits of p, in float64, rounded to the
    weight's dtype."""
    cout, _, _, kw = weight.shape
    w = weight.reshape(weight.size // max(kw, 1), kw).astype(np.float64)
    tables = (w @ xp.asarray(_sub_row_bits(kw))).astype(weight.dtype)
    return xp.ascontiguousarray(tables.reshape(cout, tables.size // max(cout * 8, 1), 8))


def taps_from_histogram(hist: Any, chw: tuple, kernel: tuple, xp: Any) -> Any:
    """(Cout, C, KH, KW) per-tap sums from a 3-tap sub-row histogram (R, 8, Cout): a tap's
    sum is that of the bins whose pattern has its bit set."""
    cout = hist.shape[2]
    taps = xp.einsum("rpc,jp->crj", hist.astype(np.float64), xp.asarray(pattern_bits(3)))
    return xp.ascontiguousarray(
        taps.reshape(cout, chw[0], kernel[0], -1)[..., : kernel[1]].astype(hist.dtype)
    )


def sum_row_runs(colsum: Any, row_starts: Any, xp: Any) -> Any:
    """Per-row column-class sums (OH, K, Cout) summed over each run of rows
    ``row_starts[i] .. row_starts[i+1] - 1``: (len(row_starts) - 1, K, Cout)."""
    bounds = [int(v) for v in row_starts]
    return xp.stack([colsum[a:b].sum(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])
