"""Regression tests for the fuzzing campaign's findings in the layer around the kernels.

Each test names the finding it pins. Calls that once crashed the process (heap corruption,
segfaults, libgomp aborting) run in a subprocess, so that a regression fails the test instead
of killing pytest.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import convlab
import convlab.nn.functional as F
from conftest import to_numpy
from convlab._cpu import _runtime, conv_winograd
from convlab.models import ChartCNN
from reference import conv2d as ref_conv2d
from reference import conv2d_grads as ref_conv2d_grads

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def run_isolated(code: str, timeout: float = 120) -> str:
    """Run ``code`` in a fresh interpreter (which can import this module); it must exit 0 (no
    crash). Returns its stdout."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [os.path.dirname(os.path.abspath(__file__))]
            + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        ),
    )
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


def report(calls) -> None:
    """For the subprocess tests: print whether each call was accepted or refused (and how)."""
    for call in calls:
        try:
            call()
            print("accepted")
        except (TypeError, ValueError) as err:
            print("refused:", type(err).__name__, err)


# -- 1. optimizer state from a checkpoint ----------------------------------------------------


def _trained_adam():
    p = convlab.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    opt = convlab.optim.Adam([p], lr=0.1)
    p.grad = convlab.ones(2, 3)
    opt.step()
    return p, opt


def test_zero_d_moments_in_a_state_dict_are_refused_without_a_crash():
    out = run_isolated("""
        import numpy as np, convlab
        p = convlab.zeros(1000, requires_grad=True)
        opt = convlab.optim.Adam([p])
        state = {"state": {0: {"step": 3, "exp_avg": np.array(0.0, np.float32),
                               "exp_avg_sq": np.array(0.0, np.float32)}},
                 "param_groups": [dict(opt.state_dict()["param_groups"][0])]}
        try:
            opt.load_state_dict(state)
        except ValueError as err:
            print("refused:", err)
        p.grad = convlab.ones(1000)
        opt.step()                      # the optimizer still works (nothing was loaded)
        print("stepped", float(p.numpy()[0]))
    """)
    assert "refused: state_dict: parameter 0 ('exp_avg')" in out
    assert "() does not fit a parameter of shape (1000,)" in out
    assert "stepped" in out


@pytest.mark.parametrize(
    "entry, value, message",
    [
        ("exp_avg", np.zeros(6, np.float32), "shape (6,) does not fit a parameter of shape (2, 3)"),
        ("exp_avg", np.zeros((2, 3), np.int64), "expected floating-point values"),
        ("exp_avg_sq", "zeros", "expected an array of shape (2, 3)"),
        ("step", "3", "expected an int >= 0"),
        ("step", -1, "expected an int >= 0"),
        ("step", np.array(2.5), "expected an int >= 0"),
    ],
)
def test_every_state_entry_is_checked_against_its_parameter(entry, value, message):
    p, opt = _trained_adam()
    saved = opt.state_dict()
    before = {k: np.copy(v.numpy()) if hasattr(v, "numpy") else v for k, v in opt.state[p].items()}
    saved["state"][0] = dict(saved["state"][0], **{entry: value})
    with pytest.raises(ValueError, match="parameter 0") as err:
        opt.load_state_dict(saved)
    assert message in str(err.value)
    for key, old in before.items():  # a refused state dict changes nothing
        np.testing.assert_array_equal(np.asarray(opt.state[p][key]), old)


@pytest.mark.parametrize("missing", ["exp_avg", "exp_avg_sq", "step"])
def test_a_state_without_an_entry_the_step_needs_is_refused(missing):
    p, opt = _trained_adam()
    saved = opt.state_dict()
    del saved["state"][0][missing]
    with pytest.raises(ValueError, match=f"parameter 0 has state without .*'{missing}'"):
        opt.load_state_dict(saved)


def test_amsgrad_turned_on_after_saving_still_steps():
    p, opt = _trained_adam()
    saved = opt.state_dict()
    saved["param_groups"][0]["amsgrad"] = True
    other = convlab.optim.Adam([p], lr=0.1)
    other.load_state_dict(saved)
    p.grad = convlab.ones(2, 3)
    other.step()
    assert other.state[p]["step"] == 2 and "max_exp_avg_sq" in other.state[p]


