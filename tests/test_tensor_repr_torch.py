"""``repr(tensor)`` writes the values as PyTorch does (its formatter's rules)."""

import numpy as np
import pytest

import convlab

torch = pytest.importorskip("torch")

rng = np.random.default_rng(0)

CASES = {
    "scalar": np.float32(1.5),
    "int_scalar": np.int64(-3),
    "floats": np.array([1.5, 2.0, -0.25], dtype=np.float32),
    "whole_floats": np.array([1.0, 2.0, -30.0], dtype=np.float32),
    "tiny": np.array([1e-5, 1.0], dtype=np.float32),
    "huge": np.array([1e9, 1.0], dtype=np.float32),
    "wide_whole": np.array([1.0, 5000.0], dtype=np.float32),
    "nonfinite": np.array([np.nan, np.inf, -np.inf, 1.5], dtype=np.float32),
    "zeros": np.zeros(4, dtype=np.float32),
    "ints": np.array([[1, -20], [300, 4]], dtype=np.int64),
    "bools": np.array([True, False]),
    "matrix": rng.standard_normal((3, 4)).astype(np.float32),
    "cube": rng.standard_normal((2, 3, 2)).astype(np.float32),
    "long_row": rng.standard_normal(40).astype(np.float32),
    "summarised": rng.standard_normal((40, 50)).astype(np.float32),
    "summarised_1d": np.arange(2000, dtype=np.float32),
    "empty": np.zeros(0, dtype=np.float32),
    "empty_2d": np.zeros((0, 3), dtype=np.float32),
}


@pytest.mark.parametrize("name", list(CASES))
def test_repr_matches_torch(name):
    values = CASES[name]
    ours = repr(convlab.tensor(values))
    theirs = repr(torch.tensor(values))
    assert ours == theirs


def test_repr_suffixes_name_dtype_and_grad():
    t = convlab.tensor([1.0, 2.0], dtype=convlab.float64, requires_grad=True)
    assert repr(t) == "tensor([1., 2.], dtype=convlab.float64, requires_grad=True)"
    assert repr(t * 2).startswith("tensor([2., 4.], dtype=convlab.float64, grad_fn=<")


def test_parameter_repr_matches_torch():
    ours = convlab.nn.Parameter(convlab.tensor([0.5, -1.25]))
    theirs = torch.nn.Parameter(torch.tensor([0.5, -1.25]))
    assert repr(ours) == repr(theirs)
