"""Optimizers and schedules: against NumPy transcriptions of the published update rules and,
where installed, PyTorch over 20 steps from identical weights."""

from __future__ import annotations

import math

import numpy as np
import pytest

import convlab
from conftest import needs_torch, torch
from convlab import nn, optim

CONFIGS = {
    "sgd": (optim.SGD, dict(lr=0.1)),
    "sgd_momentum_wd": (optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-2)),
    "sgd_nesterov": (optim.SGD, dict(lr=0.05, momentum=0.8, nesterov=True)),
    "adam": (optim.Adam, dict(lr=1e-2)),
    "adam_wd": (optim.Adam, dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    "adam_amsgrad": (optim.Adam, dict(lr=1e-2, amsgrad=True)),
    "adamw": (optim.AdamW, dict(lr=1e-2, weight_decay=0.05)),
}


def numpy_reference(name, params, grads_per_step):
    """The update rules as written in the PyTorch documentation, in float64."""
    kind, cfg = CONFIGS[name]
    p = [x.astype(np.float64) for x in params]
    state = [
        dict(step=0, m=np.zeros_like(x), v=np.zeros_like(x), vmax=np.zeros_like(x), buf=None)
        for x in p
    ]
    for grads in grads_per_step:
        for x, g, s in zip(p, grads, state):
            g = g.astype(np.float64)
            lr = cfg["lr"]
            if kind is optim.SGD:
                mom, damp = cfg.get("momentum", 0), cfg.get("dampening", 0)
                g = g + cfg.get("weight_decay", 0) * x
                if mom:
                    s["buf"] = g.copy() if s["buf"] is None else mom * s["buf"] + (1 - damp) * g
                    g = g + mom * s["buf"] if cfg.get("nesterov") else s["buf"]
                x -= lr * g
            else:
                b1, b2 = cfg.get("betas", (0.9, 0.999))
                eps, wd = cfg.get("eps", 1e-8), cfg.get("weight_decay", 0)
                s["step"] += 1
                t = s["step"]
                if kind is optim.AdamW:
                    x *= 1 - lr * wd
                else:
                    g = g + wd * x
                s["m"] = b1 * s["m"] + (1 - b1) * g
                s["v"] = b2 * s["v"] + (1 - b2) * g * g
                v = s["v"]
                if cfg.get("amsgrad"):
                    s["vmax"] = np.maximum(s["vmax"], v)
                    v = s["vmax"]
                mhat = s["m"] / (1 - b1**t)
                vhat = v / (1 - b2**t)
                x -= lr * mhat / (np.sqrt(vhat) + eps)
    return p


def _run_ours(name, params, grads_per_step, device="cpu"):
    kind, cfg = CONFIGS[name]
    tensors = [convlab.tensor(x, requires_grad=True, device=device) for x in params]
    opt = kind(tensors, **cfg)
    for grads in grads_per_step:
        for t, g in zip(tensors, grads):
            t.grad = convlab.tensor(g, device=device)
        opt.step()
    return [t.cpu().numpy() for t in tensors], opt


def _problem(rng, steps=20):
    params = [rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(3,)).astype(np.float32)]
    grads = [[rng.normal(size=p.shape).astype(np.float32) for p in params] for _ in range(steps)]
    return params, grads


