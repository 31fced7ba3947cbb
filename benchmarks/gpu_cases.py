"""GPU benchmark cases (``run.py --device gpu``): our CUDA kernels next to cuBLAS (CuPy) and
cuDNN (PyTorch with CUDA, when installed), on the same device, in the same run.

The GEMM and convolution rows come once per compute precision asked for (``run.py
--precision``, repeatable): convlab with ``set_float32_matmul_precision(p)`` next to PyTorch
in the matching mode, set around each of its calls:

* ``highest``: float32 (FFMA) against PyTorch with TF32 off (``torch.backends.cuda.matmul.
  allow_tf32`` and ``torch.backends.cudnn.allow_tf32`` False), and cuBLAS SGEMM through CuPy;
* ``high``: our TF32 tensor-core GEMM against PyTorch with TF32 on (cuDNN's default);
* ``medium``: our bf16 tensor-core GEMM against PyTorch under
  ``torch.autocast("cuda", dtype=torch.bfloat16)``.

Every callable synchronises the device before returning, so the timings cover the work, not
only the launches. ``CONVLAB_BENCH_TINY=1`` shrinks every case to a few small shapes, for a
smoke run on the CUDA emulator (``benchmarks/gpu_check.sh``); its timings mean nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

import convlab
from cases import BATCH, CHART_LAYERS, QUICK_LAYERS, Case, ConvLayer, _chart_images

#: the precisions ``run.py --precision`` offers, and what PyTorch runs next to each
PRECISIONS = ("highest", "high", "medium")
TORCH_MODES = {"highest": "fp32", "high": "TF32", "medium": "bf16 autocast"}

# tiny mode: a batch of two and two small chart-like layers
_TINY_BATCH = 2
_TINY_LAYERS = [
    ConvLayer("I20", 1, 1, 8, 16, 20, (3, 1), (2, 1), (2, 1)),
    ConvLayer("I20", 2, 8, 16, 6, 20),
]


def tiny() -> bool:
    """Whether ``CONVLAB_BENCH_TINY=1`` asks for the smoke-run sizes."""
    return os.environ.get("CONVLAB_BENCH_TINY") == "1"


def _torch_cuda():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def _synced(fn, sync):
    def run():
        fn()
        sync()

    return run


def _ours_at(precision: str, fn: Callable[[], object]) -> Callable[[], None]:
    """``fn`` run under ``convlab.set_float32_matmul_precision(precision)``, restored after."""

    def run() -> None:
        before = convlab.get_float32_matmul_precision()
        convlab.set_float32_matmul_precision(precision)
        try:
            fn()
        finally:
            convlab.set_float32_matmul_precision(before)

    return run


def _torch_at(torch, precision: str, fn: Callable[[], object]) -> Callable[[], None]:
    """``fn`` run with PyTorch in the mode matching ``precision`` (TF32 flags, autocast)."""

    def run() -> None:
        flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        tf32 = precision != "highest"
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
        try:
            if precision == "medium":
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    fn()
            else:
                fn()
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags

    return run


def _gemm_cases(gpu, cp, torch, precisions, quick) -> list[Case]:
    sync = gpu.synchronize
    n = 128 if tiny() else 2048 if quick else 4096
    a = cp.random.standard_normal((n, n), dtype=cp.float32)
    b = cp.random.standard_normal((n, n), dtype=cp.float32)
    cases = []
    for precision in precisions:
        theirs = None
        if torch is not None:
            ta, tb = torch.as_tensor(a, device="cuda"), torch.as_tensor(b, device="cuda")
            theirs = _torch_at(
                torch, precision, _synced(lambda ta=ta, tb=tb: ta @ tb, torch.cuda.synchronize)
            )
        # CuPy's cuBLAS SGEMM (TF32 off unless CUPY_TF32=1): next to the float32 row only
        cublas = _synced(lambda: cp.matmul(a, b), sync) if precision == "highest" else None
        cases.append(
            Case(
                "gpu-gemm",
                f"GEMM {n}^3 [{precision}] vs torch {TORCH_MODES[precision]} / cuBLAS",
                _ours_at(precision, _synced(lambda: gpu.matmul(a, b), sync)),
                theirs,
                cublas,
                2.0 * n**3,
                "GFLOP/s",
            )
        )
    return cases


def _conv_cases(gpu, cp, torch, precisions, quick) -> list[Case]:
    """The chart CNN's conv layers, forward + both backward passes, against cuDNN."""
    sync = gpu.synchronize
    batch = _TINY_BATCH if tiny() else BATCH
    layers = _TINY_LAYERS if tiny() else CHART_LAYERS
    cases = []
    for layer in layers:
        if quick and not tiny() and (layer.model, layer.index) not in QUICK_LAYERS:
            continue
        rng = np.random.default_rng(layer.index)
        x = rng.standard_normal((batch, layer.c_in, layer.height, layer.width), np.float32)
        w = rng.standard_normal((layer.c_out, layer.c_in, 5, 3), np.float32) * 0.1
        geom = (layer.stride, layer.padding, layer.dilation)
        y_shape = (batch, layer.c_out) + layer.out_hw()
        dy = rng.standard_normal(y_shape, np.float32)
        gx, gw, gdy = cp.asarray(x), cp.asarray(w), cp.asarray(dy)

        def ours(gx=gx, gw=gw, gdy=gdy, geom=geom, first=layer.index == 1):
            gpu.conv2d_forward(gx, gw, None, *geom)
            if not first:
                gpu.conv2d_backward_data(gdy, gw, gx.shape, *geom)
            gpu.conv2d_backward_weight(gdy, gx, gw.shape, *geom, bias=False)
            sync()

        flops = 2 * batch * layer.c_out * layer.c_in * 15 * int(np.prod(layer.out_hw()))
        for precision in precisions:
            theirs = None
            if torch is not None:
                tx = torch.tensor(x, device="cuda", requires_grad=layer.index != 1)
                tw = torch.tensor(w, device="cuda", requires_grad=True)
                tdy = torch.tensor(dy, device="cuda")

                def step(tx=tx, tw=tw, tdy=tdy, geom=geom):
                    torch.nn.functional.conv2d(tx, tw, None, *geom).backward(tdy)
                    torch.cuda.synchronize()

                theirs = _torch_at(torch, precision, step)
            cases.append(
                Case(
                    "gpu-conv",
                    f"{layer.name} fwd+bwd [{precision}] vs cuDNN {TORCH_MODES[precision]}",
                    _ours_at(precision, ours),
                    theirs,
                    None,
                    flops * (2 if layer.index == 1 else 3),
                    "GFLOP/s",
                )
            )
    return cases


