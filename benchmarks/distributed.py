"""Data-parallel training throughput: the I20 chart CNN on 1 rank x 1 thread, 1 rank x 2 threads
and 2 ranks x 1 thread (``mpiexec -n 2``, launched by this script), plus the all-reduce's share
of a 2-rank step and the all-reduce time of the I20 / I60 gradients (for docs/distributed.rst).

Usage::

    python benchmarks/distributed.py [--batch 128] [--steps 20] [--rounds 2] [--json out.json]
    python benchmarks/distributed.py --tiny      # a seconds-long check that it runs

The three configurations run one after another, ``--rounds`` times in turn (alternated, so a
drift of the machine's load hits all of them); each reports the median step time over its
timed steps. The goal on a 2-core machine: 2 ranks >= 1.8x the throughput of 1 rank x 1 thread.
Synthetic 0/1 images of the 20-day size (64x60) stand in for data: the step costs the same.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

#: The paper's parameter counts: gradient bytes per step are 4x these (float32).
PARAMETERS = {20: 708_866, 60: 2_952_962}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128, help="global batch (the paper's 128)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--rounds", type=int, default=2, help="times each configuration runs")
    parser.add_argument("--tiny", action="store_true", help="small model and batch: a quick check")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# -- worker: one configuration, printing one JSON line from rank 0 ----------------------------


def _worker(args: argparse.Namespace) -> None:
    import numpy as np

    import convlab
    import convlab.distributed as dist
    from convlab import nn
    from convlab.models.chart_cnn import ChartCNN
    from convlab.nn.parallel import distributed as ddp_module

    convlab.set_num_threads(args.threads)
    dist.init_process_group("mpi")
    rank, size = dist.get_rank(), dist.get_world_size()
    channels = [8, 16, 32] if args.tiny else None
    convlab.manual_seed(0)
    model = ChartCNN(20, channels=channels)
    if size > 1:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        net: nn.Module = nn.parallel.DistributedDataParallel(model)
    else:
        net = model
    optimizer = convlab.optim.Adam(net.parameters(), lr=1e-5)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    x = (rng.random((args.batch, 1, 64, 60)) < 0.1).astype(np.float32)
    y = rng.integers(0, 2, args.batch)
    mine = list(range(rank, args.batch, size))  # a DistributedSampler's strided share
    xs, ys = convlab.tensor(x[mine]), convlab.tensor(y[mine])

    reduce_time = [0.0]
    original = ddp_module.DistributedDataParallel._reduce_buckets

    def timed_reduce(self: object) -> None:
        start = time.perf_counter()
        original(self)  # type: ignore[arg-type]
        reduce_time[0] += time.perf_counter() - start

    ddp_module.DistributedDataParallel._reduce_buckets = timed_reduce  # type: ignore[method-assign]

    steps, reduces = [], []
    for i in range(args.warmup + args.steps):
        dist.barrier()  # every rank starts the step together
        reduce_time[0] = 0.0
        start = time.perf_counter()
        optimizer.zero_grad()
        with dist.sample_indexed_dropout(mine):
            loss_fn(net(xs), ys).backward()
        optimizer.step()
        if i >= args.warmup:
            steps.append(time.perf_counter() - start)
            reduces.append(reduce_time[0])

    allreduce = {}
    if size > 1:
        for window, count in PARAMETERS.items():
            flat = convlab.zeros(count if not args.tiny else count // 100)
            times = []
            for _ in range(5):
                dist.barrier()
                start = time.perf_counter()
                dist.all_reduce(flat, op=dist.ReduceOp.AVG)
                times.append(time.perf_counter() - start)
            allreduce[f"I{window}"] = {
                "bytes": flat.numel() * 4,
                "seconds": statistics.median(times),
            }
    step = statistics.median(steps)
    if rank == 0:
        result = {
            "ranks": size,
            "threads": args.threads,
            "batch": args.batch,
            "step_s": step,
            "images_per_s": args.batch / step,
            "allreduce_share": statistics.median(reduces) / step if size > 1 else 0.0,
            "allreduce": allreduce,
        }
        print("RESULT " + json.dumps(result), flush=True)
    dist.destroy_process_group()


# -- launcher ---------------------------------------------------------------------------------


def _mpiexec() -> str:
    beside = Path(sys.executable).with_name("mpiexec")
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        sys.exit('benchmarks/distributed.py: no mpiexec (pip install "convlab[mpi]")')
    return found


def _run(ranks: int, threads: int, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--worker", "--threads", str(threads)]
    command += ["--batch", str(args.batch), "--steps", str(args.steps)]
    command += ["--warmup", str(args.warmup)] + (["--tiny"] if args.tiny else [])
    if ranks > 1:
        command = [_mpiexec(), "-n", str(ranks), *command]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(lines[0][len("RESULT ") :])


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    if args.worker:
        _worker(args)
        return
    if args.tiny:
        args.batch, args.steps, args.warmup, args.rounds = 8, 2, 1, 1
    configurations = [(1, 1), (1, 2), (2, 1)]
    runs: dict[tuple[int, int], list[dict]] = {c: [] for c in configurations}
    for _ in range(args.rounds):
        for ranks, threads in configurations:
            runs[(ranks, threads)].append(_run(ranks, threads, args))
    best = {c: min(r, key=lambda result: result["step_s"]) for c, r in runs.items()}
    base = best[(1, 1)]["images_per_s"]
    print(
        f"I20 chart CNN, global batch {args.batch} (the machine may be noisy: rerun on a quiet one)"
    )
    print(f"{'configuration':<22}{'images/s':>10}{'vs 1x1':>9}{'all-reduce share':>18}")
    for (ranks, threads), result in best.items():
        share = f"{result['allreduce_share']:.1%}" if ranks > 1 else "-"
        print(
            f"{ranks} rank(s) x {threads} thread(s){'':<4}{result['images_per_s']:>10.1f}"
            f"{result['images_per_s'] / base:>8.2f}x{share:>18}"
        )
    two = best[(2, 1)]
    for name, measured in two["allreduce"].items():
        t2 = measured["seconds"]
        model = ", ".join(f"N={n}: {t2 * 2 * (n - 1) / n * 1e3:.2f} ms" for n in (4, 8, 16, 64))
        print(
            f"all-reduce of the {name} gradients ({measured['bytes'] / 1e6:.2f} MB): "
            f"{t2 * 1e3:.2f} ms at 2 ranks; ring model 2(N-1)/N x that: {model}"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({f"{r}x{t}": v for (r, t), v in runs.items()}, indent=1)
        )


if __name__ == "__main__":
    main()
