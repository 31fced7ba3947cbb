"""A/B of the fused batch norm -> max pool -> activation node in the chart CNN (on vs off).

Run: ``python benchmarks/norm_pool_ab.py [--repeats N] [--window 20]``. One process, the same
model and data for both arms; the arms alternate (A B B A ...) with medians kept, as
``timing.interleaved`` does, so drift on a shared machine hits both alike. "off" runs each
block's BatchNorm2d, MaxPool2d and activation one by one (what the model did before).

Rows:

* the I20 training step (batch 128: forward, cross-entropy, backward, Adam), float32 and under
  ``convlab.autocast("cpu", dtype=convlab.bfloat16)``;
* the three layers alone on each of the I20 model's conv outputs, forward and backward (the
  part the fusion changes; ``--only layers`` runs just these).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import numpy as np

import convlab
from cases import BATCH, _chart_images
from convlab import nn
from convlab._ops import norm_pool
from convlab.models import ChartCNN
from convlab.models import chart_cnn as chart_cnn_module
from timing import interleaved


def _never(*args: object) -> None:
    """The fusion switched off: every block runs its layers one by one."""
    return None


def _with_fusion(on: bool, fn: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        chart_cnn_module.FUSE_NORM_POOL = on
        chart_cnn_module.fused_norm_pool = norm_pool.fused_norm_pool if on else _never
        return fn()

    return run


def _training_step(window: int) -> Callable[[Callable[[], AbstractContextManager]], None]:
    model = ChartCNN(window, input_mean=0.12, input_std=0.33)
    opt = convlab.optim.Adam(model.parameters(), lr=1e-5)
    x = convlab.tensor(_chart_images(window, BATCH))  # 0/1 images: the binary first layer
    y = convlab.tensor(np.random.default_rng(window).integers(0, 2, BATCH))

    def step(scope: Callable[[], AbstractContextManager]) -> None:
        opt.zero_grad()
        with scope():
            loss = convlab.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return step


def _layers_alone(channels: int, height: int) -> Callable[[], None]:
    """BatchNorm2d -> LeakyReLU -> MaxPool2d((2, 1), ceil_mode) on a conv output of the
    I20 model's shape, forward and backward (through ChartCNN._after_conv, as the model)."""
    rng = np.random.default_rng(1)
    block = nn.Sequential(
        nn.Identity(),
        nn.BatchNorm2d(channels),
        nn.LeakyReLU(0.01),
        nn.MaxPool2d((2, 1), ceil_mode=True),
    )
    x = convlab.tensor(rng.standard_normal((BATCH, channels, height, 60), dtype=np.float32))
    x.requires_grad_(True)

    def run() -> None:
        x.grad = None
        ChartCNN._after_conv(block, x).sum().backward()

    return run


#: The I20 model's three conv outputs (channels, height; width 60), 39 MB each at batch 128.
_I20_BLOCKS = ((64, 20), (128, 10), (256, 5))


def _print_row(name: str, on: float, off: float) -> None:
    print(
        f"{name:44s} fused {on * 1e3:8.1f} ms   layers {off * 1e3:8.1f} ms   "
        f"off/on {off / on:5.2f}x   saved {(off - on) * 1e3:6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--window", type=int, default=20, choices=(5, 20, 60))
    parser.add_argument(
        "--only", choices=("step", "layers"), default=None, help="run one kind of row only"
    )
    parser.add_argument("--threads", type=int, default=None, help="kernel threads")
    args = parser.parse_args()
    if args.threads:
        convlab.set_num_threads(args.threads)
    print(f"convlab {convlab.__version__}, {convlab.get_backend('cpu').describe()}")

    def bf16() -> AbstractContextManager:
        return convlab.autocast("cpu", dtype=convlab.bfloat16)

    rows: dict[str, Callable[[], object]] = {}
    if args.only in (None, "step"):
        step = _training_step(args.window)
        rows[f"I{args.window} step fp32"] = lambda: step(nullcontext)
        rows[f"I{args.window} step bf16"] = lambda: step(bf16)
    if args.only in (None, "layers"):
        for channels, height in _I20_BLOCKS:
            shape = f"({BATCH},{channels},{height},60)"
            rows[f"BN+leaky+pool fwd+bwd {shape}"] = _layers_alone(channels, height)
    totals = [0.0, 0.0]  # the layer rows' medians, summed: the three blocks of one step
    try:
        for name, fn in rows.items():
            result = interleaved(
                {"on": _with_fusion(True, fn), "off": _with_fusion(False, fn)}, args.repeats
            )
            on, off = result["on"], result["off"]
            assert on is not None and off is not None
            _print_row(name, on, off)
            if name.startswith("BN+"):
                totals[0] += on
                totals[1] += off
        if totals[0]:
            _print_row("BN+leaky+pool, the 3 blocks together", *totals)
    finally:
        chart_cnn_module.FUSE_NORM_POOL = False
        chart_cnn_module.fused_norm_pool = norm_pool.fused_norm_pool


if __name__ == "__main__":
    main()