@pytest.mark.parametrize("flag", [np.bool_(True), 1, np.bool_(False)])
def test_numpy_bools_and_json_ints_are_flags(flag):
    p = convlab.zeros(2, requires_grad=True)
    assert convlab.optim.Adam([p], amsgrad=flag).param_groups[0]["amsgrad"] is bool(flag)
    sgd = convlab.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=flag)
    assert sgd.param_groups[0]["nesterov"] is bool(flag)


def test_moments_are_cast_to_the_parameter_dtype_and_a_round_trip_is_exact():
    p, opt = _trained_adam()
    saved = opt.state_dict()
    saved["state"][0]["exp_avg"] = saved["state"][0]["exp_avg"].numpy().astype(np.float64)
    other = convlab.optim.Adam([p], lr=0.1)
    other.load_state_dict(saved)
    assert other.state[p]["exp_avg"].dtype == np.float32
    np.testing.assert_array_equal(other.state[p]["exp_avg"], opt.state[p]["exp_avg"])
    assert other.state[p]["step"] == 1


@pytest.mark.parametrize(
    "group_change, message",
    [
        ({"lr": "fast"}, "lr: expected a number"),
        ({"lr": float("nan")}, "lr: expected a finite number"),
        ({"betas": [0.9]}, "betas"),
        ({"betas": [0.9, 1.5]}, "betas[1]"),
        ({"eps": -1.0}, "eps"),
        ({"amsgrad": "no"}, "amsgrad"),
    ],
)
def test_group_settings_in_a_state_dict_are_checked(group_change, message):
    p, opt = _trained_adam()
    saved = opt.state_dict()
    saved["param_groups"][0].update(group_change)
    with pytest.raises(ValueError, match="group 0") as err:
        opt.load_state_dict(saved)
    assert message in str(err.value)
    assert opt.param_groups[0]["lr"] == 0.1


@pytest.mark.parametrize(
    "bad",
    [np.array(["a", "b"]), [[1.0], [2.0, 3.0]], np.array([1 + 2j, 3j])],
    ids=["strings", "ragged", "complex"],
)
def test_a_refused_module_state_dict_changes_nothing(bad):
    layer = convlab.nn.Linear(3, 2)
    before = layer.weight.numpy().copy()
    with pytest.raises(RuntimeError, match="bias"):
        layer.load_state_dict({"weight": np.zeros((2, 3)), "bias": bad})
    np.testing.assert_array_equal(layer.weight.numpy(), before)


# -- 3. gradients and raw arrays that do not fit -----------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: convlab.optim.SGD(ps, lr=0.1),
        lambda ps: convlab.optim.SGD(ps, lr=0.1, momentum=0.9),
        lambda ps: convlab.optim.Adam(ps, lr=0.1),
        lambda ps: convlab.optim.AdamW(ps, lr=0.1),
        lambda ps: convlab.optim.Adam(ps, lr=0.1, amsgrad=True),
    ],
    ids=["sgd", "sgd-momentum", "adam", "adamw", "adam-amsgrad"],
)
@pytest.mark.parametrize(
    "grad",
    [
        lambda: convlab.ones(3),  # wrong size
        lambda: convlab.ones(2, 3, 1),  # broadcastable, wrong shape
        lambda: convlab.ones(2, 3, dtype=convlab.float64),  # wrong dtype
        lambda: np.ones((2, 3), np.float32),  # not a Tensor
    ],
    ids=["size", "shape", "dtype", "ndarray"],
)
def test_a_gradient_that_does_not_fit_its_parameter_is_an_error(make, grad):
    p = convlab.zeros(2, 3, requires_grad=True)
    opt = make([p])
    p.grad = grad()
    with pytest.raises(ValueError, match=r"grad: parameter 0 has shape \(2, 3\)"):
        opt.step()
    np.testing.assert_array_equal(p.numpy(), 0)  # nothing written


