"""Adadelta, Adagrad, RMSprop, NAdam and the learning-rate schedulers against PyTorch: the
same parameters, state and learning-rate sequences step for step, state-dict round trips,
and the same error types for bad arguments."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import convlab
from conftest import needs_torch, torch
from convlab import optim

pytestmark = needs_torch

OPT_CASES = {
    "adadelta": ("Adadelta", dict()),
    "adadelta_opts": ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1)),
    "adadelta_max": ("Adadelta", dict(rho=0.3, maximize=True)),
    "adagrad": ("Adagrad", dict()),
    "adagrad_opts": (
        "Adagrad",
        dict(lr=0.05, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.2, eps=1e-6),
    ),
    "adagrad_max": ("Adagrad", dict(maximize=True)),
    "rmsprop": ("RMSprop", dict()),
    "rmsprop_wd": ("RMSprop", dict(lr=1e-3, alpha=0.9, eps=1e-6, weight_decay=0.1)),
    "rmsprop_momentum": ("RMSprop", dict(lr=1e-3, momentum=0.9)),
    "rmsprop_centered": ("RMSprop", dict(lr=1e-3, centered=True)),
    "rmsprop_centered_momentum": (
        "RMSprop",
        dict(lr=1e-3, alpha=0.3, momentum=0.8, centered=True, weight_decay=0.05),
    ),
    "rmsprop_max": ("RMSprop", dict(momentum=0.5, maximize=True)),
    "nadam": ("NAdam", dict()),
    "nadam_opts": (
        "NAdam",
        dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, momentum_decay=0.01),
    ),
    "nadam_decoupled": (
        "NAdam",
        dict(lr=1e-2, betas=(0.3, 0.9), weight_decay=0.1, decoupled_weight_decay=True),
    ),
    "nadam_max": ("NAdam", dict(maximize=True, momentum_decay=0)),
}

TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}
SHAPES = [(4, 3), (5,), (2, 2, 2)]


def _problem(rng, dtype, steps):
    params = [rng.normal(size=s).astype(dtype) for s in SHAPES]
    grads = []
    for step in range(steps):
        row = [rng.normal(size=s).astype(dtype) for s in SHAPES]
        if step % 4 == 1:
            row[1] = None  # a parameter without a gradient is left alone (and its state)
        grads.append(row)
    return params, grads


def _groups(tensors, lib):
    # two groups, the second with its own learning rate
    return [{"params": tensors[:2]}, {"params": tensors[2:], "lr": 0.003}]


def _make(lib, name, params, device="cpu"):
    kind, cfg = OPT_CASES[name]
    if lib is torch:
        tensors = [torch.tensor(x, requires_grad=True) for x in params]
    else:
        tensors = [convlab.tensor(x, requires_grad=True, device=device) for x in params]
    return tensors, getattr(lib.optim, kind)(_groups(tensors, lib), **cfg)


def _run(lib, tensors, opt, grads, device="cpu"):
    for row in grads:
        for t, g in zip(tensors, row):
            if g is None:
                t.grad = None
            else:
                t.grad = torch.tensor(g) if lib is torch else convlab.tensor(g, device=device)
        opt.step()


def _numpy(value):
    if torch is not None and isinstance(value, torch.Tensor):
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
@pytest.mark.parametrize("name", list(OPT_CASES))
def test_optimizer_matches_torch(backend, name, dtype, rng):
    """30 steps over three parameters in two groups, some steps without one's gradient:
    parameters, per-parameter state and group settings as PyTorch's."""
    params, grads = _problem(rng, dtype, 30)
    t_ours, ours = _make(convlab, name, params, backend.name)
    t_theirs, theirs = _make(torch, name, params)
    _run(convlab, t_ours, ours, grads, backend.name)
    _run(torch, t_theirs, theirs, grads)
    _assert_same(ours, theirs, t_ours, t_theirs, TOL[dtype])


