"""MultiplicativeLR, ConstantLR, PolynomialLR, CosineAnnealingWarmRestarts, CyclicLR and
ChainedScheduler against torch.optim.lr_scheduler: the same learning rates (and momenta)
step for step, state-dict round trips and the same error types."""

from __future__ import annotations

import numpy as np
import pytest

import convlab
from conftest import needs_torch, torch

pytestmark = needs_torch


def _optimizer(lib, kind="SGD"):
    a = lib.zeros(2, requires_grad=True)
    b = lib.zeros(3, requires_grad=True)
    cfg = dict(SGD=dict(lr=0.1, momentum=0.9), Adam=dict(lr=0.01))[kind]
    return getattr(lib.optim, kind)([{"params": [a]}, {"params": [b], "lr": cfg["lr"] * 3}], **cfg)


def _momenta(opt):
    return [g["betas"][0] if "betas" in g else g.get("momentum") for g in opt.param_groups]


def _drive(lib, make, steps, kind="SGD"):
    opt = _optimizer(lib, kind)
    sched = make(lib.optim.lr_scheduler, opt)
    seen = [([g["lr"] for g in opt.param_groups], _momenta(opt))]
    for _ in range(steps):
        opt.step()
        sched.step()
        seen.append((sched.get_last_lr(), _momenta(opt)))
        assert seen[-1][0] == [g["lr"] for g in opt.param_groups]
    return seen, sched


def _assert_same(ours, theirs):
    assert len(ours) == len(theirs)
    for i, ((lr_a, m_a), (lr_b, m_b)) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(lr_a, lr_b, rtol=1e-13, atol=0, err_msg=f"lr at step {i}")
        np.testing.assert_allclose(m_a, m_b, rtol=1e-13, atol=0, err_msg=f"momentum {i}")


class _Factor:
    """A callable object (its attributes go into the state dict)."""

    def __init__(self, f):
        self.f = f

    def __call__(self, epoch):
        return self.f if epoch % 2 else 1.0


SCHEDULES = {
    "multiplicative": (lambda S, o: S.MultiplicativeLR(o, lambda e: 0.9), 10),
    "multiplicative_list": (
        lambda S, o: S.MultiplicativeLR(o, [lambda e: 0.95, _Factor(0.5)]),
        10,
    ),
    "constant": (lambda S, o: S.ConstantLR(o), 8),
    "constant_opts": (lambda S, o: S.ConstantLR(o, factor=0.5, total_iters=3), 6),
    "polynomial": (lambda S, o: S.PolynomialLR(o), 8),
    "polynomial_power": (lambda S, o: S.PolynomialLR(o, total_iters=6, power=2.0), 9),
    "warm_restarts": (lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=4), 15),
    "warm_restarts_mult": (
        lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=2, eta_min=0.01),
        20,
    ),
    "cyclic_triangular": (lambda S, o: S.CyclicLR(o, 0.01, 0.1, step_size_up=4), 20),
    "cyclic_triangular2": (
        lambda S, o: S.CyclicLR(
            o, [0.01, 0.02], [0.1, 0.3], step_size_up=3, step_size_down=5, mode="triangular2"
        ),
        30,
    ),
    "cyclic_exp_range": (
        lambda S, o: S.CyclicLR(
            o, 0.01, 0.1, step_size_up=3, mode="exp_range", gamma=0.9, base_momentum=0.7
        ),
        20,
    ),
    "cyclic_scale_fn": (
        lambda S, o: S.CyclicLR(
            o, 0.01, 0.1, step_size_up=2, scale_fn=lambda x: 0.8**x, scale_mode="iterations"
        ),
        12,
    ),
    "cyclic_no_momentum": (
        lambda S, o: S.CyclicLR(o, 0.01, 0.1, step_size_up=2, cycle_momentum=False),
        9,
    ),
    "chained": (
        lambda S, o: S.ChainedScheduler(
            [S.ConstantLR(o, factor=0.1, total_iters=2), S.ExponentialLR(o, gamma=0.9)]
        ),
        8,
    ),
    "chained_poly_multiplicative": (
        lambda S, o: S.ChainedScheduler(
            [S.PolynomialLR(o, total_iters=4), S.MultiplicativeLR(o, lambda e: 0.99)], o
        ),
        8,
    ),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_matches_torch(name):
    make, steps = SCHEDULES[name]
    ours, _ = _drive(convlab, make, steps)
    theirs, _ = _drive(torch, make, steps)
    _assert_same(ours, theirs)