def test_fused_adam_step_checks_its_arrays_in_a_subprocess():
    out = run_isolated("""
        import numpy as np, convlab
        cpu = convlab.get_backend("cpu")
        p, m, v = (np.zeros(1 << 20, np.float32) for _ in range(3))
        for grad, moment in ((np.ones(10, np.float32), m), (np.ones(1 << 20, np.float32),
                                                             np.zeros(3, np.float32))):
            try:
                cpu.adam_step(p, grad, moment, v, 1e-3, (0.9, 0.999), 1e-8, 0.0, False, 1)
            except ValueError as err:
                print("refused:", err)
        try:
            cpu.adam_step(p, np.ones_like(p), m, v, 1e-3, (0.9, 0.999), 1e-8, 0.0, False, 0)
        except ValueError as err:
            print("refused:", err)
    """)
    assert out.count("refused:") == 3
    assert "grad: expected a float32 array of shape (1048576,), got float32 (10,)" in out
    assert "exp_avg: expected a float32 array of shape (1048576,)" in out
    assert "step: expected an int >= 1" in out


def test_batch_norm_kernels_check_per_channel_arrays_in_a_subprocess():
    out = run_isolated("""
        import numpy as np, convlab
        from test_hardening_kernels import report
        cpu = convlab.get_backend("cpu")
        x = np.ones((4, 64, 8, 8), np.float32)
        short = np.ones(3, np.float32)
        calls = [
            lambda: cpu.batch_norm_forward(x, short, None, None, None, 1e-5),
            lambda: cpu.batch_norm_forward(x, None, short, None, None, 1e-5),
            lambda: cpu.batch_norm_forward(x, None, None, np.ones(3), np.ones(3), 1e-5),
            lambda: cpu.batch_norm_forward(x, None, None, np.ones(64), None, 1e-5),
            lambda: cpu.batch_norm_backward(x, x, np.ones(3), np.ones(64), None, True),
            lambda: cpu.batch_norm_backward(x, x, np.ones(64), np.ones(3), None, True),
            lambda: cpu.batch_norm_backward(x, x, np.ones(64), np.ones(64), short, True),
            lambda: cpu.batch_norm_backward(x[:2], x, np.ones(64), np.ones(64), None, True),
            lambda: cpu.batch_norm_backward(x, x, np.ones(64, np.float32), np.ones(64), None,
                                            True),
        ]
        report(calls)
    """)
    assert "accepted" not in out
    assert out.count("refused:") == 9


def _binary_layer_args(n=3):
    """Valid arguments of the binary layer's two kernels (I20 geometry, exact fold)."""
    from convlab._ops.binary import _layer_geometry

    rng = np.random.default_rng(0)
    geom = _layer_geometry((1, 64, 60), (5, 3), (3, 1), (12, 1), (2, 1))
    x = (rng.random((n, 64 * 60)) < 0.2).astype(np.uint8)
    weight = rng.standard_normal((64, 1, 5, 3)).astype(np.float32)
    values = rng.standard_normal((64, len(geom.run_taps))).astype(np.float32)
    return geom, x, weight, values


def test_binary_layer_methods_check_their_arrays_in_a_subprocess():
    out = run_isolated("""
        import numpy as np, convlab
        from test_hardening_kernels import _binary_layer_args, report
        cpu = convlab.get_backend("cpu")
        geom, x, weight, values = _binary_layer_args()
        args = geom.args()
        def fwd(**change):
            kw = dict(x=x, packed=False, weight=weight, base_values=values,
                      base_index=geom.base_index)
            kw.update(change)
            return cpu.binary_conv2d_forward(*kw.values(), *args)
        oh, ow = geom.base_index.shape
        grad = np.ones((3, 64, oh, ow), np.float32)
        def wgrad(**change):
            kw = dict(x=x, packed=False, grad_output=grad, cls=geom.cls,
                      n_classes=len(geom.class_taps))
            kw.update(change)
            starts = kw.pop("row_starts", geom.row_starts)
            return cpu.binary_conv2d_weight_sums(*kw.values(), *args, row_starts=starts)
        bad_index = geom.base_index.copy(); bad_index[0, 0] = 10**6
        bad_cls = geom.cls.copy(); bad_cls[-1] = 10**6
        calls = [
            lambda: fwd(weight=weight[:3]),
            lambda: fwd(base_values=values[:3]),
            lambda: fwd(weight=weight[:, :, :3]),
            lambda: fwd(weight=weight.astype(np.float64)),
            lambda: fwd(base_values=values[:, :0]),
            lambda: fwd(base_values=values[:, :1]),
            lambda: fwd(base_index=bad_index),
            lambda: fwd(base_index=geom.base_index[:3]),
            lambda: fwd(base_index=geom.base_index.astype(np.int64)),
            lambda: fwd(x=x[:, :100]),
            lambda: wgrad(grad_output=grad[:, :, :2]),
            lambda: wgrad(cls=bad_cls),
            lambda: wgrad(row_starts=np.array([0, 10**6], np.int32)),
            lambda: wgrad(x=x[:, :100]),
            lambda: wgrad(n_classes=0),
        ]
        report(calls)
        print("valid:", fwd().shape, [a.shape for a in wgrad()])
    """)
    assert "accepted" not in out, out
    assert out.count("refused:") == 15
    assert "valid:" in out


