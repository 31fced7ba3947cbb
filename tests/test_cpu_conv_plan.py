"""The CPU convolution's algorithm choice: one named plan, and the plan is what runs."""

from __future__ import annotations

import contextlib
from unittest import mock

import numpy as np
import pytest

import convlab
import reference as ref
from convlab._cpu import _conv, conv_plan, conv_rows, conv_winograd

# the I20 chart CNN's convolutions (batch 8): 5x3 kernels, padding (2, 1)
I20_LAYERS = [((8, 64, 27, 60), (128, 64, 5, 3)), ((8, 128, 13, 60), (256, 128, 5, 3))]


@contextlib.contextmanager
def _recording():
    """Record which kernel module ran, without changing what it computes."""
    ran = []
    targets = [
        (conv_rows, "forward"),
        (conv_rows, "backward_data"),
        (conv_rows, "backward_weight"),
        (conv_winograd, "forward"),
        (conv_winograd, "weight_gradient"),
        (_conv, "conv2d_forward"),
        (_conv, "conv2d_backward_data_gemm"),
        (_conv, "conv2d_backward_weight"),
    ]
    patches = []
    for module, name in targets:
        original = getattr(module, name)

        def spy(*args, _original=original, _label=f"{module.__name__}.{name}", **kwargs):
            ran.append(_label)
            return _original(*args, **kwargs)

        patches.append(mock.patch.object(module, name, spy))
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        yield ran


_KERNEL_OF = {
    "forward": {
        "rows": "conv_rows.forward",
        "winograd": "conv_winograd.forward",
        "implicit": "_conv.conv2d_forward",
    },
    "data_gradient": {
        "rows": "conv_rows.backward_data",
        "winograd": "conv_winograd.forward",
        "implicit": "_conv.conv2d_forward",
        "gemm": "_conv.conv2d_backward_data_gemm",
    },
    "weight_gradient": {
        "rows": "conv_rows.backward_weight",
        "winograd": "conv_winograd.weight_gradient",
        "implicit": "_conv.conv2d_backward_weight",
    },
}

CASES = I20_LAYERS + [
    ((4, 3, 32, 32), (16, 3, 3, 3)),  # a small first layer
    ((4, 64, 2, 2), (64, 64, 3, 3)),  # a map smaller than a GEMM panel
    ((2, 8, 20, 20), (8, 8, 3, 3)),  # few channels
]


@pytest.mark.parametrize("x_shape, w_shape", CASES)
@pytest.mark.parametrize("algorithm", ["auto", "gemm", "implicit"])
def test_the_named_plan_is_the_path_that_runs_cpu(x_shape, w_shape, algorithm, rng):
    cpu = convlab.get_backend("cpu")
    stride, padding = (1, 1), (w_shape[2] // 2, w_shape[3] // 2)
    plan = cpu.conv2d_plan(x_shape, w_shape, stride, padding, 1, np.float32, algorithm)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = (rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))).astype(np.float32)
    with _recording() as ran:
        y = cpu.conv2d_forward(x, w, None, stride, padding)
    # the first kernel entered is the plan's (Winograd itself calls the implicit GEMM for the
    # columns its tiles leave)
    assert ran[0] == f"convlab._cpu.{_KERNEL_OF['forward'][plan.forward]}"
    with _recording() as ran:
        dx = cpu.conv2d_backward_data(y, w, x.shape, stride, padding, 1, algorithm)
    assert ran[0] == f"convlab._cpu.{_KERNEL_OF['data_gradient'][plan.data_gradient]}"
    with _recording() as ran:
        dw, _ = cpu.conv2d_backward_weight(y, x, w.shape, stride, padding, 1)
    assert ran[0] == f"convlab._cpu.{_KERNEL_OF['weight_gradient'][plan.weight_gradient]}"
    expected = ref.conv2d(x, w, None, stride, padding, (1, 1))
    np.testing.assert_allclose(y, expected, rtol=0, atol=2e-4 * np.abs(expected).max())
    tdx, tdw, _ = ref.conv2d_grads(x, w, y, stride, padding, (1, 1))
    np.testing.assert_allclose(dx, tdx, rtol=0, atol=2e-4 * np.abs(tdx).max())
    np.testing.assert_allclose(dw, tdw, rtol=0, atol=2e-4 * np.abs(tdw).max())


def test_chart_layers_take_winograd_and_small_maps_take_rows_cpu():
    cpu = convlab.get_backend("cpu")
    for x_shape, w_shape in I20_LAYERS:
        plan = cpu.conv2d_plan(x_shape, w_shape, 1, (2, 1))
        assert plan.forward == plan.weight_gradient == "winograd", plan
    assert cpu.conv2d_plan((4, 64, 2, 2), (64, 64, 3, 3), 1, 1) == conv_plan.ConvPlan(
        "rows", "rows", "rows"
    )
    # float64 never takes Winograd, a stride never takes the implicit input gradient
    assert cpu.conv2d_plan(*I20_LAYERS[0], 1, (2, 1), 1, np.float64).forward == "implicit"
    assert cpu.conv2d_plan((2, 8, 20, 20), (8, 8, 3, 3), 2, 1).data_gradient == "gemm"


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(stride=0), ValueError, "stride"),
        (dict(dtype=np.int32), TypeError, "dtype"),
        (dict(dtype="float16"), TypeError, "dtype"),
        (dict(data_algorithm="fast"), ValueError, "algorithm"),
        (dict(stride=2, data_algorithm="implicit"), ValueError, "algorithm"),
    ],
)
def test_bad_plan_requests_are_clear_errors_cpu(kwargs, error, match):
    with pytest.raises(error, match=match):
        convlab.get_backend("cpu").conv2d_plan((1, 2, 8, 8), (3, 2, 3, 3), **kwargs)
