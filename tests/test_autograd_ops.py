"""Every differentiable op: forward against NumPy (and PyTorch), gradients against central
differences in float64 (and PyTorch's autograd)."""

from __future__ import annotations

import numpy as np
import pytest

import convlab
from conftest import needs_torch, to_numpy, torch
from op_cases import CASES, grad_indices, make_inputs

CASE_IDS = [c.id for c in CASES]


def _run(case, lib, arrays, device=None, requires=()):
    if lib is convlab:
        tensors = [
            convlab.tensor(a, device=device, requires_grad=i in requires)
            for i, a in enumerate(arrays)
        ]
    else:
        tensors = [torch.tensor(a, requires_grad=i in requires) for i, a in enumerate(arrays)]
    if case.seeded:
        (convlab if lib is convlab else torch).manual_seed(0)
    fn = case.fn if lib is convlab or case.torch_fn is None else case.torch_fn
    return fn(lib, *tensors), tensors


def _numerical_grad(case, arrays, index, weights, device, eps=1e-6):
    """Central differences of sum(f(x) * weights) with respect to input ``index``."""
    x = arrays[index]
    grad = np.zeros_like(x)
    flat = x.reshape(-1)
    for k in range(flat.size):
        saved = flat[k]
        values = []
        for delta in (eps, -eps):
            flat[k] = saved + delta
            with convlab.no_grad():
                out, _ = _run(case, convlab, arrays, device)
            values.append(float((out.numpy() * weights).sum()))
        flat[k] = saved
        grad.reshape(-1)[k] = (values[0] - values[1]) / (2 * eps)
    return grad


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_forward_matches_numpy(backend, case, rng):
    arrays = make_inputs(case, rng)
    out, _ = _run(case, convlab, arrays, backend.name)
    expected = case.ref(*[a.copy() for a in arrays])
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_gradient_matches_central_differences(backend, case, rng):
    arrays = make_inputs(case, rng)
    wanted = grad_indices(case, arrays)
    out, tensors = _run(case, convlab, arrays, backend.name, requires=wanted)
    weights = rng.normal(size=out.shape)
    (out * convlab.tensor(weights, device=backend.name)).sum().backward()
    for i in wanted:
        expected = _numerical_grad(case, [a.copy() for a in arrays], i, weights, backend.name)
        assert tensors[i].grad is not None, f"input {i} got no gradient"
        np.testing.assert_allclose(
            tensors[i].grad.numpy(),
            expected,
            rtol=1e-5,
            atol=1e-6,
            err_msg=f"gradient of input {i}",
        )


@needs_torch
@pytest.mark.filterwarnings("ignore:Using padding='same'")
class TestAgainstPyTorch:
    @pytest.mark.parametrize(
        "case",
        [c for c in CASES if c.torch_fn is not False],
        ids=[c.id for c in CASES if c.torch_fn is not False],
    )
    def test_forward_and_backward_cpu(self, case, rng):
        arrays = make_inputs(case, rng)
        arrays = [
            a.astype(np.float32) if a.dtype.kind == "f" else a.astype(np.int64) for a in arrays
        ]
        wanted = grad_indices(case, arrays)
        ours, ours_in = _run(case, convlab, arrays, "cpu", requires=wanted)
        theirs, theirs_in = _run(case, torch, arrays, requires=wanted)
        np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=2e-5, atol=2e-5)
        weights = rng.normal(size=ours.shape).astype(np.float32)
        (ours * convlab.tensor(weights)).sum().backward()
        (theirs * torch.tensor(weights)).sum().backward()
        for i in wanted:
            np.testing.assert_allclose(
                ours_in[i].grad.numpy(),
                theirs_in[i].grad.numpy(),
                rtol=2e-4,
                atol=2e-5,
                err_msg=f"gradient of input {i}",
            )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("slope", [0.01, 0.0, -0.5, 1.5])