def test_masks_of_fused_activations_are_checked(backend):
    grad = backend.asarray(np.ones((4, 5), np.float32))
    with pytest.raises(ValueError, match="positive: expected a bool mask of shape"):
        backend.leaky_relu_backward(grad, backend.asarray(np.ones(3, np.bool_)), 0.1)


# -- 5. thread counts --------------------------------------------------------------------------


@pytest.mark.parametrize("n", [60_000, 100_000, 2**31, 2**64])
def test_huge_thread_counts_are_refused_in_a_subprocess(n):
    out = run_isolated(f"""
        import convlab
        try:
            convlab.set_num_threads({n})
        except ValueError as err:
            print("refused:", err)
        print("threads", convlab.get_num_threads())
    """)
    assert "refused: n: expected a thread count from 1 to" in out
    assert f"got {n}" in out


def test_the_thread_limit_is_usable():
    before = convlab.get_num_threads()
    try:
        convlab.set_num_threads(convlab.max_threads())
        # a serial build (no OpenMP) accepts the setting and runs on one thread
        assert convlab.get_num_threads() == (
            convlab.max_threads() if _runtime.openmp_enabled() else 1
        )
    finally:
        convlab.set_num_threads(before)


# -- 6. empty kernels --------------------------------------------------------------------------


@pytest.mark.parametrize("weight_shape", [(8, 8, 0, 3), (8, 8, 3, 0), (8, 8, 0, 0)])
def test_an_empty_kernel_is_an_error(backend, weight_shape):
    x = backend.asarray(np.ones((2, 8, 16, 16), np.float32))
    w = backend.asarray(np.ones(weight_shape, np.float32))
    with pytest.raises(ValueError, match="kernel_size: expected sizes >= 1"):
        backend.conv2d_forward(x, w)
    dy = backend.asarray(np.ones((2, 8, 17, 14), np.float32))
    with pytest.raises(ValueError, match="kernel_size: expected sizes >= 1"):
        backend.conv2d_backward_data(dy, w, (2, 8, 16, 16))
    with pytest.raises(ValueError, match="kernel_size: expected sizes >= 1"):
        backend.conv2d_backward_weight(dy, x, weight_shape)
    with pytest.raises(ValueError, match="kernel_size"):
        F.conv2d(convlab.ones(2, 8, 16, 16), convlab.ones(*weight_shape))


# -- 7. Winograd with inf and NaN ---------------------------------------------------------------

WINOGRAD_SHAPE = dict(x=(2, 64, 16, 30), w=(64, 64, 3, 3), padding=(1, 1))


def _winograd_operands(rng, poison_x, poison_w=None):
    x = rng.standard_normal(WINOGRAD_SHAPE["x"]).astype(np.float32)
    w = rng.standard_normal(WINOGRAD_SHAPE["w"]).astype(np.float32)
    for (n, c, i, j), value in poison_x:
        x[n, c, i, j] = value
    for (o, c, i, j), value in poison_w or []:
        w[o, c, i, j] = value
    return x, w


def _same_nonfinite_pattern(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want))
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-3, atol=1e-3)


POISONS = {
    "one-inf": [((0, 3, 4, 7), np.inf)],
    "one-nan": [((1, 10, 0, 29), np.nan)],
    "inf-and-minus-inf": [((0, 0, 5, 5), np.inf), ((0, 1, 5, 6), -np.inf)],
}


