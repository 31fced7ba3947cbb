"""Adamax, RAdam and ASGD against torch.optim: parameters, per-parameter state and group settings
step for step (float32 and float64, every backend), state-dict round trips and the error
types of bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

import convlab
from conftest import needs_torch, torch

pytestmark = needs_torch

CASES = {
    "adamax": ("Adamax", dict()),
    "adamax_opts": ("Adamax", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-4, weight_decay=0.1)),
    "adamax_max": ("Adamax", dict(maximize=True)),
    "radam": ("RAdam", dict()),
    "radam_opts": ("RAdam", dict(lr=0.01, betas=(0.5, 0.9), eps=1e-6, weight_decay=0.1)),
    "radam_decoupled": (
        "RAdam",
        dict(lr=0.01, betas=(0.7, 0.8), weight_decay=0.2, decoupled_weight_decay=True),
    ),
    "radam_max": ("RAdam", dict(maximize=True, betas=(0.9, 0.5))),
    "asgd": ("ASGD", dict()),
    "asgd_averaging": (
        "ASGD",
        dict(lr=0.05, lambd=0.01, alpha=0.6, t0=5, weight_decay=0.1),
    ),
    "asgd_max": ("ASGD", dict(maximize=True, t0=0)),
}

TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}
SHAPES = [(4, 3), (5,), (2, 2, 2)]


def _problem(dtype, steps):
    rng = np.random.default_rng(11)
    params = [rng.normal(size=s).astype(dtype) for s in SHAPES]
    grads = []
    for step in range(steps):
        row = [rng.normal(size=s).astype(dtype) for s in SHAPES]
        if step % 4 == 1:
            row[1] = None  # a parameter without a gradient is left alone (and its state)
        grads.append(row)
    return params, grads


def _make(lib, name, params, device="cpu"):
    kind, cfg = CASES[name]
    if lib is torch:
        tensors = [torch.tensor(x, requires_grad=True) for x in params]
    else:
        tensors = [convlab.tensor(x, requires_grad=True, device=device) for x in params]
    groups = [{"params": tensors[:2]}, {"params": tensors[2:], "lr": 0.003}]
    return tensors, getattr(lib.optim, kind)(groups, **cfg)


def _run(lib, tensors, opt, grads, device="cpu"):
    for row in grads:
        for t, g in zip(tensors, row):
            if g is None:
                t.grad = None
            else:
                t.grad = torch.tensor(g) if lib is torch else convlab.tensor(g, device=device)
        opt.step()


def _numpy(value):
    if isinstance(value, torch.Tensor):
        return value.detach().numpy()
    if isinstance(value, convlab.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _assert_same(ours, theirs, tensors_ours, tensors_theirs, tol):
    for a, b in zip(tensors_ours, tensors_theirs):
        np.testing.assert_allclose(_numpy(a), _numpy(b), **tol)
    for a, b in zip(tensors_ours, tensors_theirs):
        sa, sb = ours.state.get(a, {}), theirs.state.get(b, {})
        assert set(sa) == set(sb)
        for key in sb:
            np.testing.assert_allclose(
                _numpy(sa[key]).astype(np.float64),
                _numpy(sb[key]).astype(np.float64),
                err_msg=key,
                **tol,
            )
    for ga, gb in zip(ours.param_groups, theirs.param_groups):
        assert set(ga) == set(gb)
        for key in gb:
            if key != "params":
                assert ga[key] == gb[key], key


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(CASES))
def test_optimizer_matches_torch(backend, name, dtype):
    params, grads = _problem(dtype, 30)
    t_ours, ours = _make(convlab, name, params, backend.name)
    t_theirs, theirs = _make(torch, name, params)
    _run(convlab, t_ours, ours, grads, backend.name)
    _run(torch, t_theirs, theirs, grads)
    _assert_same(ours, theirs, t_ours, t_theirs, TOL[dtype])


@pytest.mark.parametrize("name", ["adamax_opts", "radam_decoupled", "asgd_averaging"])
def test_state_dict_round_trip_resumes_like_torch(name, tmp_path):
    params, grads = _problem(np.float64, 16)
    t_ours, ours = _make(convlab, name, params)
    _run(convlab, t_ours, ours, grads[:8])
    path = tmp_path / "opt.pt"
    convlab.save(ours.state_dict(), path)
    t_resumed, resumed = _make(convlab, name, [_numpy(t) for t in t_ours])
    resumed.load_state_dict(convlab.load(path))
    _run(convlab, t_resumed, resumed, grads[8:])
    t_theirs, theirs = _make(torch, name, params)
    _run(torch, t_theirs, theirs, grads)
    _assert_same(resumed, theirs, t_resumed, t_theirs, TOL[np.float64])


def test_load_state_dict_refuses_missing_entries():
    params, grads = _problem(np.float64, 2)
    tensors, opt = _make(convlab, "adamax", params)
    _run(convlab, tensors, opt, grads)
    state = opt.state_dict()
    del state["state"][0]["exp_inf"]
    with pytest.raises(ValueError):
        _make(convlab, "adamax", params)[1].load_state_dict(state)


BAD = [
    ("Adamax", dict(lr=-1.0)),
    ("Adamax", dict(eps=-1.0)),
    ("Adamax", dict(betas=(1.0, 0.9))),
    ("Adamax", dict(betas=(0.9, -0.1))),
    ("Adamax", dict(weight_decay=-1.0)),
    ("RAdam", dict(lr=-1.0)),
    ("RAdam", dict(eps=-1.0)),
    ("RAdam", dict(betas=(0.9, 1.0))),
    ("RAdam", dict(weight_decay=-0.5)),
    ("ASGD", dict(lr=-1.0)),
    ("ASGD", dict(weight_decay=-1.0)),
]


@pytest.mark.parametrize("kind, kw", BAD)
def test_bad_arguments_raise_value_error_like_torch(kind, kw):
    for lib in (convlab, torch):
        with pytest.raises(ValueError):
            getattr(lib.optim, kind)([lib.zeros(2, requires_grad=True)], **kw)


@pytest.mark.parametrize("kind", ["Adamax", "RAdam", "ASGD"])
def test_defaults_match_torch(kind):
    ours = getattr(convlab.optim, kind)([convlab.zeros(2, requires_grad=True)]).defaults
    theirs = getattr(torch.optim, kind)([torch.zeros(2, requires_grad=True)]).defaults
    assert ours == theirs
