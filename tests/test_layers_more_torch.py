"""max_pool2d(return_indices=True), max_unpool2d / 1d, unfold / fold, local_response_norm,
channel_shuffle and bilinear (functional and modules) against PyTorch: values, indices,
gradients (torch autograd), float32 and float64, every backend; reprs and error types."""

from __future__ import annotations

import numpy as np
import pytest

import convlab
from conftest import needs_torch, torch
from convlab import nn
from convlab._ops.unpool import max_pool1d_with_indices

pytestmark = needs_torch

TOL = {np.float32: 3e-5, np.float64: 1e-12}


def _check(backend, name, arrays, dtype, grads=None, module=None, **kw):
    """Run ``name`` from both libraries (functional, or the ``module`` factory) on
    ``arrays`` and compare the output and the gradients of the float inputs."""
    grads = range(len(arrays)) if grads is None else grads
    results = []
    for lib in (convlab, torch):
        if lib is convlab:
            ts = [
                convlab.tensor(a, device=backend.name, requires_grad=i in grads)
                for i, a in enumerate(arrays)
            ]
        else:
            ts = [torch.tensor(a, requires_grad=i in grads) for i, a in enumerate(arrays)]
        fn = module(lib) if module else getattr(lib.nn.functional, name)
        out = fn(*ts, **kw)
        seed = np.random.default_rng(5).standard_normal(tuple(out.shape)).astype(dtype)
        weight = convlab.tensor(seed, device=backend.name) if lib is convlab else torch.tensor(seed)
        (out * weight).sum().backward()
        results.append([_np(backend, out.detach())] + [_np(backend, ts[i].grad) for i in grads])
    for ours, theirs in zip(*results):
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        np.testing.assert_allclose(ours, theirs, rtol=TOL[dtype], atol=TOL[dtype])


def _np(backend, t):
    if isinstance(t, convlab.Tensor):
        return backend.to_numpy(t._data)
    return t.numpy()


