"""Seeded fuzzing of every public backend kernel.

Two campaigns:

* **Valid input, random geometry**: random shapes, dtypes, strides (non-contiguous views),
  padding, dilation and modes for convolution (forward and both gradients), pooling, im2col /
  col2im, matmul and batch norm, each checked against the NumPy loops of ``reference.py``.
* **Hostile input**: every public backend method called with one argument of a valid call
  broken at random (truncated or reshaped arrays, wrong dtypes, out-of-range indices, huge or
  negative geometry, NaN scalars, non-arrays). Each call must return or raise ``TypeError`` /
  ``ValueError`` (``MemoryError`` for a size that cannot be allocated): never crash, hang or
  raise anything else. The calls run in a child process, which prints each case before it
  runs it, so that a crash names its case.

The default budget keeps CI fast; ``CONVLAB_FUZZ_CASES=N`` sets the number of cases per
campaign and kernel, ``CONVLAB_FUZZ_LONG=1`` runs 2,000, and ``CONVLAB_FUZZ_SEED`` picks a
seed (default: a fixed one, so a failure reproduces).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import convlab
import reference as ref
from conftest import to_numpy

SEED = int(os.environ.get("CONVLAB_FUZZ_SEED", "20261206"))
LONG = os.environ.get("CONVLAB_FUZZ_LONG", "").strip().lower() in {"1", "true", "yes", "on"}
CASES = int(os.environ.get("CONVLAB_FUZZ_CASES", "2000" if LONG else "25"))


def _cases(backend):
    # the emulator runs the CUDA kernels on the CPU: fewer cases there
    return CASES if backend.name == "cpu" else max(3, CASES // 5)


def _maybe_strided(rng, array):
    """The array itself, or a non-contiguous view holding the same values."""
    if rng.random() < 0.5 or array.ndim == 0:
        return array
    axis = int(rng.integers(array.ndim))
    wide = np.repeat(array, 2, axis=axis)
    return wide[(slice(None),) * axis + (slice(None, None, 2),)]


def _tolerance(dtype, depth):
    return (
        (1e-12 * max(depth, 1), 1e-10)
        if dtype == np.float64
        else (2e-5 * max(depth, 1) ** 0.5, 1e-4)
    )


def _close(got, want, dtype, depth, what):
    """Sums of ``depth`` products: a relative bound, and an absolute one scaled by the
    largest result (the Winograd transforms round values of that size: cancellation in one
    output cannot be held to a relative bound)."""
    rtol, atol = _tolerance(dtype, depth)
    scale = float(np.abs(want).max()) if want.size else 0.0
    eps = 1e-13 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(got, want, rtol, atol + eps * scale, err_msg=what)


def _conv_case(rng):
    dtype = np.float32 if rng.random() < 0.7 else np.float64
    n, c, o = (int(v) for v in rng.integers(1, 5, 3))
    kh, kw = (int(v) for v in rng.integers(1, 6, 2))
    stride = tuple(int(v) for v in rng.integers(1, 4, 2))
    dilation = tuple(int(v) for v in rng.integers(1, 3, 2))
    padding = tuple(int(v) for v in rng.integers(0, 4, 2))
    h = int(rng.integers(max(1, dilation[0] * (kh - 1) + 1 - 2 * padding[0]), 14))
    w = int(rng.integers(max(1, dilation[1] * (kw - 1) + 1 - 2 * padding[1]), 14))
    if rng.random() < 0.15:  # the wide channel counts the implicit GEMM / Winograd take
        c, o, kw, stride, dilation = 64, 64, 3, (1, 1), (1, int(dilation[1] > 5) + 1)
        padding = (padding[0], int(rng.integers(0, 3)))
        h, w = int(rng.integers(8, 14)), int(rng.integers(16, 30))
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = rng.standard_normal((o, c, kh, kw)).astype(dtype)
    bias = rng.standard_normal(o).astype(dtype) if rng.random() < 0.5 else None
    return x, weight, bias, stride, padding, dilation


def test_conv2d_random_geometry_matches_the_reference(backend):
    rng = np.random.default_rng(SEED)
    for case in range(_cases(backend)):
        x, w, b, stride, padding, dilation = _conv_case(rng)
        what = f"case {case}: x {x.shape} {x.dtype} w {w.shape} s{stride} p{padding} d{dilation}"
        dev = backend.asarray
        y = backend.conv2d_forward(
            dev(_maybe_strided(rng, x)),
            dev(_maybe_strided(rng, w)),
            None if b is None else dev(b),
            stride,
            padding,
            dilation,
        )
        want = ref.conv2d(x, w, b, stride, padding, dilation)
        _close(to_numpy(backend, y), want, x.dtype, w[0].size, what)
        dy = rng.standard_normal(want.shape).astype(x.dtype)
        dx_ref, dw_ref, db_ref = ref.conv2d_grads(x, w, dy, stride, padding, dilation)
        dx = backend.conv2d_backward_data(
            dev(_maybe_strided(rng, dy)), dev(w), x.shape, stride, padding, dilation
        )
        _close(to_numpy(backend, dx), dx_ref, x.dtype, w[:, 0].size, what)
        dw, db = backend.conv2d_backward_weight(
            dev(dy), dev(_maybe_strided(rng, x)), w.shape, stride, padding, dilation
        )
        _close(to_numpy(backend, dw), dw_ref, x.dtype, dy[:, 0].size, what)
        _close(to_numpy(backend, db), db_ref, x.dtype, dy[:, 0].size, what)


def _pool_case(rng):
    dtype = np.float32 if rng.random() < 0.7 else np.float64
    kernel = tuple(int(v) for v in rng.integers(1, 5, 2))
    stride = tuple(int(v) for v in rng.integers(1, 4, 2))
    dilation = tuple(int(v) for v in rng.integers(1, 3, 2))
    padding = tuple(
        int(rng.integers(0, (dilation[i] * (kernel[i] - 1) + 1) // 2 + 1)) for i in range(2)
    )
    h = int(rng.integers(dilation[0] * (kernel[0] - 1) + 1, 12))
    w = int(rng.integers(dilation[1] * (kernel[1] - 1) + 1, 12))
    x = rng.standard_normal((int(rng.integers(1, 4)), int(rng.integers(1, 4)), h, w))
    x = x.astype(dtype)
    if rng.random() < 0.3:  # ties and NaN: PyTorch's first-maximum and NaN rules
        x = np.round(x)
        x[tuple(rng.integers(0, s) for s in x.shape)] = np.nan
    return x, kernel, stride, padding, dilation, bool(rng.random() < 0.5)


def test_max_pool2d_random_geometry_matches_the_reference(backend):
    rng = np.random.default_rng(SEED + 1)
    for case in range(_cases(backend)):
        x, kernel, stride, padding, dilation, ceil = _pool_case(rng)
        what = f"case {case}: x {x.shape} k{kernel} s{stride} p{padding} d{dilation} ceil={ceil}"
        y, arg = backend.max_pool2d(
            backend.asarray(_maybe_strided(rng, x)), kernel, stride, padding, dilation, ceil
        )
        y_ref, arg_ref = ref.max_pool2d(x, kernel, stride, padding, dilation, ceil)
        np.testing.assert_array_equal(to_numpy(backend, y), y_ref, err_msg=what)
        np.testing.assert_array_equal(to_numpy(backend, arg), arg_ref, err_msg=what)
        dy = np.random.default_rng(case).standard_normal(y_ref.shape).astype(x.dtype)
        dx = backend.max_pool2d_backward(
            backend.asarray(dy), arg, x.shape, kernel, stride, padding, dilation, ceil
        )
        np.testing.assert_allclose(
            to_numpy(backend, dx),
            ref.max_pool2d_backward(dy, arg_ref, x.shape, kernel, stride, padding, dilation),
            rtol=1e-6,
            atol=1e-6,
            err_msg=what,
        )


def test_avg_pool2d_random_geometry_matches_the_reference(backend):
    rng = np.random.default_rng(SEED + 2)
    for case in range(_cases(backend)):
        x, kernel, stride, _, _, ceil = _pool_case(rng)
        padding = tuple(int(rng.integers(0, kernel[i] // 2 + 1)) for i in range(2))
        x = np.nan_to_num(x)
        include = bool(rng.random() < 0.5)
        divisor = int(rng.integers(1, 7)) if rng.random() < 0.2 else None
        what = f"case {case}: x {x.shape} k{kernel} s{stride} p{padding} ceil={ceil}"
        y = backend.avg_pool2d(
            backend.asarray(_maybe_strided(rng, x)), kernel, stride, padding, ceil, include, divisor
        )
        y_ref, divisors = ref.avg_pool2d(x, kernel, stride, padding, ceil, include, divisor)
        np.testing.assert_allclose(to_numpy(backend, y), y_ref, 1e-5, 1e-6, err_msg=what)
        dy = np.ones(y_ref.shape, x.dtype)
        dx = backend.avg_pool2d_backward(
            backend.asarray(dy), x.shape, kernel, stride, padding, ceil, include, divisor
        )
        np.testing.assert_allclose(
            to_numpy(backend, dx),
            ref.avg_pool2d_backward(dy, x.shape, kernel, stride, padding, divisors),
            1e-5,
            1e-6,
            err_msg=what,
        )


def test_im2col_and_col2im_random_geometry_match_the_reference(backend):
    rng = np.random.default_rng(SEED + 3)
    for case in range(_cases(backend)):
        x, w, _, stride, padding, dilation = _conv_case(rng)
        kernel = w.shape[2:]
        what = f"case {case}: x {x.shape} k{kernel} s{stride} p{padding} d{dilation}"
        cols = backend.im2col(
            backend.asarray(_maybe_strided(rng, x)), kernel, stride, padding, dilation
        )
        want = ref.unfold(x, kernel, stride, padding, dilation)
        np.testing.assert_array_equal(to_numpy(backend, cols), want, err_msg=what)
        back = backend.col2im(backend.asarray(want), x.shape[2:], kernel, stride, padding, dilation)
        np.testing.assert_allclose(
            to_numpy(backend, back),
            ref.fold(want, x.shape[2:], kernel, stride, padding, dilation),
            1e-5,
            1e-5,
            err_msg=what,
        )


def test_matmul_random_shapes_match_numpy(backend):
    rng = np.random.default_rng(SEED + 4)
    for case in range(_cases(backend)):
        dtype = np.float32 if rng.random() < 0.6 else np.float64
        m, k, n = (int(v) for v in rng.integers(0, 40, 3))
        batch_a = tuple(int(v) for v in rng.integers(1, 4, rng.integers(0, 3)))
        batch_b = batch_a[len(batch_a) - int(rng.integers(0, len(batch_a) + 1)) :]
        if batch_b and rng.random() < 0.3:
            batch_b = (1,) + batch_b[1:]
        trans_a, trans_b = bool(rng.random() < 0.3), bool(rng.random() < 0.3)
        a = rng.standard_normal(batch_a + ((k, m) if trans_a else (m, k))).astype(dtype)
        b = rng.standard_normal(batch_b + ((n, k) if trans_b else (k, n))).astype(dtype)
        if rng.random() < 0.15 and not (trans_a or batch_a):
            a = a[0] if m else np.zeros(k, dtype)  # a 1-D operand
        what = f"case {case}: a {a.shape} b {b.shape} trans {trans_a, trans_b} {dtype}"
        got = backend.matmul(
            backend.asarray(_maybe_strided(rng, a)),
            backend.asarray(_maybe_strided(rng, b)),
            None,
            trans_a,
            trans_b,
        )
        opa = np.swapaxes(a, -1, -2) if trans_a else a
        opb = np.swapaxes(b, -1, -2) if trans_b else b
        want = np.matmul(opa.astype(np.float64), opb.astype(np.float64))
        _close(to_numpy(backend, got), want, dtype, k, what)


def test_batch_norm_random_shapes_match_the_definition():
    cpu = convlab.get_backend("cpu")
    rng = np.random.default_rng(SEED + 5)
    for case in range(CASES):
        dtype = np.float32 if rng.random() < 0.6 else np.float64
        shape = tuple(int(v) for v in rng.integers(1, 6, int(rng.integers(2, 5))))
        x = (rng.standard_normal(shape) * 3 + 5).astype(dtype)
        c = shape[1]
        weight = rng.standard_normal(c).astype(dtype) if rng.random() < 0.7 else None
        bias = rng.standard_normal(c).astype(dtype) if rng.random() < 0.7 else None
        axes = (0,) + tuple(range(2, x.ndim))
        mean = x.astype(np.float64).mean(axis=axes)
        var = x.astype(np.float64).var(axis=axes)
        y, m, v = cpu.batch_norm_forward(_maybe_strided(rng, x), weight, bias, None, None, 1e-5)
        view = (1, c) + (1,) * (x.ndim - 2)
        want = (x - mean.reshape(view)) / np.sqrt(var.reshape(view) + 1e-5)
        if weight is not None:
            want = want * weight.reshape(view)
        if bias is not None:
            want = want + bias.reshape(view)
        tol = 1e-4 if dtype == np.float32 else 1e-10
        np.testing.assert_allclose(y, want, tol, tol, err_msg=f"case {case}: {shape}")
        np.testing.assert_allclose(m, mean, tol, tol)
        np.testing.assert_allclose(v, var, tol, tol)


# -- hostile input ----------------------------------------------------------------------------

HOSTILE_WORKER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import convlab
    from test_fuzz_kernels import hostile_calls
    seed, count, backend_name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    backend = convlab.get_backend(backend_name)
    tally = {"returned": 0, "refused": 0}
    for case, (name, label, call) in enumerate(hostile_calls(backend, seed, count)):
        print(json.dumps({"case": case, "method": name, "mutation": label}), flush=True)
        try:
            with np.errstate(all="ignore"):
                call()
            tally["returned"] += 1
        except (TypeError, ValueError, MemoryError):
            tally["refused"] += 1
        except Exception as err:   # anything else is a finding
            print(json.dumps({"finding": f"{name} {label}: {type(err).__name__}: {err}"}),
                  flush=True)
            sys.exit(3)
    print(json.dumps({"tally": tally}), flush=True)
""")


