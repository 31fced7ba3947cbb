"""Activations, channel / alpha dropout and their modules against PyTorch (CPU) as the oracle:
values and input gradients in float32 and float64 on each backend, the kinks' one-sided
gradients as PyTorch takes them, PReLU's weight gradient, the modules' reprs, dropout's masks
by their structure and statistics, and the error cases."""

from __future__ import annotations

import numpy as np
import pytest

import convlab
from conftest import needs_torch, torch

DTYPES = [np.float32, np.float64]


def F(lib):
    return lib.nn.functional


# id -> fn(L, x); inputs span both signs and the saturated tails
ACTIVATIONS = {
    "relu_inplace_flag": lambda L, x: F(L).relu(x, inplace=False),
    "relu6": lambda L, x: F(L).relu6(x),
    "hardtanh": lambda L, x: F(L).hardtanh(x),
    "hardtanh_range": lambda L, x: F(L).hardtanh(x, -2.5, 0.5),
    "elu": lambda L, x: F(L).elu(x),
    "elu_alpha": lambda L, x: F(L).elu(x, alpha=0.3),
    "selu": lambda L, x: F(L).selu(x),
    "celu": lambda L, x: F(L).celu(x),
    "celu_alpha": lambda L, x: F(L).celu(x, alpha=2.5),
    "gelu": lambda L, x: F(L).gelu(x),
    "gelu_tanh": lambda L, x: F(L).gelu(x, approximate="tanh"),
    "silu": lambda L, x: F(L).silu(x),
    "mish": lambda L, x: F(L).mish(x),
    "hardswish": lambda L, x: F(L).hardswish(x),
    "hardsigmoid": lambda L, x: F(L).hardsigmoid(x),
    "softplus": lambda L, x: F(L).softplus(x),
    "softplus_beta_threshold": lambda L, x: F(L).softplus(x, beta=2.0, threshold=3.0),
    "logsigmoid": lambda L, x: F(L).logsigmoid(x),
    "softsign": lambda L, x: F(L).softsign(x),
    "threshold": lambda L, x: F(L).threshold(x, 0.3, -4.0),
    "hardshrink": lambda L, x: F(L).hardshrink(x, 1.5),
    "softshrink": lambda L, x: F(L).softshrink(x),
    "tanhshrink": lambda L, x: F(L).tanhshrink(x),
    "softmin": lambda L, x: F(L).softmin(x, dim=2),
    "glu": lambda L, x: F(L).glu(x, dim=1),
    "glu_default_dim": lambda L, x: F(L).glu(x[..., :4]),
    "rrelu_eval": lambda L, x: F(L).rrelu(x, 0.1, 0.3),
    "leaky_relu_inplace_flag": lambda L, x: F(L).leaky_relu(x, 0.2, False),
    "softmax_dtype": lambda L, x: F(L).softmax(x, 1, dtype=L.float64),
    "log_softmax_dim0": lambda L, x: F(L).log_softmax(x, dim=0),
}


def _input(rng, dtype, shape=(3, 4, 5)):
    # wide range: the tails (softplus threshold, hardswish / hardsigmoid plateaus, exp
    # saturation) are exercised too
    return (rng.normal(size=shape) * 4).astype(dtype)