@pytest.mark.parametrize("name", list(CONFIGS))
def test_update_rule_matches_numpy_reference(backend, name, rng):
    """On every backend (the GPU's Adam / AdamW is one fused kernel)."""
    params, grads = _problem(rng)
    ours, _ = _run_ours(name, params, grads, backend.name)
    expected = numpy_reference(name, params, grads)
    for a, b in zip(ours, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_state_dict_resumes_exactly_cpu(name, rng, tmp_path):
    params, grads = _problem(rng)
    full, _ = _run_ours(name, params, grads)
    kind, cfg = CONFIGS[name]
    half, opt = _run_ours(name, params, grads[:10])
    convlab.save(opt.state_dict(), tmp_path / "opt.ckpt")
    tensors = [convlab.tensor(x, requires_grad=True) for x in half]
    resumed = kind(tensors, **cfg)
    resumed.load_state_dict(convlab.load(tmp_path / "opt.ckpt"))
    for g in grads[10:]:
        for t, gi in zip(tensors, g):
            t.grad = convlab.tensor(gi)
        resumed.step()
    for a, t in zip(full, tensors):
        np.testing.assert_array_equal(a, t.numpy())


def test_zero_grad_and_param_groups_cpu():
    a, b = convlab.ones(2, requires_grad=True), convlab.ones(3, requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad, b.grad = convlab.ones(2), convlab.ones(3)
    opt.step()
    np.testing.assert_allclose(a.numpy(), 0.9)
    np.testing.assert_allclose(b.numpy(), 0.5)
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    with pytest.raises(ValueError, match="lr"):
        optim.SGD([a], lr=-1)
    with pytest.raises(ValueError, match="more than one group"):
        optim.SGD([{"params": [a]}, {"params": [a]}], lr=0.1)
    with pytest.raises(ValueError, match="groups"):
        opt.load_state_dict(optim.SGD([a], lr=0.1).state_dict())


def _schedule(kind, steps, **kw):
    p = convlab.ones(1, requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    sched = kind(opt, **kw)
    lrs = []
    for _ in range(steps):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    return lrs


def test_schedules_match_closed_forms_cpu():
    lrs = _schedule(optim.lr_scheduler.StepLR, 10, step_size=3, gamma=0.5)
    np.testing.assert_allclose(lrs, [0.1 * 0.5 ** ((e + 1) // 3) for e in range(10)])
    lrs = _schedule(optim.lr_scheduler.CosineAnnealingLR, 25, T_max=10, eta_min=0.01)
    closed = [0.01 + (0.1 - 0.01) * (1 + math.cos(math.pi * (e + 1) / 10)) / 2 for e in range(25)]
    np.testing.assert_allclose(lrs, closed, rtol=1e-9, atol=1e-12)


@needs_torch
class TestAgainstPyTorch:
    @pytest.mark.parametrize("name", list(CONFIGS))
    def test_twenty_training_steps_match_cpu(self, name, rng):
        torch.manual_seed(0)
        theirs = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
        ours = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 2))
        ours.load_state_dict(convlab.utils.from_torch_state_dict(theirs.state_dict()))
        kind, cfg = CONFIGS[name]
        opt_ours = kind(ours.parameters(), **cfg)
        opt_theirs = getattr(torch.optim, kind.__name__)(theirs.parameters(), **cfg)
        for _ in range(20):
            x = rng.normal(size=(8, 5)).astype(np.float32)
            y = rng.normal(size=(8, 2)).astype(np.float32)
            for model, opt, lib in ((ours, opt_ours, convlab), (theirs, opt_theirs, torch)):
                opt.zero_grad()
                loss = lib.nn.functional.mse_loss(model(lib.tensor(x)), lib.tensor(y))
                loss.backward()
                opt.step()
        for (k, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)

    @pytest.mark.parametrize(
        "kind,kw",
        [
            ("StepLR", dict(step_size=4, gamma=0.3)),
            ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001)),
        ],
    )
    def test_schedules_match_cpu(self, kind, kw):
        ours = _schedule(getattr(optim.lr_scheduler, kind), 30, **kw)
        p = torch.ones(1, requires_grad=True)
        opt = torch.optim.SGD([p], lr=0.1)
        sched = getattr(torch.optim.lr_scheduler, kind)(opt, **kw)
        theirs = []
        for _ in range(30):
            opt.step()
            sched.step()
            theirs.append(sched.get_last_lr()[0])
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_update_kernel_rounds_as_numpy_cpu(dtype, rng):
    """The CPU's one-pass SGD update (``_scaled_add_``) gives NumPy's bits: the product
    ``lr * g`` rounds, then the sum; strided or aliased operands take NumPy itself."""
    cpu = convlab.get_backend("cpu")
    for n in (1, 17, 3 * 2**15 + 5):  # one element, a short tail, several parallel items
        p = rng.standard_normal(n).astype(dtype)
        g = rng.standard_normal(n).astype(dtype)
        expected = p - dtype(0.1) * g
        cpu._scaled_add_(p, g, -0.1)
        np.testing.assert_array_equal(p, expected)
    p = rng.standard_normal((40, 30)).astype(dtype)
    g = rng.standard_normal((30, 40)).astype(dtype).T  # not contiguous
    expected = p + dtype(2.5) * g
    cpu._scaled_add_(p, g, 2.5)
    np.testing.assert_array_equal(p, expected)
    p = rng.standard_normal(64).astype(dtype)
    expected = p + dtype(0.5) * p
    cpu._scaled_add_(p, p, 0.5)  # y and x the same memory
    np.testing.assert_array_equal(p, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_norm_kernel_is_accurate_and_thread_independent_cpu(dtype, rng):
    """The compiled sum of squares behind ``clip_grad_norm_``'s 2-norm on the CPU: float64
    sums, the same bits on 1 and 2 threads; the backend's method (that kernel on the CPU
    backend, NumPy on a reference one) close to the exact sum either way."""
    from convlab._cpu import _activation

    cpu = convlab.get_backend("cpu")
    for n in (1, 15, 16, 33, 2**15 * 7 + 3):
        a = (rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4, n)).astype(dtype)
        exact = math.fsum(float(v) * float(v) for v in a.astype(np.float64))
        sums = [_activation.sum_of_squares(a, threads) for threads in (1, 2)]
        assert sums[0] == sums[1]
        # n squares summed in float64 (16 lanes, then pairwise): n * 2^-52 relative at most
        assert abs(sums[0] - exact) <= n * 2.0**-52 * exact
        assert abs(float(cpu._sum_of_squares(a)) - exact) <= 1e-5 * exact