def _valid_calls(backend):
    """``name -> (method, kwargs)`` of one valid call of each public method, small."""
    from convlab._ops.binary import _layer_geometry

    rng = np.random.default_rng(0)
    dev = backend.asarray

    def arr(*shape, dtype=np.float32):
        return dev(rng.standard_normal(shape).astype(dtype))

    x, w = arr(2, 3, 8, 7), arr(4, 3, 3, 2)
    geom = _layer_geometry((1, 32, 15), (5, 3), (1, 1), (2, 1), (1, 1))
    images = dev((rng.random((2, 32 * 15)) < 0.3).astype(np.uint8))
    out_hw = geom.base_index.shape
    calls = {
        "matmul": dict(a=arr(3, 4, 5), b=arr(5, 6), out=arr(3, 4, 6)),
        "im2col": dict(x=x, kernel_size=(3, 2), stride=1, padding=1, dilation=1),
        "col2im": dict(
            cols=arr(2, 18, 80),
            output_size=(8, 7),
            kernel_size=(3, 2),
            stride=1,
            padding=1,
            dilation=1,
        ),
        "conv2d_forward": dict(
            x=x, weight=w, bias=arr(4), stride=1, padding=1, dilation=1, out=arr(2, 4, 8, 8)
        ),
        "conv2d_backward_data": dict(
            grad_output=arr(2, 4, 8, 8),
            weight=w,
            input_shape=(2, 3, 8, 7),
            stride=1,
            padding=1,
            dilation=1,
        ),
        "conv2d_backward_weight": dict(
            grad_output=arr(2, 4, 8, 8),
            x=x,
            weight_shape=(4, 3, 3, 2),
            stride=1,
            padding=1,
            dilation=1,
        ),
        "max_pool2d": dict(x=x, kernel_size=2, stride=None, padding=0, dilation=1, ceil_mode=True),
        "max_pool2d_backward": dict(
            grad_output=arr(2, 3, 4, 3),
            argmax=dev(np.zeros((2, 3, 4, 3), np.uint8)),
            input_shape=(2, 3, 8, 7),
            kernel_size=2,
        ),
        "global_avg_pool2d": dict(x=x),
        "global_max_pool2d": dict(x=x),
        "avg_pool2d": dict(
            x=x,
            kernel_size=2,
            stride=None,
            padding=1,
            ceil_mode=False,
            count_include_pad=True,
            divisor_override=3,
        ),
        "avg_pool2d_backward": dict(
            grad_output=arr(2, 3, 5, 4),
            input_shape=(2, 3, 8, 7),
            kernel_size=2,
            stride=None,
            padding=1,
            ceil_mode=False,
            count_include_pad=False,
            divisor_override=None,
        ),
        "binary_conv2d_forward": dict(
            x=images,
            packed=False,
            weight=arr(4, 1, 5, 3),
            base_values=arr(4, 15),
            base_index=dev(geom.base_index),
            shape=(1, 32, 15),
            kernel_size=(5, 3),
            stride=1,
            padding=(2, 1),
            dilation=1,
            out=arr(2, 4, *out_hw),
        ),
        "binary_conv2d_weight_sums": dict(
            x=images,
            packed=False,
            grad_output=arr(2, 4, *out_hw),
            cls=dev(geom.cls),
            n_classes=len(geom.class_taps),
            shape=(1, 32, 15),
            kernel_size=(5, 3),
            stride=1,
            padding=(2, 1),
            dilation=1,
            row_starts=geom.row_starts,
        ),
        "leaky_relu_backward": dict(
            grad=arr(3, 5), positive=dev(np.ones((3, 5), np.bool_)), slope=0.1
        ),
        "adam_step": dict(
            param=arr(10),
            grad=arr(10),
            exp_avg=arr(10),
            exp_avg_sq=dev(np.ones(10, np.float32)),
            lr=1e-3,
            betas=(0.9, 0.999),
            eps=1e-8,
            weight_decay=0.0,
            decoupled=False,
            step=1,
        ),
        "batch_norm_forward": dict(x=x, weight=arr(3), bias=arr(3), mean=None, var=None, eps=1e-5),
        "batch_norm_backward": dict(
            grad=x,
            x=x,
            mean=dev(np.zeros(3)),
            invstd=dev(np.ones(3)),
            weight=arr(3),
            batch_stats=True,
        ),
        "batch_norm_max_pool_forward": dict(
            x=x,
            weight=arr(3),
            bias=arr(3),
            mean=None,
            var=None,
            eps=1e-5,
            kernel=2,
            ceil_mode=True,
            slope=0.01,
        ),
        "batch_norm_max_pool_backward": dict(
            grad=arr(2, 3, 4, 7),
            code=dev(np.zeros((2, 3, 4, 7), np.uint8)),
            x=x,
            mean=dev(np.zeros(3)),
            invstd=dev(np.ones(3)),
            weight=arr(3),
            batch_stats=True,
            kernel=2,
            ceil_mode=True,
            slope=0.01,
        ),
        "leaky_relu_forward": dict(x=arr(3, 5), slope=0.1),
        "dropout_forward": dict(x=arr(3, 5), p=0.5, seed=3),
        "dropout_rows_forward": dict(x=arr(3, 5), p=0.5, seeds=np.arange(3, dtype=np.uint64)),
        "lstm_cell_forward": dict(
            xg=arr(2, 8),
            hg=arr(2, 8),
            b_ih=arr(8),
            b_hh=arr(8),
            c_prev=arr(2, 2),
            h=arr(2, 2),
            c=arr(2, 2),
            gates=arr(2, 8),
        ),
        "lstm_cell_backward": dict(
            gates=arr(2, 8),
            c_prev=arr(2, 2),
            c=arr(2, 2),
            dh=arr(2, 2),
            dh_rec=arr(2, 2),
            dc=arr(2, 2),
            dgates=arr(2, 8),
        ),
        "gru_cell_forward": dict(
            xg=arr(2, 6),
            hg=arr(2, 6),
            b_ih=arr(6),
            b_hh=arr(6),
            h_prev=arr(2, 2),
            h=arr(2, 2),
            saved=arr(2, 8),
        ),
        "gru_cell_backward": dict(
            saved=arr(2, 8),
            h_prev=arr(2, 2),
            dh=arr(2, 2),
            dh_rec=arr(2, 2),
            dcarry=arr(2, 2),
            dxg=arr(2, 6),
            dhg=arr(2, 6),
        ),
        "rnn_cell_forward": dict(
            xg=arr(2, 2), hg=arr(2, 2), b_ih=arr(2), b_hh=arr(2), h=arr(2, 2), relu=False
        ),
        "rnn_cell_backward": dict(
            h=arr(2, 2), dh=arr(2, 2), dh_rec=arr(2, 2), dpre=arr(2, 2), relu=True
        ),
        "dropout_backward": dict(grad=arr(3, 5), keep=dev(np.ones((3, 5), np.bool_)), p=0.5),
    }
    if backend.name == "cpu":
        calls.update(
            {
                "conv2d_plan": dict(
                    x_shape=(2, 3, 8, 7),
                    weight_shape=(4, 3, 3, 2),
                    stride=1,
                    padding=1,
                    dilation=1,
                    dtype="float32",
                ),
            }
        )
    return calls


