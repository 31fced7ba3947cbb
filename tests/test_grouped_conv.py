"""Grouped and depthwise convolution (``groups > 1``) against PyTorch: values, the input,
weight and bias gradients, float32 and float64, on every backend; the checks and messages."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import convlab
import convlab.nn.functional as F
from conftest import needs_gpu, needs_torch, torch
from convlab import nn

DTYPES = [np.float32, np.float64]

# (N, C, H, W, O, groups, kernel, stride, padding, dilation)
CASES = {
    # MobileNetV2 (CIFAR): depthwise 3x3, stride 1 and 2, multiplier 1
    "mbv2-dw32-s1": (2, 32, 32, 32, 32, 32, 3, 1, 1, 1),
    "mbv2-dw96-s2": (2, 96, 32, 32, 96, 96, 3, 2, 1, 1),
    "mbv2-dw144-s1": (2, 144, 16, 16, 144, 144, 3, 1, 1, 1),
    "mbv2-dw192-s2": (2, 192, 16, 16, 192, 192, 3, 2, 1, 1),
    "mbv2-dw384-s1": (1, 384, 8, 8, 384, 384, 3, 1, 1, 1),
    "mbv2-dw576-s2": (1, 576, 8, 8, 576, 576, 3, 2, 1, 1),
    "mbv2-dw960-s1": (1, 960, 4, 4, 960, 960, 3, 1, 1, 1),
    # channel multiplier 2 (each input channel feeds two outputs)
    "dw-mult2": (2, 16, 9, 11, 32, 16, 3, 1, 1, 1),
    "dw-mult2-s2": (2, 8, 10, 9, 16, 8, 3, 2, 1, 1),
    # EfficientNet's 5x5 depthwise, stride 2
    "dw5x5-s2": (2, 24, 15, 15, 24, 24, 5, 2, 2, 1),
    # ResNeXt29 (CIFAR): groups 32, 4 and 8 channels per group
    "resnext-g32x4": (2, 128, 16, 16, 128, 32, 3, 1, 1, 1),
    "resnext-g32x8-s2": (2, 256, 16, 16, 256, 32, 3, 2, 1, 1),
    # ShuffleNet: grouped 1x1 (groups 2 and 3), and a depthwise 3x3 stride 2
    "shufflenet-1x1-g3": (2, 24, 8, 8, 60, 3, 1, 1, 0, 1),
    "shufflenet-1x1-g2": (2, 16, 8, 8, 32, 2, 1, 1, 0, 1),
    "shufflenet-dw-s2": (2, 58, 16, 16, 58, 58, 3, 2, 1, 1),
    # odd sizes, dilation, asymmetric kernel / stride / padding, no padding
    "odd-dilated": (3, 6, 13, 11, 9, 3, (3, 2), (2, 1), (2, 0), (2, 3)),
    "dw-dilated": (2, 5, 12, 7, 5, 5, 3, 1, 2, 2),
    "dw-stride3-pad0": (2, 4, 11, 13, 8, 4, (2, 3), 3, 0, 1),
    "dw-1x1": (2, 7, 5, 6, 7, 7, 1, 1, 0, 1),
    "dw-wide-kernel": (1, 3, 6, 20, 3, 3, (1, 7), 1, (0, 3), 1),
    # 7 outputs per group: the direct kernels' blocks of 4, 2 and 1 output channels
    "mixed-og7": (2, 6, 9, 9, 14, 2, 3, 1, 1, 1),
    "mixed-og7-s2": (2, 6, 10, 9, 14, 2, 3, 2, 1, 1),
    # channels-last depthwise path (<= 64 pixels): odd geometry, and 1x1 planes
    "dw-cl-odd": (2, 5, 7, 9, 5, 5, (3, 2), (2, 1), (1, 0), (1, 2)),
    "dw-cl-1x1-plane": (3, 16, 1, 1, 16, 16, 3, 1, 1, 1),
    # planes past 64 pixels with 64+ channels: channels-last too (odd sizes, 5x5, stride 2)
    "dw-cl-wide-odd": (2, 70, 13, 15, 70, 70, 5, 2, 2, 1),
    # channel and pixel counts off the transposes' 8 x 8 blocks
    "dw-cl-edges": (2, 37, 5, 7, 37, 37, 3, 1, 1, 1),
    # stride 2 over even widths (one deinterleaving pass per row), even and odd padding
    "g3x4-s2-even-pad2": (2, 12, 10, 12, 12, 3, 3, 2, 2, 1),
    "dw-s2-even-pad0": (2, 9, 11, 14, 9, 9, 3, 2, 0, 1),
    # planes of at most 16 pixels: AVX-512's one-register kernel (forward), edges and strides
    "dw-tiny-s2": (2, 13, 3, 5, 13, 13, 3, 2, 1, 1),
    "dw-tiny-dilated": (2, 17, 4, 4, 17, 17, 3, 1, 2, 2),
    "dw-tiny-row": (3, 9, 1, 16, 9, 9, (1, 3), 1, (0, 1), 1),
    "dw-tiny-5x5": (2, 70, 4, 4, 70, 70, 5, 1, 2, 1),
    # 32 / 16 channels per group x 3x3 = 288 / 144 taps, 16 outputs per group: the CPU's
    # direct kernels past their 72 taps (few outputs per group)
    "wide-groups-direct": (2, 64, 8, 8, 32, 2, 3, 1, 1, 1),
    "wide-groups-direct-s2": (2, 48, 9, 9, 48, 3, 3, 2, 1, 1),
    # the CPU's batched-GEMM path: 64 outputs per group (3x3), a 1x1 group of 80 taps, a 5x5
    # group of 900 taps
    "groups-gemm-og64": (2, 128, 7, 6, 128, 2, 3, 1, 1, 1),
    "groups-gemm-1x1": (2, 160, 6, 5, 96, 2, 1, 1, 0, 1),
    "groups-gemm-5x5-s2": (2, 72, 9, 8, 72, 2, 5, 2, 2, 1),
}


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


def _make(case, dtype, seed=0):
    n, c, h, w, o, g, k, *_ = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = rng.standard_normal((o, c // g) + _pair(k)).astype(dtype)
    bias = rng.standard_normal(o).astype(dtype)
    return x, weight, bias


def _tolerance(dtype, terms):
    # a terms-long sum of O(1) products: relative rounding grows with it
    return (2e-5 if dtype == np.float32 else 1e-12) * max(terms, 1) ** 0.5


def _run_both(case, dtype, device, with_bias=True):
    n, c, h, w, o, g, k, s, p, d = case
    x, weight, bias = _make(case, dtype)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(weight, requires_grad=True)
    tb = torch.tensor(bias, requires_grad=True) if with_bias else None
    ty = torch.nn.functional.conv2d(tx, tw, tb, s, p, d, g)
    gy = np.random.default_rng(1).standard_normal(tuple(ty.shape)).astype(dtype)
    ty.backward(torch.tensor(gy))
    cx = convlab.tensor(x, device=device, requires_grad=True)
    cw = convlab.tensor(weight, device=device, requires_grad=True)
    cb = convlab.tensor(bias, device=device, requires_grad=True) if with_bias else None
    cy = F.conv2d(cx, cw, cb, s, p, d, g)
    cy.backward(convlab.tensor(gy, device=device))
    pairs = [(cy, ty), (cx.grad, tx.grad), (cw.grad, tw.grad)]
    if with_bias:
        pairs.append((cb.grad, tb.grad))
    return pairs


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(CASES))
def test_values_and_gradients_match_torch(backend, name, dtype):
    case = CASES[name]
    n, c, h, w, o, g, k, *_ = case
    kh, kw = _pair(k)
    pairs = _run_both(case, dtype, backend.name)
    out_hw = tuple(pairs[0][1].shape[2:])
    # the longest sum: the weight gradient's N*OH*OW, the forward's C/g*KH*KW
    terms = max(n * out_hw[0] * out_hw[1], c // g * kh * kw, o // g * kh * kw)
    for ours, theirs in pairs:
        got = np.asarray(backend.to_numpy(ours._data))
        want = theirs.detach().numpy()
        assert got.dtype == want.dtype
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got, want, rtol=0, atol=_tolerance(dtype, terms) * scale)


@needs_torch
@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
def test_module_matches_torch_depthwise_and_grouped(backend, with_bias):
    for cin, cout, groups, stride in [(16, 32, 16, 2), (32, 64, 8, 1)]:
        ours = nn.Conv2d(cin, cout, 3, stride, 1, groups=groups, bias=with_bias).to(backend.name)
        theirs = torch.nn.Conv2d(cin, cout, 3, stride, 1, groups=groups, bias=with_bias).double()
        assert tuple(ours.weight.shape) == tuple(theirs.weight.shape) == (cout, cin // groups, 3, 3)
        ours.double()
        with torch.no_grad():
            ours.weight.data.copy_(convlab.tensor(theirs.weight.numpy(), device=backend.name))
            if with_bias:
                ours.bias.data.copy_(convlab.tensor(theirs.bias.numpy(), device=backend.name))
        x = np.random.default_rng(3).standard_normal((2, cin, 9, 9))
        y = ours(convlab.tensor(x, device=backend.name))
        want = theirs(torch.tensor(x)).detach().numpy()
        np.testing.assert_allclose(backend.to_numpy(y._data), want, rtol=0, atol=1e-12)
        assert f"groups={groups}" in repr(ours)


@needs_torch
def test_default_init_fan_in_counts_one_group():
    # PyTorch's fan_in is in_channels / groups * KH * KW: bound 1/sqrt(fan_in) for the bias
    convlab.manual_seed(0)
    conv = nn.Conv2d(64, 64, 3, groups=64)
    bound = 1 / np.sqrt(9)
    b = conv.bias.detach().numpy()
    assert np.all(np.abs(b) <= bound) and np.abs(b).max() > 0.5 * bound
    w = conv.weight.detach().numpy()
    assert np.all(np.abs(w) <= bound) and np.abs(w).max() > 0.5 * bound


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_conv1d_groups_matches_torch(backend, dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 12, 17)).astype(dtype)
    w = rng.standard_normal((18, 4, 3)).astype(dtype)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = torch.nn.functional.conv1d(tx, tw, None, 2, 1, 1, 3)
    ty.sum().backward()
    cx = convlab.tensor(x, device=backend.name, requires_grad=True)
    cw = convlab.tensor(w, device=backend.name, requires_grad=True)
    cy = F.conv1d(cx, cw, None, 2, 1, 1, 3)
    cy.sum().backward()
    tol = 1e-4 if dtype == np.float32 else 1e-12
    for ours, theirs in [(cy, ty), (cx.grad, tx.grad), (cw.grad, tw.grad)]:
        np.testing.assert_allclose(
            backend.to_numpy(ours._data), theirs.detach().numpy(), rtol=0, atol=tol
        )
    m = nn.Conv1d(12, 18, 3, groups=3)
    assert tuple(m.weight.shape) == (18, 4, 3)


@needs_torch
def test_same_padding_with_groups_matches_torch(backend):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 8, 7, 6))
    w = rng.standard_normal((8, 1, 4, 3))  # an even kernel: the extra row goes at the end
    want = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding="same", groups=8)
    got = F.conv2d(
        convlab.tensor(x, device=backend.name),
        convlab.tensor(w, device=backend.name),
        padding="same",
        groups=8,
    )
    np.testing.assert_allclose(backend.to_numpy(got._data), want.numpy(), rtol=0, atol=1e-12)


def test_unbatched_input_with_groups(backend):
    x = convlab.ones(4, 5, 5, device=backend.name)
    w = convlab.ones(8, 1, 3, 3, device=backend.name)
    y = F.conv2d(x, w, groups=4)
    assert y.shape == (8, 3, 3)
    assert np.all(backend.to_numpy(y._data) == 9)


def test_gradient_matches_central_differences_float64(backend):
    # numerical check of all three gradients in float64, independent of PyTorch
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 6, 5, 6))
    w = rng.standard_normal((12, 2, 3, 2))
    b = rng.standard_normal(12)
    gy = None

    def loss(xv, wv, bv):
        out = F.conv2d(
            convlab.tensor(xv, device=backend.name),
            convlab.tensor(wv, device=backend.name),
            convlab.tensor(bv, device=backend.name),
            (2, 1),
            1,
            (1, 2),
            3,
        )
        return float((backend.to_numpy(out._data) * gy).sum())

    cx = convlab.tensor(x, device=backend.name, requires_grad=True)
    cw = convlab.tensor(w, device=backend.name, requires_grad=True)
    cb = convlab.tensor(b, device=backend.name, requires_grad=True)
    y = F.conv2d(cx, cw, cb, (2, 1), 1, (1, 2), 3)
    gy = rng.standard_normal(y.shape)
    y.backward(convlab.tensor(gy, device=backend.name))
    eps = 1e-6
    for array, grad in [(x, cx.grad), (w, cw.grad), (b, cb.grad)]:
        analytic = backend.to_numpy(grad._data)
        flat = array.reshape(-1)
        for i in rng.choice(flat.size, size=min(flat.size, 25), replace=False):
            keep = flat[i]
            flat[i] = keep + eps
            up = loss(x, w, b)
            flat[i] = keep - eps
            down = loss(x, w, b)
            flat[i] = keep
            assert abs((up - down) / (2 * eps) - analytic.reshape(-1)[i]) < 1e-6


def test_backend_groups_argument_defaults_to_dense(backend):
    xp = backend.xp
    x = xp.asarray(np.random.default_rng(0).standard_normal((1, 4, 6, 6)))
    w = xp.asarray(np.random.default_rng(1).standard_normal((4, 1, 3, 3)))
    dense = xp.asarray(np.zeros((4, 4, 3, 3)))
    for i in range(4):  # the depthwise weight as a dense one with zeros off the diagonal
        dense[i, i] = w[i, 0]
    grouped = backend.conv2d_forward(x, w, None, 1, 1, 1, groups=4)
    np.testing.assert_allclose(
        backend.to_numpy(grouped),
        backend.to_numpy(backend.conv2d_forward(x, dense, None, 1, 1, 1)),
        rtol=0,
        atol=1e-12,
    )
    dy = xp.asarray(np.random.default_rng(2).standard_normal(grouped.shape))
    np.testing.assert_allclose(
        backend.to_numpy(backend.conv2d_backward_data(dy, w, x.shape, 1, 1, 1, groups=4)),
        backend.to_numpy(backend.conv2d_backward_data(dy, dense, x.shape, 1, 1, 1)),
        rtol=0,
        atol=1e-12,
    )
    dw, db = backend.conv2d_backward_weight(dy, x, w.shape, 1, 1, 1, groups=4)
    full, _ = backend.conv2d_backward_weight(dy, x, dense.shape, 1, 1, 1)
    diagonal = np.stack([backend.to_numpy(full)[i, i] for i in range(4)])[:, None]
    np.testing.assert_allclose(backend.to_numpy(dw), diagonal, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        backend.to_numpy(db), backend.to_numpy(dy).sum(axis=(0, 2, 3)), rtol=0, atol=1e-12
    )


# -- errors ------------------------------------------------------------------------------
def test_groups_errors_name_the_argument(backend):
    x = convlab.ones(1, 6, 5, 5, device=backend.name)
    with pytest.raises(ValueError, match=r"expected input with 8 channels.*groups=4.*got 6"):
        F.conv2d(x, convlab.ones(4, 2, 3, 3, device=backend.name), groups=4)
    with pytest.raises(ValueError, match="groups=4 must divide out_channels.*has 6"):
        F.conv2d(convlab.ones(1, 8, 5, 5), convlab.ones(6, 2, 3, 3), groups=4)
    with pytest.raises(ValueError, match="groups: expected a positive int, got 0"):
        F.conv2d(x, convlab.ones(6, 6, 3, 3, device=backend.name), groups=0)
    with pytest.raises(TypeError, match="groups: expected an int, got float"):
        F.conv2d(x, convlab.ones(6, 3, 3, 3, device=backend.name), groups=2.0)
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.Conv2d(6, 8, 3, groups=4)
    with pytest.raises(ValueError, match="out_channels must be divisible by groups"):
        nn.Conv2d(8, 6, 3, groups=4)
    with pytest.raises(ValueError, match="groups"):
        nn.Conv2d(8, 8, 3, groups=0)


def test_backend_groups_errors(backend):
    xp = backend.xp
    x = xp.ones((1, 6, 5, 5))
    with pytest.raises(ValueError, match="groups=4 expects 8"):
        backend.conv2d_forward(x, xp.ones((4, 2, 3, 3)), groups=4)
    with pytest.raises(ValueError, match="groups=4 must divide out_channels"):
        backend.conv2d_backward_weight(
            xp.ones((1, 6, 3, 3)), xp.ones((1, 8, 5, 5)), (6, 2, 3, 3), groups=4
        )
    with pytest.raises(ValueError, match="groups=3 expects 9"):
        backend.conv2d_backward_data(
            xp.ones((1, 3, 3, 3)), xp.ones((3, 3, 3, 3)), (1, 6, 5, 5), groups=3
        )


@pytest.mark.parametrize("dtype", ["uint8", "int64", "int32"])
def test_integer_input_says_to_convert(backend, dtype):
    x = convlab.tensor(np.zeros((1, 3, 8, 8), dtype=dtype), device=backend.name)
    conv = nn.Conv2d(3, 4, 3).to(backend.name)
    message = (
        rf"conv2d: expected a floating-point input \(float32 or float64\), got {dtype}; "
        r"convert it with \.float\(\) \(or x\.to\(torch\.float32\)\)"
    )
    with pytest.raises(TypeError, match=message):
        conv(x)
    with pytest.raises(TypeError, match=message):
        F.conv2d(x, conv.weight)
    with pytest.raises(TypeError, match=r"conv1d: expected a floating-point input.*\.float\(\)"):
        F.conv1d(
            convlab.tensor(np.zeros((1, 3, 8), dtype=dtype), device=backend.name),
            convlab.ones(2, 3, 3, device=backend.name),
        )
    # the cure works
    assert conv(x.float()).shape == (1, 4, 6, 6)


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize(
    "name",
    [
        "mbv2-dw96-s2",
        "dw-mult2",
        "resnext-g32x4",
        "odd-dilated",
        "dw-stride3-pad0",
        "dw5x5-s2",
        "mbv2-dw960-s1",
        "mbv2-dw576-s2",
        "dw-cl-odd",
        "dw-cl-edges",
        "dw-tiny-s2",
        "g3x4-s2-even-pad2",
        "dw-s2-even-pad0",
        "dw-tiny-dilated",
        "dw-tiny-row",
        "dw-tiny-5x5",
        "mixed-og7",
        "mixed-og7-s2",
        "wide-groups-direct",
        "wide-groups-direct-s2",
        "dw-cl-wide-odd",
    ],
)
def test_direct_kernels_every_isa_match_torch(isa, name, dtype):
    # the CPU's direct kernels are compiled per instruction set; each must agree
    from convlab._cpu.convolution import direct_grouped

    case = CASES[name]
    n, c, h, w, o, g, k, *_ = case
    assert direct_grouped((o, c // g) + _pair(k), g)
    pairs = _run_both(case, dtype, "cpu")
    kh, kw = _pair(k)
    terms = max(n * h * w, c // g * kh * kw, o // g * kh * kw)
    for ours, theirs in pairs:
        want = theirs.detach().numpy()
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(
            ours.detach().numpy(), want, rtol=0, atol=_tolerance(dtype, terms) * scale
        )


def test_cpu_path_choice():
    from convlab._cpu.convolution import DIRECT_GROUP_TAPS, channels_last, direct_grouped

    assert channels_last((2, 960, 4, 4), (960, 1, 3, 3), 960)
    assert channels_last((2, 576, 8, 8), (576, 1, 3, 3), 576)
    assert not channels_last((2, 144, 32, 32), (144, 1, 3, 3), 144)  # a large plane
    # planes up to 16 x 16 with 64 channels or more
    assert channels_last((2, 192, 16, 16), (192, 1, 3, 3), 192)
    assert channels_last((2, 64, 15, 17), (64, 1, 5, 5), 64)
    assert not channels_last((2, 32, 16, 16), (32, 1, 3, 3), 32)
    assert not channels_last((2, 192, 16, 17), (192, 1, 3, 3), 192)
    assert not channels_last((2, 16, 4, 4), (32, 1, 3, 3), 16)  # multiplier 2

    assert direct_grouped((32, 1, 3, 3), 32) and direct_grouped((128, 4, 3, 3), 32)
    assert direct_grouped((256, 8, 3, 3), 32) and direct_grouped((960, 1, 5, 5), 960)
    assert DIRECT_GROUP_TAPS == 72
    # past 72 taps: direct while a group has a spatial kernel and few outputs
    assert direct_grouped((512, 16, 3, 3), 32) and direct_grouped((1024, 32, 3, 3), 32)
    assert direct_grouped((256, 32, 5, 5), 8)
    assert not direct_grouped((512, 64, 3, 3), 8)  # 64 outputs per group
    assert not direct_grouped((480, 120, 1, 1), 4)  # 1x1: no im2col for the GEMM
    assert not direct_grouped((64, 36, 5, 5), 2)  # 900 taps


def test_direct_kernels_with_two_threads_are_deterministic(threads):
    # units write disjoint planes / channels; the weight gradient sums in a fixed order
    rng = np.random.default_rng(4)
    x = convlab.tensor(rng.standard_normal((3, 24, 11, 9)).astype(np.float32), requires_grad=True)
    w = convlab.tensor(rng.standard_normal((48, 1, 3, 3)).astype(np.float32), requires_grad=True)
    results = []
    for _ in range(2):
        x.grad = w.grad = None
        y = F.conv2d(x, w, None, 2, 1, 1, 24)
        y.backward(convlab.ones_like(y))
        results.append((y.detach().numpy(), x.grad.numpy(), w.grad.numpy()))
    for a, b in zip(*results):
        assert np.array_equal(a, b)


@needs_torch
@settings(max_examples=40)
@given(
    data=st.fixed_dictionaries(
        {
            "n": st.integers(1, 3),
            "groups": st.integers(1, 5),
            "cg": st.integers(1, 3),
            "mult": st.integers(1, 3),
            "h": st.integers(1, 12),
            "w": st.integers(1, 12),
            "k": st.tuples(st.integers(1, 4), st.integers(1, 4)),
            "s": st.tuples(st.integers(1, 3), st.integers(1, 3)),
            "p": st.tuples(st.integers(0, 3), st.integers(0, 3)),
            "d": st.tuples(st.integers(1, 3), st.integers(1, 3)),
        }
    )
)
def test_random_geometry_matches_torch_float64(data):
    # every stride / padding / dilation / size mix through the CPU's direct kernels
    kh, kw = data["k"]
    (dh, dw), (ph, pw) = data["d"], data["p"]
    assume(dh * (kh - 1) + 1 <= data["h"] + 2 * ph and dw * (kw - 1) + 1 <= data["w"] + 2 * pw)
    g = data["groups"]
    c, o = g * data["cg"], g * data["mult"]
    case = (data["n"], c, data["h"], data["w"], o, g, data["k"], data["s"], data["p"], data["d"])
    for ours, theirs in _run_both(case, np.float64, "cpu"):
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), atol=1e-10)


@needs_gpu
def test_gpu_direct_kernels_run_for_small_groups_only(monkeypatch):
    gpu = convlab.get_backend("gpu")
    launched = []
    original = type(gpu)._launch

    def spy(self, family, name, *args, **kwargs):
        launched.append(name)
        return original(self, family, name, *args, **kwargs)

    monkeypatch.setattr(type(gpu), "_launch", spy)
    for weight_shape, groups, direct in [((8, 1, 3, 3), 8, True), ((8, 32, 3, 3), 2, False)]:
        launched.clear()
        c = weight_shape[1] * groups
        x = convlab.ones(1, c, 6, 6, device="gpu", requires_grad=True)
        w = convlab.ones(*weight_shape, device="gpu", requires_grad=True)
        F.conv2d(x, w, None, 1, 1, 1, groups).sum().backward()
        names = {"grouped_conv_forward", "grouped_conv_backward_data"}
        names.add("grouped_conv_backward_weight")
        assert names <= set(launched) if direct else not names & set(launched)


def test_grouped_forward_writes_out(backend):
    xp = backend.xp
    rng = np.random.default_rng(6)
    x = xp.asarray(rng.standard_normal((2, 6, 5, 5)))
    w = xp.asarray(rng.standard_normal((6, 2, 3, 3)))
    out = xp.empty((2, 6, 3, 3))
    got = backend.conv2d_forward(x, w, None, 1, 0, 1, out=out, groups=3)
    assert got is out
    want = np.concatenate(
        [
            backend.to_numpy(
                backend.conv2d_forward(x[:, 2 * g : 2 * g + 2], w[2 * g : 2 * g + 2], None, 1, 0, 1)
            )
            for g in range(3)
        ],
        axis=1,
    )
    np.testing.assert_allclose(backend.to_numpy(out), want, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="out"):
        backend.conv2d_forward(x, w, None, 1, 0, 1, out=xp.empty((2, 6, 4, 4)), groups=3)
