"""Triplet, cosine-embedding, soft-margin, multi-label soft-margin, multi-margin,
hinge-embedding, Poisson and Gaussian NLL losses, cosine similarity and pairwise distance
against torch.nn.functional and torch.nn: values, input gradients (torch autograd), float32
and float64, reductions and error types."""

from __future__ import annotations

import numpy as np
import pytest

import convlab
import convlab.nn.functional as F
from conftest import needs_torch, torch
from convlab import nn

pytestmark = needs_torch

TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}


def _data(dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((6, 5)).astype(dtype)
    return {
        "x": x,
        "x2": rng.standard_normal((6, 5)).astype(dtype),
        "x3": rng.standard_normal((6, 5)).astype(dtype),
        "sign": np.where(rng.standard_normal((6, 5)) > 0, 1.0, -1.0).astype(dtype),
        "sign_row": np.array([1, -1, 1, 1, -1, -1], dtype=dtype),
        "labels01": (rng.random((6, 5)) > 0.5).astype(dtype),
        "cls": rng.integers(0, 5, 6),
        "counts": rng.integers(0, 6, (6, 5)).astype(dtype),
        "rate": (rng.random((6, 5)) + 0.1).astype(dtype),
        "var": (rng.random((6, 5)) + 0.05).astype(dtype),
        "var_row": (rng.random(6) + 0.05).astype(dtype),
        "w5": np.linspace(0.5, 2.0, 5).astype(dtype),
    }


# name: (functional, argument keys, which of them get a gradient, kwargs)
CASES = {
    "triplet": ("triplet_margin_loss", ("x", "x2", "x3"), (0, 1, 2), {}),
    "triplet_swap_p1": (
        "triplet_margin_loss",
        ("x", "x2", "x3"),
        (0, 1, 2),
        dict(swap=True, p=1, margin=2.0),
    ),
    "triplet_p3": ("triplet_margin_loss", ("x", "x2", "x3"), (0,), dict(p=3, eps=1e-3)),
    "cosine_embedding": ("cosine_embedding_loss", ("x", "x2", "sign_row"), (0, 1), {}),
    "cosine_embedding_margin": (
        "cosine_embedding_loss",
        ("x", "x2", "sign_row"),
        (0, 1),
        dict(margin=-0.3),
    ),
    "soft_margin": ("soft_margin_loss", ("x", "sign"), (0,), {}),
    "multilabel": ("multilabel_soft_margin_loss", ("x", "labels01"), (0,), {}),
    "multilabel_weight": (
        "multilabel_soft_margin_loss",
        ("x", "labels01"),
        (0,),
        dict(weight="w5"),
    ),
    "multi_margin": ("multi_margin_loss", ("x", "cls"), (0,), {}),
    "multi_margin_p2_weight": (
        "multi_margin_loss",
        ("x", "cls"),
        (0,),
        dict(p=2, margin=0.5, weight="w5"),
    ),
    "hinge_embedding": ("hinge_embedding_loss", ("x", "sign"), (0,), {}),
    "hinge_embedding_margin": (
        "hinge_embedding_loss",
        ("x", "sign"),
        (0,),
        dict(margin=0.3),
    ),
    "poisson_log": ("poisson_nll_loss", ("x", "counts"), (0,), {}),
    "poisson_full": ("poisson_nll_loss", ("x", "counts"), (0,), dict(full=True)),
    "poisson_rate": (
        "poisson_nll_loss",
        ("rate", "counts"),
        (0,),
        dict(log_input=False, eps=1e-4),
    ),
    "gaussian": ("gaussian_nll_loss", ("x", "x2", "var"), (0, 2), {}),
    "gaussian_full_row_var": (
        "gaussian_nll_loss",
        ("x", "x2", "var_row"),
        (0, 2),
        dict(full=True),
    ),
    "gaussian_tiny_var": ("gaussian_nll_loss", ("x", "x2", "var"), (0, 2), dict(eps=0.3)),
}

MODULES = {
    "triplet_margin_loss": "TripletMarginLoss",
    "cosine_embedding_loss": "CosineEmbeddingLoss",
    "soft_margin_loss": "SoftMarginLoss",
    "multilabel_soft_margin_loss": "MultiLabelSoftMarginLoss",
    "multi_margin_loss": "MultiMarginLoss",
    "hinge_embedding_loss": "HingeEmbeddingLoss",
    "poisson_nll_loss": "PoissonNLLLoss",
    "gaussian_nll_loss": "GaussianNLLLoss",
}


def _run(lib, case, dtype, reduction, module):
    fname, keys, grad_idx, kw = CASES[case]
    data = _data(dtype)
    if case == "gaussian_full_row_var":
        data["var_row"] = data["var_row"].reshape(6, 1)
    args = []
    for i, k in enumerate(keys):
        a = lib.tensor(data[k])
        if i in grad_idx:
            a.requires_grad_(True)
        args.append(a)
    kw = {k: lib.tensor(data[v]) if isinstance(v, str) else v for k, v in kw.items()}
    kw["reduction"] = reduction
    if module:
        out = getattr(lib.nn, MODULES[fname])(**kw)(*args)
    else:
        out = getattr(lib.nn.functional, fname)(*args, **kw)
    seed = np.random.default_rng(7).standard_normal(tuple(out.shape)).astype(dtype)
    (out * lib.tensor(seed)).sum().backward()
    grads = [args[i].grad.numpy() for i in grad_idx]
    return out.detach().numpy(), grads


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", list(CASES))
def test_loss_matches_torch(case, reduction, dtype):
    module = reduction == "sum"  # the module path on one reduction, the functional on two
    ours, ours_g = _run(convlab, case, dtype, reduction, module)
    theirs, theirs_g = _run(torch, case, dtype, reduction, module)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, **TOL[dtype])
    for a, b in zip(ours_g, theirs_g):
        np.testing.assert_allclose(a, b, **TOL[dtype])


