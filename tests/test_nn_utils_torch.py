"""convlab.nn.utils against torch.nn.utils: clipping (values, returned norm, in place) and
parameter flattening."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import convlab
from convlab import nn


def _pairs(dtype: np.dtype, seed: int = 0) -> tuple[list, list]:
    rng = np.random.default_rng(seed)
    shapes = [(3, 4), (5,), (2, 3, 2)]
    ours, theirs = [], []
    for s in shapes:
        v, g = rng.standard_normal(s).astype(dtype), rng.standard_normal(s).astype(dtype) * 3
        p = convlab.tensor(v, requires_grad=True)
        p.grad = convlab.tensor(g)
        q = torch.tensor(v, requires_grad=True)
        q.grad = torch.tensor(g)
        ours.append(p)
        theirs.append(q)
    return ours, theirs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(dtype, norm_type, max_norm):
    ours, theirs = _pairs(dtype)
    grad_refs = [p.grad for p in ours]
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert isinstance(total, convlab.Tensor) and total.ndim == 0
    assert total.dtype == np.dtype(dtype)
    np.testing.assert_allclose(total.numpy(), expected.numpy(), rtol=tol)
    for p, q, ref in zip(ours, theirs, grad_refs):
        assert p.grad is ref  # edited in place
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=tol, atol=tol)


def test_clip_grad_norm_single_tensor_and_no_grads():
    ours, theirs = _pairs(np.float64)
    total = nn.utils.clip_grad_norm_(ours[0], 0.1)
    expected = torch.nn.utils.clip_grad_norm_(theirs[0], 0.1)
    np.testing.assert_allclose(total.numpy(), expected.numpy())
    np.testing.assert_allclose(ours[0].grad.numpy(), theirs[0].grad.numpy())
    empty = nn.utils.clip_grad_norm_([convlab.zeros(2, requires_grad=True)], 1.0)
    assert float(empty) == 0.0


def test_clip_grad_norm_nonfinite():
    p = convlab.zeros(3, requires_grad=True)
    p.grad = convlab.tensor([1.0, float("nan"), 2.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    assert math.isnan(float(nn.utils.clip_grad_norm_([p], 1.0)))


def test_get_total_norm_and_clip_grads_with_norm():
    ours, theirs = _pairs(np.float64, seed=3)
    total = nn.utils.get_total_norm([p.grad for p in ours], 3.0)
    expected = torch.nn.utils.get_total_norm([q.grad for q in theirs], 3.0)
    np.testing.assert_allclose(total.numpy(), expected.numpy())
    nn.utils.clip_grads_with_norm_(ours, 0.3, total)
    torch.nn.utils.clip_grads_with_norm_(theirs, 0.3, expected)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_value_matches_torch(dtype):
    ours, theirs = _pairs(dtype, seed=1)
    nn.utils.clip_grad_value_(ours, 0.7)
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    for p, q in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())


def test_parameters_to_vector_roundtrip_and_gradient():
    ours, theirs = _pairs(np.float64, seed=2)
    vec = nn.utils.parameters_to_vector(ours)
    expected = torch.nn.utils.parameters_to_vector(theirs)
    np.testing.assert_array_equal(vec.detach().numpy(), expected.detach().numpy())
    w = np.arange(vec.shape[0], dtype=np.float64)
    (vec * convlab.tensor(w)).sum().backward()
    (expected * torch.tensor(w)).sum().backward()
    for p, q in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())
    new = np.linspace(-1, 1, vec.shape[0])
    nn.utils.vector_to_parameters(convlab.tensor(new), ours)
    torch.nn.utils.vector_to_parameters(torch.tensor(new), theirs)
    for p, q in zip(ours, theirs):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


def test_vector_to_parameters_errors():
    ps = [convlab.zeros(2, 2), convlab.zeros(3)]
    with pytest.raises(TypeError):
        nn.utils.vector_to_parameters([1.0] * 7, ps)
    with pytest.raises(RuntimeError, match="7"):
        nn.utils.vector_to_parameters(convlab.zeros(6), ps)


def test_clip_grad_norm_on_every_backend(backend):
    ours, theirs = _pairs(np.float64, seed=5)
    moved = []
    for p in ours:
        q = convlab.tensor(p.detach().numpy(), device=backend.name, requires_grad=True)
        q.grad = convlab.tensor(p.grad.numpy(), device=backend.name)
        moved.append(q)
    total = nn.utils.clip_grad_norm_(moved, 0.5)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 0.5)
    assert total.device == moved[0].device
    np.testing.assert_allclose(backend.to_numpy(total._data), expected.numpy(), rtol=1e-12)
    nn.utils.clip_grad_value_(moved, 0.05)
    torch.nn.utils.clip_grad_value_(theirs, 0.05)
    for p, q in zip(moved, theirs):
        np.testing.assert_allclose(backend.to_numpy(p.grad._data), q.grad.numpy(), rtol=1e-12)