def _tolerance(dtype):
    return {"rtol": 2e-5, "atol": 2e-6} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-12}


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(ACTIVATIONS))
def test_activations_match_torch(backend, case, dtype):
    rng = np.random.default_rng(4)
    x = _input(rng, dtype)
    ox = convlab.tensor(x, device=backend.name, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    oy, ty = ACTIVATIONS[case](convlab, ox), ACTIVATIONS[case](torch, tx)
    assert oy.numpy().dtype == ty.detach().numpy().dtype
    np.testing.assert_allclose(oy.numpy(), ty.detach().numpy(), **_tolerance(dtype))
    g = rng.normal(size=tuple(ty.shape)).astype(ty.detach().numpy().dtype)
    oy.backward(convlab.tensor(g, device=backend.name))
    ty.backward(torch.tensor(g))
    assert ox.grad.numpy().dtype == dtype
    tolerance = _tolerance(dtype)
    if case == "hardsigmoid":
        # PyTorch's hardsigmoid backward multiplies by the float literal 1.0f / 6.0f even in
        # float64 (3e-8 off); convlab's 1/6 is the float64 one
        tolerance = {"rtol": 1e-7, "atol": 1e-12}
    np.testing.assert_allclose(ox.grad.numpy(), tx.grad.numpy(), **tolerance)


@needs_torch
@pytest.mark.parametrize(
    "case",
    [
        "relu6",
        "hardtanh",
        "hardswish",
        "hardsigmoid",
        "threshold",
        "elu",
        "celu",
        "hardshrink",
        "softshrink",
        "rrelu_eval",
    ],
)
def test_gradients_at_the_kinks_match_torch(case):
    x = np.array([-3.0, -1.0, 0.0, 0.3, 1.0, 3.0, 6.0, -6.0, 0.5, 1.5, -1.5])
    ox = convlab.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    ACTIVATIONS[case](convlab, ox).sum().backward()
    ACTIVATIONS[case](torch, tx).sum().backward()
    rtol = 1e-7 if case == "hardsigmoid" else 1e-12  # PyTorch's float 1/6, as above
    np.testing.assert_allclose(ox.grad.numpy(), tx.grad.numpy(), rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("case", ["gelu", "gelu_tanh", "mish", "selu", "softplus", "silu"])
def test_gradients_match_central_differences(case):
    x = np.random.default_rng(9).normal(size=(7,)) * 3
    ox = convlab.tensor(x, requires_grad=True)
    ACTIVATIONS[case](convlab, ox).sum().backward()
    eps = 1e-6
    with convlab.no_grad():
        up = ACTIVATIONS[case](convlab, convlab.tensor(x + eps)).numpy()
        down = ACTIVATIONS[case](convlab, convlab.tensor(x - eps)).numpy()
    np.testing.assert_allclose(ox.grad.numpy(), (up - down) / (2 * eps), rtol=1e-6, atol=1e-8)


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape, num", [((2, 3, 4, 5), 3), ((4, 3), 1), ((5,), 1), ((2, 4, 3), 4)])
def test_prelu_matches_torch(backend, shape, num, dtype):
    rng = np.random.default_rng(6)
    x = _input(rng, dtype, shape)
    ours = convlab.nn.PReLU(num, init=0.1).to(backend.name)
    theirs = torch.nn.PReLU(num, init=0.1)
    if dtype == np.float64:
        ours, theirs = ours.double(), theirs.double()
    w = rng.normal(size=num).astype(dtype)
    ours.weight._data[...] = convlab.tensor(w, device=backend.name)._data
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(w))
    ox = convlab.tensor(x, device=backend.name, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    oy, ty = ours(ox), theirs(tx)
    np.testing.assert_allclose(oy.numpy(), ty.detach().numpy(), **_tolerance(dtype))
    g = rng.normal(size=shape).astype(dtype)
    oy.backward(convlab.tensor(g, device=backend.name))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(ox.grad.numpy(), tx.grad.numpy(), **_tolerance(dtype))
    np.testing.assert_allclose(
        ours.weight.grad.numpy(),
        theirs.weight.grad.numpy(),
        rtol=1e-4 if dtype == np.float32 else 1e-10,
        atol=1e-5 if dtype == np.float32 else 1e-12,
    )


MODULES = {
    "ReLU6": lambda L: L.nn.ReLU6(),
    "ReLU6_inplace": lambda L: L.nn.ReLU6(inplace=True),
    "Hardtanh": lambda L: L.nn.Hardtanh(-2.0, 3.0),
    "ELU": lambda L: L.nn.ELU(alpha=0.5, inplace=True),
    "SELU": lambda L: L.nn.SELU(),
    "CELU": lambda L: L.nn.CELU(1.5),
    "GELU": lambda L: L.nn.GELU(),
    "GELU_tanh": lambda L: L.nn.GELU(approximate="tanh"),
    "SiLU": lambda L: L.nn.SiLU(inplace=True),
    "Mish": lambda L: L.nn.Mish(),
    "Hardswish": lambda L: L.nn.Hardswish(),
    "Hardsigmoid": lambda L: L.nn.Hardsigmoid(),
    "Softplus": lambda L: L.nn.Softplus(beta=0.5, threshold=10),
    "LogSigmoid": lambda L: L.nn.LogSigmoid(),
    "Softsign": lambda L: L.nn.Softsign(),
    "Threshold": lambda L: L.nn.Threshold(0.1, 20),
    "PReLU": lambda L: L.nn.PReLU(4),
    "Softmax2d": lambda L: L.nn.Softmax2d(),
    "Softmax_dim": lambda L: L.nn.Softmax(dim=-1),
    "LogSoftmax_dim": lambda L: L.nn.LogSoftmax(dim=1),
    "Unflatten": lambda L: L.nn.Unflatten(1, (2, 2)),
    "Identity": lambda L: L.nn.Identity(54, unused="x"),
    "Hardshrink": lambda L: L.nn.Hardshrink(2.0),
    "Softshrink": lambda L: L.nn.Softshrink(),
    "Tanhshrink": lambda L: L.nn.Tanhshrink(),
    "Softmin": lambda L: L.nn.Softmin(1),
    "GLU": lambda L: L.nn.GLU(1),
    "RReLU_eval": lambda L: L.nn.RReLU(0.2, 0.4, inplace=True).eval(),
}


@needs_torch
@pytest.mark.parametrize("name", list(MODULES))
def test_modules_match_torch(backend, name):
    rng = np.random.default_rng(8)
    ours, theirs = MODULES[name](convlab).to(backend.name), MODULES[name](torch)
    assert repr(ours) == repr(theirs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    x = _input(rng, np.float32, (2, 4, 3, 5))
    oy = ours(convlab.tensor(x, device=backend.name))
    ty = theirs(torch.tensor(x))
    assert tuple(oy.shape) == tuple(ty.shape)
    np.testing.assert_allclose(oy.numpy(), ty.detach().numpy(), rtol=2e-5, atol=2e-6)


@needs_torch
def test_softmax_without_dim_warns_and_picks_torch_dim():
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        ours = F(convlab).softmax(convlab.tensor(x))
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        theirs = F(torch).softmax(torch.tensor(x))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    with pytest.warns(UserWarning, match="log_softmax"):
        module_out = convlab.nn.LogSoftmax()(convlab.tensor(x))
    np.testing.assert_allclose(
        module_out.numpy(), F(torch).log_softmax(torch.tensor(x), 0), rtol=1e-6
    )


def test_rrelu_training_draws_slopes_in_range(backend):
    convlab.manual_seed(4)
    x = convlab.tensor(
        -np.random.default_rng(3).uniform(0.5, 2, (50, 40)), device=backend.name, requires_grad=True
    )
    x_pos = convlab.tensor(np.ones(3), device=backend.name)
    y = F(convlab).rrelu(x, 0.1, 0.3, training=True)
    slopes = y.numpy() / x.detach().numpy()
    assert slopes.min() >= 0.1 and slopes.max() <= 0.3 and slopes.std() > 0.04
    assert abs(slopes.mean() - 0.2) < 0.01
    y.backward(convlab.ones(50, 40, device=backend.name))
    np.testing.assert_allclose(x.grad.numpy(), slopes, rtol=1e-6)
    np.testing.assert_array_equal(F(convlab).rrelu(x_pos, training=True).numpy(), np.ones(3))


# ---------------------------------------------------------------------------------------------
# dropout variants: the masks cannot equal PyTorch's draws, so their structure and moments


@pytest.mark.parametrize(
    "fn, shape, mask_shape",
    [
        (lambda x: F(convlab).dropout2d(x, 0.4), (8, 16, 5, 6), (8, 16, 1, 1)),
        (lambda x: F(convlab).dropout1d(x, 0.4), (8, 16, 7), (8, 16, 1)),
        (lambda x: F(convlab).dropout1d(x, 0.4), (16, 7), (16, 1)),
        (lambda x: F(convlab).dropout3d(x, 0.4), (4, 16, 2, 3, 3), (4, 16, 1, 1, 1)),
        (lambda x: F(convlab).dropout3d(x, 0.4), (16, 2, 3, 3), (16, 1, 1, 1)),
        (lambda x: convlab.nn.Dropout2d(0.4)(x), (8, 16, 5, 6), (8, 16, 1, 1)),
        (lambda x: convlab.nn.Dropout1d(0.4)(x), (8, 16, 7), (8, 16, 1)),
        (lambda x: convlab.nn.Dropout3d(0.4)(x), (4, 16, 2, 3, 3), (4, 16, 1, 1, 1)),
    ],
)
def test_channel_dropout_zeroes_whole_channels(backend, fn, shape, mask_shape):
    convlab.manual_seed(0)
    x = convlab.tensor(
        np.random.default_rng(1).uniform(1, 2, shape), device=backend.name, requires_grad=True
    )
    y = fn(x)
    ratio = y.numpy() / x.detach().numpy()
    # every channel is either all zero or all scaled by 1 / (1 - p)
    per_channel = ratio.reshape(tuple(s for s in mask_shape if s != 1) + (-1,))
    assert np.allclose(per_channel.min(axis=-1), per_channel.max(axis=-1))
    assert set(np.round(np.unique(per_channel), 5)) <= {0.0, round(1 / 0.6, 5)}
    dropped = (per_channel[..., 0] == 0).mean()
    assert 0.15 < dropped < 0.65, dropped
    y.backward(convlab.ones(*shape, device=backend.name))
    np.testing.assert_allclose(x.grad.numpy(), ratio, rtol=1e-6)


def test_channel_dropout_eval_and_p_edges_are_identity_or_zero():
    x = convlab.randn(2, 3, 4, 4)
    module = convlab.nn.Dropout2d(0.5).eval()
    np.testing.assert_array_equal(module(x).numpy(), x.numpy())
    np.testing.assert_array_equal(F(convlab).dropout2d(x, 0.0).numpy(), x.numpy())
    np.testing.assert_array_equal(F(convlab).dropout2d(x, 1.0).numpy(), np.zeros((2, 3, 4, 4)))
    np.testing.assert_array_equal(F(convlab).dropout2d(x, 0.7, training=False).numpy(), x.numpy())


def test_channel_dropout_follows_manual_seed():
    x = convlab.ones(4, 8, 3, 3)
    convlab.manual_seed(3)
    a = F(convlab).dropout2d(x, 0.5).numpy()
    convlab.manual_seed(3)
    b = F(convlab).dropout2d(x, 0.5).numpy()
    np.testing.assert_array_equal(a, b)


@needs_torch
def test_dropout2d_warns_on_3d_input_like_torch():
    with pytest.warns(UserWarning, match="assuming that channel-wise 1D dropout"):
        y = F(convlab).dropout2d(convlab.ones(4, 6, 5), 0.5)
    ratio = y.numpy()
    assert np.allclose(ratio.min(axis=-1), ratio.max(axis=-1))  # channels of (N, C, L)
    with pytest.warns(UserWarning, match="assuming that channel-wise 1D dropout"):
        torch.nn.functional.dropout2d(torch.ones(4, 6, 5), 0.5)


def test_alpha_dropout_keeps_selu_moments_and_maps_dropped_to_saturation(backend):
    convlab.manual_seed(1)
    p = 0.2
    x = convlab.tensor(
        np.random.default_rng(2).normal(size=(200, 500)), device=backend.name, requires_grad=True
    )
    y = F(convlab).alpha_dropout(x, p, training=True)
    out = y.numpy()
    assert abs(out.mean()) < 0.02 and abs(out.std() - 1) < 0.02
    alpha = 1.7580993408473766
    a = 1 / np.sqrt((alpha**2 * p + 1) * (1 - p))
    kept = np.isclose(out, x.detach().numpy() * a + alpha * a * p)
    dropped = np.isclose(out, -alpha * a + alpha * a * p)
    assert (kept | dropped).all()
    assert abs(dropped.mean() - p) < 0.01
    y.backward(convlab.ones(200, 500, device=backend.name))
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept, a, 0.0), rtol=1e-12)
    np.testing.assert_array_equal(
        convlab.nn.AlphaDropout(0.5).eval()(x).numpy(), x.detach().numpy()
    )
    np.testing.assert_array_equal(F(convlab).alpha_dropout(x, 0.5).numpy(), x.detach().numpy())


@needs_torch
@pytest.mark.parametrize("name", ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout"])
def test_dropout_reprs_match_torch(name):
    assert repr(getattr(convlab.nn, name)(0.3)) == repr(getattr(torch.nn, name)(0.3))
    assert repr(getattr(convlab.nn, name)(0.3, True)) == repr(getattr(torch.nn, name)(0.3, True))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: F(convlab).hardtanh(convlab.zeros(2), 1.0, -1.0), ValueError, "max_val"),
        (lambda: convlab.nn.Hardtanh(1.0, -1.0), ValueError, "max_val"),
        (lambda: F(convlab).gelu(convlab.zeros(2), approximate="fast"), ValueError, "approx"),
        (lambda: F(convlab).celu(convlab.zeros(2), alpha=0.0), ValueError, "alpha"),
        (lambda: F(convlab).silu(convlab.tensor([1, 2])), TypeError, "floating"),
        (lambda: F(convlab).prelu(convlab.zeros(2, 3), convlab.zeros(2)), ValueError, "weight"),
        (
            lambda: F(convlab).prelu(convlab.zeros(2, 3), convlab.zeros(3, 1)),
            ValueError,
            "1-D",
        ),
        (lambda: convlab.nn.Softmax2d()(convlab.zeros(2, 3)), ValueError, "3D or 4D"),
        (lambda: F(convlab).dropout2d(convlab.zeros(2, 3, 4, 4), 1.5), ValueError, "p"),
        (lambda: F(convlab).dropout1d(convlab.zeros(2, 3, 4, 4)), ValueError, "3D"),
        (lambda: F(convlab).alpha_dropout(convlab.zeros(2), -0.1), ValueError, "p"),
        (lambda: convlab.nn.Dropout2d(2.0), ValueError, "probability"),
        (lambda: convlab.nn.Unflatten(1, 4), TypeError, "unflattened_size"),
        (lambda: F(convlab).glu(convlab.zeros(2, 3)), RuntimeError, "even"),
        (lambda: F(convlab).softshrink(convlab.zeros(2), -1.0), ValueError, "lambd"),
        (lambda: F(convlab).rrelu(convlab.zeros(2), 0.5, 0.1), ValueError, "lower"),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
