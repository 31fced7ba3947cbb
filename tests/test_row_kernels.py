"""The CPU's row-wise kernels behind a layer's bias: ``add_rows`` (the forward's ``out += bias``),
``sum_rows`` (the bias gradient, ``grad.sum(axis=0)``), and the gradient accumulation through
``scaled_add``. Each gives NumPy's bits for any thread count; the references are plain loops."""

from __future__ import annotations

import numpy as np
import pytest

import convlab
from conftest import needs_torch, torch
from convlab._cpu import _activation

SHAPES = [
    (1, 16),
    (3, 17),
    (700, 200),  # the LSTM's (T * B, H) bias gradient
    (64, 1024),  # one column block exactly
    (50, 1025),  # one column past a block
    (33, 2600),  # three blocks, the last short
    (9, 4099),
    (2, 40),  # fewer columns than 16 per thread
]


def _column_sums(x: np.ndarray) -> np.ndarray:
    """Row after row in x's dtype: the order NumPy uses for a sum over axis 0."""
    acc = x[0].copy()
    for row in x[1:]:
        acc = acc + row
    return acc


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_sum_rows_matches_a_row_loop_bit_for_bit(shape, dtype, rng):
    x = (rng.standard_normal(shape) * 10.0 ** rng.integers(-4, 5, shape[1])).astype(dtype)
    expected = _column_sums(x)
    for threads in (1, 2, 3):
        out = np.full(shape[1], np.nan, dtype)
        _activation.sum_rows(x, out, threads)
        np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(expected, x.sum(axis=0))  # NumPy's own order, checked


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES + [(300, 300)])
def test_add_rows_matches_numpy_bit_for_bit(shape, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    row = rng.standard_normal(shape[1]).astype(dtype)
    for threads in (1, 2):
        out = x.copy()
        _activation.add_rows(out, row, threads)
        np.testing.assert_array_equal(out, x + row)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backend_row_hooks_on_every_layout(dtype, rng):
    """Big, small, strided, one-column and empty operands, an aliased row and a row of another
    dtype: the compiled kernels where they apply, NumPy elsewhere; NumPy's values either way."""
    cpu = convlab.get_backend("cpu")
    big = rng.standard_normal((300, 257)).astype(dtype)
    cases = [
        big,
        big[:, :200],  # rows not contiguous
        big.T,  # column-major
        big[:5],  # small
        big[:, :1],  # one column
        np.zeros((0, 40), dtype),  # no rows
    ]
    for a in cases:
        np.testing.assert_array_equal(cpu._sum_rows(a), a.sum(axis=0))
        row = rng.standard_normal(a.shape[1]).astype(dtype)
        out, expected = np.array(a), np.array(a)
        cpu._add_rows_(out, row)
        expected += row
        np.testing.assert_array_equal(out, expected)
    out, expected = big.copy(), big.copy()
    cpu._add_rows_(out, out[7])  # the row is part of out
    expected += expected[7]
    np.testing.assert_array_equal(out, expected)
    other = np.float64 if dtype == np.float32 else np.float32
    out, expected = big.copy(), big.copy()
    cpu._add_rows_(out, np.full(257, 0.1, other))
    expected += np.full(257, 0.1, other)
    np.testing.assert_array_equal(out, expected)


@needs_torch
def test_linear_bias_forward_and_gradient_match_torch(rng):
    """A decoder-sized Linear (the kernels' threshold passed) against PyTorch."""
    x = rng.standard_normal((70, 48)).astype(np.float32)
    ours = convlab.nn.Linear(48, 1000)
    theirs = torch.nn.Linear(48, 1000)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.detach().numpy()))
        theirs.bias.copy_(torch.from_numpy(ours.bias.detach().numpy()))
    g = rng.standard_normal((70, 1000)).astype(np.float32)
    out = ours(convlab.tensor(x))
    out.backward(convlab.tensor(g))
    tout = theirs(torch.from_numpy(x))
    tout.backward(torch.from_numpy(g))
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        ours.bias.grad.numpy(), theirs.bias.grad.numpy(), rtol=1e-5, atol=1e-4
    )


def test_gradient_accumulation_adds_in_place_with_numpy_bits(rng):
    """Two backward passes into one big leaf: the second adds into the first's array (the
    parallel update), giving exactly the float32 sum of the two passes' gradients."""
    data = rng.standard_normal((300, 200)).astype(np.float32)
    xs = [convlab.tensor(rng.standard_normal((5, 300)).astype(np.float32)) for _ in range(2)]
    grads = []
    for x in xs:  # each pass alone, on a fresh leaf
        leaf = convlab.tensor(data, requires_grad=True)
        (x @ leaf).square().sum().backward()
        grads.append(leaf.grad.numpy())
    w = convlab.tensor(data, requires_grad=True)
    (xs[0] @ w).square().sum().backward()
    held = w.grad
    (xs[1] @ w).square().sum().backward()
    assert w.grad is held  # added in place, as PyTorch's AccumulateGrad
    np.testing.assert_array_equal(w.grad.numpy(), grads[0] + grads[1])
