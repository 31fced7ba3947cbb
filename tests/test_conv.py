"""conv2d forward / backward against the tap-loop reference, finite differences and PyTorch."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import convlab
import reference as ref
from conftest import needs_torch, to_numpy, torch

DTYPES = [np.float32, np.float64]

# The chart CNN's convolutions (Jiang, Kelly & Xiu): (C_in, H, W, C_out, stride, padding,
# dilation) at the feature-map sizes they see; batch kept small here, the benchmarks use 128.
CHART_LAYERS = {
    "I20-layer1": (1, 64, 60, 64, (3, 1), (12, 1), (2, 1)),
    "I20-layer2": (64, 13, 60, 128, (1, 1), (2, 1), (1, 1)),
    "I20-layer3": (128, 6, 60, 256, (1, 1), (2, 1), (1, 1)),
    "I5-layer2": (64, 16, 15, 128, (1, 1), (2, 1), (1, 1)),
    "I60-layer4": (256, 4, 180, 512, (1, 1), (2, 1), (1, 1)),
}


def conv_bound(x, w, b, geom, dtype):
    """Rounding bound of each output: a K-term sum of products (K = C*KH*KW + bias)."""
    k = w.shape[1] * w.shape[2] * w.shape[3] + 1
    u = np.finfo(dtype).eps / 2
    magnitude = ref.conv2d(np.abs(x), np.abs(w), None if b is None else np.abs(b), *geom)
    return 2 * k * u * magnitude + np.finfo(dtype).tiny


def assert_within(got, exact, bound):
    assert got.shape == exact.shape
    excess = np.abs(got.astype(np.float64) - exact) - bound
    assert np.all(excess <= 0), f"error beyond the rounding bound by {excess.max()}"


def grad_bound(magnitude, terms, dtype):
    return 2 * terms * np.finfo(dtype).eps * magnitude + np.finfo(dtype).tiny


@st.composite
def conv_cases(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    h, w = draw(st.integers(1, 14)), draw(st.integers(1, 14))
    assume(dh * (kh - 1) + 1 <= h + 2 * ph and dw * (kw - 1) + 1 <= w + 2 * pw)
    return dict(
        n=draw(st.integers(1, 3)),
        c=draw(st.integers(1, 5)),
        h=h,
        w=w,
        o=draw(st.integers(1, 7)),
        kernel=(kh, kw),
        stride=(sh, sw),
        padding=(ph, pw),
        dilation=(dh, dw),
        bias=draw(st.booleans()),
        seed=draw(st.integers(0, 2**31)),
    )


def make(case, dtype):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["n"], case["c"], case["h"], case["w"])).astype(dtype)
    w = rng.standard_normal((case["o"], case["c"]) + case["kernel"]).astype(dtype)
    b = rng.standard_normal(case["o"]).astype(dtype) if case["bias"] else None
    return x, w, b


def check_forward(backend, case, dtype):
    x, w, b = make(case, dtype)
    geom = (case["stride"], case["padding"], case["dilation"])
    got = to_numpy(
        backend,
        backend.conv2d_forward(
            backend.asarray(x), backend.asarray(w), None if b is None else backend.asarray(b), *geom
        ),
    )
    assert_within(got, ref.conv2d(x, w, b, *geom), conv_bound(x, w, b, geom, dtype))


def check_backward(backend, case, dtype, algorithm="auto"):
    x, w, _ = make(case, dtype)
    geom = (case["stride"], case["padding"], case["dilation"])
    y_shape = ref.conv2d(x, w, None, *geom).shape
    dy = np.random.default_rng(case["seed"] + 1).standard_normal(y_shape).astype(dtype)
    dx_ref, dw_ref, db_ref = ref.conv2d_grads(x, w, dy, *geom)
    kwargs = {} if algorithm == "auto" else {"algorithm": algorithm}
    dx = to_numpy(
        backend,
        backend.conv2d_backward_data(
            backend.asarray(dy), backend.asarray(w), x.shape, *geom, **kwargs
        ),
    )
    dw, db = backend.conv2d_backward_weight(
        backend.asarray(dy), backend.asarray(x), w.shape, *geom, bias=True
    )
    dx_mag = ref.conv2d_grads(np.abs(x), np.abs(w), np.abs(dy), *geom)
    terms_dx = w.shape[0] * w.shape[2] * w.shape[3]
    terms_dw = dy.shape[0] * dy.shape[2] * dy.shape[3]
    assert_within(dx, dx_ref, grad_bound(dx_mag[0], terms_dx, dtype))
    assert_within(to_numpy(backend, dw), dw_ref, grad_bound(dx_mag[1], terms_dw, dtype))
    assert_within(to_numpy(backend, db), db_ref, grad_bound(dx_mag[2], terms_dw, dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@given(case=conv_cases())
def test_forward_matches_reference(backend, threads, dtype, case):
    check_forward(backend, case, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@given(case=conv_cases())
def test_backward_matches_reference(backend, threads, dtype, case):
    check_backward(backend, case, dtype)


@given(case=conv_cases())
def test_both_data_gradient_algorithms_agree_with_reference_cpu(case):
    cpu = convlab.get_backend("cpu")
    case = dict(case, stride=(1, 1))
    assume(case["dilation"][0] * (case["kernel"][0] - 1) + 1 <= case["h"] + 2 * case["padding"][0])
    assume(case["dilation"][1] * (case["kernel"][1] - 1) + 1 <= case["w"] + 2 * case["padding"][1])
    for algorithm in ("implicit", "gemm"):
        check_backward(cpu, case, np.float64, algorithm)


def test_every_isa_path_is_correct_cpu(isa):
    cpu = convlab.get_backend("cpu")
    case = dict(
        n=2,
        c=7,
        h=9,
        w=20,
        o=37,
        kernel=(5, 3),
        stride=(1, 1),
        padding=(2, 1),
        dilation=(1, 1),
        bias=True,
        seed=3,
    )
    for dtype in DTYPES:
        check_forward(cpu, case, dtype)
        check_backward(cpu, case, dtype)


@pytest.mark.parametrize("layer", list(CHART_LAYERS))
def test_chart_cnn_layers(backend, layer):
    c, h, w, o, stride, padding, dilation = CHART_LAYERS[layer]
    case = dict(
        n=2,
        c=c,
        h=h,
        w=w,
        o=o,
        kernel=(5, 3),
        stride=stride,
        padding=padding,
        dilation=dilation,
        bias=True,
        seed=7,
    )
    check_forward(backend, case, np.float32)
    check_backward(backend, case, np.float32)


def test_gradients_match_finite_differences(backend):
    """Central differences of L = sum(conv(x, w, b) * g) in float64, every coordinate."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 5))
    w = rng.standard_normal((4, 3, 3, 2))
    b = rng.standard_normal(4)
    geom = ((2, 1), (1, 1), (1, 2))
    dev = backend.asarray

    def forward(x_, w_, b_):
        return to_numpy(backend, backend.conv2d_forward(dev(x_), dev(w_), dev(b_), *geom))

    g = rng.standard_normal(forward(x, w, b).shape)

    def loss(x_, w_, b_):
        return float(np.sum(forward(x_, w_, b_) * g))

    def numeric(array, other):
        grad = np.zeros_like(array)
        for i in np.ndindex(array.shape):
            plus, minus = array.copy(), array.copy()
            plus[i] += 1e-6
            minus[i] -= 1e-6
            grad[i] = (other(plus) - other(minus)) / 2e-6
        return grad

    dx = to_numpy(backend, backend.conv2d_backward_data(dev(g), dev(w), x.shape, *geom))
    dw, db = backend.conv2d_backward_weight(dev(g), dev(x), w.shape, *geom)
    np.testing.assert_allclose(dx, numeric(x, lambda v: loss(v, w, b)), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        to_numpy(backend, dw), numeric(w, lambda v: loss(x, v, b)), rtol=1e-6, atol=1e-7
    )
    np.testing.assert_allclose(
        to_numpy(backend, db), numeric(b, lambda v: loss(x, w, v)), rtol=1e-6, atol=1e-7
    )


