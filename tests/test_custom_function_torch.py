"""PyTorch-style custom autograd functions (``forward(ctx, ...)``) against PyTorch."""

import numpy as np
import pytest

import convlab

torch = pytest.importorskip("torch")


def make_functions(lib):
    class ScaledTanh(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale, offset=0.0):
            y = (x * scale).tanh()
            ctx.save_for_backward(y, scale)
            ctx.offset = offset
            return y + offset

        @staticmethod
        def backward(ctx, grad):
            y, scale = ctx.saved_tensors
            dx = grad * (1 - y * y) * scale
            dscale = (grad * (1 - y * y) * ctx.saved_tensors[0].new_ones(y.shape)).sum()
            return dx, dscale, None

    class StraightThrough(lib.autograd.Function):
        @staticmethod
        def forward(x):
            return x.round()

        @staticmethod
        def setup_context(ctx, inputs, output):
            pass

        @staticmethod
        def backward(ctx, grad):
            return grad

    return ScaledTanh, StraightThrough


def test_ctx_style_function_matches_torch():
    results = []
    for lib in (convlab, torch):
        scaled_tanh, straight = make_functions(lib)
        x = lib.tensor([[0.3, -1.2], [2.0, 0.1]], dtype=lib.float64, requires_grad=True)
        s = lib.tensor(0.7, dtype=lib.float64, requires_grad=True)
        y = scaled_tanh.apply(x * 2, s, 0.5)
        z = straight.apply(y * 3)
        (z * lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=lib.float64)).sum().backward()
        results.append((y.detach().numpy(), z.detach().numpy(), x.grad.numpy(), s.grad.numpy()))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_ctx_style_function_without_grad_returns_forward_output():
    scaled_tanh, _ = make_functions(convlab)
    x = convlab.tensor([0.5])
    y = scaled_tanh.apply(x, convlab.tensor(1.0))
    assert not y.requires_grad
    np.testing.assert_allclose(y.numpy(), np.tanh([0.5]))


def test_wrong_gradient_count_is_a_clear_error():
    class Bad(convlab.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, grad):
            return grad, grad, grad

    a = convlab.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="expected 2"):
        Bad.apply(a, convlab.ones(2)).sum().backward()