@pytest.mark.parametrize(
    "name", ["adadelta_opts", "adagrad_opts", "rmsprop_centered_momentum", "nadam_decoupled"]
)
def test_add_param_group_and_changed_settings_cpu(name, rng):
    """A group added mid-run (with its own settings) and a setting changed between steps."""
    params, grads = _problem(rng, np.float64, 20)
    extra = rng.normal(size=(3, 3))
    extra_grads = [rng.normal(size=(3, 3)) for _ in range(10)]
    runs = []
    for lib in (convlab, torch):
        tensors, opt = _make(lib, name, params)
        _run(lib, tensors, opt, grads[:10])
        new = lib.tensor(extra.copy(), requires_grad=True)
        opt.add_param_group(
            {"params": [new], "lr": 0.02, "weight_decay": 0.2, "initial_accumulator_value": 0.5}
        )
        opt.param_groups[0]["lr"] *= 0.5
        for row, g in zip(grads[10:], extra_grads):
            new.grad = lib.tensor(g)
            _run(lib, tensors, opt, [row])
        runs.append((tensors + [new], opt))
    (t_ours, ours), (t_theirs, theirs) = runs
    _assert_same(ours, theirs, t_ours, t_theirs, TOL[np.float64])


@pytest.mark.parametrize("name", list(OPT_CASES))
def test_optimizer_state_dict_round_trip_cpu(name, rng, tmp_path):
    """Saved after 12 steps (through a file), loaded into a fresh optimizer over copies of
    the parameters and continued: bit for bit the uninterrupted run."""
    params, grads = _problem(rng, np.float32, 25)
    full_t, full = _make(convlab, name, params)
    _run(convlab, full_t, full, grads)
    half_t, half = _make(convlab, name, params)
    _run(convlab, half_t, half, grads[:12])
    convlab.save(half.state_dict(), tmp_path / "opt.ckpt")
    fresh_t, fresh = _make(convlab, name, [t.detach().numpy() for t in half_t])
    fresh.load_state_dict(convlab.load(tmp_path / "opt.ckpt"))
    _run(convlab, fresh_t, fresh, grads[12:])
    for a, b in zip(full_t, fresh_t):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    assert fresh.state_dict()["param_groups"] == full.state_dict()["param_groups"]


def _bad_state(name, state_dict):
    state = state_dict["state"]
    if name == "adadelta":
        del state[0]["acc_delta"]
    elif name == "adagrad":
        state[0]["sum"] = np.zeros((2, 2), np.float32)
    elif name == "rmsprop_centered":
        del state[2]["grad_avg"]
    elif name == "rmsprop_momentum":
        del state[0]["momentum_buffer"]
    elif name == "nadam":
        state[1]["mu_product"] = "one"
    elif name == "nadam_opts":
        state_dict["param_groups"][0]["betas"] = (1.5, 0.9)
    elif name == "adagrad_opts":
        state_dict["param_groups"][1]["lr_decay"] = -1.0
    elif name == "rmsprop":
        state[0]["step"] = -3
    return state_dict


@pytest.mark.parametrize(
    "name",
    [
        "adadelta",
        "adagrad",
        "rmsprop_centered",
        "rmsprop_momentum",
        "nadam",
        "nadam_opts",
        "adagrad_opts",
        "rmsprop",
    ],
)
def test_bad_state_dict_is_refused_cleanly_cpu(name, rng):
    params, grads = _problem(rng, np.float32, 6)
    tensors, opt = _make(convlab, name, params)
    _run(convlab, tensors, opt, grads)
    saved = _bad_state(name, copy.deepcopy(opt.state_dict()))
    before = copy.deepcopy(opt.state_dict())
    with pytest.raises(ValueError, match="state_dict"):
        opt.load_state_dict(saved)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for idx, values in before["state"].items():
        for key, value in values.items():
            np.testing.assert_array_equal(_numpy(after["state"][idx][key]), _numpy(value))


def test_rmsprop_centered_turned_on_later_cpu(rng):
    """Momentum and centering switched on after the state exists: their buffers start at
    zero (PyTorch would fail on the missing entry; nothing else differs)."""
    p = convlab.tensor(rng.normal(size=4), requires_grad=True)
    opt = optim.RMSprop([p])
    p.grad = convlab.ones(4, dtype=convlab.float64)
    opt.step()
    opt.param_groups[0].update(momentum=0.9, centered=True)
    opt.step()
    assert set(opt.state[p]) == {"step", "square_avg", "momentum_buffer", "grad_avg"}