def test_a_small_workspace_limit_splits_the_work(backend):
    """A 1 MiB budget splits the work into many small chunks: the data gradient's GEMM +
    col2im path on the CPU (pixel chunks), every GEMM path on the GPU (one image a chunk)."""
    before = convlab.get_workspace_limit()
    convlab.set_workspace_limit(2**20)
    try:
        case = dict(
            n=3,
            c=40,
            h=30,
            w=40,
            o=8,
            kernel=(5, 3),
            stride=(2, 1),
            padding=(2, 1),
            dilation=(1, 1),
            bias=True,
            seed=11,
        )
        check_forward(backend, case, np.float32)
        check_backward(backend, case, np.float32)
    finally:
        convlab.set_workspace_limit(before)


def test_results_are_deterministic(backend, rng):
    x = rng.standard_normal((5, 16, 13, 30)).astype(np.float32)
    w = rng.standard_normal((32, 16, 5, 3)).astype(np.float32)
    dy = rng.standard_normal((5, 32, 13, 30)).astype(np.float32)
    runs = []
    for _ in range(2):
        y = to_numpy(backend, backend.conv2d_forward(x, w, None, 1, (2, 1)))
        dx = to_numpy(backend, backend.conv2d_backward_data(dy, w, x.shape, 1, (2, 1)))
        dw, db = backend.conv2d_backward_weight(dy, x, w.shape, 1, (2, 1))
        runs.append((y, dx, to_numpy(backend, dw), to_numpy(backend, db)))
    for first, second in zip(*runs):
        np.testing.assert_array_equal(first, second)


