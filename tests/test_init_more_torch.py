"""nn.init's trunc_normal_, orthogonal_, eye_, dirac_, sparse_ and the generator= argument
against torch.nn.init (exact for the deterministic ones; properties and moments from the
distributions' closed forms for the random ones)."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

import convlab
from conftest import needs_torch, torch
from convlab.nn import init

pytestmark = needs_torch


@pytest.mark.parametrize(
    "shape, groups", [((6, 3, 3, 3), 1), ((6, 4, 3), 2), ((4, 8, 3, 3, 3), 2), ((2, 5, 4, 4), 1)]
)
def test_dirac_matches_torch(shape, groups):
    ours, theirs = convlab.empty(*shape), torch.empty(*shape)
    assert init.dirac_(ours, groups) is ours
    torch.nn.init.dirac_(theirs, groups)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4)])
def test_eye_matches_torch(shape):
    ours, theirs = convlab.empty(*shape), torch.empty(*shape)
    init.eye_(ours)
    torch.nn.init.eye_(theirs)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(5, 3, 2), (3, 8), (8, 3), (4, 4)])
def test_orthogonal_rows_or_columns_are_orthonormal(shape, dtype):
    w = convlab.empty(*shape, dtype=convlab.float64 if dtype == np.float64 else convlab.float32)
    init.orthogonal_(w, gain=1.5)
    m = w.numpy().reshape(shape[0], -1).astype(np.float64)
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(gram, 2.25 * np.eye(gram.shape[0]), atol=tol)
    theirs = torch.nn.init.orthogonal_(torch.empty(*shape), gain=1.5).numpy().reshape(m.shape)
    tgram = theirs @ theirs.T if m.shape[0] <= m.shape[1] else theirs.T @ theirs
    np.testing.assert_allclose(gram, tgram, atol=1e-5)


def _truncated_moments(mean, std, a, b):
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda x: (1 + math.erf(x / math.sqrt(2))) / 2  # noqa: E731
    z = cdf(beta) - cdf(alpha)
    m = mean + std * (pdf(alpha) - pdf(beta)) / z
    var = std**2 * (
        1 + (alpha * pdf(alpha) - beta * pdf(beta)) / z - ((pdf(alpha) - pdf(beta)) / z) ** 2
    )
    return m, math.sqrt(var)


@pytest.mark.parametrize(
    "mean, std, a, b", [(0.0, 1.0, -2.0, 2.0), (1.0, 2.0, 0.0, 3.0), (0.0, 0.02, -0.04, 0.04)]
)
def test_trunc_normal_bounds_and_moments(mean, std, a, b):
    n = 200_000
    ours = init.trunc_normal_(convlab.empty(n, dtype=convlab.float64), mean, std, a, b).numpy()
    theirs = torch.nn.init.trunc_normal_(torch.empty(n, dtype=torch.float64), mean, std, a, b)
    m, s = _truncated_moments(mean, std, a, b)
    for values in (ours, theirs.numpy()):
        assert values.min() >= a and values.max() <= b
        assert abs(values.mean() - m) < 5 * s / math.sqrt(n)
        assert abs(values.std() - s) < 0.01 * s


def test_sparse_zeros_per_column_and_scale():
    ours = init.sparse_(convlab.empty(200, 30, dtype=convlab.float64), 0.3, std=0.5).numpy()
    theirs = torch.nn.init.sparse_(torch.empty(200, 30, dtype=torch.float64), 0.3, std=0.5)
    np.testing.assert_array_equal((ours == 0).sum(0), (theirs.numpy() == 0).sum(0))
    assert abs(ours[ours != 0].std() - 0.5) < 0.03


RANDOM = {
    "uniform_": lambda t, g: init.uniform_(t, -1, 2, generator=g),
    "normal_": lambda t, g: init.normal_(t, 1, 3, generator=g),
    "trunc_normal_": lambda t, g: init.trunc_normal_(t, generator=g),
    "orthogonal_": lambda t, g: init.orthogonal_(t, generator=g),
    "sparse_": lambda t, g: init.sparse_(t, 0.5, generator=g),
    "kaiming_uniform_": lambda t, g: init.kaiming_uniform_(t, generator=g),
    "kaiming_normal_": lambda t, g: init.kaiming_normal_(t, mode="fan_out", generator=g),
    "xavier_uniform_": lambda t, g: init.xavier_uniform_(t, generator=g),
    "xavier_normal_": lambda t, g: init.xavier_normal_(t, generator=g),
}


@pytest.mark.parametrize("name", list(RANDOM))
def test_generator_makes_draws_reproducible(name):
    fill = RANDOM[name]
    a = fill(convlab.empty(6, 5), convlab.Generator().manual_seed(3)).numpy()
    convlab.manual_seed(0)
    state = convlab.get_rng_state()
    b = fill(convlab.empty(6, 5), convlab.Generator().manual_seed(3)).numpy()
    assert convlab.get_rng_state() == state  # the default stream is not touched
    c = fill(convlab.empty(6, 5), convlab.Generator().manual_seed(4)).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    sig = inspect.signature(getattr(init, name))
    assert list(sig.parameters) == list(inspect.signature(getattr(torch.nn.init, name)).parameters)


ERRORS = [
    lambda I, L: I.orthogonal_(L.empty(3)),
    lambda I, L: I.eye_(L.empty(2, 2, 2)),
    lambda I, L: I.dirac_(L.empty(3, 3)),
    lambda I, L: I.dirac_(L.empty(5, 3, 3, 3), groups=2),
    lambda I, L: I.sparse_(L.empty(3), 0.1),
]


@pytest.mark.parametrize("make", ERRORS)
def test_errors_are_value_errors_like_torch(make):
    for lib, mod in ((convlab, init), (torch, torch.nn.init)):
        with pytest.raises(ValueError):
            make(mod, lib)