BAD_OPTIMIZER_ARGS = [
    ("Adadelta", dict(lr=-1.0)),
    ("Adadelta", dict(rho=1.5)),
    ("Adadelta", dict(rho=-0.1)),
    ("Adadelta", dict(eps=-1.0)),
    ("Adadelta", dict(weight_decay=-1.0)),
    ("Adadelta", dict(lr="fast")),
    ("Adagrad", dict(lr=-1.0)),
    ("Adagrad", dict(lr_decay=-1.0)),
    ("Adagrad", dict(weight_decay=-1.0)),
    ("Adagrad", dict(initial_accumulator_value=-1.0)),
    ("Adagrad", dict(eps=-1.0)),
    ("Adagrad", dict(fused=True, differentiable=True)),
    ("RMSprop", dict(lr=-1.0)),
    ("RMSprop", dict(alpha=-1.0)),
    ("RMSprop", dict(eps=-1.0)),
    ("RMSprop", dict(momentum=-1.0)),
    ("RMSprop", dict(weight_decay=-1.0)),
    ("NAdam", dict(lr=-1.0)),
    ("NAdam", dict(eps=-1.0)),
    ("NAdam", dict(betas=(1.0, 0.9))),
    ("NAdam", dict(betas=(0.9, -0.1))),
    ("NAdam", dict(weight_decay=-1.0)),
    ("NAdam", dict(momentum_decay=-1.0)),
]


@pytest.mark.parametrize("kind,kw", BAD_OPTIMIZER_ARGS, ids=lambda v: str(v))
def test_bad_optimizer_arguments_raise_like_torch_cpu(kind, kw):
    with pytest.raises(Exception) as theirs:
        getattr(torch.optim, kind)([torch.zeros(3, requires_grad=True)], **kw)
    with pytest.raises(type(theirs.value)) as ours:
        getattr(optim, kind)([convlab.zeros(3, requires_grad=True)], **kw)
    arg = next(iter(kw))
    if type(ours.value) is ValueError and arg != "fused":
        assert arg in str(ours.value)


def test_defaults_match_torch_cpu():
    for kind in ("Adadelta", "Adagrad", "RMSprop", "NAdam"):
        ours = getattr(optim, kind)([convlab.zeros(2, requires_grad=True)])
        theirs = getattr(torch.optim, kind)([torch.zeros(2, requires_grad=True)])
        assert ours.defaults == theirs.defaults, kind


# -- schedulers -----------------------------------------------------------------------------


def _optimizer(lib, kind="SGD", **kw):
    a = lib.zeros(2, requires_grad=True)
    b = lib.zeros(3, requires_grad=True)
    defaults = dict(SGD=dict(lr=0.1, momentum=0.9), Adam=dict(lr=0.01), RMSprop=dict(lr=0.01))
    cfg = {**defaults.get(kind, dict(lr=0.1)), **kw}
    return getattr(lib.optim, kind)([{"params": [a]}, {"params": [b], "lr": cfg["lr"] * 3}], **cfg)


def _momenta(opt):
    return [g["betas"][0] if "betas" in g else g.get("momentum") for g in opt.param_groups]


def _drive(lib, make, steps, metrics=None, kind="SGD"):
    """The lrs (and momenta) after construction and after each of ``steps`` epochs, the
    schedulers stepped in order (chaining)."""
    opt = _optimizer(lib, kind)
    scheds = make(lib.optim.lr_scheduler, opt)
    seen = [([g["lr"] for g in opt.param_groups], _momenta(opt))]
    for i in range(steps):
        opt.step()
        for s in scheds:
            if metrics is not None:
                s.step(metrics[i])
            else:
                s.step()
        seen.append((scheds[-1].get_last_lr(), _momenta(opt)))
        assert seen[-1][0] == [g["lr"] for g in opt.param_groups]
    return seen, scheds, opt


def _assert_sequences(ours, theirs):
    assert len(ours) == len(theirs)
    for i, ((lr_a, m_a), (lr_b, m_b)) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(lr_a, lr_b, rtol=1e-13, atol=0, err_msg=f"lr at step {i}")
        if m_b[0] is not None:
            np.testing.assert_allclose(m_a, m_b, rtol=1e-13, atol=0, err_msg=f"momentum {i}")


def _lambda(epoch):
    return 0.95**epoch


class _Warmup:
    """A callable object: its attributes are saved by LambdaLR.state_dict."""

    def __init__(self, warm):
        self.warm = warm

    def __call__(self, epoch):
        return min(1.0, (epoch + 1) / self.warm)


