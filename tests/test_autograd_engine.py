"""The backward pass itself: accumulation, graph freeing, grad modes, anomaly detection,
device checks, and the Tensor basics users rely on."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import convlab
from conftest import needs_torch, torch


def test_gradients_accumulate_until_zeroed_cpu():
    x = convlab.tensor([1.0, -2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 - 4])


def test_accumulation_keeps_arrays_the_user_holds_and_matches_the_sum_cpu():
    """Fresh-gradient ops (Linear here) hand the leaf their own array; the next backward adds
    in place only while nothing else holds that array: a NumPy array taken from ``.grad``
    keeps its values (out-of-place add), and every result is the sum of the passes."""
    rng = np.random.default_rng(0)
    layer = convlab.nn.Linear(5, 3)
    x = convlab.tensor(rng.normal(size=(4, 5)).astype(np.float32), requires_grad=True)
    w = layer.weight.detach().numpy().copy()
    xs = x.detach().numpy()

    def once():
        (layer(x) ** 2).sum().backward()

    once()
    y1 = xs @ w.T + layer.bias.detach().numpy()
    first = 2 * y1.T @ xs  # d/dW of sum((x W^T + b)^2)
    np.testing.assert_allclose(layer.weight.grad.numpy(), first, rtol=1e-5)
    assert layer.weight.grad.numpy().flags.c_contiguous
    held = layer.weight.grad.numpy()  # shares the gradient's memory
    snapshot = held.copy()
    once()
    np.testing.assert_array_equal(held, snapshot)  # not added into behind the user's back
    np.testing.assert_allclose(layer.weight.grad.numpy(), 2 * first, rtol=1e-5)
    del held
    tensor_ref = layer.weight.grad
    once()  # nothing holds the array now: in place, and the Tensor object the user holds sees it
    np.testing.assert_allclose(tensor_ref.numpy(), 3 * first, rtol=1e-5)
    np.testing.assert_allclose(x.grad.numpy(), 3 * (2 * y1 @ w), rtol=1e-5)


def test_a_fresh_first_gradient_is_not_shared_between_leaves_cpu():
    """An LSTM's two weight gradients and its two bias gradients come from one array of
    gate gradients: each leaf must get memory of its own."""
    lstm = convlab.nn.LSTM(3, 4, 1)
    x = convlab.tensor(np.random.default_rng(1).normal(size=(5, 2, 3)).astype(np.float32))
    out, _ = lstm(x)
    out.sum().backward()
    grads = [p.grad.numpy() for p in lstm.parameters()]
    for i, a in enumerate(grads):
        for b in grads[i + 1 :]:
            assert not np.shares_memory(a, b)
    before = [g.copy() for g in grads]
    grads[2][...] = 7.0  # bias_ih_l0's gradient
    for i in (0, 1, 3):
        np.testing.assert_array_equal(grads[i], before[i])


def test_shared_subgraph_sums_both_paths_cpu():
    x = convlab.tensor([0.5, 1.5], requires_grad=True)
    y = x.exp()
    (y * y + y).sum().backward()
    e = np.exp([0.5, 1.5])
    np.testing.assert_allclose(x.grad.numpy(), 2 * e * e + e, rtol=1e-6)


def test_second_backward_needs_retain_graph_cpu():
    x = convlab.tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


def test_graph_is_freed_without_garbage_collector_cpu():
    gc.disable()
    try:
        x = convlab.tensor(np.ones((3, 3)), requires_grad=True)
        y = (x * 2).relu()
        node = weakref.ref(y.grad_fn)
        z = y.sum()
        z.backward()
        del y, z
        assert node() is None, "the graph outlived its last tensor (a reference cycle?)"
    finally:
        gc.enable()


def test_non_scalar_backward_needs_grad_cpu():
    x = convlab.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2).backward()
    (x * 2).backward(convlab.tensor([1.0, 10.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 20.0])
    with pytest.raises(ValueError, match=r"grad: expected shape \(2,\)"):
        (x * 2).backward(convlab.tensor([1.0]))


def test_backward_without_history_is_an_error_cpu():
    with pytest.raises(RuntimeError, match="does not require grad"):
        convlab.tensor([1.0]).sum().backward()


def test_no_grad_and_enable_grad_cpu():
    w = convlab.ones(2, requires_grad=True)
    with convlab.no_grad():
        assert not (w * 2).requires_grad
        with convlab.enable_grad():
            assert (w * 2).requires_grad
    assert (w * 2).requires_grad

    @convlab.no_grad()
    def infer(v):
        return v * 2

    assert not infer(w).requires_grad
    assert convlab.is_grad_enabled()
    convlab.set_grad_enabled(False)
    assert not (w * 2).requires_grad
    convlab.set_grad_enabled(True)


def test_detach_cuts_the_graph_cpu():
    x = convlab.tensor([2.0], requires_grad=True)
    y = x * x
    (y.detach() * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0])


def test_only_float_tensors_require_grad_cpu():
    with pytest.raises(RuntimeError, match="floating-point"):
        convlab.tensor([1, 2], requires_grad=True)
    y = convlab.tensor([1.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad = False


def test_inputs_without_grad_get_none_and_skip_work_cpu():
    x = convlab.randn(2, 3, 5, 5)
    w = convlab.randn(4, 3, 3, 3, requires_grad=True)
    convlab.nn.functional.conv2d(x, w).sum().backward()
    assert x.grad is None and w.grad is not None


def test_anomaly_detection_names_the_op_cpu():
    x = convlab.tensor([-1.0, 1.0], requires_grad=True)
    with np.errstate(invalid="ignore"):
        assert np.isnan(x.log().numpy()[0])  # silent by default, like PyTorch
        convlab.set_detect_anomaly(True)
        try:
            with pytest.raises(convlab.AnomalyError, match="Log.forward produced NaN"):
                x.log()
            y = convlab.tensor([0.0], requires_grad=True)
            with np.errstate(divide="ignore"):
                with pytest.raises(convlab.AnomalyError, match="Sqrt.backward produced"):
                    y.sqrt().sum().backward()
        finally:
            convlab.set_detect_anomaly(False)
    assert not convlab.is_anomaly_enabled()


class _OtherDevice:
    """A stand-in second backend: lets the device check run on a machine with one device."""

    name = "gpu"
    xp = np


def test_device_mismatch_is_a_clear_error_cpu():
    a = convlab.ones(2)
    b = convlab.Tensor._wrap(np.ones(2, np.float32), _OtherDevice())
    with pytest.raises(RuntimeError, match="one device, got cpu and gpu"):
        a + b


def test_shape_mismatch_shows_both_shapes_cpu():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        convlab.ones(2, 3) @ convlab.ones(4, 5)
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        convlab.ones(2, 3).reshape(4, 2)


def test_tensor_basics_cpu():
    t = convlab.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert t.dtype == convlab.float32 and t.device == "cpu" and t.ndim == 2
    assert convlab.tensor([1, 2]).dtype == convlab.int64
    assert convlab.tensor(np.zeros(2)).dtype == convlab.float64  # arrays keep their dtype
    assert t[1, 0].item() == 3.0 and len(t) == 2
    assert np.asarray(t).shape == (2, 2)
    assert t.to("cuda" if False else "cpu") is t
    assert t.double().dtype == convlab.float64
    assert "tensor(" in repr(t)
    with pytest.raises(ValueError, match="device"):
        convlab.zeros(2, device="tpu")
    with pytest.raises(TypeError, match="dtype"):
        convlab.zeros(2, dtype="complex64")
    with pytest.raises(ValueError, match="size"):
        convlab.zeros(-1)


def test_gpu_device_reports_unavailable_cpu():
    if convlab.get_backend("gpu").is_available():
        pytest.skip("a GPU is available here")
    with pytest.raises(convlab.BackendUnavailableError, match="gpu"):
        convlab.zeros(2).to("gpu")


def test_dlpack_round_trip_with_numpy_cpu():
    t = convlab.arange(6, dtype=convlab.float32).reshape(2, 3)
    a = np.from_dlpack(t)
    assert np.shares_memory(a, t.numpy())
    back = convlab.from_dlpack(a)
    np.testing.assert_array_equal(back.numpy(), t.numpy())


@needs_torch
def test_dlpack_round_trip_with_torch_cpu():
    t = convlab.randn(3, 4)
    tt = torch.from_dlpack(t)
    np.testing.assert_array_equal(tt.numpy(), t.numpy())
    back = convlab.from_dlpack(torch.arange(5.0))
    np.testing.assert_array_equal(back.numpy(), np.arange(5.0, dtype=np.float32))


def test_manual_seed_repeats_random_draws_cpu():
    convlab.manual_seed(3)
    a = convlab.randn(4).numpy()
    convlab.manual_seed(3)
    np.testing.assert_array_equal(convlab.randn(4).numpy(), a)
    with pytest.raises(ValueError, match="seed"):
        convlab.manual_seed(-1)


def test_max_with_dim_returns_values_and_indices_cpu():
    x = convlab.tensor([[1.0, 5.0, 5.0], [7.0, 2.0, 7.0]], requires_grad=True)
    values, indices = x.max(dim=1)
    assert indices.tolist() == [1, 0]  # first of the ties, as PyTorch
    values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1, 0], [1, 0, 0]])
    x.grad = None
    x.max().backward()  # ties share the gradient (amax)
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0, 0], [0.5, 0, 0.5]])
    assert x.max(axis=1).shape == (2,)  # NumPy style: values only


def test_dropout_statistics_and_eval_cpu():
    convlab.manual_seed(0)
    x = convlab.ones(200, 200, requires_grad=True)
    y = convlab.nn.functional.dropout(x, 0.3, training=True)
    kept = (y.numpy() != 0).mean()
    assert abs(kept - 0.7) < 0.01
    np.testing.assert_allclose(np.unique(y.numpy()), [0.0, 1 / 0.7], rtol=1e-6)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.numpy())
    assert convlab.nn.functional.dropout(x, 0.3, training=False) is x
    with pytest.raises(ValueError, match="p: expected a probability"):
        convlab.nn.functional.dropout(x, 1.5)


def test_cross_entropy_rejects_bad_targets_cpu():
    F = convlab.nn.functional
    logits = convlab.randn(3, 4)
    with pytest.raises(ValueError, match=r"\[0, 4\).*got 4"):
        F.cross_entropy(logits, convlab.tensor([0, 1, 4]))
    with pytest.raises(ValueError, match=r"target: expected shape \(3,\)"):
        F.cross_entropy(logits, convlab.tensor([0, 1]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(logits, convlab.tensor([0, 1, 2]), reduction="avg")
    with pytest.raises(ValueError, match="mse_loss"):
        F.mse_loss(convlab.ones(3), convlab.ones(3, 1))