_BAD_NUMBERS = [
    -(2**63),
    -(2**31),
    -1,
    0,
    2**31 - 1,
    2**31,
    2**40,
    2**63,
    1.5,
    float("nan"),
    float("inf"),
    True,
    None,
    "3",
    (1,),
    (1, 2, 3),
    (-1, 1),
    (0, 0),
    [2**31, 1],
]


def _mutate_array(rng, value, backend):
    """A broken version of an array argument, and a label saying how it was broken."""
    xp = backend.xp
    host = np.asarray(backend.to_numpy(value))
    choice = int(rng.integers(9))
    if choice == 0 and host.size:
        flat = host.reshape(-1)
        return backend.asarray(flat[: int(rng.integers(0, flat.size))]), "truncated-1d"
    if choice == 1 and host.ndim:
        axis = int(rng.integers(host.ndim))
        cut = int(rng.integers(0, max(host.shape[axis], 1)))
        return backend.asarray(np.take(host, np.arange(cut), axis=axis)), f"cut-axis{axis}"
    if choice == 2:
        dtype = [
            np.float16,
            np.int32,
            np.int64,
            np.uint8,
            np.bool_,
            np.float64,
            np.float32,
            np.complex64,
        ][int(rng.integers(8))]
        return backend.asarray(host.astype(dtype)), f"dtype-{np.dtype(dtype)}"
    if choice == 3:
        return backend.asarray(host[None]), "extra-axis"
    if choice == 4 and host.ndim:
        return backend.asarray(host.reshape(-1)), "flattened"
    if choice == 5 and host.size:
        big = host.copy()
        if big.dtype.kind in "iu":
            big.reshape(-1)[int(rng.integers(big.size))] = np.iinfo(big.dtype).max
        elif big.dtype.kind == "b":
            return backend.asarray(big.view(np.uint8) * 7), "bool-as-7"
        else:
            big.reshape(-1)[int(rng.integers(big.size))] = [np.nan, np.inf, -np.inf][
                int(rng.integers(3))
            ]
        return backend.asarray(big), "extreme-element"
    if choice == 6 and host.size and host.dtype.kind in "iu":
        low = host.copy()
        low.reshape(-1)[int(rng.integers(low.size))] = -1 if low.dtype.kind == "i" else 255
        return backend.asarray(low), "negative-index"
    if choice == 7:
        return host.tolist(), "python-list"
    if choice == 8 and host.ndim >= 2:
        return backend.asarray(np.ascontiguousarray(np.swapaxes(host, 0, -1))), "transposed"
    del xp
    return None, "none"