@pytest.mark.parametrize("poison", list(POISONS), ids=list(POISONS))
def test_winograd_keeps_the_direct_pattern_of_inf_and_nan(poison):
    rng = np.random.default_rng(7)
    x, w = _winograd_operands(rng, POISONS[poison])
    cpu = convlab.get_backend("cpu")
    pad = WINOGRAD_SHAPE["padding"]
    out_hw = (x.shape[2], x.shape[3])
    assert conv_winograd.applies(x.shape, w.shape, (1, 1), pad, (1, 1), out_hw, np.float32)
    with np.errstate(invalid="ignore"):
        want = ref_conv2d(x, w, None, (1, 1), pad, (1, 1))
        y = cpu.conv2d_forward(x, w, None, 1, pad)
        _same_nonfinite_pattern(y, want)
        # the input gradient is the transposed convolution (Winograd too, on dy)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        dy_poisoned = dy.copy()
        dy_poisoned[0, 5, 3, 3] = np.inf if "inf" in poison else np.nan
        dx_want, _, _ = ref_conv2d_grads(x, w, dy_poisoned, (1, 1), pad, (1, 1))
        dx = cpu.conv2d_backward_data(dy_poisoned, w, x.shape, 1, pad, algorithm="implicit")
        _same_nonfinite_pattern(dx, dx_want)
        _, dw_want, db_want = ref_conv2d_grads(x, w, dy, (1, 1), pad, (1, 1))
        dw, db = cpu.conv2d_backward_weight(dy, x, w.shape, 1, pad)
        _same_nonfinite_pattern(dw, dw_want)
        _same_nonfinite_pattern(db, db_want)


def test_winograd_with_a_non_finite_weight_keeps_the_direct_pattern():
    rng = np.random.default_rng(8)
    x, w = _winograd_operands(rng, [], [((3, 0, 1, 1), np.inf), ((5, 2, 0, 2), np.nan)])
    with np.errstate(invalid="ignore"):
        want = ref_conv2d(x, w, None, (1, 1), (1, 1), (1, 1))
        got = convlab.get_backend("cpu").conv2d_forward(x, w, None, 1, 1)
    # where a tap meets the zero padding, 0 * NaN is NaN in a dense sum but skipped by
    # kernels that never read the padding (PyTorch's CPU kernels disagree with the dense sum
    # there too): compare the outputs whose windows lie inside the image
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))
    _same_nonfinite_pattern(got[inner], want[inner])
    assert np.isnan(got[:, 5][inner[2:]]).all() and np.isinf(got[:, 3][inner[2:]]).all()


def test_winograd_still_runs_on_finite_input_after_a_poisoned_call():
    rng = np.random.default_rng(9)
    x, w = _winograd_operands(rng, [])
    cpu = convlab.get_backend("cpu")
    want = ref_conv2d(x, w, None, (1, 1), (1, 1), (1, 1))
    np.testing.assert_allclose(cpu.conv2d_forward(x, w, None, 1, 1), want, rtol=1e-4, atol=1e-3)


# -- 8. grad mode belongs to each thread ----------------------------------------------------------


