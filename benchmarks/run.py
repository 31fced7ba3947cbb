"""convlab benchmarks: our kernels next to PyTorch (CPU) and NumPy, measured in the same run.

Usage::

    python benchmarks/run.py [--quick] [--threads N] [--only GROUP] [--json out.json]

Each row shows median times and the ratio ``peer_time / convlab_time`` (> 1: convlab is
faster). Absolute times drift on shared machines; the ratios, measured interleaved in one
process, are what to quote.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
from pathlib import Path

GROUPS = [
    "gemm",
    "conv",
    "grouped",
    "pool",
    "adaptive",
    "train",
    "charts",
    "binary",
    "chartcnn",
    "resnet9",
    "rnn",
    "bf16",
]


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer cases and repeats")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for every library (default: all CPUs we may use)",
    )
    parser.add_argument(
        "--only", choices=GROUPS, action="append", help="run only these groups (repeatable)"
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per contender")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument(
        "--precision",
        choices=["highest", "high", "medium"],
        action="append",
        help="--device gpu: GEMM and conv rows at this float32 matmul precision, next to "
        "PyTorch in the matching mode (repeatable; default: highest)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument(
        "--rst",
        type=Path,
        default=None,
        help="also write the tables as reStructuredText (for docs/)",
    )
    return parser.parse_args(argv)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)  # never a half-written results file


def _rst_tables(header, rows) -> str:
    lines = ["Measured with ``python benchmarks/run.py``:", ""]
    lines += [f"| {line}" for line in header] + [""]
    for group in dict.fromkeys(row["group"] for row in rows):
        lines += [
            f".. list-table:: {group}",
            "   :header-rows: 1",
            "",
            "   * - case",
            "     - convlab",
            "     - torch / convlab",
            "     - numpy / convlab",
            "     - convlab rate",
        ]
        for row in (r for r in rows if r["group"] == group):
            ratio = {k: (f"{v:.2f}x" if v else "-") for k, v in row["ratio"].items()}
            lines += [
                f"   * - {row['case']}",
                f"     - {row['seconds']['convlab'] * 1e3:.2f} ms",
                f"     - {ratio['torch']}",
                f"     - {ratio['numpy']}",
                f"     - {row['rate_text']}",
            ]
        lines.append("")
    return "\n".join(lines)


def _print_epoch_projection(times) -> None:
    from cases import BATCH, NEEDLE_EPOCH_SECONDS

    steps = 50_000 / BATCH
    peers = ", ".join(
        f"{name} {times[name] * steps:.0f} s" for name in ("convlab", "torch") if times.get(name)
    )
    print(
        f"|  projected CIFAR-10 epoch (50,000 images, training steps only): {peers}; "
        f"needle hw4's CPU backend: about {NEEDLE_EPOCH_SECONDS:.0f} s (reported) |"
    )


def main(argv=None) -> int:
    args = _parse(argv)
    threads = args.threads or len(os.sched_getaffinity(0))
    # BLAS reads its thread count when NumPy is imported: set it first.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if args.precision and args.device != "gpu":
        print("benchmarks: --precision applies to --device gpu", file=sys.stderr)
        return 2
    if os.environ.get("CONVLAB_CUDA_EMULATOR") == "1":
        # the GPU backend on the tests' CUDA emulator (a smoke run: its timings mean nothing)
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        import cuda_emulator

        cuda_emulator.install()

    import numpy as np

    import convlab
    from bf16_cases import PEERS as BF16_PEERS
    from bf16_cases import bf16_cases, bf16_peak_gflops
    from cases import (
        binary_cases,
        chart_cases,
        chart_cnn_cases,
        conv_cases,
        gemm_cases,
        pool_cases,
        resnet9_cases,
        train_cases,
    )
    from grouped_cases import adaptive_cases, grouped_cases
    from rnn_cases import rnn_cases
    from timing import interleaved

    if args.device == "gpu" and not convlab.get_backend("gpu").is_available():
        print("benchmarks: --device gpu: " + convlab.get_backend("gpu").describe(), file=sys.stderr)
        return 2
    convlab.set_num_threads(threads)
    try:
        import torch

        torch.set_num_threads(threads)
        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    import yardsticks

    isa = convlab.get_backend("cpu").isa
    peaks = [yardsticks.fma_peak_gflops(threads, isa) for _ in range(3)]
    peak = max(peaks) if all(peaks) else None  # best of three: noise only slows

    groups = args.only or GROUPS
    if args.device == "gpu":
        from gpu_cases import gpu_cases

        groups = ["gpu"]
        print(
            "GPU: " + convlab.get_backend("gpu").describe() + "; columns: torch = PyTorch "
            "CUDA (cuDNN), numpy = CuPy (cuBLAS)"
        )
        if torch_version is None or not torch.cuda.is_available():
            print("PyTorch CUDA: n/a (no CUDA build of PyTorch here): its column stays empty")
    builders = {
        "gemm": gemm_cases,
        "conv": conv_cases,
        "grouped": grouped_cases,
        "pool": pool_cases,
        "adaptive": adaptive_cases,
        "train": train_cases,
        "charts": chart_cases,
        "binary": binary_cases,
        "chartcnn": chart_cnn_cases,
        "resnet9": resnet9_cases,
        "rnn": rnn_cases,
        "bf16": bf16_cases,
    }
    if args.device == "gpu":
        builders["gpu"] = functools.partial(gpu_cases, precisions=args.precision or ["highest"])
    repeats = args.repeats or (5 if args.quick else 9)
    coretype = os.environ.get("OPENBLAS_CORETYPE", "auto (AVX-512 where present)")
    header = [
        f"convlab {convlab.__version__} | {convlab.get_backend('cpu').describe()} | "
        f"torch {torch_version or 'not installed'} | numpy {np.__version__} "
        f"(OpenBLAS core type: {coretype})",
        f"{platform.processor() or platform.machine()}, {threads} threads; measured FMA peak "
        + (
            f"{peak:.0f} GFLOP/s (fp32, {isa})"
            if peak
            else "not measured (no C compiler for benchmarks/yardsticks.c)"
        ),
        "ratio = peer time / convlab time (> 1: convlab faster); medians of "
        f"{repeats} interleaved runs",
    ]
    print("\n".join(header))
    rows = []
    for group in groups:
        cases = builders[group](args.quick)
        peer_names = ("torch", "numpy")
        group_peak = peak
        if group == "bf16":
            # bf16 compute: PyTorch under autocast and in float32; the bf16 dot-product peak
            peer_names = BF16_PEERS
            group_peak = bf16_peak_gflops(threads)
        print(
            f"\n| {group} | convlab | {peer_names[0]} | {peer_names[1]} | "
            f"{peer_names[0]}/convlab | {peer_names[1]}/convlab | convlab |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        for case in cases:
            times = interleaved(
                {
                    "convlab": case.convlab,
                    "torch": case.torch,
                    "numpy": case.numpy,
                    "floor": case.floor,
                },
                repeats,
            )
            ours = times["convlab"]
            rate = case.work / ours / (1 if case.unit in ("img/s", "words/s") else 1e9)
            rate_text = f"{rate:.0f} {case.unit}"
            if case.unit == "GFLOP/s" and group_peak and args.device == "cpu":  # a CPU peak
                rate_text += f" ({100 * rate / group_peak:.0f}% of peak)"
            if times["floor"]:
                # the case's bytes moved and nothing else: how close to memory speed
                rate_text += f" ({100 * times['floor'] / ours:.0f}% of memory floor)"
            ratios = {
                peer: (times[peer] / ours if times[peer] else None) for peer in ("torch", "numpy")
            }

            def ms(value):
                return f"{value * 1e3:.2f} ms" if value else "-"

            def ratio(value):
                return f"{value:.2f}x" if value else "-"

            print(
                f"| {case.name} | {ms(ours)} | {ms(times['torch'])} | {ms(times['numpy'])} | "
                f"{ratio(ratios['torch'])} | {ratio(ratios['numpy'])} | {rate_text} |",
                flush=True,
            )
            rows.append(
                {
                    "group": group,
                    "case": case.name,
                    "seconds": times,
                    "ratio": ratios,
                    "rate": rate,
                    "unit": case.unit,
                    "rate_text": rate_text,
                }
            )
            if group == "resnet9":
                _print_epoch_projection(times)
    if args.json:
        _write_atomically(
            args.json,
            json.dumps(
                {"header": header, "threads": threads, "fma_peak_gflops": peak, "rows": rows},
                indent=2,
            ),
        )
    if args.rst:
        _write_atomically(args.rst, _rst_tables(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