def hostile_calls(backend, seed: int, count: int):
    """``(method, mutation, thunk)`` for ``count`` calls with one argument broken."""
    rng = np.random.default_rng(seed)
    valid = _valid_calls(backend)
    names = sorted(valid)
    for _ in range(count):
        name = names[int(rng.integers(len(names)))]
        kwargs = dict(valid[name])
        for _ in range(int(rng.integers(1, 3))):  # one or two arguments broken
            key = list(kwargs)[int(rng.integers(len(kwargs)))]
            value = kwargs[key]
            if hasattr(value, "shape") and hasattr(value, "dtype"):
                kwargs[key], how = _mutate_array(rng, value, backend)
            else:
                kwargs[key] = _BAD_NUMBERS[int(rng.integers(len(_BAD_NUMBERS)))]
                how = repr(kwargs[key])
            label = f"{key}={how}"
        method = getattr(backend, name)
        yield name, label, (lambda m=method, kw=kwargs: m(**kw))


def run_hostile_campaign(backend_name: str, seed: int, count: int) -> dict:
    """Run the campaign in a child process; returns its tally, or fails naming the case."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [os.path.dirname(os.path.abspath(__file__))]
            + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        ),
    )
    proc = subprocess.run(
        [sys.executable, "-c", HOSTILE_WORKER, str(seed), str(count), backend_name],
        capture_output=True,
        text=True,
        env=env,
        timeout=120 + count,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    last = next((entry for entry in reversed(lines) if "case" in entry), None)
    finding = next((entry["finding"] for entry in lines if "finding" in entry), None)
    assert finding is None, f"seed {seed}: {finding}"
    assert proc.returncode == 0, (
        f"seed {seed}: the child exited {proc.returncode} at {last}\n{proc.stderr[-2000:]}"
    )
    return lines[-1]["tally"]


def test_hostile_arguments_never_crash(backend):
    count = 20 * _cases(backend)
    tally = run_hostile_campaign(backend.name, SEED, count)
    assert tally["returned"] + tally["refused"] == count
    assert tally["refused"] > count // 2  # most broken calls are caught, not computed


@pytest.mark.parametrize(
    "name",
    [
        "adam_step",
        "binary_conv2d_forward",
        "batch_norm_backward",
        "batch_norm_max_pool_backward",
        "binary_conv2d_weight_sums",
        "conv2d_forward",
    ],
)
def test_each_valid_call_of_the_campaign_runs_cpu(name):
    """The campaign mutates calls that are valid: a broken template would test nothing."""
    cpu = convlab.get_backend("cpu")
    valid = _valid_calls(cpu)[name]
    getattr(cpu, name)(**valid)


def test_every_public_backend_method_is_fuzzed_cpu():
    cpu = convlab.get_backend("cpu")
    taking_arrays = {
        name
        for name in dir(cpu)
        if not name.startswith("_")
        and callable(getattr(cpu, name))
        and name
        not in {
            "asarray",
            "to_numpy",
            "synchronize",
            "is_available",
            "describe",
            "set_isa",
            "supported_isas",
        }
    }
    assert taking_arrays <= set(_valid_calls(cpu)), taking_arrays - set(_valid_calls(cpu))