def test_no_grad_in_one_thread_leaves_other_threads_recording():
    w = convlab.ones(4, requires_grad=True)
    inside, done = threading.Event(), threading.Event()
    recorded = []

    def hold_no_grad():
        with convlab.no_grad():
            inside.set()
            done.wait(30)

    def forwards():
        inside.wait(30)
        for _ in range(200):
            recorded.append((w * 2).requires_grad)
        done.set()

    threads = [threading.Thread(target=hold_no_grad), threading.Thread(target=forwards)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert recorded == [True] * 200
    assert convlab.is_grad_enabled()


def test_a_new_thread_starts_with_grad_enabled_and_backward_restores_its_own_mode():
    seen = []

    def worker():
        seen.append(convlab.is_grad_enabled())
        x = convlab.ones(3, requires_grad=True)
        (x * x).sum().backward()
        seen.append(convlab.is_grad_enabled())

    with convlab.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        t.join(30)
        assert not convlab.is_grad_enabled()
    assert seen == [True, True]


# -- 9. set_isa while kernels run ------------------------------------------------------------------


def test_set_isa_from_another_thread_never_gives_a_wrong_product():
    cpu = convlab.get_backend("cpu")
    isas = cpu.supported_isas()
    if len(isas) < 2:
        pytest.skip("this CPU runs one micro-kernel ISA only: nothing to switch between")
    rng = np.random.default_rng(3)
    a = rng.standard_normal((150, 300)).astype(np.float32)
    b = rng.standard_normal((300, 170)).astype(np.float32)
    want = a.astype(np.float64) @ b.astype(np.float64)
    stop = threading.Event()
    before = cpu.isa

    def flip():
        i = 0
        while not stop.is_set():
            cpu.set_isa(isas[i % len(isas)])
            i += 1

    flipper = threading.Thread(target=flip)
    flipper.start()
    try:
        wrong = sum(
            not np.allclose(cpu.matmul(a, b), want, rtol=1e-4, atol=1e-3) for _ in range(100)
        )
    finally:
        stop.set()
        flipper.join(30)
        cpu.set_isa(before)
    assert wrong == 0


# -- 10. pooling windows past 32-bit indices ------------------------------------------------------


def test_pool_windows_beyond_32_bit_offsets_are_refused(backend):
    x = backend.asarray(np.ones((1, 1, 2, 2), np.float32))
    with pytest.raises(ValueError, match="at most 2\\*\\*31 - 1"):
        backend.max_pool2d(x, 65536, padding=32767)
    with pytest.raises(ValueError, match="at most 2\\*\\*31 - 1"):
        backend.avg_pool2d(x, 65536, padding=32767)


def test_padding_past_32_bit_rows_is_refused(backend):
    x = backend.asarray(np.ones((1, 1, 2, 2), np.float32))
    w = backend.asarray(np.ones((1, 1, 1, 1), np.float32))
    with pytest.raises(ValueError, match="more than 2\\*\\*31 - 1 rows"):
        backend.conv2d_forward(x, w, None, 2**30, 2**30)


# -- 13. empty products and empty batches -----------------------------------------------------


@pytest.mark.parametrize(
    "shapes",
    [
        ((3, 4, 0), (3, 0, 5)),
        ((3, 4, 0), (0, 5)),
        ((2, 1, 4, 0), (3, 0, 5)),
        ((4, 0), (3, 0, 5)),
        ((0, 4, 3), (3, 5)),
        ((3, 0, 2), (3, 2, 5)),
        ((0,), (0,)),
        ((2, 3, 0), (0,)),
    ],
)
def test_matmul_with_empty_dimensions_is_numpys(backend, shapes):
    a = np.ones(shapes[0], np.float32)
    b = np.ones(shapes[1], np.float32)
    got = to_numpy(backend, backend.matmul(backend.asarray(a), backend.asarray(b)))
    want = np.matmul(a, b)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    t = convlab.tensor(a, requires_grad=True)
    (t @ convlab.tensor(b)).sum().backward()
    assert t.grad.shape == a.shape


def test_binary_conv2d_and_the_chart_model_take_an_empty_batch():
    w = convlab.randn(4, 1, 5, 3, requires_grad=True)
    b = convlab.zeros(4, requires_grad=True)
    y = F.binary_conv2d(convlab.tensor(np.zeros((0, 1, 32, 15), np.uint8)), w, b, padding=2)
    assert y.shape == (0, 4, 32, 17)
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), 0)
    np.testing.assert_array_equal(b.grad.numpy(), 0)
    model = ChartCNN(window=20)
    out = model(convlab.tensor(np.zeros((0, 1, 64, 60), np.uint8)))
    assert out.shape == (0, 2)
    out.sum().backward()
    assert all(float(np.abs(p.grad.numpy()).max()) == 0 for p in model.parameters())


def test_batch_norm_of_an_empty_batch_is_pytorchs():
    bn = convlab.nn.BatchNorm2d(3)
    bn.running_mean.data[...] += 1
    x = convlab.zeros(0, 3, 4, 4, requires_grad=True)
    y = bn(x)
    assert y.shape == (0, 3, 4, 4)
    np.testing.assert_array_equal(bn.running_mean.numpy(), 1.0)
    np.testing.assert_array_equal(bn.running_var.numpy(), 1.0)
    y.sum().backward()
    np.testing.assert_array_equal(bn.weight.grad.numpy(), 0)
    assert x.grad.shape == (0, 3, 4, 4)
