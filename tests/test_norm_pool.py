"""The fused BatchNorm2d -> ReLU / LeakyReLU -> MaxPool2d((k, 1)) node against PyTorch's three
layers, and the chart CNN with it against the same model run layer by layer."""

from __future__ import annotations

import numpy as np
import pytest

import convlab
from conftest import needs_torch, torch
from convlab import nn
from convlab._backend_base import BackendBase
from convlab._ops import norm_pool
from convlab.models import ChartCNN
from convlab.models import chart_cnn as chart_cnn_module

EPS = 1e-5


def _tolerance(dtype):
    # float32: torch.testing's own defaults; float64: tight
    return dict(rtol=1.3e-6, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)


def _layers(channels, slope, kernel, ceil_mode, dtype, device, momentum=0.1, **bn_kwargs):
    """Our three modules and PyTorch's, with the same (random, partly negative) affine
    parameters."""
    rng = np.random.default_rng(7)
    ours = [
        nn.BatchNorm2d(channels, momentum=momentum, **bn_kwargs),
        nn.ReLU() if slope == 0 else nn.LeakyReLU(slope),
        nn.MaxPool2d((kernel, 1), ceil_mode=ceil_mode),
    ]
    ours[0].to(dtype=dtype).to(device)
    theirs = [
        torch.nn.BatchNorm2d(channels, momentum=momentum, **bn_kwargs).to(torch.float64),
        torch.nn.ReLU() if slope == 0 else torch.nn.LeakyReLU(slope),
        torch.nn.MaxPool2d((kernel, 1), ceil_mode=ceil_mode),
    ]
    if dtype == np.float32:
        theirs[0].to(torch.float32)
    if ours[0].affine:
        w = rng.normal(size=channels).astype(dtype)
        w[0] = -abs(w[0]) - 0.5  # a negative gamma reverses the order the pool sees
        b = rng.uniform(-0.5, 0.5, channels).astype(dtype)
        with convlab.no_grad():
            ours[0].weight.copy_(convlab.tensor(w, device=device))
            if ours[0].bias is not None:
                ours[0].bias.copy_(convlab.tensor(b, device=device))
        with torch.no_grad():
            theirs[0].weight.copy_(torch.from_numpy(w))
            if theirs[0].bias is not None:
                theirs[0].bias.copy_(torch.from_numpy(b))
    return ours, theirs


def _run_ours(layers, x, g, device):
    xt = convlab.tensor(x, device=device, requires_grad=True)
    y = norm_pool.fused_norm_pool(*layers, xt)
    assert y is not None, "expected the fused node"
    (y * convlab.tensor(g, device=device)).sum().backward()
    return y, xt


def _run_torch(layers, x, g):
    xt = torch.tensor(x, requires_grad=True)
    y = layers[2](layers[1](layers[0](xt)))
    (y * torch.from_numpy(g)).sum().backward()
    return y, xt


def _numpy(t):
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


