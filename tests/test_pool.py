"""max_pool2d / avg_pool2d against window-scanning references and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import convlab
import reference as ref
from conftest import needs_torch, to_numpy, torch


@st.composite
def pool_cases(draw, dilated=True):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilated else (1, 1)
    padding = tuple(
        draw(st.integers(0, ((kernel[a] - 1) * dilation[a] + 1) // 2)) for a in range(2)
    )
    size = (draw(st.integers(1, 11)), draw(st.integers(1, 11)))
    ceil_mode = draw(st.booleans())
    for a in range(2):
        assume(
            ref.pool_out_size(size[a], kernel[a], stride[a], padding[a], dilation[a], ceil_mode)
            >= 1
        )
    return dict(
        n=draw(st.integers(1, 2)),
        c=draw(st.integers(1, 3)),
        size=size,
        kernel=kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=ceil_mode,
        seed=draw(st.integers(0, 2**31)),
        ties=draw(st.booleans()),
        nan=draw(st.booleans()),
    )


def pool_input(case, dtype):
    rng = np.random.default_rng(case["seed"])
    shape = (case["n"], case["c"]) + case["size"]
    # small integers make ties, where the first element of the window must win
    x = rng.integers(-2, 3, shape) if case["ties"] else rng.standard_normal(shape)
    x = x.astype(dtype)
    if case["nan"]:
        x[rng.random(shape) < 0.1] = np.nan
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@given(case=pool_cases())
def test_max_pool_matches_reference(backend, threads, dtype, case):
    x = pool_input(case, dtype)
    geom = (case["kernel"], case["stride"], case["padding"], case["dilation"])
    y, arg = backend.max_pool2d(backend.asarray(x), *geom, case["ceil_mode"])
    y_ref, arg_ref = ref.max_pool2d(x, *geom, case["ceil_mode"])
    np.testing.assert_array_equal(to_numpy(backend, y), y_ref)
    np.testing.assert_array_equal(to_numpy(backend, arg), arg_ref)
    dy = np.random.default_rng(case["seed"] + 1).standard_normal(y_ref.shape).astype(dtype)
    dx = backend.max_pool2d_backward(backend.asarray(dy), arg, x.shape, *geom, case["ceil_mode"])
    dx_ref = ref.max_pool2d_backward(
        dy, arg_ref, x.shape, case["kernel"], case["stride"], case["padding"], case["dilation"]
    )
    np.testing.assert_allclose(to_numpy(backend, dx), dx_ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@given(
    case=pool_cases(dilated=False),
    count_include_pad=st.booleans(),
    divisor_override=st.sampled_from([None, 1, 3]),
)
def test_avg_pool_matches_reference(
    backend, threads, dtype, case, count_include_pad, divisor_override
):
    case = dict(case, nan=False)
    x = pool_input(case, dtype)
    geom = (case["kernel"], case["stride"], case["padding"])
    opts = (case["ceil_mode"], count_include_pad, divisor_override)
    y = backend.avg_pool2d(backend.asarray(x), *geom, *opts)
    y_ref, divisors = ref.avg_pool2d(x, *geom, *opts)
    tol = 8 * np.finfo(dtype).eps * (1 + np.abs(y_ref))
    assert np.all(np.abs(to_numpy(backend, y) - y_ref) <= tol)
    dy = np.random.default_rng(case["seed"] + 1).standard_normal(y_ref.shape).astype(dtype)
    dx = backend.avg_pool2d_backward(backend.asarray(dy), x.shape, *geom, *opts)
    dx_ref = ref.avg_pool2d_backward(dy, x.shape, *geom, divisors)
    terms = case["kernel"][0] * case["kernel"][1]
    tol = 4 * terms * np.finfo(dtype).eps * (1 + np.abs(dx_ref))
    assert np.all(np.abs(to_numpy(backend, dx) - dx_ref) <= tol)


@pytest.mark.parametrize(
    "shape", [(4, 64, 27, 60), (4, 128, 13, 60), (2, 8, 64, 60), (3, 5, 7, 15)]
)
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_chart_cnn_2x1_pooling(backend, rng, shape, ceil_mode):
    """The flagship model's (2, 1) pooling, on its feature-map shapes (the row-wise path)."""
    case = dict(n=shape[0], c=shape[1], size=shape[2:], seed=1, ties=False, nan=False)
    x = pool_input(case, np.float32)
    x[0, 0, 1, 3] = np.nan
    y, arg = backend.max_pool2d(x, (2, 1), ceil_mode=ceil_mode)
    y_ref, arg_ref = ref.max_pool2d(x, (2, 1), (2, 1), (0, 0), (1, 1), ceil_mode)
    np.testing.assert_array_equal(to_numpy(backend, y), y_ref)
    np.testing.assert_array_equal(to_numpy(backend, arg), arg_ref)
    dy = rng.standard_normal(y_ref.shape).astype(np.float32)
    dx = backend.max_pool2d_backward(dy, arg, x.shape, (2, 1), ceil_mode=ceil_mode)
    np.testing.assert_array_equal(
        to_numpy(backend, dx),
        ref.max_pool2d_backward(dy, arg_ref, x.shape, (2, 1), (2, 1), (0, 0), (1, 1)).astype(
            np.float32
        ),
    )


