"""GPU benchmark cases (``run.py --device gpu``): our CUDA kernels next to cuBLAS (CuPy) and
cuDNN (PyTorch with CUDA, when installed), on the same device, in the same run.

Every callable synchronises the device before returning, so the timings cover the work, not
only the launches.
"""

from __future__ import annotations

import numpy as np

import convlab
from cases import BATCH, CHART_LAYERS, QUICK_LAYERS, Case, _chart_images


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


def gpu_cases(quick: bool) -> list[Case]:
    gpu = convlab.get_backend("gpu")
    cp = gpu.xp
    torch = _torch_cuda()
    if torch is not None:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    sync = gpu.synchronize
    tsync = torch.cuda.synchronize if torch is not None else None
    cases: list[Case] = []

    # GEMM 4096^3 float32 against cuBLAS through cupy.matmul (TF32 off: CuPy's default)
    n = 2048 if quick else 4096
    a = cp.random.standard_normal((n, n), dtype=cp.float32)
    b = cp.random.standard_normal((n, n), dtype=cp.float32)
    cases.append(
        Case(
            "gpu-gemm",
            f"SGEMM {n}^3 vs cuBLAS (cupy.matmul)",
            _synced(lambda: gpu.matmul(a, b), sync),
            None,
            _synced(lambda: cp.matmul(a, b), sync),
            2.0 * n**3,
            "GFLOP/s",
        )
    )

    # the chart CNN's conv layers, forward + both backward passes, against cuDNN
    for layer in CHART_LAYERS:
        if quick and (layer.model, layer.index) not in QUICK_LAYERS:
            continue
        rng = np.random.default_rng(layer.index)
        x = rng.standard_normal((BATCH, layer.c_in, layer.height, layer.width), np.float32)
        w = rng.standard_normal((layer.c_out, layer.c_in, 5, 3), np.float32) * 0.1
        geom = (layer.stride, layer.padding, layer.dilation)
        y_shape = (BATCH, layer.c_out) + layer.out_hw()
        dy = rng.standard_normal(y_shape, np.float32)
        gx, gw, gdy = cp.asarray(x), cp.asarray(w), cp.asarray(dy)

        def ours(gx=gx, gw=gw, gdy=gdy, geom=geom, first=layer.index == 1):
            gpu.conv2d_forward(gx, gw, None, *geom)
            if not first:
                gpu.conv2d_backward_data(gdy, gw, gx.shape, *geom)
            gpu.conv2d_backward_weight(gdy, gx, gw.shape, *geom, bias=False)
            sync()

        theirs = None
        if torch is not None:
            tx = torch.tensor(x, device="cuda", requires_grad=layer.index != 1)
            tw = torch.tensor(w, device="cuda", requires_grad=True)
            tdy = torch.tensor(dy, device="cuda")

            def theirs(tx=tx, tw=tw, tdy=tdy, geom=geom):
                torch.nn.functional.conv2d(tx, tw, None, *geom).backward(tdy)
                tsync()

        flops = 2 * BATCH * layer.c_out * layer.c_in * 15 * int(np.prod(layer.out_hw()))
        cases.append(
            Case(
                "gpu-conv",
                f"{layer.name} fwd+bwd vs cuDNN",
                ours,
                theirs,
                None,
                flops * (2 if layer.index == 1 else 3),
                "GFLOP/s",
            )
        )

    # 2x1 max-pooling forward + backward
    x = cp.random.standard_normal((BATCH, 64, 21, 60), dtype=cp.float32)

    def pool_ours():
        y, arg = gpu.max_pool2d(x, (2, 1), ceil_mode=True)
        gpu.max_pool2d_backward(y, arg, x.shape, (2, 1), ceil_mode=True)
        sync()

    pool_theirs = None
    if torch is not None:
        tx = torch.randn(BATCH, 64, 21, 60, device="cuda", requires_grad=True)

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
    images = _chart_images(20, BATCH)
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