def test_degenerate_sizes(backend):
    x = np.ones((0, 3, 5, 5), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    assert backend.conv2d_forward(x, w).shape == (0, 4, 3, 3)
    y = to_numpy(
        backend,
        backend.conv2d_forward(
            np.ones((2, 0, 5, 5), np.float32),
            np.ones((4, 0, 3, 3), np.float32),
            np.arange(4, dtype=np.float32),
        ),
    )
    np.testing.assert_array_equal(
        y, np.broadcast_to(np.arange(4.0)[None, :, None, None], (2, 4, 3, 3))
    )
    assert backend.conv2d_forward(
        np.ones((2, 3, 5, 5), np.float32), np.ones((0, 3, 3, 3), np.float32)
    ).shape == (2, 0, 3, 3)
    dw, db = backend.conv2d_backward_weight(np.ones((0, 4, 3, 3), np.float32), x, w.shape)
    np.testing.assert_array_equal(to_numpy(backend, dw), 0)
    np.testing.assert_array_equal(to_numpy(backend, db), 0)


def test_non_contiguous_inputs(backend, rng):
    x = rng.standard_normal((3, 4, 12, 18)).astype(np.float32)[:, :, ::2, 1::2]
    w = rng.standard_normal((3, 2, 5, 4)).astype(np.float32).transpose(0, 3, 1, 2)
    geom = ((1, 1), (1, 1), (1, 1))
    got = to_numpy(backend, backend.conv2d_forward(x, w, None, *geom))
    assert_within(got, ref.conv2d(x, w, None, *geom), conv_bound(x, w, None, geom, np.float32))


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(x=np.ones((2, 3, 5, 5), np.int32)), TypeError, "x: expected a float32 or float64"),
        (
            dict(x=np.ones((3, 5, 5), np.float32)),
            ValueError,
            r"x: expected a 4-D \(N, C, H, W\) array, got shape \(3, 5, 5\)",
        ),
        (
            dict(weight=np.ones((4, 2, 3, 3), np.float32)),
            ValueError,
            r"x has 3 channels.*weight expects 2",
        ),
        (
            dict(weight=np.ones((4, 3, 3, 3), np.float64)),
            TypeError,
            "weight: expected dtype float32",
        ),
        (dict(bias=np.ones(5, np.float32)), ValueError, r"bias: expected shape \(4,\), got \(5,\)"),
        (dict(stride=0), ValueError, r"stride: expected values >= 1, got 0"),
        (dict(stride=(1, -2)), ValueError, r"stride: expected values >= 1"),
        (dict(dilation=0), ValueError, "dilation: expected values >= 1"),
        (dict(padding=-1), ValueError, r"padding: expected values >= 0, got -1"),
        (dict(padding=(1, 2, 3)), TypeError, "padding: expected an int or a pair of ints"),
        (dict(padding=1.5), TypeError, "padding: expected an int or a pair of ints"),
        (dict(stride=2**40), ValueError, r"stride: expected values below 2\*\*31"),
        (
            dict(weight=np.ones((4, 3, 9, 3), np.float32)),
            ValueError,
            r"kernel_size \(9, 3\).*larger than the padded input \(5, 5\)",
        ),
        (dict(out=np.empty((2, 4, 3, 4), np.float32)), ValueError, r"out: expected shape"),
        (dict(out=np.empty((2, 4, 3, 3), np.float64)), TypeError, "out: expected dtype float32"),
        (
            dict(out=(np.empty((2, 4, 3, 6), np.float32), np.s_[..., ::2])),
            ValueError,
            "out: expected a writeable C-contiguous array",
        ),
    ],
)
def test_bad_input_is_a_clear_error(backend, kwargs, error, match):
    args = dict(
        x=np.ones((2, 3, 5, 5), np.float32),
        weight=np.ones((4, 3, 3, 3), np.float32),
        bias=np.ones(4, np.float32),
    )
    args.update(kwargs)
    for name, value in args.items():  # arrays on the backend's device; (array, view)
        if isinstance(value, tuple) and isinstance(value[0], np.ndarray):
            args[name] = backend.asarray(value[0])[value[1]]
        elif isinstance(value, np.ndarray):
            args[name] = backend.asarray(value)
    with pytest.raises(error, match=match):
        backend.conv2d_forward(**args)


