"""The benchmarks' yardsticks (benchmarks/yardsticks.c): the memory floor moves every byte it
claims to, and the FMA peak is a rate."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks"))
import yardsticks  # noqa: E402

needs_compiler = pytest.mark.skipif(
    not yardsticks.available(), reason="no C compiler for benchmarks/yardsticks.c"
)


@needs_compiler
@pytest.mark.parametrize(
    "n_out, n_in, offset",
    [(0, 0, 0), (37, 1000, 1), (70_001, 5, 3), (2_300_017, 2_300_017, 2)],
    ids=["empty", "short", "unaligned", "streamed"],
)
def test_memory_floor_writes_every_output_and_sums_the_gradient_cpu(isa, n_out, n_in, offset):
    rng = np.random.default_rng(n_out)
    out = np.full(n_out + offset + 1, np.nan, np.float32)
    grad = rng.standard_normal(n_in + offset).astype(np.float32)
    total = yardsticks.memory_floor(out[offset : offset + n_out], grad[offset:], 2, isa)
    assert np.isfinite(out[offset : offset + n_out]).all()
    assert np.isnan(out[:offset]).all() and np.isnan(out[offset + n_out :]).all()
    expected = grad[offset:].astype(np.float64).sum()
    assert abs(total - expected) <= 1e-5 * np.abs(grad[offset:]).astype(np.float64).sum() + 1e-6


@needs_compiler
def test_fma_peak_is_a_positive_rate_cpu():
    from convlab._cpu import _gemm

    for isa in _gemm.supported_isas():
        peak = yardsticks.fma_peak_gflops(1, isa, seconds=0.01)
        assert peak is not None and 0 < peak < 1e5