POOLS = [
    ((2, 3, 8, 8), dict(kernel_size=2)),
    ((2, 3, 9, 7), dict(kernel_size=3, stride=2, padding=1)),
    ((1, 2, 10, 9), dict(kernel_size=(3, 2), stride=(1, 2), dilation=(2, 1))),
    ((2, 2, 9, 9), dict(kernel_size=2, stride=2, ceil_mode=True)),
    ((3, 7, 6), dict(kernel_size=3, stride=2)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kw", POOLS)
def test_max_pool2d_return_indices(backend, shape, kw, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    cx = convlab.tensor(x, device=backend.name, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    out, idx = convlab.nn.functional.max_pool2d(cx, return_indices=True, **kw)
    t_out, t_idx = torch.nn.functional.max_pool2d(tx, return_indices=True, **kw)
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(_np(backend, idx), t_idx.numpy())
    np.testing.assert_array_equal(_np(backend, out.detach()), t_out.detach().numpy())
    out.sum().backward()
    t_out.sum().backward()
    np.testing.assert_array_equal(_np(backend, cx.grad), tx.grad.numpy())
    plain = convlab.nn.functional.max_pool2d(cx, **kw)  # the plain path is unchanged
    np.testing.assert_array_equal(_np(backend, plain.detach()), t_out.detach().numpy())


@pytest.mark.parametrize(
    "shape, kw",
    [
        ((2, 3, 13), dict(kernel_size=2)),
        ((2, 3, 13), dict(kernel_size=3, stride=2, padding=1)),
        ((3, 12), dict(kernel_size=(3,), stride=(1,), dilation=2, ceil_mode=True)),
    ],
)
def test_max_pool1d_return_indices(backend, shape, kw):
    x = np.random.default_rng(12).standard_normal(shape)
    cx = convlab.tensor(x, device=backend.name, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    # the helper F.max_pool1d(return_indices=True) is to call (it refuses the flag for now)
    out, idx = max_pool1d_with_indices(cx, **kw)
    t_out, t_idx = torch.nn.functional.max_pool1d(tx, return_indices=True, **kw)
    np.testing.assert_array_equal(_np(backend, idx), t_idx.numpy())
    np.testing.assert_array_equal(_np(backend, out.detach()), t_out.detach().numpy())
    out.sum().backward()
    t_out.sum().backward()
    np.testing.assert_array_equal(_np(backend, cx.grad), tx.grad.numpy())


UNPOOLS = [
    ((2, 3, 8, 8), dict(kernel_size=2), None),
    ((2, 3, 9, 7), dict(kernel_size=3, stride=2, padding=1), (9, 7)),
    ((2, 3, 9, 7), dict(kernel_size=3, stride=2, padding=1), (2, 3, 10, 8)),
    ((3, 8, 6), dict(kernel_size=2, stride=2), None),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kw, size", UNPOOLS)
def test_max_unpool2d_matches_torch(backend, shape, kw, size, dtype):
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    pooled, idx = torch.nn.functional.max_pool2d(torch.tensor(x), return_indices=True, **kw)
    results = []
    for lib in (convlab, torch):
        dev = dict(device=backend.name) if lib is convlab else {}
        p = lib.tensor(pooled.numpy(), requires_grad=True, **dev)
        i = lib.tensor(idx.numpy(), **dev)
        fn = lib.nn.functional.max_unpool2d(p, i, output_size=size, **kw)
        mod = lib.nn.MaxUnpool2d(**kw)(p, i, size)
        seed = np.random.default_rng(2).standard_normal(tuple(fn.shape)).astype(dtype)
        (fn * lib.tensor(seed, **dev)).sum().backward()
        results.append(
            [_np(backend, fn.detach()), _np(backend, mod.detach()), _np(backend, p.grad)]
        )
    for ours, theirs in zip(*results):
        assert ours.shape == theirs.shape
        np.testing.assert_array_equal(ours, theirs)


def test_pool_unpool_round_trip_module():
    x = np.random.default_rng(3).standard_normal((2, 3, 7, 7))
    out, idx = nn.MaxPool2d(3, 2, 1, return_indices=True)(convlab.tensor(x))
    t_out, t_idx = torch.nn.MaxPool2d(3, 2, 1, return_indices=True)(torch.tensor(x))
    np.testing.assert_array_equal(out.numpy(), t_out.numpy())
    np.testing.assert_array_equal(idx.numpy(), t_idx.numpy())
    assert repr(nn.MaxPool2d(3, return_indices=True)) == repr(
        torch.nn.MaxPool2d(3, return_indices=True)
    )
    np.testing.assert_array_equal(
        nn.MaxUnpool2d(3, 2, 1)(out, idx, output_size=(7, 7)).numpy(),
        torch.nn.MaxUnpool2d(3, 2, 1)(t_out, t_idx, output_size=(7, 7)).numpy(),
    )


@pytest.mark.parametrize(
    "kw, size", [(dict(kernel_size=2), None), (dict(kernel_size=3, stride=2), [13])]
)
def test_max_unpool1d_matches_torch(kw, size):
    x = np.random.default_rng(4).standard_normal((2, 3, 13))
    pooled, idx = torch.nn.functional.max_pool1d(torch.tensor(x), return_indices=True, **kw)
    c_pooled, c_idx = max_pool1d_with_indices(convlab.tensor(x), **kw)
    ours = convlab.nn.functional.max_unpool1d(c_pooled, c_idx, output_size=size, **kw)
    mod = nn.MaxUnpool1d(**kw)(c_pooled, c_idx, size)
    theirs = torch.nn.functional.max_unpool1d(pooled, idx, output_size=size, **kw)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_array_equal(mod.numpy(), theirs.numpy())


FOLDS = [
    ((2, 3, 7, 8), dict(kernel_size=3)),
    ((2, 2, 7, 8), dict(kernel_size=(2, 3), stride=2, padding=1, dilation=(1, 2))),
    ((3, 6, 5), dict(kernel_size=2, stride=(1, 2))),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kw", FOLDS)
def test_unfold_and_fold_match_torch(backend, shape, kw, dtype):
    x = np.random.default_rng(5).standard_normal(shape).astype(dtype)
    _check(backend, "unfold", [x], dtype, **kw)
    _check(backend, "unfold", [x], dtype, module=lambda lib: lib.nn.Unfold(**kw))
    cols = torch.nn.functional.unfold(torch.tensor(x), **kw).numpy()
    size = shape[-2:]
    _check(backend, "fold", [cols], dtype, output_size=size, **kw)
    _check(backend, "fold", [cols], dtype, module=lambda lib: lib.nn.Fold(size, **kw))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape, kw",
    [
        ((2, 7, 4, 5), dict(size=5)),
        ((2, 6, 9), dict(size=2, alpha=0.1, beta=0.5, k=2.0)),
        ((1, 5, 2, 3, 4), dict(size=3, alpha=1.0)),
        ((2, 3, 4, 4), dict(size=8, alpha=0.5, beta=1.5)),
    ],
)
def test_local_response_norm_matches_torch(backend, shape, kw, dtype):
    x = np.random.default_rng(6).standard_normal(shape).astype(dtype)
    _check(backend, "local_response_norm", [x], dtype, **kw)
    _check(
        backend,
        "local_response_norm",
        [x],
        dtype,
        module=lambda lib: lib.nn.LocalResponseNorm(**kw),
    )


@pytest.mark.parametrize("shape, groups", [((2, 6, 3, 3), 3), ((2, 8, 5), 2), ((1, 4, 2, 2, 2), 4)])
def test_channel_shuffle_matches_torch(backend, shape, groups):
    x = np.random.default_rng(7).standard_normal(shape)
    _check(backend, "channel_shuffle", [x], np.float64, groups=groups)
    _check(
        backend,
        "channel_shuffle",
        [x],
        np.float64,
        module=lambda lib: lib.nn.ChannelShuffle(groups),
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lead", [(4,), (2, 3), ()])
@pytest.mark.parametrize("with_bias", [True, False])
def test_bilinear_matches_torch(backend, lead, with_bias, dtype):
    rng = np.random.default_rng(8)
    arrays = [
        rng.standard_normal(lead + (5,)).astype(dtype),
        rng.standard_normal(lead + (3,)).astype(dtype),
        rng.standard_normal((6, 5, 3)).astype(dtype),
    ]
    if with_bias:
        arrays.append(rng.standard_normal(6).astype(dtype))
    _check(backend, "bilinear", arrays, dtype)


def test_bilinear_module_parameters_and_repr():
    convlab.manual_seed(0)
    layer = nn.Bilinear(4, 3, 2)
    assert layer.weight.shape == (2, 4, 3) and layer.bias.shape == (2,)
    bound = 1 / np.sqrt(4)
    for p in (layer.weight, layer.bias):
        values = p.detach().numpy()
        assert values.min() >= -bound and values.max() <= bound and values.std() > 0.1
    assert repr(layer) == repr(torch.nn.Bilinear(4, 3, 2))
    assert nn.Bilinear(4, 3, 2, bias=False).bias is None
    x1, x2 = convlab.randn(7, 4), convlab.randn(7, 3)
    ref = torch.nn.functional.bilinear(
        torch.tensor(x1.numpy()),
        torch.tensor(x2.numpy()),
        torch.tensor(layer.weight.detach().numpy()),
        torch.tensor(layer.bias.detach().numpy()),
    )
    np.testing.assert_allclose(layer(x1, x2).detach().numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda lib: lib.nn.LocalResponseNorm(3, alpha=0.5),
        lambda lib: lib.nn.ChannelShuffle(3),
        lambda lib: lib.nn.Unfold(2, padding=1),
        lambda lib: lib.nn.Fold((4, 5), (2, 2), stride=2),
        lambda lib: lib.nn.MaxUnpool2d((2, 3), 1, padding=1),
        lambda lib: lib.nn.MaxUnpool1d(3),
    ],
)
def test_reprs_match_torch(make):
    assert repr(make(convlab)) == repr(make(torch))


ERRORS = [
    (lambda L: L.nn.functional.local_response_norm(L.zeros(2, 3), 2), ValueError),
    (lambda L: L.nn.functional.channel_shuffle(L.zeros(1, 6, 2, 2), 4), RuntimeError),
    (lambda L: L.nn.functional.channel_shuffle(L.zeros(6, 2), 2), RuntimeError),
    (lambda L: L.nn.functional.fold(L.zeros(1, 10, 4), (5, 5), 3), RuntimeError),
    (lambda L: L.nn.functional.fold(L.zeros(1, 9, 5), (5, 5), 3), RuntimeError),
    (
        lambda L: L.nn.functional.bilinear(L.zeros(4, 5), L.zeros(4, 3), L.zeros(6, 5, 2)),
        RuntimeError,
    ),
    (
        lambda L: L.nn.functional.max_unpool2d(
            L.zeros(1, 1, 2, 2), L.tensor([[[[0, 1], [2, 99]]]]), 2
        ),
        RuntimeError,
    ),
    (
        lambda L: L.nn.functional.max_unpool2d(
            L.zeros(1, 1, 2, 2), L.zeros(1, 1, 2, 2, dtype=L.int64), 2, output_size=(7, 7)
        ),
        ValueError,
    ),
]


@pytest.mark.parametrize("make, error", ERRORS)
def test_errors_match_torch_types(make, error):
    for lib in (convlab, torch):
        with pytest.raises(error):
            make(lib)


LAZY = [
    ("LazyLinear", "Linear", (5,), (3, 5), (4, 3)),
    ("LazyLinear", "Linear", (2,), (7, 2), (2, 3, 7)),
    ("LazyConv2d", "Conv2d", (4, 3), (6, 4, 3), (2, 6, 5, 5)),
    ("LazyConv2d", "Conv2d", (4, 3), (6, 4, 3), (6, 5, 5)),
    ("LazyConv1d", "Conv1d", (4, 3), (6, 4, 3), (2, 6, 9)),
]


@pytest.mark.parametrize("lazy, plain, args, plain_args, shape", LAZY)
def test_lazy_layers_become_plain_ones_like_torch(lazy, plain, args, plain_args, shape):
    kw = dict(groups=2) if "Conv" in lazy else {}
    x = np.random.default_rng(10).standard_normal(shape).astype(np.float32)
    modules = {}
    for lib, seed in ((convlab, convlab.manual_seed), (torch, torch.manual_seed)):
        module = getattr(lib.nn, lazy)(*args, **kw)
        assert repr(module).startswith(lazy)
        seed(0)
        reference = getattr(lib.nn, plain)(*plain_args, **kw)
        seed(0)  # nothing is drawn until the first call: the same values as the plain layer
        out = module(lib.tensor(x))
        assert type(module).__name__ == plain
        modules[lib] = (module, out)
        np.testing.assert_array_equal(
            module.weight.detach().numpy(), reference.weight.detach().numpy()
        )
        np.testing.assert_array_equal(module.bias.detach().numpy(), reference.bias.detach().numpy())
    (ours, out), (theirs, t_out) = modules[convlab], modules[torch]
    assert repr(ours) == repr(theirs)
    assert tuple(out.shape) == tuple(t_out.shape)
    theirs.weight.data = torch.tensor(ours.weight.detach().numpy())
    theirs.bias.data = torch.tensor(ours.bias.detach().numpy())
    np.testing.assert_allclose(
        ours(convlab.tensor(x)).detach().numpy(),
        theirs(torch.tensor(x)).detach().numpy(),
        rtol=1e-5,
        atol=1e-5,
    )


def test_lazy_parameter_is_updated_by_an_earlier_optimizer():
    layer = nn.LazyLinear(2)
    opt = convlab.optim.SGD(layer.parameters(), lr=0.5)
    x = convlab.ones(1, 3)
    layer(x).sum().backward()
    before = layer.weight.detach().numpy().copy()
    opt.step()
    np.testing.assert_allclose(layer.weight.detach().numpy(), before - 0.5, rtol=1e-6)


def test_lazy_conv_groups_must_divide_the_input_channels():
    for lib in (convlab, torch):
        with pytest.raises(ValueError):
            lib.nn.LazyConv2d(4, 3, groups=2)(lib.zeros(1, 3, 5, 5))
