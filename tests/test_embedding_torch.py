"""nn.Embedding / F.embedding against PyTorch with copied weights: the looked-up rows and the
weight gradient (repeated ids, padding_idx, scale_grad_by_freq), max_norm's in-place
renormalisation, from_pretrained, the initialisation, and the errors; every backend."""

from __future__ import annotations

import numpy as np
import pytest

import convlab
from conftest import needs_torch, to_numpy, torch
from convlab import nn
from convlab.nn import functional as F

pytestmark = needs_torch

TOL = {np.float32: (1.3e-6, 1e-5), np.float64: (1e-12, 1e-14)}


def _both(backend, weight, ids, dtype, **kw):
    """Look ``ids`` up in both libraries' F.embedding, backward a random weighting; returns
    (out, weight grad, weight after) per library."""
    results = []
    for lib in (convlab, torch):
        if lib is convlab:
            w = convlab.tensor(weight, device=backend.name, requires_grad=True)
            i = convlab.tensor(ids, device=backend.name)
        else:
            w = torch.tensor(weight, requires_grad=True)
            i = torch.tensor(ids)
        out = lib.nn.functional.embedding(i, w, **kw)
        g = np.random.default_rng(3).standard_normal(tuple(out.shape)).astype(dtype)
        (
            out * (convlab.tensor(g, device=backend.name) if lib is convlab else torch.tensor(g))
        ).sum().backward()
        if lib is convlab:
            results.append([to_numpy(backend, t._data) for t in (out, w.grad, w.detach())])
        else:
            results.append([t.detach().numpy() for t in (out, w.grad, w)])
    return results


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"padding_idx": 2},
        {"padding_idx": -1},
        {"scale_grad_by_freq": True},
        {"scale_grad_by_freq": True, "padding_idx": 0},
        {"max_norm": 1.0},
        {"max_norm": 0.5, "norm_type": 1.0},
    ],
    ids=["plain", "pad", "pad-neg", "freq", "freq-pad", "maxnorm", "maxnorm-l1"],
)
def test_functional_matches_torch(backend, dtype, kw):
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((9, 4)).astype(dtype)
    ids = rng.integers(0, 9, (5, 7))
    ids[0, :3] = 2  # repeated ids accumulate (and the padding row appears)
    ids[1, 1] = 8
    ours, theirs = _both(backend, weight, ids, dtype, **kw)
    rtol, atol = TOL[dtype]
    for name, a, b in zip(("output", "weight gradient", "weight after"), ours, theirs):
        assert a.shape == b.shape and a.dtype == b.dtype, name
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize("shape", [(), (6,), (2, 3, 4)], ids=["scalar", "1d", "3d"])
def test_any_input_shape_and_int32_ids(backend, shape):
    rng = np.random.default_rng(2)
    weight = rng.standard_normal((7, 3))
    ids = rng.integers(0, 7, shape).astype(np.int32)
    ours, theirs = _both(backend, weight, ids, np.float64)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_module_matches_torch_and_from_pretrained(backend):
    theirs = torch.nn.Embedding(10, 3, padding_idx=1).double()
    ours = nn.Embedding(10, 3, padding_idx=1, dtype=np.float64)
    assert list(ours.state_dict()) == ["weight"]
    ours.load_state_dict({"weight": convlab.tensor(theirs.weight.detach().numpy())})
    ours.to(backend.name)
    ids = np.array([[1, 4, 4], [9, 0, 1]])
    out = ours(convlab.tensor(ids, device=backend.name))
    np.testing.assert_array_equal(
        to_numpy(backend, out._data), theirs(torch.tensor(ids)).detach().numpy()
    )
    assert repr(ours) == repr(theirs)
    pretrained = np.arange(12.0).reshape(4, 3)
    frozen = nn.Embedding.from_pretrained(convlab.tensor(pretrained, device=backend.name))
    assert not frozen.weight.requires_grad
    np.testing.assert_array_equal(
        to_numpy(backend, frozen(convlab.tensor([3, 0], device=backend.name))._data),
        pretrained[[3, 0]],
    )
    free = nn.Embedding.from_pretrained(convlab.tensor(pretrained), freeze=False, padding_idx=0)
    assert free.weight.requires_grad and free.padding_idx == 0
    # from_pretrained keeps the given values (even the padding row), as PyTorch
    np.testing.assert_array_equal(free.weight.detach().numpy()[0], pretrained[0])


def test_initialisation_standard_normal_with_zero_padding_row():
    convlab.manual_seed(0)
    emb = nn.Embedding(2000, 50, padding_idx=3)
    w = emb.weight.detach().numpy()
    assert emb.weight.dtype == np.float32
    np.testing.assert_array_equal(w[3], 0)
    rest = np.delete(w, 3, axis=0)
    assert abs(rest.mean()) < 0.01 and abs(rest.std() - 1) < 0.01


def test_gradient_flows_through_a_model(backend):
    """Embedding -> LSTM -> linear: the embedding rows that were used get gradient, others
    none (the language model's shape of use)."""
    emb = nn.Embedding(20, 6).to(backend.name)
    lstm = nn.LSTM(6, 5).to(backend.name)
    ids = convlab.tensor([[1, 2], [3, 1]], device=backend.name)
    out, _ = lstm(emb(ids))
    out.sum().backward()
    grad = to_numpy(backend, emb.weight.grad._data)
    used = [1, 2, 3]
    assert np.all(np.abs(grad[used]).sum(axis=1) > 0)
    assert np.all(np.delete(grad, used, axis=0) == 0)


def test_errors():
    emb = nn.Embedding(10, 3)
    with pytest.raises(IndexError, match="index 10 is out of range for num_embeddings 10"):
        emb(convlab.tensor([[1, 10]]))
    with pytest.raises(IndexError, match="index -1 is out of range for num_embeddings 10"):
        emb(convlab.tensor([-1]))
    with pytest.raises(TypeError, match="expected input of an integer dtype"):
        emb(convlab.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="Padding_idx must be within num_embeddings"):
        nn.Embedding(10, 3, padding_idx=10)
    with pytest.raises(NotImplementedError, match="sparse"):
        nn.Embedding(10, 3, sparse=True)
    with pytest.raises(NotImplementedError, match="sparse"):
        F.embedding(convlab.tensor([1]), emb.weight, sparse=True)
    with pytest.raises(ValueError, match="Embeddings parameter is expected to be 2-dimensional"):
        nn.Embedding.from_pretrained(convlab.zeros(3))
    with pytest.raises(ValueError, match="expected a 2-D weight"):
        F.embedding(convlab.tensor([1]), convlab.zeros(3))