SCHEDULES = {
    "multistep": (lambda S, o: [S.MultiStepLR(o, milestones=[3, 7, 7, 12], gamma=0.5)], 20),
    "exponential": (lambda S, o: [S.ExponentialLR(o, gamma=0.9)], 20),
    "lambda": (lambda S, o: [S.LambdaLR(o, _lambda)], 20),
    "lambda_list": (lambda S, o: [S.LambdaLR(o, [_lambda, _Warmup(5)])], 20),
    "linear": (lambda S, o: [S.LinearLR(o)], 10),
    "linear_down": (
        lambda S, o: [S.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=8)],
        12,
    ),
    "onecycle_cos": (lambda S, o: [S.OneCycleLR(o, max_lr=1.0, total_steps=40)], 39),
    "onecycle_linear_3phase": (
        lambda S, o: [
            S.OneCycleLR(
                o,
                max_lr=[0.5, 2.0],
                epochs=5,
                steps_per_epoch=7,
                anneal_strategy="linear",
                three_phase=True,
                base_momentum=[0.8, 0.7],
                max_momentum=0.9,
                div_factor=10.0,
                final_div_factor=100.0,
                pct_start=0.25,
            )
        ],
        35,
    ),
    "onecycle_cos_3phase": (
        lambda S, o: [S.OneCycleLR(o, max_lr=1.0, total_steps=31, three_phase=True)],
        31,
    ),
    "onecycle_no_momentum": (
        lambda S, o: [S.OneCycleLR(o, max_lr=0.3, total_steps=25, cycle_momentum=False)],
        24,
    ),
    "sequential": (
        lambda S, o: [
            S.SequentialLR(
                o,
                [S.LinearLR(o, start_factor=0.1, total_iters=4), S.ExponentialLR(o, 0.8)],
                milestones=[5],
            )
        ],
        15,
    ),
    "sequential_three": (
        lambda S, o: [
            S.SequentialLR(
                o,
                [
                    S.ExponentialLR(o, 0.9),
                    S.StepLR(o, step_size=2, gamma=0.5),
                    S.CosineAnnealingLR(o, T_max=6, eta_min=0.001),
                ],
                milestones=[4, 10],
            )
        ],
        25,
    ),
    "sequential_multistep_lambda": (
        lambda S, o: [
            S.SequentialLR(o, [S.MultiStepLR(o, [2, 3]), S.LambdaLR(o, _lambda)], milestones=[6])
        ],
        14,
    ),
    "chained_exponential_multistep": (
        lambda S, o: [S.ExponentialLR(o, 0.9), S.MultiStepLR(o, [4, 8], gamma=0.3)],
        14,
    ),
    "chained_linear_cosine": (
        lambda S, o: [S.LinearLR(o, total_iters=4), S.CosineAnnealingLR(o, T_max=9)],
        20,
    ),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_matches_torch_cpu(name):
    make, steps = SCHEDULES[name]
    ours, _, _ = _drive(convlab, make, steps)
    theirs, _, _ = _drive(torch, make, steps)
    _assert_sequences(ours, theirs)


@pytest.mark.parametrize("kind", ["SGD", "Adam", "NAdam", "RMSprop"])
def test_onecycle_cycles_momentum_or_beta1_cpu(kind):
    make = SCHEDULES["onecycle_linear_3phase"][0]
    ours, _, opt_ours = _drive(convlab, make, 35, kind=kind)
    theirs, _, opt_theirs = _drive(torch, make, 35, kind=kind)
    _assert_sequences(ours, theirs)
    for ga, gb in zip(opt_ours.param_groups, opt_theirs.param_groups):
        for key in ("initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"):
            assert ga[key] == gb[key]


def test_onecycle_past_total_steps_raises_like_torch_cpu():
    for lib in (convlab, torch):
        opt = _optimizer(lib)
        sched = lib.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=5)
        for _ in range(5):
            opt.step()
            sched.step()
        with pytest.raises(ValueError, match="total steps"):
            sched.step()


PLATEAU_METRICS = [
    1.0,
    0.9,
    0.95,
    0.95,
    0.96,
    0.97,
    0.9,
    0.899999,
    0.89,
    0.91,
    0.92,
    0.93,
    0.94,
    0.95,
    0.5,
    0.6,
    0.7,
    0.8,
    0.9,
    1.0,
    1.1,
    0.49,
    0.5,
    0.5,
    0.5,
    0.5,
    0.5,
    0.5,
    0.5,
    0.5,
]

PLATEAUS = {
    "default": dict(patience=2),
    "max_abs": dict(mode="max", threshold_mode="abs", threshold=0.01, patience=1, factor=0.5),
    "max_rel": dict(mode="max", threshold=0.05, patience=0),
    "min_abs_cooldown": dict(threshold_mode="abs", threshold=0.02, patience=1, cooldown=3),
    "min_lr_list": dict(patience=0, factor=0.5, min_lr=[0.02, 0.05]),
    "min_lr_eps": dict(patience=0, factor=0.9, min_lr=0.05, eps=0.01),
}