def test_leaky_relu_over_many_parallel_chunks_cpu(dtype, slope):
    # 3 * 70_001 values: several of the kernel's 32K-element work items and a ragged tail,
    # on two threads; NaN stays NaN and signed zeros keep their sign, as in NumPy
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 70_001)).astype(dtype)
    x[0, :4] = [np.nan, 0.0, -0.0, np.inf]
    g = rng.standard_normal(x.shape).astype(dtype)
    threads = convlab.get_num_threads()
    convlab.set_num_threads(2)
    try:
        t = convlab.tensor(x, requires_grad=True)
        y = convlab.nn.functional.leaky_relu(t, slope)
        y.backward(convlab.tensor(g))
    finally:
        convlab.set_num_threads(threads)
    with np.errstate(invalid="ignore"):  # inf * 0, computed but not selected
        expected = np.where(x > 0, x, x * dtype(slope))
    np.testing.assert_array_equal(y.numpy(), expected)
    assert np.array_equal(np.signbit(y.numpy()[0, 1:3]), np.signbit(expected[0, 1:3]))
    np.testing.assert_array_equal(t.grad.numpy(), np.where(x > 0, g, g * dtype(slope)))


def test_relu_gradient_at_nan_zero_and_inf_matches_torch(backend):
    torch = pytest.importorskip("torch")
    x = np.array([np.nan, 0.0, -0.0, np.inf, -np.inf, -1.0, 2.0], np.float32)
    g = np.arange(1, 8, dtype=np.float32)
    ours = convlab.tensor(x, requires_grad=True, device=backend.name)
    convlab.nn.functional.relu(ours).backward(convlab.tensor(g, device=backend.name))
    theirs = torch.tensor(x, requires_grad=True)
    torch.nn.functional.relu(theirs).backward(torch.tensor(g))
    # PyTorch passes the gradient where the output is NaN and zeroes it where output <= 0
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_kernel_over_many_parallel_chunks_cpu(dtype, p):
    """The CPU backend's one-pass dropout: the mask's rate within 5 standard deviations, the
    output and gradient exactly NumPy's ``x * keep * scale`` for its mask (NaN, inf and signed
    zeros included), and the same mask for one thread and two (3 * 70_001 values: several
    32K-element work items and a ragged, odd tail)."""
    cpu = convlab.get_backend("cpu")
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 70_001)).astype(dtype)
    x[0, :4] = [np.nan, -0.0, np.inf, -np.inf]
    g = rng.standard_normal(x.shape).astype(dtype)
    threads = convlab.get_num_threads()
    try:
        convlab.set_num_threads(2)
        out, keep = cpu.dropout_forward(x, p, seed=2**63 + 5)
        dx = cpu.dropout_backward(g, keep, p)
        convlab.set_num_threads(1)
        out_one, keep_one = cpu.dropout_forward(x, p, seed=2**63 + 5)
    finally:
        convlab.set_num_threads(threads)
    np.testing.assert_array_equal(keep, keep_one)
    np.testing.assert_array_equal(out, out_one)
    assert keep.dtype == np.bool_ and keep.shape == x.shape
    sigma = np.sqrt(p * (1 - p) / x.size)
    assert abs(keep.mean() - (1 - p)) < 5 * sigma
    scale = dtype(1.0 / (1.0 - p))
    with np.errstate(invalid="ignore"):  # inf * 0 where dropped
        expected = (x * keep) * scale
    np.testing.assert_array_equal(out, expected)
    assert np.array_equal(np.signbit(out), np.signbit(expected))
    np.testing.assert_array_equal(dx, (g * keep) * scale)