def _compare(ours, theirs, y, yt, xg, xgt, dtype, equal_nan=False):
    tol = _tolerance(dtype)
    np.testing.assert_allclose(_numpy(y), _numpy(yt), equal_nan=equal_nan, **tol)
    np.testing.assert_allclose(_numpy(xg), _numpy(xgt), equal_nan=equal_nan, **tol)
    bn, tbn = ours[0], theirs[0]
    if bn.affine:
        np.testing.assert_allclose(
            _numpy(bn.weight.grad), _numpy(tbn.weight.grad), equal_nan=equal_nan, **tol
        )
        assert (bn.bias is None) == (tbn.bias is None)
        if bn.bias is not None:
            np.testing.assert_allclose(
                _numpy(bn.bias.grad), _numpy(tbn.bias.grad), equal_nan=equal_nan, **tol
            )
    if bn.track_running_stats:
        for name in ("running_mean", "running_var"):
            np.testing.assert_allclose(
                _numpy(getattr(bn, name)), _numpy(getattr(tbn, name)), equal_nan=equal_nan, **tol
            )
        assert int(bn.num_batches_tracked.item()) == int(tbn.num_batches_tracked.item())


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    "kernel,ceil_mode,height",
    [(2, True, 7), (2, False, 7), (3, True, 8), (3, False, 8), (2, True, 6), (1, False, 3)],
    ids=["k2-ceil-odd", "k2-floor-odd", "k3-ceil", "k3-floor", "k2-even", "k1"],
)
@pytest.mark.parametrize("slope", [0.01, 0.0], ids=["leaky", "relu"])
def test_training_steps_match_torch(backend, threads, dtype, kernel, ceil_mode, height, slope, rng):
    ours, theirs = _layers(5, slope, kernel, ceil_mode, dtype, backend.name, momentum=0.3)
    out_h = -(-height // kernel) if ceil_mode else height // kernel
    for _ in range(2):  # the running statistics accumulate over steps
        # width 37: the CPU kernel's 16-output chunks, the last one overlapping
        x = (rng.normal(size=(6, 5, height, 37)) * 2 + 0.5).astype(dtype)
        g = rng.normal(size=(6, 5, out_h, 37)).astype(dtype)
        _zero_grads(ours, theirs)
        y, xt = _run_ours(ours, x, g, backend.name)
        yt, xtt = _run_torch(theirs, x, g)
        _compare(ours, theirs, y, yt, xt.grad, xtt.grad, dtype)


def _zero_grads(ours, theirs):
    for p in ours[0].parameters():
        p.grad = None
    for p in theirs[0].parameters():
        p.grad = None


def _set_running(theirs, ours):
    """PyTorch's batch norm given our running statistics."""
    with torch.no_grad():
        theirs[0].running_mean.copy_(torch.from_numpy(_numpy(ours[0].running_mean)))
        theirs[0].running_var.copy_(torch.from_numpy(_numpy(ours[0].running_var)))


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    "bn_kwargs,momentum",
    [
        ({}, None),
        ({"track_running_stats": False}, 0.1),
        ({"affine": False}, 0.1),
        ({"bias": False}, 0.2),
    ],
    ids=["cumulative", "untracked", "no-affine", "no-bias"],
)
def test_batch_norm_variants_match_torch(backend, dtype, bn_kwargs, momentum, rng):
    ours, theirs = _layers(4, 0.01, 2, True, dtype, backend.name, momentum, **bn_kwargs)
    for _ in range(3):
        x = rng.normal(size=(5, 4, 9, 7)).astype(dtype)
        g = rng.normal(size=(5, 4, 5, 7)).astype(dtype)
        _zero_grads(ours, theirs)
        y, xt = _run_ours(ours, x, g, backend.name)
        yt, xtt = _run_torch(theirs, x, g)
        _compare(ours, theirs, y, yt, xt.grad, xtt.grad, dtype)
    # evaluation mode: the running statistics (or, untracked, the batch's)
    ours[0].eval()
    theirs[0].eval()
    x = rng.normal(size=(5, 4, 9, 7)).astype(dtype)
    g = rng.normal(size=(5, 4, 5, 7)).astype(dtype)
    _zero_grads(ours, theirs)
    y, xt = _run_ours(ours, x, g, backend.name)
    yt, xtt = _run_torch(theirs, x, g)
    _compare(ours, theirs, y, yt, xt.grad, xtt.grad, dtype)


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("slope", [0.01, 0.0], ids=["leaky", "relu"])
@pytest.mark.parametrize("kernel", [2, 3])
@pytest.mark.parametrize("width", [6, 20])
def test_ties_go_where_torch_sends_them(backend, dtype, slope, kernel, width, rng):
    """Binary-chart-like input: few distinct values, so windows hold exact ties; each
    output's maximum row and the gradient's destination are PyTorch's (the first)."""
    ours, theirs = _layers(3, slope, kernel, True, dtype, backend.name)
    x = rng.integers(0, 3, size=(4, 3, 10, width)).astype(dtype)
    x[:, :, 4:7, :] = 1.0  # whole windows of equal values
    out_h = -(-10 // kernel)
    g = rng.normal(size=(4, 3, out_h, width)).astype(dtype)
    y, xt = _run_ours(ours, x, g, backend.name)
    yt, xtt = _run_torch(theirs, x, g)
    _compare(ours, theirs, y, yt, xt.grad, xtt.grad, dtype)
    # the code byte's rows against PyTorch's indices (where the gradient went)
    cpu_x = convlab.tensor(x, device=backend.name)
    with convlab.no_grad():
        stats = ours[0].running_mean._data, ours[0].running_var._data
        _, code, _, _ = backend.batch_norm_max_pool_forward(
            cpu_x._data, ours[0].weight._data, ours[0].bias._data, *stats, EPS, kernel, True, slope
        )
    theirs[0].eval()
    pooled, index = torch.nn.functional.max_pool2d(
        theirs[1](theirs[0](torch.from_numpy(x))), (kernel, 1), ceil_mode=True, return_indices=True
    )
    rows = index.numpy() // width - np.arange(out_h).reshape(1, 1, -1, 1) * kernel
    code = np.asarray(backend.to_numpy(code))
    # ReLU sends a zero gradient to any of its tied zeros; only positive maxima are pinned
    pinned = pooled.detach().numpy() > 0 if slope == 0 else np.ones(rows.shape, bool)
    assert pinned.any()
    np.testing.assert_array_equal((code & 0x7F)[pinned], rows[pinned])


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("slope", [0.01, 0.0], ids=["leaky", "relu"])
@pytest.mark.parametrize(
    "kernel,ceil_mode", [(2, True), (2, False), (3, True)], ids=["k2-ceil", "k2-floor", "k3"]
)
@pytest.mark.parametrize("width", [5, 18])
def test_nan_and_inf_inputs_match_torch(backend, dtype, slope, kernel, ceil_mode, width, rng):
    # evaluation mode: finite running statistics, so NaN / inf reach the pool one by one
    ours, theirs = _layers(4, slope, kernel, ceil_mode, dtype, backend.name)
    ours[0].eval()
    theirs[0].eval()
    with convlab.no_grad():
        ours[0].running_mean.copy_(convlab.tensor([0.5, -0.25, 0.0, 0.1], device=backend.name))
        ours[0].running_var.copy_(convlab.tensor([2.0, 0.5, 1.0, 1.5], device=backend.name))
    _set_running(theirs, ours)
    x = rng.normal(size=(3, 4, 7, width)).astype(dtype)
    x[0, 0, 0, 0] = np.nan  # NaN beside a finite value, either order
    x[0, 0, 3, 1] = np.nan
    x[1, 1, 2, 2], x[1, 1, 3, 2] = np.nan, np.nan  # two NaNs in one window
    x[2, 2, 4, 3] = np.inf
    x[2, 2, 5, 4] = -np.inf
    x[2, 3, 6, 0] = -np.inf  # the last row: a partial window (ceil) or no window (floor)
    out_h = -(-7 // kernel) if ceil_mode else 7 // kernel
    g = rng.normal(size=(3, 4, out_h, width)).astype(dtype)
    y, xt = _run_ours(ours, x, g, backend.name)
    yt, xtt = _run_torch(theirs, x, g)
    _compare(ours, theirs, y, yt, xt.grad, xtt.grad, dtype, equal_nan=True)
    # training: a NaN makes its channel's statistics NaN, the other channels stay finite
    ours, theirs = _layers(4, slope, kernel, ceil_mode, dtype, backend.name)
    x = rng.normal(size=(3, 4, 7, width)).astype(dtype)
    x[1, 1, 3, 3] = np.nan
    y, xt = _run_ours(ours, x, g, backend.name)
    yt, xtt = _run_torch(theirs, x, g)
    assert np.isfinite(_numpy(xt.grad)[:, 0]).all()
    _compare(ours, theirs, y, yt, xt.grad, xtt.grad, dtype, equal_nan=True)


def _cpu_fused(x, g, w, b, training):
    cpu = convlab.get_backend("cpu")
    stats = (None, None) if training else (np.zeros(x.shape[1]), np.ones(x.shape[1]))
    y, code, mean, var = cpu.batch_norm_max_pool_forward(x, w, b, *stats, EPS, 2, True, 0.01)
    grads = cpu.batch_norm_max_pool_backward(
        g, code, x, mean, 1 / np.sqrt(var + EPS), w, training, 2, True, 0.01
    )
    return [y, code, mean, var, *grads]


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_cpu_kernel_gives_the_same_bits_for_any_thread_count(isa, training, rng):
    x = rng.normal(size=(16, 7, 9, 41)).astype(np.float32)
    g = rng.normal(size=(16, 7, 5, 41)).astype(np.float32)
    w, b = rng.normal(size=7).astype(np.float32), rng.normal(size=7).astype(np.float32)
    results = []
    for threads in (1, 2):
        before = convlab.get_num_threads()
        convlab.set_num_threads(threads)
        try:
            results.append(_cpu_fused(x, g, w, b, training))
        finally:
            convlab.set_num_threads(before)
    for a, c in zip(*results):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("ceil_mode", [True, False], ids=["ceil", "floor"])
@pytest.mark.parametrize("slope", [0.01, 0.0], ids=["leaky", "relu"])
@pytest.mark.parametrize("kernel,width", [(3, 8), (2, 8), (2, 33), (1, 16)])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_cpu_kernel_matches_the_composed_default(
    isa, dtype, ceil_mode, slope, kernel, width, training, rng
):
    """The CPU override against BackendBase's composition of the unfused CPU kernels: the
    forward bit for bit (the same statistics and arithmetic), the gradients to rounding.
    Widths below and above the kernel's 16-output chunks, a multiple of them and not."""
    cpu = convlab.get_backend("cpu")
    x = rng.normal(size=(5, 6, 9, width)).astype(dtype)
    x[:, :, 2:4] = 0.5  # ties
    w, b = rng.normal(size=6).astype(dtype), rng.normal(size=6).astype(dtype)
    stats = (None, None) if training else (rng.normal(size=6), rng.uniform(0.5, 2, 6))
    y, code, mean, var = cpu.batch_norm_max_pool_forward(
        x, w, b, *stats, EPS, kernel, ceil_mode, slope
    )
    y2, code2 = np.empty_like(y), np.empty_like(code)
    mean2, var2 = (np.empty(6), np.empty(6)) if training else (mean.copy(), var.copy())
    BackendBase._batch_norm_max_pool_into(
        cpu, x, w, b, y2, code2, mean2, var2, training, EPS, kernel, ceil_mode, slope
    )
    for a, c in ((y, y2), (code, code2), (mean, mean2), (var, var2)):
        np.testing.assert_array_equal(a, c)
    g = rng.normal(size=y.shape).astype(dtype)
    invstd = 1 / np.sqrt(var + EPS)
    gx, gw, gb = cpu.batch_norm_max_pool_backward(
        g, code, x, mean, invstd, w, training, kernel, ceil_mode, slope
    )
    gx2, sum_g, sum_gx = np.empty_like(x), np.zeros(6), np.zeros(6)
    BackendBase._batch_norm_max_pool_backward_into(
        cpu, g, code, x, mean, invstd, w, gx2, sum_g, sum_gx, training, kernel, ceil_mode, slope
    )
    tol = _tolerance(dtype)
    np.testing.assert_allclose(gx, gx2, **tol)
    np.testing.assert_allclose(gw, sum_gx, **tol)
    np.testing.assert_allclose(gb, sum_g, **tol)


@needs_torch
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("slope", [0.01, 0.0], ids=["leaky", "relu"])
def test_backend_base_default_on_the_reference_backend(training, slope, rng):
    """BackendBase's composition (what the GPU and reference backends run) against PyTorch."""
    from reference_backend import ReferenceBackend

    ref = ReferenceBackend()
    x = rng.normal(size=(4, 3, 7, 5))
    x[:, :, 1:3] = 0.25
    w, b = rng.normal(size=3), rng.normal(size=3)
    w[1] = -1.5
    g = rng.normal(size=(4, 3, 4, 5))
    running = (rng.normal(size=3), rng.uniform(0.5, 2, 3))
    stats = (None, None) if training else running
    y, code, mean, var = ref.batch_norm_max_pool_forward(x, w, b, *stats, EPS, 2, True, slope)
    gx, gw, gb = ref.batch_norm_max_pool_backward(
        g, code, x, mean, 1 / np.sqrt(var + EPS), w, training, 2, True, slope
    )
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    rm, rv = (torch.tensor(a) for a in running)
    ty = torch.nn.functional.batch_norm(tx, rm, rv, tw, tb, training, 0.1, EPS)
    ty = torch.relu(ty) if slope == 0 else torch.nn.functional.leaky_relu(ty, slope)
    ty = torch.nn.functional.max_pool2d(ty, (2, 1), ceil_mode=True)
    ty.backward(torch.from_numpy(g))
    tol = _tolerance(np.float64)
    np.testing.assert_allclose(y, ty.detach().numpy(), **tol)
    np.testing.assert_allclose(gx, tx.grad.numpy(), **tol)
    np.testing.assert_allclose(gw, tw.grad.numpy(), **tol)
    np.testing.assert_allclose(gb, tb.grad.numpy(), **tol)


def test_operands_are_checked(backend):
    xp = backend.xp
    x = xp.zeros((2, 3, 4, 5), np.float32)
    w = xp.ones(3, np.float32)
    fwd = backend.batch_norm_max_pool_forward
    with pytest.raises(ValueError, match="kernel"):
        fwd(x, w, w, None, None, EPS, 128, True, 0.01)
    with pytest.raises(ValueError, match="kernel"):
        fwd(x, w, w, None, None, EPS, 0, True, 0.01)
    with pytest.raises(ValueError, match="slope"):
        fwd(x, w, w, None, None, EPS, 2, True, -0.5)
    with pytest.raises(ValueError, match="too small"):
        fwd(x, w, w, None, None, EPS, 5, False, 0.01)
    with pytest.raises(ValueError, match="x: expected"):
        fwd(x[0], w, w, None, None, EPS, 2, True, 0.01)
    y, code, mean, var = fwd(x, w, w, None, None, EPS, 3, True, 0.01)
    assert y.shape == code.shape == (2, 3, 2, 5)
    invstd = xp.ones(3)
    bwd = backend.batch_norm_max_pool_backward
    with pytest.raises(ValueError, match="grad: expected a float32 array of shape"):
        bwd(y[:, :, :1], code, x, mean, invstd, w, True, 3, True, 0.01)
    with pytest.raises(ValueError, match="code: expected a uint8 array"):
        bwd(y, code.astype(np.int32), x, mean, invstd, w, True, 3, True, 0.01)


def test_fusion_is_only_taken_for_the_plain_layers():
    x = convlab.randn(2, 3, 6, 4)
    bn, act, pool = nn.BatchNorm2d(3), nn.LeakyReLU(0.01), nn.MaxPool2d((2, 1))
    assert norm_pool.fused_norm_pool(bn, act, pool, x) is not None
    assert int(bn.num_batches_tracked.item()) == 1

    class MyReLU(nn.ReLU):
        pass

    refused = [
        (bn, nn.LeakyReLU(0.0), pool, x),  # x * 0, not max(x, 0)
        (bn, nn.LeakyReLU(-0.1), pool, x),  # not monotone: pooling first would be wrong
        (bn, MyReLU(), pool, x),
        (bn, act, nn.MaxPool2d((2, 2)), x),
        (bn, act, nn.MaxPool2d((2, 1), stride=1), x),
        (bn, act, nn.MaxPool2d((2, 1), padding=(1, 0)), x),
        (bn, act, nn.MaxPool2d((2, 1), return_indices=True), x),
        (nn.BatchNorm2d(4), act, pool, x),  # the module raises its own error
        (bn, act, pool, convlab.randn(2, 3, 6)),
        (bn, act, pool, convlab.randn(0, 3, 6, 4)),
        (bn, act, pool, convlab.randn(1, 3, 1, 1)),  # one value per channel
        (bn, act, nn.MaxPool2d((8, 1)), x),  # too small: the pool's error
    ]
    for args in refused:
        assert norm_pool.fused_norm_pool(*args) is None, args[:3]
    handle = act.register_forward_hook(lambda *a: None)
    assert norm_pool.fused_norm_pool(bn, act, pool, x) is None
    handle.remove()
    assert norm_pool.fused_norm_pool(bn, act, pool, x) is not None
    assert int(bn.num_batches_tracked.item()) == 2  # refusals left the statistics alone


def test_backward_after_an_in_place_change_is_refused():
    bn = nn.BatchNorm2d(3)
    x = convlab.randn(2, 3, 6, 4, requires_grad=True)
    y = norm_pool.fused_norm_pool(bn, nn.ReLU(), nn.MaxPool2d((2, 1)), x)
    with convlab.no_grad():
        bn.weight.mul_(2)
    with pytest.raises(RuntimeError, match="version"):
        y.sum().backward()


def _chart_run(model, images, fused, monkeypatch):
    # the chart CNN's switch on for the fused run, and the node refused for the layers' run
    monkeypatch.setattr(chart_cnn_module, "FUSE_NORM_POOL", fused)
    if not fused:
        monkeypatch.setattr(chart_cnn_module, "fused_norm_pool", lambda *a: None)
    else:
        monkeypatch.setattr(chart_cnn_module, "fused_norm_pool", norm_pool.fused_norm_pool)
    model.zero_grad()
    out = model(images)
    out[:, 1].sum().backward()
    grads = {name: p.grad.numpy().copy() for name, p in model.named_parameters()}
    stats = {name: b.numpy().copy() for name, b in model.named_buffers()}
    return out.detach().numpy(), grads, stats


@pytest.mark.parametrize("activation", ["leaky_relu", "relu"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_chart_cnn_fused_equals_the_layers(isa, activation, training, monkeypatch, rng):
    """The model with the fused node against the same model layer by layer: the forward
    (and the running statistics) bit for bit, every gradient to float32 rounding."""
    convlab.manual_seed(3)
    model = ChartCNN(20, channels=[8, 16, 16], activation=activation, dropout=0.0)
    model.train(training)
    images = convlab.tensor((rng.random((6, 1, 64, 60)) < 0.1).astype(np.float32))
    state = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    called = []
    original = norm_pool.fused_norm_pool

    def counting(*args):
        out = original(*args)
        called.append(out is not None)
        return out

    monkeypatch.setattr(norm_pool, "fused_norm_pool", counting)
    fused = _chart_run(model, images, True, monkeypatch)
    assert called == [True, True, True]
    model.load_state_dict({k: convlab.tensor(v) for k, v in state.items()})
    plain = _chart_run(model, images, False, monkeypatch)
    np.testing.assert_array_equal(fused[0], plain[0])
    for name in fused[2]:
        np.testing.assert_array_equal(fused[2][name], plain[2][name], err_msg=name)
    for name, grad in fused[1].items():
        scale = np.abs(plain[1][name]).max() + 1e-30
        np.testing.assert_allclose(grad, plain[1][name], rtol=1e-4, atol=1e-5 * scale, err_msg=name)
