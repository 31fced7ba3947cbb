"""The CPU backend's fused float32 cross-entropy (``_cpu/_xent.pyx``): its row passes against
float64 NumPy loops, and ``cross_entropy`` through them against PyTorch, values and gradients,
at 1 and 2 threads (identical)."""

from __future__ import annotations

import numpy as np
import pytest

import convlab
from conftest import needs_torch, torch
from convlab._cpu import _gemm, _xent, xent
from convlab._cpu.backend import CPUBackend

pytestmark = pytest.mark.skipif(
    not (_xent.AVAILABLE and "avx512" in _gemm.supported_isas()),
    reason="the fused passes need AVX-512 (elsewhere NumPy's path runs)",
)


@pytest.fixture
def avx512():
    before = _gemm.get_isa()
    _gemm.set_isa("avx512")
    yield
    _gemm.set_isa(before)


def _lse_loop(x: np.ndarray) -> np.ndarray:
    """log(sum(exp)) of each row in float64, element by element, the maximum taken out."""
    out = np.empty(x.shape[0])
    for r, row in enumerate(x.astype(np.float64)):
        m = max(row.tolist())
        if np.isnan(row).any() or m == np.inf:
            out[r] = np.nan
        elif m == -np.inf:
            out[r] = -np.inf
        else:
            out[r] = m + np.log(sum(np.exp(v - m) for v in row.tolist()))
    return out


@pytest.mark.parametrize("width", [1, 15, 16, 17, 33, 1037])
def test_row_passes_against_loops(avx512, threads, width):
    """Widths around the vector length (masked tails), large logits that would overflow
    without the maximum taken out, rows with NaN / +inf (NaN), -inf entries (zero terms)
    and a row of only -inf (-inf, and a NaN softmax row)."""
    rng = np.random.default_rng(width)
    x = (rng.standard_normal((7, width)) * 20).astype(np.float32)
    x[1] += 1000
    x[2, 0] = np.nan
    x[3, width // 2] = np.inf
    x[4, : (width + 1) // 2] = -np.inf
    x[5] = -np.inf
    if width == 1:
        x[4] = 3.0  # a one-wide row cannot hold both -inf and a finite logit
    want = _lse_loop(x)
    lse = xent.logsumexp_rows(x)
    assert lse.dtype == np.float32
    np.testing.assert_allclose(lse, want, rtol=3e-7, atol=0)
    coef = rng.standard_normal(7).astype(np.float32)
    got = xent.softmax_scaled_rows(x, lse, coef)
    with np.errstate(invalid="ignore"):
        # from the kernel's own float32 lse: at logits near 1000 its rounding alone moves
        # exp(x - lse) by 6e-5 relative, which is float32's limit, not the pass's error
        ref = np.exp(x.astype(np.float64) - lse.astype(np.float64)[:, None]) * coef[:, None]
    ref[[2, 3, 5]] = np.nan  # rows whose log-sum-exp is NaN or -inf
    np.testing.assert_allclose(got, ref, rtol=2e-6, atol=1e-30)


def test_applies_only_to_float32_on_the_cpu_backend(avx512):
    cpu = convlab.get_backend("cpu")
    logits = np.zeros((2, 3), np.float32)
    assert xent.applies(cpu, logits) is isinstance(cpu, CPUBackend)
    assert not xent.applies(cpu, logits.astype(np.float64))
    assert not xent.applies(object(), logits)
    _gemm.set_isa("avx2")
    assert not xent.applies(cpu, logits)


def _losses(x, y, kwargs, lib, threads):
    convlab.set_num_threads(threads)
    kw = dict(kwargs)
    if "weight" in kw:
        kw["weight"] = (
            lib.tensor(kw["weight"]) if lib is convlab else torch.from_numpy(kw["weight"])
        )
    if lib is convlab:
        logits = convlab.tensor(x).requires_grad_()
        loss = convlab.nn.functional.cross_entropy(logits, convlab.tensor(y), **kw)
    else:
        logits = torch.from_numpy(x).requires_grad_()
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y), **kw)
    shape = tuple(loss.shape)
    upstream = np.linspace(0.5, 1.5, int(np.prod(shape)), dtype=np.float32).reshape(shape)
    if shape:
        loss.backward(lib.tensor(upstream) if lib is convlab else torch.from_numpy(upstream))
    else:
        loss.backward()
    return loss.detach().numpy(), logits.grad.numpy()


@needs_torch
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"reduction": "sum"},
        {"reduction": "none"},
        {"ignore_index": 4},
        {"weight": "w"},
        {"weight": "w", "ignore_index": 4, "reduction": "mean"},
    ],
    ids=["mean", "sum", "none", "ignore", "weight", "weight-ignore"],
)
def test_cross_entropy_against_torch(avx512, kwargs):
    """A language model's shape of problem (many rows, a wide vocabulary not a multiple of
    16): loss and logits gradient at PyTorch's float32 tolerance; 2 threads give exactly what
    1 thread gives."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((45, 1001)) * 3).astype(np.float32)
    y = rng.integers(0, 1001, 45)
    y[::7] = 4
    kwargs = {
        k: (rng.random(1001).astype(np.float32) + 0.5 if v == "w" else v) for k, v in kwargs.items()
    }
    before = convlab.get_num_threads()
    try:
        ours1, grad1 = _losses(x, y, kwargs, convlab, 1)
        ours2, grad2 = _losses(x, y, kwargs, convlab, 2)
    finally:
        convlab.set_num_threads(before)
    theirs, tgrad = _losses(x, y, kwargs, torch, 1)
    np.testing.assert_array_equal(ours1, ours2)
    np.testing.assert_array_equal(grad1, grad2)
    np.testing.assert_allclose(ours1, theirs, rtol=1.3e-6, atol=1e-5)
    np.testing.assert_allclose(grad1, tgrad, rtol=1.3e-6, atol=1e-7)
    assert grad1.dtype == np.float32


@needs_torch
def test_cross_entropy_all_targets_ignored_and_non_finite_rows(avx512):
    """Every target ignored: mean loss NaN and a zero gradient (as PyTorch); a row holding
    NaN or +inf makes the loss and that row's gradient NaN, as PyTorch's."""
    x = np.random.default_rng(5).standard_normal((3, 40)).astype(np.float32)
    y = np.array([1, 2, 3])
    ours, grad = _losses(x, y, {"ignore_index": 1}, convlab, 1)
    y_all = np.array([1, 1, 1])
    ours_none, grad_none = _losses(x, y_all, {"ignore_index": 1}, convlab, 1)
    theirs_none, tgrad_none = _losses(x, y_all, {"ignore_index": 1}, torch, 1)
    assert np.isnan(ours_none) and np.isnan(theirs_none)
    np.testing.assert_array_equal(grad_none, tgrad_none)
    bad = x.copy()
    bad[0, 3], bad[2, 7] = np.nan, np.inf
    ours_bad, grad_bad = _losses(bad, y, {"reduction": "none"}, convlab, 1)
    theirs_bad, tgrad_bad = _losses(bad, y, {"reduction": "none"}, torch, 1)
    np.testing.assert_array_equal(np.isnan(ours_bad), np.isnan(theirs_bad))
    np.testing.assert_array_equal(np.isnan(grad_bad), np.isnan(tgrad_bad))
    np.testing.assert_allclose(ours_bad[1], theirs_bad[1], rtol=1.3e-6)
    np.testing.assert_allclose(ours, _losses(x, y, {"ignore_index": 1}, torch, 1)[0], rtol=2e-6)
    assert np.isfinite(grad).all()