def test_multi_margin_single_sample_and_gaussian_float_var():
    x = np.random.default_rng(1).standard_normal(4)
    for red in ("none", "mean"):
        a = F.multi_margin_loss(convlab.tensor(x), convlab.tensor(2), reduction=red)
        b = torch.nn.functional.multi_margin_loss(torch.tensor(x), torch.tensor(2), reduction=red)
        assert a.shape == tuple(b.shape)
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)
    y = np.random.default_rng(2).standard_normal((3, 2))
    a = F.gaussian_nll_loss(convlab.tensor(x[:3, None] * y), convlab.tensor(y), 0.5)
    b = torch.nn.functional.gaussian_nll_loss(torch.tensor(x[:3, None] * y), torch.tensor(y), 0.5)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape1, shape2, kw",
    [
        ((6, 5), (6, 5), {}),
        ((6, 5), (1, 5), dict(dim=1)),
        ((4, 3, 5), (4, 3, 5), dict(dim=-1)),
        ((4, 3, 5), (3, 5), dict(dim=0)),
        ((6, 5), (6, 5), dict(eps=10.0)),
    ],
)
def test_cosine_similarity_matches_torch(shape1, shape2, kw, dtype):
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(shape1).astype(dtype), rng.standard_normal(shape2).astype(dtype)
    outs = []
    for lib in (convlab, torch):
        x1, x2 = lib.tensor(a, requires_grad=True), lib.tensor(b, requires_grad=True)
        out = lib.nn.functional.cosine_similarity(x1, x2, **kw)
        mod = lib.nn.CosineSimilarity(**kw)(x1, x2)
        (out * out).sum().backward()
        outs.append((out.detach().numpy(), mod.detach().numpy(), x1.grad.numpy(), x2.grad.numpy()))
    for u, v in zip(*outs):
        assert u.shape == v.shape
        np.testing.assert_allclose(u, v, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape1, shape2, kw",
    [
        ((6, 5), (6, 5), {}),
        ((6, 5), (5,), dict(p=1.0)),
        ((6, 5), (6, 5), dict(p=3.0, keepdim=True)),
        ((6, 5), (6, 5), dict(p=float("inf"))),
        ((5,), (5,), dict(eps=0.1)),
    ],
)
def test_pairwise_distance_matches_torch(shape1, shape2, kw, dtype):
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal(shape1).astype(dtype), rng.standard_normal(shape2).astype(dtype)
    outs = []
    for lib in (convlab, torch):
        x1, x2 = lib.tensor(a, requires_grad=True), lib.tensor(b, requires_grad=True)
        out = lib.nn.functional.pairwise_distance(x1, x2, **kw)
        mod = lib.nn.PairwiseDistance(**kw)(x1, x2)
        (out * out).sum().backward()
        outs.append((out.detach().numpy(), mod.detach().numpy(), x1.grad.numpy(), x2.grad.numpy()))
    for u, v in zip(*outs):
        assert u.shape == v.shape
        np.testing.assert_allclose(u, v, **TOL[dtype])