def test_bad_gradient_input_is_a_clear_error(backend):
    w = backend.asarray(np.ones((4, 3, 3, 3), np.float32))
    dy = backend.asarray(np.ones((2, 4, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"grad_output: expected shape \(2, 4, 4, 4\)"):
        backend.conv2d_backward_data(dy, w, (2, 3, 6, 6))
    with pytest.raises(ValueError, match="input_shape .* has 2 channels"):
        backend.conv2d_backward_data(dy, w, (2, 2, 5, 5))
    with pytest.raises(TypeError, match="input_shape: expected a tuple of 4 ints"):
        backend.conv2d_backward_data(dy, w, (5, 5))
    with pytest.raises(ValueError, match="algorithm: 'implicit' needs stride"):
        backend.conv2d_backward_data(dy, w, (2, 3, 7, 7), stride=2, algorithm="implicit")
    with pytest.raises(ValueError, match=r"grad_output: expected shape \(2, 4, 3, 3\)"):
        backend.conv2d_backward_weight(
            backend.asarray(np.ones((2, 4, 2, 3), np.float32)),
            backend.asarray(np.ones((2, 3, 5, 5), np.float32)),
            w.shape,
        )


@needs_torch
class TestAgainstPyTorch:
    """The same kernels against torch.nn.functional (CPU), when PyTorch is installed."""

    @pytest.mark.parametrize("layer", list(CHART_LAYERS))
    def test_chart_layer_forward_and_backward(self, backend, layer):
        c, h, w, o, stride, padding, dilation = CHART_LAYERS[layer]
        rng = np.random.default_rng(5)
        x = rng.standard_normal((3, c, h, w)).astype(np.float32)
        wt = (rng.standard_normal((o, c, 5, 3)) / np.sqrt(c * 15)).astype(np.float32)
        b = rng.standard_normal(o).astype(np.float32)
        tx = torch.tensor(x, requires_grad=True)
        tw = torch.tensor(wt, requires_grad=True)
        tb = torch.tensor(b, requires_grad=True)
        ty = torch.nn.functional.conv2d(tx, tw, tb, stride, padding, dilation)
        dy = rng.standard_normal(ty.shape).astype(np.float32)
        ty.backward(torch.tensor(dy))
        dev = backend.asarray
        y = to_numpy(
            backend, backend.conv2d_forward(dev(x), dev(wt), dev(b), stride, padding, dilation)
        )
        dx = to_numpy(
            backend,
            backend.conv2d_backward_data(dev(dy), dev(wt), x.shape, stride, padding, dilation),
        )
        dw, db = backend.conv2d_backward_weight(
            dev(dy), dev(x), wt.shape, stride, padding, dilation
        )
        for ours, theirs in (
            (y, ty),
            (dx, tx.grad),
            (to_numpy(backend, dw), tw.grad),
            (to_numpy(backend, db), tb.grad),
        ):
            theirs = theirs.detach().numpy()
            scale = np.abs(theirs).max()
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-5 * scale)


@contextlib.contextmanager
def _forced_path(rows: bool):
    """Force the CPU backend onto the batched-rows path (small maps) or the per-image path."""
    from unittest import mock

    from convlab._cpu import conv_plan

    conv_plan.plan_conv2d.cache_clear()
    try:
        with mock.patch.object(conv_plan, "_small_map", lambda *_: rows):
            yield
    finally:
        conv_plan.plan_conv2d.cache_clear()


@pytest.mark.parametrize("rows", [True, False], ids=["batched-rows", "per-image"])
@given(case=conv_cases())
def test_both_cpu_conv_paths_match_reference(rows, case):
    """Every shape through each of the two CPU conv paths, whatever size picks by default."""
    cpu = convlab.get_backend("cpu")
    with _forced_path(rows):
        for dtype in DTYPES:
            check_forward(cpu, case, dtype)
            check_backward(cpu, case, dtype)


@pytest.mark.parametrize(
    "shape",
    [(128, 128, 1, 3, 1, 1), (64, 128, 2, 3, 2, 1), (32, 64, 4, 3, 2, 1), (3, 16, 32, 7, 4, 3)],
    ids=["1x1-map", "2x2-stride2", "4x4-stride2", "7x7-stride4"],
)
def test_resnet9_layers_small_maps_cpu(shape, rng):
    """ResNet9's convolutions (tiny maps; most taps in the padding) against the tap loops."""
    c, o, size, k, s, p = shape
    case = dict(
        n=3,
        c=c,
        h=size,
        w=size,
        o=o,
        kernel=(k, k),
        stride=(s, s),
        padding=(p, p),
        dilation=(1, 1),
        bias=True,
        seed=5,
    )
    check_forward(convlab.get_backend("cpu"), case, np.float32)
    check_backward(convlab.get_backend("cpu"), case, np.float32)


def test_small_map_path_respects_the_workspace_limit_cpu():
    """A 1 MiB budget splits the batch into chunks of 3 images (295 kB of rows each); the
    weight gradient accumulates across them."""
    cpu = convlab.get_backend("cpu")
    before = convlab.get_workspace_limit()
    convlab.set_workspace_limit(2**20)
    try:
        case = dict(
            n=7,
            c=64,
            h=8,
            w=8,
            o=9,
            kernel=(3, 3),
            stride=(1, 1),
            padding=(1, 1),
            dilation=(1, 1),
            bias=True,
            seed=13,
        )
        with _forced_path(True):
            check_forward(cpu, case, np.float64)
            check_backward(cpu, case, np.float64)
    finally:
        convlab.set_workspace_limit(before)


@needs_torch
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize(
    "padding", [1, (2, 1), "same", "valid"], ids=["p1", "p21", "same", "valid"]
)
def test_conv2d_padding_mode_matches_torch(backend, mode, padding):
    from convlab import nn

    theirs = torch.nn.Conv2d(4, 6, 3, padding=padding, padding_mode=mode, groups=2).double()
    ours = nn.Conv2d(4, 6, 3, padding=padding, padding_mode=mode, groups=2).double()
    ours.to(backend.name)
    ours.weight.data.copy_(convlab.tensor(theirs.weight.detach().numpy(), device=backend.name))
    ours.bias.data.copy_(convlab.tensor(theirs.bias.detach().numpy(), device=backend.name))
    assert repr(ours) == repr(theirs)
    x = np.random.default_rng(0).standard_normal((2, 4, 7, 8))
    tx = torch.tensor(x, requires_grad=True)
    cx = convlab.tensor(x, device=backend.name, requires_grad=True)
    ty, cy = theirs(tx), ours(cx)
    g = np.random.default_rng(1).standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(g))
    cy.backward(convlab.tensor(g, device=backend.name))
    for got, want in [(cy, ty), (cx.grad, tx.grad), (ours.weight.grad, theirs.weight.grad)]:
        np.testing.assert_allclose(
            to_numpy(backend, got._data), want.detach().numpy(), rtol=0, atol=1e-12
        )


@needs_torch
def test_conv1d_circular_padding_matches_torch():
    from convlab import nn

    theirs = torch.nn.Conv1d(3, 3, 3, padding=2, padding_mode="circular").double()
    ours = nn.Conv1d(3, 3, 3, padding=2, padding_mode="circular").double()
    ours.weight.data.copy_(convlab.tensor(theirs.weight.detach().numpy()))
    ours.bias.data.copy_(convlab.tensor(theirs.bias.detach().numpy()))
    x = np.random.default_rng(2).standard_normal((2, 3, 9))
    want = theirs(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(ours(convlab.tensor(x)).detach().numpy(), want, atol=1e-12)


def test_conv_padding_mode_error_is_pytorchs():
    from convlab import nn

    with pytest.raises(ValueError, match="padding_mode must be one of .*got padding_mode='edge'"):
        nn.Conv2d(2, 2, 3, padding_mode="edge")