@pytest.mark.parametrize("name", list(PLATEAUS))
def test_reduce_on_plateau_matches_torch_cpu(name):
    kw = PLATEAUS[name]

    def make(S, o):
        return [S.ReduceLROnPlateau(o, **kw)]

    ours, (s_ours,), _ = _drive(convlab, make, len(PLATEAU_METRICS), PLATEAU_METRICS)
    theirs, (s_theirs,), _ = _drive(torch, make, len(PLATEAU_METRICS), PLATEAU_METRICS)
    _assert_sequences(ours, theirs)
    for key in ("best", "num_bad_epochs", "cooldown_counter", "last_epoch"):
        assert getattr(s_ours, key) == getattr(s_theirs, key), key
    assert ours[-1] != ours[0]  # the schedule did reduce


def test_reduce_on_plateau_takes_a_tensor_metric_cpu():
    opt = _optimizer(convlab)
    sched = optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0)
    sched.step(convlab.tensor(1.0))
    sched.step(convlab.tensor(2.0))
    assert sched.get_last_lr() == pytest.approx([0.01, 0.03])


@pytest.mark.parametrize("name", list(SCHEDULES) + ["plateau"])
def test_scheduler_state_dict_round_trip_cpu(name):
    """Optimizer and scheduler states saved mid-run, loaded into fresh objects (scheduler
    made first, as PyTorch advises) and continued: the uninterrupted sequence."""
    if name == "plateau":
        kw = PLATEAUS["min_abs_cooldown"]

        def make(S, o):
            return [S.ReduceLROnPlateau(o, **kw)]

        steps, metrics = len(PLATEAU_METRICS), PLATEAU_METRICS
    else:
        (make, steps), metrics = SCHEDULES[name], None
    full, _, _ = _drive(convlab, make, steps, metrics)
    cut = steps // 2
    _, scheds, opt = _drive(convlab, make, cut, metrics)
    saved_opt = copy.deepcopy(opt.state_dict())
    saved = [copy.deepcopy(s.state_dict()) for s in scheds]
    fresh_opt = _optimizer(convlab)
    fresh = make(optim.lr_scheduler, fresh_opt)
    fresh_opt.load_state_dict(saved_opt)
    for s, state in zip(fresh, saved):
        s.load_state_dict(state)
    rest = []
    for i in range(cut, steps):
        fresh_opt.step()
        for s in fresh:
            s.step(metrics[i]) if metrics is not None else s.step()
        rest.append((fresh[-1].get_last_lr(), _momenta(fresh_opt)))
    _assert_sequences(full[cut + 1 :], rest)
    assert fresh[-1].last_epoch == scheds[-1].last_epoch + (steps - cut)


def test_lambda_state_dict_saves_callable_objects_only_cpu():
    opt = _optimizer(convlab)
    warm = _Warmup(5)
    sched = optim.lr_scheduler.LambdaLR(opt, [_lambda, warm])
    state = sched.state_dict()
    assert state["lr_lambdas"] == [None, {"warm": 5}]
    other = _Warmup(9)
    fresh = optim.lr_scheduler.LambdaLR(_optimizer(convlab), [_lambda, other])
    fresh.load_state_dict(state)
    assert other.warm == 5 and "lr_lambdas" in state


@pytest.mark.parametrize(
    "kind", ["MultiStepLR", "ExponentialLR", "LinearLR", "StepLR", "CosineAnnealingLR"]
)
def test_resume_with_last_epoch_and_epoch_argument_cpu(kind):
    """Constructed with last_epoch=k over groups holding initial_lr, and stepped with the
    deprecated epoch argument (closed forms), as PyTorch."""
    kw = dict(
        MultiStepLR=dict(milestones=[2, 5]),
        ExponentialLR=dict(gamma=0.9),
        LinearLR=dict(total_iters=6),
        StepLR=dict(step_size=3),
        CosineAnnealingLR=dict(T_max=5),
    )[kind]
    runs = []
    for lib in (convlab, torch):
        opt = _optimizer(lib)
        for g in opt.param_groups:
            g["initial_lr"] = g["lr"] * 2
        sched = getattr(lib.optim.lr_scheduler, kind)(opt, last_epoch=4, **kw)
        lrs = [sched.get_last_lr()]
        for _ in range(5):
            opt.step()
            sched.step()
            lrs.append(sched.get_last_lr())
        with pytest.warns(UserWarning):
            sched.step(3)
        lrs.append(sched.get_last_lr())
        runs.append((lrs, sched.last_epoch))
    assert runs[0][1] == runs[1][1]
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-13)


