"""matmul: the packed GEMM against float64 NumPy, within the worst-case rounding bound."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import convlab
from conftest import needs_gpu, to_numpy
from reference import gemm_error_bound

DTYPES = [np.float32, np.float64]


def assert_gemm_close(got, a, b):
    """|got - a@b| within the rounding bound of a k-term float sum (float64 reference)."""
    exact = a.astype(np.float64) @ b.astype(np.float64)
    assert got.shape == exact.shape
    bound = gemm_error_bound(a, b)
    excess = np.abs(got.astype(np.float64) - exact) - bound
    assert np.all(excess <= 0), f"max error beyond the rounding bound: {excess.max()}"


def run(backend, a, b, **kwargs):
    return to_numpy(backend, backend.matmul(backend.asarray(a), backend.asarray(b), **kwargs))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@given(
    m=st.integers(0, 70),
    n=st.integers(0, 70),
    k=st.integers(0, 70),
    trans_a=st.booleans(),
    trans_b=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_matches_reference_on_random_shapes(
    backend, threads, dtype, m, n, k, trans_a, trans_b, seed
):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    got = run(backend, a, b, trans_a=trans_a, trans_b=trans_b)
    assert_gemm_close(got, a.T if trans_a else a, b.T if trans_b else b)


@pytest.mark.parametrize(
    "m,n,k",
    [
        (1, 1, 1),
        (97, 89, 83),
        (13, 1, 7),
        (1, 300, 5),
        (1000, 64, 15),  # skinny depth, as the first chart-CNN layer
        (500_000, 8, 15),  # tall
        (385, 1025, 257),  # crosses every cache-block boundary
        (9984, 64, 960),  # im2col-shaped, few B panels: A read in place
        (200, 300, 800),
        (128, 2, 46_080),  # the 20-day chart CNN's fully connected layer: deep and narrow
        (7, 3, 50_000),  # deeper still, in slices that do not divide it (GPU)
    ],
)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_matches_reference_on_awkward_sizes(backend, dtype, m, n, k, rng):
    if m * n * k > 10**8 and dtype == np.float64:
        pytest.skip("the float32 case covers this size")
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    assert_gemm_close(run(backend, a, b), a, b)


@needs_gpu
def test_deep_narrow_products_are_cut_along_their_depth_gpu():
    """A weight gradient's or a fully connected layer's product fills a handful of GEMM tiles
    with a depth of every pixel or feature of the batch: cut into slices, it fills the device
    (the awkward sizes above check the sums)."""
    gpu = convlab.get_backend("gpu")
    assert gpu._depth_slices(128, 2, 46_080, np.float32) >= 64  # I20 FC forward
    assert gpu._depth_slices(128, 960, 128 * 600, np.float32) >= 32  # I20 layer 2 dW
    assert gpu._depth_slices(4096, 4096, 4096, np.float32) == 1  # fills it already
    assert gpu._depth_slices(128, 2, 300, np.float32) == 1  # too shallow


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_every_isa_path_is_correct_cpu(isa, dtype, rng):
    cpu = convlab.get_backend("cpu")
    for m, n, k in [(37, 45, 300), (260, 600, 70), (3000, 40, 20)]:
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        assert_gemm_close(cpu.matmul(a, b), a, b)


def test_empty_dimensions(backend):
    for m, n, k in [(0, 5, 3), (4, 0, 3), (4, 5, 0), (0, 0, 0)]:
        a = np.ones((m, k), np.float32)
        b = np.ones((k, n), np.float32)
        got = run(backend, a, b)
        assert got.shape == (m, n)
        np.testing.assert_array_equal(got, np.zeros((m, n), np.float32))


@pytest.mark.parametrize("layout", ["transposed", "strided", "reversed", "broadcast", "fortran"])
def test_non_contiguous_operands(backend, rng, layout):
    base_a = rng.standard_normal((60, 80)).astype(np.float32)
    base_b = rng.standard_normal((80, 50)).astype(np.float32)
    if layout == "transposed":
        a, b = np.ascontiguousarray(base_a.T).T, np.ascontiguousarray(base_b.T).T
    elif layout == "strided":
        a, b = rng.standard_normal((120, 80)).astype(np.float32)[::2], base_b[:, :]
        b = rng.standard_normal((80, 150)).astype(np.float32)[:, ::3]
    elif layout == "reversed":
        a, b = base_a[::-1, ::-1], base_b[::-1]
    elif layout == "broadcast":
        a, b = np.broadcast_to(base_a[:1], (60, 80)), np.broadcast_to(base_b[:, :1], (80, 50))
    else:
        a, b = np.asfortranarray(base_a), np.asfortranarray(base_b)
    assert_gemm_close(run(backend, a, b), np.array(a), np.array(b))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("m,k,n", [(700, 300, 200), (45, 530, 37), (1000, 20, 3)])
def test_transposed_operands_on_every_path_cpu(dtype, m, k, n, rng):
    """Column-major operands (a weight gradient's ``dY^T @ X``, a linear layer's ``X @ W^T``):
    packed by whole columns or by register transposes, on the shared-B path of two threads
    (700 rows), the per-thread tiles, and with an N just past a multiple of the panel width."""
    cpu = convlab.get_backend("cpu")
    before = convlab.get_num_threads()
    a_t = rng.standard_normal((k, m)).astype(dtype)
    b_t = rng.standard_normal((n, k)).astype(dtype)
    try:
        for threads in (1, 2):
            convlab.set_num_threads(threads)
            for a, b in (
                (a_t.T, b_t.T),
                (np.ascontiguousarray(a_t.T), b_t.T),
                (a_t.T, np.ascontiguousarray(b_t.T)),
            ):
                assert_gemm_close(cpu.matmul(a, b), np.array(a), np.array(b))
    finally:
        convlab.set_num_threads(before)


@pytest.mark.parametrize(
    "shape_a,shape_b",
    [
        ((7,), (7,)),
        ((7,), (7, 4)),
        ((5, 7), (7,)),
        ((3, 5, 7), (7, 4)),
        ((3, 5, 7), (3, 7, 4)),
        ((2, 1, 5, 7), (3, 7, 4)),
        ((5, 7), (2, 7, 4)),
    ],
)
def test_numpy_matmul_semantics(backend, rng, shape_a, shape_b):
    a = rng.standard_normal(shape_a)
    b = rng.standard_normal(shape_b)
    expected = np.matmul(a, b)
    got = run(backend, a, b)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_out_argument_and_aliasing(backend, rng):
    a = rng.standard_normal((64, 64)).astype(np.float32)
    b = rng.standard_normal((64, 64)).astype(np.float32)
    expected = run(backend, a, b)
    da, db = backend.asarray(a), backend.asarray(b)
    out = backend.asarray(np.empty((64, 64), np.float32))
    result = backend.matmul(da, db, out=out)
    assert result is out
    np.testing.assert_array_equal(to_numpy(backend, out), expected)
    backend.matmul(da, db, out=da)  # out aliases an input: still exact
    np.testing.assert_array_equal(to_numpy(backend, da), expected)


def test_deterministic_and_thread_independent(backend, rng):
    a = rng.standard_normal((300, 500)).astype(np.float32)
    b = rng.standard_normal((500, 700)).astype(np.float32)
    results = []
    for n in (1, 2, 1):
        convlab.set_num_threads(n)
        results.append(run(backend, a, b))
    convlab.set_num_threads(2)
    # each element is summed by one thread in the same order whatever the thread count
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])


@pytest.mark.parametrize(
    "a,b,error,match",
    [
        (np.ones((2, 3), np.int64), np.ones((3, 2), np.int64), TypeError, "a: expected a float32"),
        (np.ones((2, 3), np.float16), np.ones((3, 2), np.float16), TypeError, "float16"),
        (
            np.ones((2, 3), np.float32),
            np.ones((3, 2), np.float64),
            TypeError,
            "b: expected dtype float32",
        ),
        (
            np.ones((2, 3), np.float32),
            np.ones((4, 2), np.float32),
            ValueError,
            r"inner dimensions differ.*\(2, 3\).*\(4, 2\)",
        ),
        (
            np.ones((2, 2, 3), np.float32),
            np.ones((3, 3, 2), np.float32),
            ValueError,
            "do not broadcast",
        ),
        (np.float32(1.0), np.ones((3, 2), np.float32), ValueError, "at least one dimension"),
        ([[1.0]], np.ones((1, 1), np.float32), TypeError, "a: expected an array, got list"),
    ],
)
def test_bad_input_is_a_clear_error(backend, a, b, error, match):
    with pytest.raises(error, match=match):
        backend.matmul(a, b)


def test_bad_out_is_a_clear_error(backend):
    dev = backend.asarray
    a = dev(np.ones((4, 3), np.float32))
    b = dev(np.ones((3, 5), np.float32))
    with pytest.raises(ValueError, match=r"out: expected shape \(4, 5\), got \(5, 4\)"):
        backend.matmul(a, b, out=dev(np.empty((5, 4), np.float32)))
    with pytest.raises(TypeError, match="out: expected dtype float32, got float64"):
        backend.matmul(a, b, out=dev(np.empty((4, 5), np.float64)))
    with pytest.raises(ValueError, match="out: expected a writeable C-contiguous array"):
        backend.matmul(a, b, out=dev(np.empty((4, 10), np.float32))[:, ::2])
    with pytest.raises(TypeError, match=r"out: expected a (numpy|cupy)\.ndarray, got list"):
        backend.matmul(a, b, out=[[0.0] * 5] * 4)
    with pytest.raises(ValueError, match="trans_a: needs an array with at least 2"):
        backend.matmul(dev(np.ones(3, np.float32)), b, trans_a=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize(
    "count,m,k,n",
    [
        (64, 16, 144, 64),  # a grouped convolution's products per image and group
        (3, 40, 70, 50),  # fewer products than 4x the threads, an odd count
        (5, 130, 600, 90),  # products past one thread's minimum: kept whole or split
        (6, 1, 9, 1),
        (4, 13, 1, 33),
    ],
)
def test_stacks_of_products_cpu(dtype, count, m, k, n, rng):
    """A stack of products shared out over the threads, each whole on one (``gemm_batched``):
    every product within the rounding bound, for contiguous, transposed and broadcast
    operands, and the same bits on 1, 2 and 3 threads."""
    cpu = convlab.get_backend("cpu")
    before = convlab.get_num_threads()
    a = rng.standard_normal((count, m, k)).astype(dtype)
    b = rng.standard_normal((count, k, n)).astype(dtype)
    shared = rng.standard_normal((1, m, k)).astype(dtype)
    b_t = np.ascontiguousarray(b.transpose(0, 2, 1))
    cases = [
        (a, b),
        (a, b_t.transpose(0, 2, 1)),  # column-major B per product
        (a[:, ::-1], b[:, :, ::2][:, :, : n // 2 + 1]),  # negative and step-2 strides
        (shared, b),  # one A broadcast over the stack (zero batch stride)
    ]
    try:
        for x, y in cases:
            results = []
            for threads in (1, 2, 3):
                convlab.set_num_threads(threads)
                results.append(cpu.matmul(x, y))
            for i in range(results[0].shape[0]):
                assert_gemm_close(results[0][i], np.array(x[min(i, x.shape[0] - 1)]), y[i])
            np.testing.assert_array_equal(results[0], results[1])
            np.testing.assert_array_equal(results[0], results[2])
    finally:
        convlab.set_num_threads(before)
