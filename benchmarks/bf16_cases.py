"""bfloat16-compute rows (``benchmarks/run.py --only bf16``): convlab with
``set_float32_matmul_precision("medium")`` (scoped by ``convlab.autocast``) next to PyTorch
under ``torch.autocast("cpu", dtype=torch.bfloat16)``; the ``numpy`` column of this group holds
PyTorch in float32 (no autocast), so each row shows both ratios of the issue's goal.

The GEMM row's rate is compared with the bf16 dot-product peak measured here
(:func:`bf16_peak_gflops`, a VDPBF16PS loop in ``yardsticks.c``).
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable

import numpy as np

import convlab
import yardsticks
from cases import (
    BATCH,
    Case,
    _chart_images,
    _torch,
    _torch_chart_cnn,
    _torch_resnet9,
)

#: What this group's columns hold (run.py prints it as the table header).
PEERS = ("torch bf16 autocast", "torch fp32")


def bf16_peak_gflops(threads: int, seconds: float = 0.2) -> float | None:
    """The VDPBF16PS peak (GFLOP/s, 64 flops per instruction) on ``threads`` threads; None
    without a compiler or without avx512_bf16."""
    lib = yardsticks._library()
    if lib is None or not hasattr(lib, "ys_bf16_peak"):
        return None
    lib.ys_bf16_peak.argtypes = [ctypes.c_int64, ctypes.c_int, ctypes.POINTER(ctypes.c_double)]
    flops = (ctypes.c_double * threads)()
    rounds = 1 << 16
    lib.ys_bf16_peak(rounds, 1, flops)
    start = time.perf_counter()
    lib.ys_bf16_peak(rounds, 1, flops)
    elapsed = time.perf_counter() - start
    if flops[0] == 0:
        return None
    rounds = max(rounds, int(rounds * seconds / max(elapsed, 1e-6)))
    start = time.perf_counter()
    lib.ys_bf16_peak(rounds, threads, flops)
    return sum(flops) / (time.perf_counter() - start) / 1e9


def _ours_bf16(step: Callable[[], object]) -> Callable[[], object]:
    def run():
        with convlab.autocast("cpu", dtype=convlab.bfloat16):
            return step()

    return run


def _torch_modes(torch, step: Callable[[], object]) -> tuple[Callable, Callable]:
    def bf16():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return step()

    return bf16, step


def _gemm_case(torch, n: int) -> Case:
    rng = np.random.default_rng(n)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    ca, cb = convlab.tensor(a), convlab.tensor(b)
    theirs = fp32 = None
    if torch:
        ta, tb = torch.tensor(a), torch.tensor(b)
        theirs, fp32 = _torch_modes(torch, lambda: ta @ tb)
    return Case(
        "bf16",
        f"matmul {n}x{n}x{n}",
        _ours_bf16(lambda: ca @ cb),
        theirs,
        fp32,
        2 * n**3,
        "GFLOP/s",
    )


def _training_step(lib, model, x, y, normalise=False, as_float=True):
    """Forward (under the caller's precision), cross-entropy, backward, Adam: the loss is
    computed inside the autocast scope as PyTorch's AMP recipe does; backward outside."""
    opt = lib.optim.Adam(model.parameters(), lr=1e-5)
    # convlab's chart model takes the 0/1 images as they are (its binary first layer)
    xt, yt = lib.tensor(x, dtype=lib.float32) if as_float else lib.tensor(x), lib.tensor(y)
    if normalise:
        xt = (xt - 0.12) / 0.33

    def forward():
        return lib.nn.functional.cross_entropy(model(xt), yt)

    def step(scope):
        opt.zero_grad()
        with scope():
            loss = forward()
        loss.backward()
        opt.step()

    return step


def _chart_case(torch, window: int) -> Case:
    from contextlib import nullcontext

    from convlab.models import ChartCNN

    x = _chart_images(window, BATCH)
    y = np.random.default_rng(window).integers(0, 2, BATCH)
    model = ChartCNN(window, input_mean=0.12, input_std=0.33)
    ours = _training_step(convlab, model, x, y, as_float=False)
    theirs = fp32 = None
    if torch:
        step = _training_step(torch, _torch_chart_cnn(torch, window), x, y, normalise=True)

        def theirs():
            step(lambda: torch.autocast("cpu", dtype=torch.bfloat16))

        def fp32():
            step(nullcontext)

    return Case(
        "bf16",
        f"I{window} training step, batch {BATCH}",
        lambda: ours(lambda: convlab.autocast("cpu", dtype=convlab.bfloat16)),
        theirs,
        fp32,
        BATCH,
        "img/s",
    )


def _resnet9_case(torch) -> Case:
    from contextlib import nullcontext

    from convlab.models import ResNet9

    rng = np.random.default_rng(9)
    x = rng.random((BATCH, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, BATCH)
    ours = _training_step(convlab, ResNet9("hw4"), x, y)
    theirs = fp32 = None
    if torch:
        step = _training_step(torch, _torch_resnet9(torch), x, y)

        def theirs():
            step(lambda: torch.autocast("cpu", dtype=torch.bfloat16))

        def fp32():
            step(nullcontext)

    return Case(
        "bf16",
        f"ResNet9 (hw4) training step, batch {BATCH}",
        lambda: ours(lambda: convlab.autocast("cpu", dtype=convlab.bfloat16)),
        theirs,
        fp32,
        BATCH,
        "img/s",
    )


def bf16_cases(quick: bool) -> list[Case]:
    """GEMM 1024^3, the chart CNN's training steps (I20; with I5, I60 and ResNet9 unless
    ``quick``) with bf16 compute. Empty where the CPU has no avx512_bf16 (the switch is then a
    no-op and the rows would time float32)."""
    if not convlab.get_backend("cpu").is_available() or not _bf16_here():
        print("bf16: this CPU has no avx512_bf16; the rows are skipped")
        return []
    torch = _torch()
    cases = [_gemm_case(torch, 1024), _chart_case(torch, 20)]
    if not quick:
        cases += [_chart_case(torch, 5), _chart_case(torch, 60), _resnet9_case(torch)]
    return cases


def _bf16_here() -> bool:
    from convlab._precision import cpu_bf16_supported

    return cpu_bf16_supported()
