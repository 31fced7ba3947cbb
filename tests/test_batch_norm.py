"""BatchNorm kernels against float64 NumPy formulas, on data whose mean dwarfs its spread."""

from __future__ import annotations

import numpy as np
import pytest

import convlab
from convlab import nn


def _reference(x, w, b, g, eps=1e-5):
    """Forward output and gradients (x, weight, bias) of training-mode batch norm, float64."""
    x, g = x.astype(np.float64), g.astype(np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    invstd = 1 / np.sqrt(var + eps)
    xhat = (x - mean.reshape(shape)) * invstd.reshape(shape)
    y = xhat * w.reshape(shape) + b.reshape(shape)
    m = x.size / x.shape[1]
    gb, gw = g.sum(axis=axes), (g * xhat).sum(axis=axes)
    gx = (w * invstd).reshape(shape) * (g - gb.reshape(shape) / m - xhat * gw.reshape(shape) / m)
    return y, gx, gw, gb, mean, var


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(16, 5, 7, 9), (64, 3), (5, 4, 11)], ids=["2d", "1d", "1d-L"])
def test_training_forward_backward_and_running_stats(backend, threads, dtype, shape, rng):
    x = (
        1000 + rng.normal(size=shape) * rng.uniform(0.5, 2, (1, shape[1]) + (1,) * (len(shape) - 2))
    ).astype(dtype)
    g = rng.normal(size=shape).astype(dtype)
    w = rng.uniform(0.5, 2, shape[1]).astype(dtype)
    b = rng.normal(size=shape[1]).astype(dtype)
    module = (nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d)(shape[1], momentum=0.3)
    module.to(dtype=dtype)
    module.to(backend.name)
    with convlab.no_grad():
        module.weight.copy_(convlab.tensor(w, device=backend.name))
        module.bias.copy_(convlab.tensor(b, device=backend.name))
    xt = convlab.tensor(x, device=backend.name, requires_grad=True)
    y = module(xt)
    (y * convlab.tensor(g, device=backend.name)).sum().backward()
    y_ref, gx_ref, gw_ref, gb_ref, mean, var = _reference(x, w, b, g)
    tol = dict(rtol=2e-4, atol=2e-4) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(y.cpu().numpy(), y_ref, **tol)
    np.testing.assert_allclose(xt.grad.cpu().numpy(), gx_ref, **tol)
    np.testing.assert_allclose(module.weight.grad.cpu().numpy(), gw_ref, **tol)
    np.testing.assert_allclose(
        module.bias.grad.cpu().numpy(), gb_ref, rtol=tol["rtol"], atol=tol["atol"] * 10
    )
    m = x.size / shape[1]
    np.testing.assert_allclose(module.running_mean.cpu().numpy(), 0.3 * mean, rtol=1e-5)
    np.testing.assert_allclose(
        module.running_var.cpu().numpy(), 0.7 + 0.3 * var * m / (m - 1), rtol=1e-4
    )


def test_evaluation_mode_uses_running_statistics(backend, rng):
    x = rng.normal(size=(4, 3, 5, 5)).astype(np.float32)
    module = nn.BatchNorm2d(3).to(backend.name).eval()
    with convlab.no_grad():
        module.running_mean.copy_(convlab.tensor([0.5, -1.0, 2.0], device=backend.name))
        module.running_var.copy_(convlab.tensor([4.0, 0.25, 1.0], device=backend.name))
    xt = convlab.tensor(x, device=backend.name, requires_grad=True)
    y = module(xt)
    y.sum().backward()
    mean = np.array([0.5, -1.0, 2.0]).reshape(1, 3, 1, 1)
    invstd = 1 / np.sqrt(np.array([4.0, 0.25, 1.0]) + 1e-5).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(y.cpu().numpy(), (x - mean) * invstd, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(xt.grad.cpu().numpy(), np.broadcast_to(invstd, x.shape), rtol=1e-6)


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_evaluation_mode_input_gradient_ignores_the_input(backend, rng, value):
    # with running statistics dx = g * weight * invstd: an inf input still gets a finite
    # gradient, as in PyTorch (whose eval backward does not read x for it)
    x = rng.normal(size=(2, 3, 4, 4)).astype(np.float32)
    x[0, 1, 2, 3] = value
    module = nn.BatchNorm2d(3).to(backend.name).eval()
    with convlab.no_grad():
        module.weight.copy_(convlab.tensor([2.0, -0.5, 1.5], device=backend.name))
        module.running_var.copy_(convlab.tensor([4.0, 0.25, 1.0], device=backend.name))
    xt = convlab.tensor(x, device=backend.name, requires_grad=True)
    g = rng.normal(size=x.shape).astype(np.float32)
    module(xt).backward(convlab.tensor(g, device=backend.name))
    scale = (np.array([2.0, -0.5, 1.5]) / np.sqrt(np.array([4.0, 0.25, 1.0]) + 1e-5)).reshape(
        1, 3, 1, 1
    )
    np.testing.assert_allclose(xt.grad.cpu().numpy(), g * scale, rtol=1e-6)


def test_cpu_kernels_give_the_same_bits_for_any_thread_count(rng):
    x = rng.normal(size=(32, 6, 9, 13)).astype(np.float32)
    g = rng.normal(size=x.shape).astype(np.float32)
    results = []
    for threads in (1, 2):
        before = convlab.get_num_threads()
        convlab.set_num_threads(threads)
        try:
            xt = convlab.tensor(x, requires_grad=True)
            module = nn.BatchNorm2d(6)
            (module(xt) * convlab.tensor(g)).sum().backward()
            results.append(
                [xt.grad.numpy(), module.weight.grad.numpy(), module.running_var.numpy()]
            )
        finally:
            convlab.set_num_threads(before)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_cpu_kernels_give_the_same_bits_for_every_instruction_set(dtype, training, rng):
    """The kernels are compiled per ISA and picked at run time; each version sums in the same
    order with no fused multiply-add, so the choice must not change a bit. Rows of 47: a
    remainder after the 16-value partial sums."""
    from convlab._cpu import _gemm

    cpu = convlab.get_backend("cpu")
    x = (3 + rng.normal(size=(9, 5, 47))).astype(dtype)
    g = rng.normal(size=x.shape).astype(dtype)
    w, b = rng.normal(size=5).astype(dtype), rng.normal(size=5).astype(dtype)
    stats = (None, None) if training else (rng.normal(size=5), rng.uniform(0.5, 2, 5))
    before = _gemm.get_isa()
    results = []
    try:
        for name in _gemm.supported_isas():
            _gemm.set_isa(name)
            y, mean, var = cpu.batch_norm_forward(x, w, b, *stats, 1e-5)
            grads = cpu.batch_norm_backward(g, x, mean, 1 / np.sqrt(var + 1e-5), w, training)
            results.append((name, [y, mean, var, *grads]))
    finally:
        _gemm.set_isa(before)
    assert len(results) >= 1
    first_name, first = results[0]
    for name, arrays in results[1:]:
        for a, c in zip(first, arrays):
            np.testing.assert_array_equal(a, c, err_msg=f"{first_name} vs {name}")
