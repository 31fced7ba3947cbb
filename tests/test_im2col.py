"""im2col / col2im against the tap-by-tap reference and torch's unfold / fold."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import reference as ref
from conftest import needs_torch, to_numpy, torch


@st.composite
def geometries(draw):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    size = (draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    for axis in range(2):
        assume(dilation[axis] * (kernel[axis] - 1) + 1 <= size[axis] + 2 * padding[axis])
    return dict(
        n=draw(st.integers(1, 3)),
        c=draw(st.integers(1, 4)),
        size=size,
        kernel=kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        seed=draw(st.integers(0, 2**31)),
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@given(g=geometries())
def test_im2col_is_exact(backend, threads, dtype, g):
    x = np.random.default_rng(g["seed"]).standard_normal((g["n"], g["c"]) + g["size"])
    x = x.astype(dtype)
    geom = (g["kernel"], g["stride"], g["padding"], g["dilation"])
    got = to_numpy(backend, backend.im2col(backend.asarray(x), *geom))
    np.testing.assert_array_equal(got, ref.unfold(x, *geom))  # pure copies: bit-exact


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@given(g=geometries())
def test_col2im_sums_overlaps(backend, threads, dtype, g):
    geom = (g["kernel"], g["stride"], g["padding"], g["dilation"])
    length = np.prod(
        [
            ref.out_size(
                g["size"][a], g["kernel"][a], g["stride"][a], g["padding"][a], g["dilation"][a]
            )
            for a in range(2)
        ]
    )
    rows = g["c"] * g["kernel"][0] * g["kernel"][1]
    cols = np.random.default_rng(g["seed"]).standard_normal((g["n"], rows, length)).astype(dtype)
    got = to_numpy(backend, backend.col2im(backend.asarray(cols), g["size"], *geom))
    exact = ref.fold(cols, g["size"], *geom)
    terms = g["kernel"][0] * g["kernel"][1]
    bound = 2 * terms * np.finfo(dtype).eps * ref.fold(np.abs(cols), g["size"], *geom)
    assert np.all(np.abs(got - exact) <= bound + np.finfo(dtype).tiny)


def test_col2im_is_deterministic(backend, rng):
    cols = rng.standard_normal((4, 3 * 9, 64)).astype(np.float32)
    first = to_numpy(backend, backend.col2im(cols, (10, 10), 3, 1, 0, 1))
    for _ in range(3):
        np.testing.assert_array_equal(
            to_numpy(backend, backend.col2im(cols, (10, 10), 3, 1, 0, 1)), first
        )


def test_bad_input_is_a_clear_error(backend):
    x = np.ones((2, 3, 5, 5), np.float32)
    with pytest.raises(ValueError, match=r"kernel_size \(7, 7\).*larger than the padded"):
        backend.im2col(x, 7)
    with pytest.raises(ValueError, match="kernel_size: expected values >= 1"):
        backend.im2col(x, (0, 3))
    with pytest.raises(ValueError, match=r"cols: expected 9 columns"):
        backend.col2im(np.ones((2, 27, 8), np.float32), (5, 5), 3)
    with pytest.raises(ValueError, match="multiple of KH\\*KW = 9"):
        backend.col2im(np.ones((2, 28, 9), np.float32), (5, 5), 3)
    with pytest.raises(ValueError, match=r"cols: expected a 3-D"):
        backend.col2im(np.ones((27, 9), np.float32), (5, 5), 3)


@needs_torch
class TestAgainstPyTorch:
    @pytest.mark.parametrize(
        "geom",
        [
            ((5, 3), (3, 1), (12, 1), (2, 1)),
            ((3, 3), (2, 2), (1, 1), (1, 1)),
            ((2, 4), (1, 3), (0, 2), (3, 1)),
        ],
    )
    def test_unfold_and_fold(self, backend, rng, geom):
        F = torch.nn.functional
        x = rng.standard_normal((2, 3, 20, 17)).astype(np.float32)
        kernel, stride, padding, dilation = geom
        cols = to_numpy(backend, backend.im2col(x, kernel, stride, padding, dilation))
        theirs = F.unfold(torch.tensor(x), kernel, dilation, padding, stride).numpy()
        np.testing.assert_array_equal(cols, theirs)
        back = to_numpy(backend, backend.col2im(cols, (20, 17), kernel, stride, padding, dilation))
        theirs_back = F.fold(
            torch.tensor(cols), (20, 17), kernel, dilation, padding, stride
        ).numpy()
        np.testing.assert_allclose(back, theirs_back, rtol=1e-6, atol=1e-5)
