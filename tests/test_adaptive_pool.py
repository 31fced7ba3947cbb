"""Adaptive average / max pooling (2-D and 1-D) and avg_pool1d / max_pool1d against PyTorch:
values, indices, input gradients, float32 and float64, every backend; modules; errors."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import convlab
import convlab.nn.functional as F
from conftest import needs_torch, torch
from convlab import nn
from convlab._ops.adaptive_pool import bins

DTYPES = [np.float32, np.float64]

# (input shape, output_size): global pooling, divisible (ordinary pooling kernels), and
# uneven sizes with overlapping bins, None entries, unbatched input, output above the input
CASES_2D = [
    ((2, 3, 8, 8), 1),
    ((2, 5, 7, 9), (1, 1)),
    ((4, 960, 4, 4), 1),
    ((2, 3, 32, 32), (1, 1)),
    ((2, 3, 8, 8), (4, 2)),
    ((2, 3, 12, 12), 6),
    ((2, 3, 7, 9), (3, 4)),
    ((2, 3, 13, 6), (5, 7)),
    ((2, 3, 5, 5), (None, 2)),
    ((2, 3, 6, 10), (4, None)),
    ((3, 10, 11), (4, 4)),
    ((1, 2, 3, 3), (7, 5)),
    ((2, 2, 14, 14), 7),
    ((2, 2, 15, 17), 7),
]


def _pair(out, shape):
    sizes = out if isinstance(out, tuple) else (out, out)
    return tuple(s if o is None else o for o, s in zip(sizes, shape[-2:]))


def _compare(backend, name, shape, out, dtype, **kw):
    # a seed per case that is the same in every run (hash() of a str is not)
    rng = np.random.default_rng(zlib.crc32(repr((shape, out, name, kw)).encode()))
    x = rng.standard_normal(shape).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    cx = convlab.tensor(x, device=backend.name, requires_grad=True)
    ty = getattr(torch.nn.functional, name)(tx, out, **kw)
    cy = getattr(F, name)(cx, out, **kw)
    if kw.get("return_indices"):
        (ty, ti), (cy, ci) = ty, cy
        assert ci.dtype == convlab.int64
        assert np.array_equal(backend.to_numpy(ci._data), ti.numpy())
    g = rng.standard_normal(tuple(ty.shape)).astype(dtype)
    ty.backward(torch.tensor(g))
    cy.backward(convlab.tensor(g, device=backend.name))
    tol = 1e-5 if dtype == np.float32 else 1e-13
    assert cy.shape == tuple(ty.shape) and cy.dtype == convlab.tensor(x).dtype
    np.testing.assert_allclose(backend.to_numpy(cy._data), ty.detach().numpy(), rtol=0, atol=tol)
    np.testing.assert_allclose(backend.to_numpy(cx.grad._data), tx.grad.numpy(), rtol=0, atol=tol)


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape,out", CASES_2D, ids=[f"{s}->{o}" for s, o in CASES_2D])
def test_adaptive_avg_pool2d_matches_torch(backend, shape, out, dtype):
    _compare(backend, "adaptive_avg_pool2d", shape, out, dtype)


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape,out", CASES_2D, ids=[f"{s}->{o}" for s, o in CASES_2D])
def test_adaptive_max_pool2d_matches_torch(backend, shape, out, dtype):
    _compare(backend, "adaptive_max_pool2d", shape, out, dtype)
    _compare(backend, "adaptive_max_pool2d", shape, out, dtype, return_indices=True)


@needs_torch
@pytest.mark.parametrize("name", ["adaptive_avg_pool1d", "adaptive_max_pool1d"])
@pytest.mark.parametrize(
    "shape,out", [((2, 3, 10), 5), ((2, 3, 11), 4), ((3, 7), 1), ((2, 2, 5), 8)]
)
def test_adaptive_pool1d_matches_torch(backend, name, shape, out):
    _compare(backend, name, shape, out, np.float64)
    if "max" in name:
        _compare(backend, name, shape, out, np.float64, return_indices=True)


@needs_torch
@pytest.mark.parametrize(
    "args",
    [(3,), (2, 1), (3, 2, 1), (4, 3, 2), (2, None, 0, True)],
    ids=["k3", "k2s1", "k3s2p1", "k4s3p2", "k2-ceil"],
)
def test_pool1d_matches_torch(backend, args):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 11))
    for name in ["avg_pool1d", "max_pool1d"]:
        tx = torch.tensor(x, requires_grad=True)
        cx = convlab.tensor(x, device=backend.name, requires_grad=True)
        targs = args if name == "avg_pool1d" or len(args) < 4 else args[:3] + (1, args[3])
        ty = getattr(torch.nn.functional, name)(tx, *targs)
        cy = getattr(F, name)(cx, *targs)
        ty.sum().backward()
        cy.sum().backward()
        np.testing.assert_allclose(backend.to_numpy(cy._data), ty.detach().numpy(), atol=1e-14)
        np.testing.assert_allclose(backend.to_numpy(cx.grad._data), tx.grad.numpy(), atol=1e-14)


def test_bins_are_pytorchs():
    # start = floor(i * size / out), end = ceil((i + 1) * size / out), checked by hand
    assert bins(10, 4) == [(0, 3), (2, 5), (5, 8), (7, 10)]
    assert bins(5, 5) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    assert bins(3, 5) == [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]
    assert bins(7, 1) == [(0, 7)]


def test_uneven_average_against_numpy_loops(backend):
    # an independent reference: each bin's mean by explicit loops
    x = np.random.default_rng(2).standard_normal((2, 3, 7, 10))
    got = backend.to_numpy(
        F.adaptive_avg_pool2d(convlab.tensor(x, device=backend.name), (3, 4))._data
    )
    want = np.empty((2, 3, 3, 4))
    for i, (h0, h1) in enumerate(bins(7, 3)):
        for j, (w0, w1) in enumerate(bins(10, 4)):
            want[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)


def test_uneven_max_gradient_adds_up_where_bins_overlap(backend):
    # a single large value shared by overlapping bins gets every bin's gradient
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5.0
    cx = convlab.tensor(x, device=backend.name, requires_grad=True)
    y = F.adaptive_max_pool2d(cx, 2)  # bins (0, 2) and (1, 3): all four contain (1, 1)
    y.sum().backward()
    grad = backend.to_numpy(cx.grad._data)
    assert grad[0, 0, 1, 1] == 4.0 and grad.sum() == 4.0


def test_max_propagates_nan(backend):
    x = np.arange(2 * 25, dtype=np.float64).reshape(1, 2, 5, 5)
    x[0, 0, 0, 0] = np.nan
    for out in [(1, 1), (2, 2), (5, 1)]:
        y = backend.to_numpy(
            F.adaptive_max_pool2d(convlab.tensor(x, device=backend.name), out)._data
        )
        assert np.isnan(y[0, 0, 0, 0]) and not np.isnan(y[0, 1]).any()


@needs_torch
def test_modules_match_torch(backend):
    x = np.random.default_rng(3).standard_normal((2, 4, 9, 7))
    pairs = [
        (nn.AdaptiveAvgPool2d((1, 1)), torch.nn.AdaptiveAvgPool2d((1, 1))),
        (nn.AdaptiveAvgPool2d((None, 3)), torch.nn.AdaptiveAvgPool2d((None, 3))),
        (nn.AdaptiveMaxPool2d(4), torch.nn.AdaptiveMaxPool2d(4)),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
        got = ours(convlab.tensor(x, device=backend.name))
        np.testing.assert_allclose(
            backend.to_numpy(got._data), theirs(torch.tensor(x)).numpy(), atol=1e-14
        )
    values, indices = nn.AdaptiveMaxPool2d(3, return_indices=True)(
        convlab.tensor(x, device=backend.name)
    )
    tv, ti = torch.nn.AdaptiveMaxPool2d(3, return_indices=True)(torch.tensor(x))
    assert np.array_equal(backend.to_numpy(indices._data), ti.numpy())
    x1 = x.reshape(2, 4, 63)
    for ours, theirs in [
        (nn.AdaptiveAvgPool1d(5), torch.nn.AdaptiveAvgPool1d(5)),
        (nn.AdaptiveMaxPool1d(5), torch.nn.AdaptiveMaxPool1d(5)),
        (nn.AvgPool1d(3, 2, 1), torch.nn.AvgPool1d(3, 2, 1)),
        (nn.MaxPool1d(3, 2, 1), torch.nn.MaxPool1d(3, 2, 1)),
    ]:
        got = ours(convlab.tensor(x1, device=backend.name))
        np.testing.assert_allclose(
            backend.to_numpy(got._data), theirs(torch.tensor(x1)).numpy(), atol=1e-14
        )


def test_errors_name_the_argument():
    x = convlab.ones(1, 2, 4, 4)
    with pytest.raises(
        ValueError, match=r"adaptive_avg_pool2d: output_size: expected sizes >= 1, got \(0, 2\)"
    ):
        F.adaptive_avg_pool2d(x, (0, 2))
    with pytest.raises(ValueError, match="expected an int or a pair"):
        F.adaptive_max_pool2d(x, (1, 2, 3))
    with pytest.raises(TypeError, match="output_size: expected ints or None, got float"):
        F.adaptive_avg_pool2d(x, 2.5)
    with pytest.raises(ValueError, match=r"expected a 3-D \(unbatched\) or 4-D \(batched\)"):
        F.adaptive_avg_pool2d(convlab.ones(4, 4), 2)
    with pytest.raises(ValueError, match="non-empty spatial dimensions"):
        F.adaptive_avg_pool2d(convlab.ones(1, 2, 0, 4), 2)
    with pytest.raises(ValueError, match="an int or a 1-tuple"):
        F.adaptive_avg_pool1d(convlab.ones(1, 2, 4), (1, 2))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (3, 5, 1, 1), (2, 7, 9, 13), (1, 2, 1, 17)])
def test_global_pool_kernels_against_numpy(backend, threads, shape, dtype):
    # the backend's global pooling against NumPy reductions in float64 / argmax
    x = np.random.default_rng(9).standard_normal(shape).astype(dtype)
    x[0, 0].flat[-1] = np.nan  # NaN propagates, at its (first) offset
    x[-1, -1].flat[:] = 1.5  # all tied: the first offset
    xd = backend.asarray(x)
    mean = backend.to_numpy(backend.global_avg_pool2d(xd))
    want = x.astype(np.float64).mean(axis=(2, 3), keepdims=True)  # NaN in plane (0, 0)
    # a rounding bound of a P-term sum of values below 5, over P
    bound = 5 * np.finfo(dtype).eps * shape[2] * shape[3]
    np.testing.assert_allclose(mean, want, rtol=0, atol=bound)
    values, index = (backend.to_numpy(a) for a in backend.global_max_pool2d(xd))
    flat = x.reshape(shape[0], shape[1], -1)
    assert index.dtype == np.int64 and index.shape == shape[:2] + (1, 1)
    assert np.array_equal(index[..., 0, 0], flat.argmax(axis=2))
    assert np.array_equal(values[..., 0, 0], flat.max(axis=2), equal_nan=True)


def test_global_pool_kernel_errors(backend):
    with pytest.raises(ValueError, match=r"global_avg_pool2d: expected non-empty \(H, W\) planes"):
        backend.global_avg_pool2d(backend.xp.ones((1, 2, 0, 3)))
    with pytest.raises(TypeError, match="expected a float32 or float64 array"):
        backend.global_max_pool2d(backend.xp.ones((1, 2, 3, 3), dtype=np.int32))


@needs_torch
def test_max_pool1d_return_indices_matches_torch(backend):
    x = np.random.default_rng(10).standard_normal((2, 3, 11))
    kw = dict(kernel_size=3, stride=2, padding=1)
    out, idx = F.max_pool1d(convlab.tensor(x, device=backend.name), return_indices=True, **kw)
    t_out, t_idx = torch.nn.functional.max_pool1d(torch.tensor(x), return_indices=True, **kw)
    assert np.array_equal(backend.to_numpy(idx._data), t_idx.numpy())
    np.testing.assert_array_equal(backend.to_numpy(out._data), t_out.numpy())
    m_out, m_idx = nn.MaxPool1d(3, 2, 1, return_indices=True)(
        convlab.tensor(x, device=backend.name)
    )
    assert np.array_equal(backend.to_numpy(m_idx._data), t_idx.numpy())


@needs_torch
@pytest.mark.parametrize("shape,out", [((3, 5, 15, 15), 7), ((2, 4, 13, 6), (5, 4))])
def test_uneven_max_ties_and_nans_match_torch(backend, threads, shape, out):
    # values drawn from {0, 1, 2} (ReLU outputs tie often): the same maximum's offset as
    # PyTorch (the first in row-major order), and its gradient there; NaN inside a bin wins
    rng = np.random.default_rng(21)
    x = rng.integers(0, 3, shape).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    cx = convlab.tensor(x, device=backend.name, requires_grad=True)
    ty, ti = torch.nn.functional.adaptive_max_pool2d(tx, out, return_indices=True)
    cy, ci = F.adaptive_max_pool2d(cx, out, return_indices=True)
    assert np.array_equal(backend.to_numpy(ci._data), ti.numpy())
    g = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    ty.backward(torch.tensor(g))
    cy.backward(convlab.tensor(g, device=backend.name))
    np.testing.assert_array_equal(backend.to_numpy(cy._data), ty.detach().numpy())
    np.testing.assert_allclose(backend.to_numpy(cx.grad._data), tx.grad.numpy(), atol=1e-6)
    x[0, 0, 2, 3] = np.nan
    y = backend.to_numpy(F.adaptive_max_pool2d(convlab.tensor(x, device=backend.name), out)._data)
    want = torch.nn.functional.adaptive_max_pool2d(torch.tensor(x), out).numpy()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    np.testing.assert_array_equal(y, want)