def gpu_cases(quick: bool, precisions: Sequence[str] = ("highest",)) -> list[Case]:
    """The GPU rows: GEMM and conv layers once per precision, pooling and the binary layer
    once (they compute no products)."""
    for precision in precisions:
        if precision not in PRECISIONS:
            raise ValueError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
    gpu = convlab.get_backend("gpu")
    cp = gpu.xp
    torch = _torch_cuda()
    sync = gpu.synchronize
    tsync = torch.cuda.synchronize if torch is not None else None
    batch = _TINY_BATCH if tiny() else BATCH
    cases = _gemm_cases(gpu, cp, torch, precisions, quick)
    cases += _conv_cases(gpu, cp, torch, precisions, quick)

    # 2x1 max-pooling forward + backward
    x = cp.random.standard_normal((batch, 64, 21, 60), dtype=cp.float32)

    def pool_ours():
        y, arg = gpu.max_pool2d(x, (2, 1), ceil_mode=True)
        gpu.max_pool2d_backward(y, arg, x.shape, (2, 1), ceil_mode=True)
        sync()

    pool_theirs = None
    if torch is not None:
        tx = torch.randn(batch, 64, 21, 60, device="cuda", requires_grad=True)

        def pool_theirs():
            y = torch.nn.functional.max_pool2d(tx, (2, 1), ceil_mode=True)
            y.backward(y)
            tsync()

    cases.append(
        Case(
            "gpu-pool",
            "max_pool2d 2x1 fwd+bwd (I20 layer 1 map) vs cuDNN",
            pool_ours,
            pool_theirs,
            None,
            x.nbytes * 3,
            "GB/s",
        )
    )

    # the binary first layer (I20) against cuDNN's dense conv on the same 0/1 images
    images = _chart_images(20, batch)
    weight = convlab.randn(64, 1, 5, 3, device="gpu", requires_grad=True)
    bits = convlab.tensor(images, device="gpu")

    def binary_ours():
        weight.grad = None
        y = convlab.nn.functional.binary_conv2d(
            bits, weight, None, (3, 1), (2, 1), (2, 1), mean=0.12, std=0.33
        )
        y.backward(y)
        sync()

    binary_theirs = None
    if torch is not None:
        tb = torch.tensor(images, device="cuda", dtype=torch.float32)
        tw = torch.randn(64, 1, 5, 3, device="cuda", requires_grad=True)

        def binary_theirs():
            y = torch.nn.functional.conv2d((tb - 0.12) / 0.33, tw, None, (3, 1), (2, 1), (2, 1))
            y.backward(y)
            tsync()

    cases.append(
        Case(
            "gpu-binary",
            "I20 layer 1 fwd+wgrad: binary vs cuDNN dense",
            binary_ours,
            binary_theirs,
            None,
            1.0,
            "calls/s",
        )
    )
    return cases