def _both(fn):
    for lib in (convlab, torch):
        fn(lib)


ERRORS = [
    (lambda L: L.nn.functional.multi_margin_loss(L.zeros(2, 3), L.tensor([0, 3])), RuntimeError),
    (lambda L: L.nn.functional.multi_margin_loss(L.zeros(2, 3), L.tensor([0, 1]), p=3), ValueError),
    (lambda L: L.nn.MultiMarginLoss(p=3), ValueError),
    (lambda L: L.nn.functional.gaussian_nll_loss(L.zeros(2, 3), L.zeros(2, 3), -1.0), ValueError),
    (
        lambda L: L.nn.functional.gaussian_nll_loss(L.zeros(2, 3), L.zeros(2, 3), -L.ones(2, 3)),
        ValueError,
    ),
    (
        lambda L: L.nn.functional.gaussian_nll_loss(L.zeros(2, 3), L.zeros(2, 3), L.ones(3, 2)),
        ValueError,
    ),
    (
        lambda L: L.nn.functional.gaussian_nll_loss(
            L.zeros(2, 3), L.zeros(2, 3), L.ones(2, 3), reduction="avg"
        ),
        ValueError,
    ),
    (
        lambda L: L.nn.functional.triplet_margin_loss(L.zeros(2, 3), L.zeros(2, 3), L.zeros(3)),
        RuntimeError,
    ),
    (
        lambda L: L.nn.functional.triplet_margin_loss(
            L.zeros(2, 3), L.zeros(2, 3), L.zeros(2, 3), margin=0.0
        ),
        ValueError,
    ),
    (lambda L: L.nn.functional.pairwise_distance(L.zeros(2, 3), L.zeros(4, 3)), RuntimeError),
    (lambda L: L.nn.functional.cosine_similarity(L.zeros(2, 3), L.zeros(4, 3)), RuntimeError),
    (lambda L: L.nn.functional.cosine_similarity(L.zeros(2, 3), L.zeros(2, 3), 2), IndexError),
    (
        lambda L: L.nn.functional.cosine_embedding_loss(L.zeros(2, 3), L.zeros(2, 4), L.ones(2)),
        RuntimeError,
    ),
    (lambda L: L.nn.functional.soft_margin_loss(L.zeros(2), L.zeros(2), reduction="x"), ValueError),
]


@pytest.mark.parametrize("make, error", ERRORS)
def test_errors_match_torch_types(make, error):
    for lib in (convlab, torch):
        with pytest.raises(error):
            make(lib)


def test_module_weight_is_a_buffer():
    w = convlab.ones(5)
    assert "weight" in dict(nn.MultiMarginLoss(weight=w).named_buffers())
    assert "weight" in dict(nn.MultiLabelSoftMarginLoss(weight=w).named_buffers())


@pytest.mark.parametrize(
    "case", ["triplet_swap_p1", "cosine_embedding", "multi_margin_p2_weight", "gaussian"]
)
def test_losses_run_on_every_backend(backend, case):
    fname, keys, grad_idx, kw = CASES[case]
    data = _data(np.float64, seed=9)
    results = []
    for lib in (convlab, torch):
        dev = dict(device=backend.name) if lib is convlab else {}
        args = [lib.tensor(data[k], **dev) for k in keys]
        for i in grad_idx:
            args[i].requires_grad_(True)
        kws = {k: lib.tensor(data[v], **dev) if isinstance(v, str) else v for k, v in kw.items()}
        out = getattr(lib.nn.functional, fname)(*args, **kws)
        out.backward()
        results.append(
            [_as_numpy(backend, out.detach())]
            + [_as_numpy(backend, args[i].grad) for i in grad_idx]
        )
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def _as_numpy(backend, t):
    return backend.to_numpy(t._data) if isinstance(t, convlab.Tensor) else t.numpy()