@pytest.mark.parametrize("shape", [(2, 8, 27, 60), (3, 5, 8, 9), (1, 2, 7, 7)])
@pytest.mark.parametrize("ties", [False, True])
def test_tiled_2x2_pooling(backend, shape, ties):
    """Non-overlapping 2 x 2 windows (the paper's robustness variant) take a row-wise path."""
    case = dict(n=shape[0], c=shape[1], size=shape[2:], seed=3, ties=ties, nan=True)
    x = pool_input(case, np.float32)
    y, arg = backend.max_pool2d(x, 2)
    y_ref, arg_ref = ref.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    np.testing.assert_array_equal(to_numpy(backend, y), y_ref)
    np.testing.assert_array_equal(to_numpy(backend, arg), arg_ref)
    dy = np.random.default_rng(4).standard_normal(y_ref.shape).astype(np.float32)
    dx = backend.max_pool2d_backward(dy, arg, x.shape, 2)
    np.testing.assert_array_equal(
        to_numpy(backend, dx),
        ref.max_pool2d_backward(dy, arg_ref, x.shape, (2, 2), (2, 2), (0, 0), (1, 1)).astype(
            np.float32
        ),
    )


def test_large_windows_use_int32_argmax(backend, rng):
    x = rng.standard_normal((1, 2, 20, 20)).astype(np.float32)
    y, arg = backend.max_pool2d(x, 17, 3)
    assert to_numpy(backend, arg).dtype == np.int32
    y_ref, arg_ref = ref.max_pool2d(x, (17, 17), (3, 3), (0, 0), (1, 1), False)
    np.testing.assert_array_equal(to_numpy(backend, arg), arg_ref)


def test_hand_made_argmax_never_writes_outside(backend):
    """An argmax pointing outside its window or into the padding is ignored, not written."""
    x_shape = (1, 1, 4, 4)
    dy = np.ones((1, 1, 3, 3), np.float32)
    arg = np.full((1, 1, 3, 3), 255, np.uint8)
    dx = to_numpy(backend, backend.max_pool2d_backward(dy, arg, x_shape, 2, 2, 1))
    np.testing.assert_array_equal(dx, 0)
    arg[...] = 0  # offset 0 of a padded window is in the padding for the first row
    dx = to_numpy(backend, backend.max_pool2d_backward(dy, arg, x_shape, 2, 2, 1))
    assert np.isfinite(dx).all() and dx.sum() == 4


