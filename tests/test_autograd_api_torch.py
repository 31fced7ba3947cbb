"""``autograd.grad``, ``backward(inputs=...)``, multi-root backward, ``inference_mode``,
``Variable``, ``compile``, ``Size``: against PyTorch."""

import numpy as np
import pytest

import convlab

torch = pytest.importorskip("torch")


def leaves(lib):
    a = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
    b = lib.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]], dtype=lib.float64, requires_grad=True)
    return a, b


def program(lib, a, b):
    h = (b * a).tanh()  # non-leaf
    return h, (h.sum(0) * a).sum() + (b**2).mean()


def test_autograd_grad_matches_torch_and_leaves_grad_untouched():
    results = []
    for lib in (convlab, torch):
        a, b = leaves(lib)
        h, loss = program(lib, a, b)
        ga, gb, gh = lib.autograd.grad(loss, [a, b, h])
        assert a.grad is None and b.grad is None
        results.append([g.numpy() for g in (ga, gb, gh)])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_autograd_grad_with_grad_outputs_and_several_outputs():
    results = []
    for lib in (convlab, torch):
        a, b = leaves(lib)
        h, loss = program(lib, a, b)
        weights = lib.tensor([[1.0, 0.0, 2.0], [0.5, 0.5, 0.5]], dtype=lib.float64)
        (ga,) = lib.autograd.grad([h, loss], [a], grad_outputs=[weights, None], retain_graph=True)
        results.append(ga.numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12)


def test_autograd_grad_unused_inputs_as_torch():
    for lib in (convlab, torch):
        a, b = leaves(lib)
        loss = (a * 2).sum()
        with pytest.raises(RuntimeError):
            lib.autograd.grad(loss, [a, b], retain_graph=True)
        ga, gb = lib.autograd.grad(loss, [a, b], allow_unused=True, retain_graph=True)
        assert gb is None
        ga, gb = lib.autograd.grad(loss, [a, b], materialize_grads=True)
        np.testing.assert_array_equal(gb.numpy(), np.zeros((2, 3)))


def test_higher_order_gradients_are_refused_clearly():
    a, _ = leaves(convlab)
    loss = (a**3).sum()
    with pytest.raises(NotImplementedError, match="create_graph"):
        convlab.autograd.grad(loss, a, create_graph=True)
    with pytest.raises(NotImplementedError, match="create_graph"):
        loss.backward(create_graph=True)


def test_backward_inputs_limits_accumulation_as_torch():
    results = []
    for lib in (convlab, torch):
        a, b = leaves(lib)
        _, loss = program(lib, a, b)
        loss.backward(inputs=[b])
        assert a.grad is None
        results.append(b.grad.numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12)


def test_autograd_backward_of_several_tensors_as_torch():
    results = []
    for lib in (convlab, torch):
        a, b = leaves(lib)
        h, loss = program(lib, a, b)
        lib.autograd.backward([loss, h.sum()])
        results.append((a.grad.numpy(), b.grad.numpy()))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_backward_gradient_keyword_as_torch():
    results = []
    for lib in (convlab, torch):
        a, b = leaves(lib)
        h, _ = program(lib, a, b)
        h.backward(gradient=lib.ones_like(h))
        results.append(a.grad.numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12)


def test_inference_mode_and_variable():
    for lib in (convlab, torch):
        w = lib.ones(2, requires_grad=True)
        with lib.inference_mode():
            assert not (w * 2).requires_grad
        with lib.inference_mode(False):
            assert (w * 2).requires_grad

        @lib.inference_mode()
        def f(x):
            return x * 2

        assert not f(w).requires_grad
    v = convlab.autograd.Variable(convlab.ones(2), requires_grad=True)
    assert isinstance(v, convlab.Tensor) and v.requires_grad


def test_compile_and_size():
    model = convlab.nn.Linear(2, 2)
    assert convlab.compile(model) is model
    assert convlab.compile(mode="max-autotune")(model) is model
    size = convlab.Size([2, 3, 4])
    assert size == (2, 3, 4) and size.numel() == torch.Size([2, 3, 4]).numel() == 24
    convlab.use_deterministic_algorithms(True)
    assert convlab.are_deterministic_algorithms_enabled()
    convlab.use_deterministic_algorithms(False)


@pytest.mark.parametrize("outer", [True, False])
@pytest.mark.parametrize("inner", [True, False])
def test_set_grad_enabled_as_a_context_restores_the_outer_mode_as_torch(outer, inner):
    for lib in (convlab, torch):
        with lib.set_grad_enabled(outer):
            with lib.set_grad_enabled(inner):
                assert lib.is_grad_enabled() is inner
            assert lib.is_grad_enabled() is outer
        assert lib.is_grad_enabled() is True

        @lib.set_grad_enabled(inner)
        def probe(lib=lib):
            return lib.is_grad_enabled()

        assert lib.is_grad_enabled() is True and probe() is inner
        assert lib.is_grad_enabled() is True


@pytest.mark.parametrize("lib_name", ["convlab", "torch"])
def test_queue_callback_runs_after_every_gradient_is_accumulated(lib_name):
    """``Variable._execution_engine.queue_callback`` (what DistributedDataParallel uses to
    average gradients): queued from a hook during backward, run once at its end, in order,
    with every leaf's gradient in place; outside backward it raises."""
    lib = convlab if lib_name == "convlab" else torch
    engine = lib.autograd.Variable._execution_engine
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    b = lib.tensor([3.0], requires_grad=True)
    seen = []

    def first() -> None:
        seen.append(("first", a.grad is not None, b.grad is not None))
        engine.queue_callback(lambda: seen.append(("queued by a callback", True, True)))

    def hook(grad):
        if not seen:
            engine.queue_callback(first)
            engine.queue_callback(lambda: seen.append(("second", True, True)))
        seen.append(("hook", None, None))

    a.register_hook(hook)
    ((a * 2).sum() + (b * b).sum() * (a * a).sum()).backward()
    assert [s for s in seen if s[0] != "hook"] == [
        ("first", True, True),
        ("second", True, True),
        ("queued by a callback", True, True),
    ]
    with pytest.raises(RuntimeError, match="only be installed during backward pass"):
        engine.queue_callback(lambda: None)