def test_cyclic_cycles_beta1_of_adam():
    def make(S, o):
        return S.CyclicLR(o, 0.001, 0.01, step_size_up=3, base_momentum=0.85, max_momentum=0.95)

    ours, _ = _drive(convlab, make, 10, kind="Adam")
    theirs, _ = _drive(torch, make, 10, kind="Adam")
    _assert_same(ours, theirs)


@pytest.mark.parametrize("epoch", [0, 1.5, 3, 7.25, 13, 30.5])
@pytest.mark.parametrize("t_mult", [1, 2, 3])
def test_warm_restarts_fractional_epochs(epoch, t_mult):
    lrs = []
    for lib in (convlab, torch):
        opt = _optimizer(lib)
        sched = lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=t_mult)
        sched.step(epoch)
        lrs.append(sched.get_last_lr())
    np.testing.assert_allclose(lrs[0], lrs[1], rtol=1e-13)


@pytest.mark.parametrize(
    "name", ["constant_opts", "polynomial_power", "warm_restarts_mult", "cyclic_triangular2"]
)
def test_state_dict_round_trip(name):
    make, steps = SCHEDULES[name]
    _, sched = _drive(convlab, make, steps // 2)
    state = sched.state_dict()
    opt = _optimizer(convlab)
    fresh = make(convlab.optim.lr_scheduler, opt)
    # resuming: the optimizer's state dict brings back the groups' lr and momentum
    opt.load_state_dict(sched.optimizer.state_dict())
    fresh.load_state_dict(state)
    for _ in range(steps - steps // 2):
        sched.optimizer.step()
        sched.step()
        fresh.step()
        assert fresh.get_last_lr() == sched.get_last_lr()


def test_chained_state_dict_round_trip():
    make, _ = SCHEDULES["chained"]
    _, sched = _drive(convlab, make, 3)
    state = sched.state_dict()
    assert len(state["_schedulers"]) == 2 and state["_schedulers"][1]["last_epoch"] == 3
    other = make(convlab.optim.lr_scheduler, _optimizer(convlab))
    other.load_state_dict(state)
    assert other._schedulers[1].last_epoch == 3


BAD = [
    (lambda S, o: S.ConstantLR(o, factor=1.5), ValueError),
    (lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=0), ValueError),
    (lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=0), ValueError),
    (lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=2.5), ValueError),
    (lambda S, o: S.CyclicLR(o, 0.1, 1.0, mode="sawtooth"), ValueError),
    (lambda S, o: S.CyclicLR(o, [0.1], 1.0), ValueError),
    (lambda S, o: S.MultiplicativeLR(o, [lambda e: 1.0]), ValueError),
    (lambda S, o: S.MultiplicativeLR(o, [1.0, 2.0]), TypeError),
    (lambda S, o: S.ChainedScheduler([]), ValueError),
    (lambda S, o: S.ChainedScheduler([S.ReduceLROnPlateau(o)]), ValueError),
]


@pytest.mark.parametrize("make, error", BAD)
def test_bad_arguments_raise_like_torch(make, error):
    for lib in (convlab, torch):
        with pytest.raises(error):
            make(lib.optim.lr_scheduler, _optimizer(lib))


def test_cyclic_momentum_needs_momentum():
    for lib in (convlab, torch):
        opt = lib.optim.Adagrad([lib.zeros(2, requires_grad=True)])
        with pytest.raises(ValueError):
            lib.optim.lr_scheduler.CyclicLR(opt, 0.1, 1.0)
        lib.optim.lr_scheduler.CyclicLR(opt, 0.1, 1.0, cycle_momentum=False)