def test_dropout_masks_are_independent_and_seeded_cpu():
    """Neighbouring elements (the two halves of one random number) and neighbouring numbers
    are uncorrelated; another seed gives another mask; manual_seed repeats a layer's masks."""
    cpu = convlab.get_backend("cpu")
    x = np.ones(1_000_000, np.float32)
    keep = cpu.dropout_forward(x, 0.5, seed=1)[1].astype(np.float64)
    bound = 5 / np.sqrt(x.size / 2)  # 5 sigma of a correlation estimate
    for lag in (1, 2, 3, 64):
        assert abs(np.corrcoef(keep[:-lag], keep[lag:])[0, 1]) < bound, lag
    other = cpu.dropout_forward(x, 0.5, seed=2)[1]
    assert abs((keep != other).mean() - 0.5) < 5 * 0.5 / np.sqrt(x.size)
    convlab.manual_seed(3)
    t = convlab.ones(64, 64, requires_grad=True)
    first = convlab.nn.functional.dropout(t, 0.5).numpy()
    second = convlab.nn.functional.dropout(t, 0.5).numpy()
    convlab.manual_seed(3)
    np.testing.assert_array_equal(convlab.nn.functional.dropout(t, 0.5).numpy(), first)
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_mask_is_the_same_on_every_backend(backend, dtype):
    """Both backends draw from one SplitMix64 stream: a seed gives one mask, output and
    gradient everywhere (an odd length leaves the last number's high half unused)."""
    cpu = convlab.get_backend("cpu")
    rng = np.random.default_rng(4)
    x = rng.standard_normal(10_001).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    want_out, want_keep = cpu.dropout_forward(x, 0.3, seed=2**63 + 7)
    out, keep = backend.dropout_forward(backend.asarray(x), 0.3, seed=2**63 + 7)
    np.testing.assert_array_equal(to_numpy(backend, keep), want_keep)
    np.testing.assert_array_equal(to_numpy(backend, out), want_out)
    dx = backend.dropout_backward(backend.asarray(g), keep, 0.3)
    np.testing.assert_array_equal(to_numpy(backend, dx), cpu.dropout_backward(g, want_keep, 0.3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_rows_forward_is_dropout_forward_on_each_row(backend, dtype):
    """A seed per row (the sample-indexed dropout of distributed runs): row r's output and
    mask are exactly ``dropout_forward(x[r], p, seeds[r])``'s, on every backend and for any
    thread count; odd row lengths (a pair split between rows) and a non-contiguous input."""
    cpu = convlab.get_backend("cpu")
    rng = np.random.default_rng(11)
    x = rng.standard_normal((5, 7, 3)).astype(dtype).transpose(0, 2, 1)  # rows of 21
    seeds = np.array([0, 1, 2**63 + 7, 2**64 - 1, 12345], np.uint64)
    threads = convlab.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            convlab.set_num_threads(n)
            out, keep = backend.dropout_rows_forward(backend.asarray(x), 0.4, seeds)
            results.append((to_numpy(backend, out), to_numpy(backend, keep)))
    finally:
        convlab.set_num_threads(threads)
    for out, keep in results:
        assert out.shape == keep.shape == x.shape and keep.dtype == np.bool_
        for r in range(x.shape[0]):
            want_out, want_keep = cpu.dropout_forward(np.ascontiguousarray(x[r]), 0.4, seeds[r])
            np.testing.assert_array_equal(keep[r], want_keep)
            np.testing.assert_array_equal(out[r], want_out)
    with pytest.raises(ValueError, match=r"seeds: expected a 1-D uint64 array of 5 seeds"):
        backend.dropout_rows_forward(backend.asarray(x), 0.4, seeds[:4])
    with pytest.raises(ValueError, match=r"seeds: expected a 1-D uint64 array"):
        backend.dropout_rows_forward(backend.asarray(x), 0.4, seeds.astype(np.int64))
    with pytest.raises(ValueError, match=r"p: expected a probability"):
        backend.dropout_rows_forward(backend.asarray(x), 1.5, seeds)


def test_dropout_on_every_backend_follows_convlabs_random_state(backend):
    """A resumed run restores convlab's generator state; that must decide the next masks on
    the GPU too (they were drawn from CuPy's own generator, which a checkpoint never held)."""
    t = convlab.ones(64, 64).to(backend.name)
    state = convlab.get_rng_state()
    first = convlab.nn.functional.dropout(t, 0.5).numpy()
    convlab.set_rng_state(state)
    np.testing.assert_array_equal(convlab.nn.functional.dropout(t, 0.5).numpy(), first)


def test_dropout_kernel_rejects_bad_arguments_cpu():
    cpu = convlab.get_backend("cpu")
    x = np.ones((4, 5), np.float32)
    with pytest.raises(ValueError, match=r"p: expected a probability in \[0, 1\), got 1.0"):
        cpu.dropout_forward(x, 1.0, seed=0)
    with pytest.raises(TypeError, match="x"):
        cpu.dropout_forward(x.astype(np.int32), 0.5, seed=0)
    with pytest.raises(ValueError, match=r"keep: expected a bool mask of shape \(4, 5\)"):
        cpu.dropout_backward(x, np.ones((4, 5), np.uint8), 0.5)
    with pytest.raises(ValueError, match=r"keep: expected a bool mask of shape \(4, 5\)"):
        cpu.dropout_backward(x, np.ones((5, 4), np.bool_), 0.5)