@pytest.mark.parametrize(
    "call,error,match",
    [
        (
            lambda b: b.max_pool2d(np.ones((1, 1, 4, 4), np.float32), 2, padding=2),
            ValueError,
            "padding should be at most half of the effective kernel size",
        ),
        (
            lambda b: b.max_pool2d(np.ones((1, 1, 4, 4), np.float32), 0),
            ValueError,
            "kernel_size: expected values >= 1, got 0",
        ),
        (
            lambda b: b.max_pool2d(np.ones((1, 1, 4, 4), np.float32), 2, stride=0),
            ValueError,
            "stride: expected values >= 1",
        ),
        (
            lambda b: b.max_pool2d(np.ones((1, 1, 2, 4), np.float32), 3),
            ValueError,
            r"too small.*output would be \(0, 1\)",
        ),
        (
            lambda b: b.max_pool2d(np.ones((1, 4, 4), np.float32), 2),
            ValueError,
            r"x: expected a 4-D \(N, C, H, W\) array",
        ),
        (
            lambda b: b.max_pool2d(np.ones((1, 1, 4, 4), np.int16), 2),
            TypeError,
            "x: expected a float32 or float64 array, got dtype int16",
        ),
        (
            lambda b: b.max_pool2d_backward(
                np.ones((1, 1, 2, 2), np.float32), np.zeros((1, 1, 2, 2), np.int64), (1, 1, 4, 4), 2
            ),
            TypeError,
            "argmax: expected a uint8 array",
        ),
        (
            lambda b: b.max_pool2d_backward(
                np.ones((1, 1, 2, 2), np.float32), np.zeros((1, 1, 2, 3), np.uint8), (1, 1, 4, 4), 2
            ),
            ValueError,
            r"argmax: expected shape \(1, 1, 2, 2\)",
        ),
        (
            lambda b: b.max_pool2d_backward(
                np.ones((1, 1, 3, 2), np.float32), np.zeros((1, 1, 2, 2), np.uint8), (1, 1, 4, 4), 2
            ),
            ValueError,
            r"grad_output: expected shape \(1, 1, 2, 2\)",
        ),
        (
            lambda b: b.avg_pool2d(np.ones((1, 1, 4, 4), np.float32), 2, divisor_override=0),
            ValueError,
            "divisor_override: expected a non-zero int",
        ),
    ],
)
def test_bad_input_is_a_clear_error(backend, call, error, match):
    with pytest.raises(error, match=match):
        call(backend)


@needs_torch
class TestAgainstPyTorch:
    @pytest.mark.parametrize(
        "geom",
        [
            ((2, 1), None, 0, 1, False),
            ((3, 3), 2, 1, 1, True),
            ((2, 3), (1, 2), (1, 1), (2, 1), True),
        ],
    )
    def test_max_pool_values_indices_and_gradient(self, backend, rng, geom):
        x = rng.standard_normal((2, 3, 11, 9)).astype(np.float32)
        tx = torch.tensor(x, requires_grad=True)
        ty, tidx = torch.nn.functional.max_pool2d(tx, *geom, return_indices=True)
        dy = rng.standard_normal(ty.shape).astype(np.float32)
        ty.backward(torch.tensor(dy))
        y, arg = backend.max_pool2d(x, *geom)
        np.testing.assert_array_equal(to_numpy(backend, y), ty.detach().numpy())
        kernel = convlab._validate.pair(geom[0], "k")
        stride = kernel if geom[1] is None else convlab._validate.pair(geom[1], "s")
        pad, dil = convlab._validate.pair(geom[2], "p"), convlab._validate.pair(geom[3], "d")
        arg = to_numpy(backend, arg).astype(np.int64)
        rows = np.arange(y.shape[2])[:, None] * stride[0] - pad[0] + (arg // kernel[1]) * dil[0]
        cols = np.arange(y.shape[3])[None, :] * stride[1] - pad[1] + (arg % kernel[1]) * dil[1]
        np.testing.assert_array_equal(rows * x.shape[3] + cols, tidx.numpy())
        dx = backend.max_pool2d_backward(
            dy, backend.asarray(to_numpy(backend, arg).astype(np.uint8)), x.shape, *geom
        )
        np.testing.assert_allclose(to_numpy(backend, dx), tx.grad.numpy(), rtol=1e-6)

    @pytest.mark.parametrize(
        "geom",
        [
            ((2, 2), None, 0, False, True, None),
            ((3, 2), 2, 1, True, False, None),
            ((3, 3), 2, 1, True, True, 2),
        ],
    )
    def test_avg_pool(self, backend, rng, geom):
        x = rng.standard_normal((2, 3, 11, 9)).astype(np.float32)
        tx = torch.tensor(x, requires_grad=True)
        ty = torch.nn.functional.avg_pool2d(tx, *geom)
        dy = rng.standard_normal(ty.shape).astype(np.float32)
        ty.backward(torch.tensor(dy))
        np.testing.assert_allclose(
            to_numpy(backend, backend.avg_pool2d(x, *geom)),
            ty.detach().numpy(),
            rtol=1e-5,
            atol=1e-6,
        )
        np.testing.assert_allclose(
            to_numpy(backend, backend.avg_pool2d_backward(dy, x.shape, *geom)),
            tx.grad.numpy(),
            rtol=1e-5,
            atol=1e-6,
        )