def _bad_schedulers(S, lib, opt):
    adagrad = lib.optim.Adagrad([lib.zeros(2, requires_grad=True)])
    return {
        "linear_start_0": lambda: S.LinearLR(opt, start_factor=0),
        "linear_start_big": lambda: S.LinearLR(opt, start_factor=1.5),
        "linear_end": lambda: S.LinearLR(opt, end_factor=-0.1),
        "lambda_len": lambda: S.LambdaLR(opt, [_lambda]),
        "onecycle_no_length": lambda: S.OneCycleLR(opt, max_lr=1.0),
        "onecycle_total_0": lambda: S.OneCycleLR(opt, max_lr=1.0, total_steps=0),
        "onecycle_epochs": lambda: S.OneCycleLR(opt, 1.0, epochs=0, steps_per_epoch=3),
        "onecycle_steps_per_epoch": lambda: S.OneCycleLR(opt, 1.0, epochs=2, steps_per_epoch=2.5),
        "onecycle_pct": lambda: S.OneCycleLR(opt, 1.0, total_steps=9, pct_start=1.5),
        "onecycle_pct_int": lambda: S.OneCycleLR(opt, 1.0, total_steps=9, pct_start=1),
        "onecycle_anneal": lambda: S.OneCycleLR(opt, 1.0, total_steps=9, anneal_strategy="sin"),
        "onecycle_max_lr_len": lambda: S.OneCycleLR(opt, [1.0], total_steps=9),
        "onecycle_momentum": lambda: S.OneCycleLR(adagrad, 1.0, total_steps=9),
        "plateau_factor": lambda: S.ReduceLROnPlateau(opt, factor=1.0),
        "plateau_mode": lambda: S.ReduceLROnPlateau(opt, mode="avg"),
        "plateau_threshold_mode": lambda: S.ReduceLROnPlateau(opt, threshold_mode="pct"),
        "plateau_min_lr_len": lambda: S.ReduceLROnPlateau(opt, min_lr=[0.1]),
        "plateau_not_optimizer": lambda: S.ReduceLROnPlateau(object()),
        "exponential_not_optimizer": lambda: S.ExponentialLR(object(), 0.9),
        "sequential_empty": lambda: S.SequentialLR(opt, [], []),
        "sequential_milestones": lambda: S.SequentialLR(opt, [S.ExponentialLR(opt, 0.9)], [3]),
        "sequential_plateau": lambda: S.SequentialLR(
            opt, [S.ExponentialLR(opt, 0.9), S.ReduceLROnPlateau(opt)], [3]
        ),
        "sequential_other_optimizer": lambda: S.SequentialLR(
            opt, [S.ExponentialLR(opt, 0.9), S.ExponentialLR(_optimizer(lib), 0.9)], [3]
        ),
        "resume_without_initial_lr": lambda: S.MultiStepLR(_optimizer(lib), [2], last_epoch=3),
    }


@pytest.mark.parametrize(
    "case", list(_bad_schedulers(optim.lr_scheduler, convlab, _optimizer(convlab)))
)
def test_bad_scheduler_arguments_raise_like_torch_cpu(case):
    theirs_case = _bad_schedulers(torch.optim.lr_scheduler, torch, _optimizer(torch))[case]
    ours_case = _bad_schedulers(optim.lr_scheduler, convlab, _optimizer(convlab))[case]
    with pytest.raises(Exception) as theirs:
        theirs_case()
    with pytest.raises(type(theirs.value)):
        ours_case()


def test_closed_forms_agree_with_recurrences_cpu():
    """The chainable recurrence of each new schedule stays on its closed form."""
    opt = _optimizer(convlab)
    sched = optim.lr_scheduler.MultiStepLR(opt, [3, 6, 6], gamma=0.5)
    for _ in range(1, 10):
        sched.step()
        assert sched.get_last_lr()[0] == pytest.approx(sched._get_closed_form_lr()[0])
    opt = _optimizer(convlab)
    sched = optim.lr_scheduler.LinearLR(opt, start_factor=0.2, total_iters=5)
    for epoch in range(1, 10):
        sched.step()
        assert sched.get_last_lr()[0] == pytest.approx(0.1 * (0.2 + 0.8 * min(epoch, 5) / 5))
    assert math.isclose(sched.get_last_lr()[0], 0.1)
