"""Does bf16 compute change what the chart CNN learns? Train the I20 model on the bundled data
with ``--precision fp32`` and ``--precision bf16``, several seeds each, and print the
validation losses next to each other.

Usage::

    python benchmarks/precision_accuracy.py [--seeds 3] [--epochs 3] [--stride 1]
    python benchmarks/precision_accuracy.py --tiny      # a smoke run: 1 seed, 1 epoch, 1/8 data

The claim to check: bf16's mean best validation loss lies within the spread of the fp32 seeds
(and vice versa). One ensemble member per run, so a seed is one model. Runs alternate
fp32 / bf16 per seed, so a slower stretch of a shared machine hits both alike (only the
timings suffer from that; the losses do not depend on it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per precision (default 3)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3)")
    parser.add_argument(
        "--stride", type=int, default=1, help="keep every n-th image (default 1: all)"
    )
    parser.add_argument("--window", type=int, default=20, choices=(5, 20, 60))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--tiny", action="store_true", help="1 seed, 1 epoch, every 8th image, batch 64"
    )
    args = parser.parse_args(argv)
    if args.tiny:
        args.seeds, args.epochs, args.stride, args.batch_size = 1, 1, 8, 64
    return args


def _run(config_cls, train, precision: str, seed: int, args, folder: Path) -> dict:
    config = config_cls(
        window=args.window,
        epochs=args.epochs,
        ensemble=1,
        seed=seed,
        stride=args.stride,
        batch_size=args.batch_size,
        precision=precision,
    )
    start = time.perf_counter()
    metrics = train(config, folder / f"{precision}-{seed}", quiet=True, threads=args.threads)
    history = metrics["histories"][0]
    return {
        "best_val_loss": min(history["val_loss"]),
        "val_loss": metrics["validation"]["loss"],
        "val_accuracy": metrics["validation"]["accuracy"],
        "test_loss": metrics["test"]["loss"],
        "test_accuracy": metrics["test"]["accuracy"],
        "seconds": time.perf_counter() - start,
    }


def main(argv=None) -> int:
    args = _parse(argv)
    import convlab
    from convlab.training.chart import ChartTrainConfig, train

    if not convlab._precision.cpu_bf16_supported():
        print("note: this CPU has no avx512_bf16: the bf16 runs compute in float32")
    results: dict[str, list[dict]] = {"fp32": [], "bf16": []}
    with tempfile.TemporaryDirectory(prefix="convlab-precision-") as scratch:
        for seed in range(args.seeds):
            for precision in ("fp32", "bf16"):
                row = _run(ChartTrainConfig, train, precision, seed, args, Path(scratch))
                results[precision].append(row)
                print(
                    f"{precision} seed {seed}: best val loss {row['best_val_loss']:.5f} | "
                    f"val loss {row['val_loss']:.5f} acc {row['val_accuracy']:.4f} | "
                    f"test loss {row['test_loss']:.5f} acc {row['test_accuracy']:.4f} | "
                    f"{row['seconds']:.0f} s",
                    flush=True,
                )
    print()
    print("| precision | best val loss, mean | min | max | test accuracy, mean | run time |")
    print("|---|---:|---:|---:|---:|---:|")
    summary = {}
    for precision, rows in results.items():
        losses = [r["best_val_loss"] for r in rows]
        summary[precision] = (statistics.mean(losses), min(losses), max(losses))
        print(
            f"| {precision} | {summary[precision][0]:.5f} | {min(losses):.5f} | "
            f"{max(losses):.5f} | {statistics.mean(r['test_accuracy'] for r in rows):.4f} | "
            f"{statistics.mean(r['seconds'] for r in rows):.0f} s |"
        )
    fp32, bf16 = summary["fp32"], summary["bf16"]
    within = fp32[1] <= bf16[0] <= fp32[2] and bf16[1] <= fp32[0] <= bf16[2]
    print(
        "\nbf16's mean best validation loss is "
        + ("within" if within else "OUTSIDE")
        + " the fp32 seeds' range (and fp32's within bf16's)"
        + ("" if args.seeds > 1 else " -- one seed each: run --seeds 3 for the real check")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
