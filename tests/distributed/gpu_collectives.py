"""Run under ``mpiexec -n 2``: the collectives, SyncBatchNorm and DistributedDataParallel on
GPU tensors, through host copies over MPI (the path without NCCL), against the CPU.

With ``CONVLAB_CUDA_EMULATOR=1`` the GPU is the CUDA emulator (tests/cuda_emulator.py), whose
arrays stand for device memory; NCCL itself is not emulated.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if os.environ.get("CONVLAB_CUDA_EMULATOR") == "1":
    sys.path.insert(0, str(Path(__file__).parents[1]))
    import cuda_emulator

    cuda_emulator.install()

import numpy as np

import convlab
import convlab.distributed as dist
from convlab import nn


def on_gpu(t: convlab.Tensor) -> None:
    assert t._backend.name == "gpu" and type(t._data) is not np.ndarray, type(t._data)


def main() -> None:
    dist.init_process_group("mpi")  # MPI: device arrays go through host copies
    rank, size = dist.get_rank(), dist.get_world_size()
    everyone = [
        np.random.default_rng(r).standard_normal((4, 3)).astype(np.float32) for r in range(size)
    ]

    t = convlab.tensor(everyone[rank], device="gpu")
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    on_gpu(t)
    np.testing.assert_allclose(t.cpu().numpy(), np.mean(everyone, axis=0), rtol=1e-6)
    t = convlab.tensor(everyone[rank], device="gpu")
    dist.broadcast(t, src=1)
    on_gpu(t)
    np.testing.assert_array_equal(t.cpu().numpy(), everyone[1])
    out = [convlab.zeros(4, 3, device="gpu") for _ in range(size)]
    dist.all_gather(out, convlab.tensor(everyone[rank], device="gpu"))
    for r in range(size):
        on_gpu(out[r])
        np.testing.assert_array_equal(out[r].cpu().numpy(), everyone[r])

    # SyncBatchNorm and DDP on the GPU give the CPU's numbers (both distributed)
    x = np.random.default_rng(10 + rank).standard_normal((3, 2, 4, 4)).astype(np.float32)
    results = []
    for device in ("cpu", "gpu"):
        convlab.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(2, 3, 3, bias=False), nn.SyncBatchNorm(3), nn.Flatten())
        model = model.to(device)
        net = nn.parallel.DistributedDataParallel(model)
        net(convlab.tensor(x, device=device)).pow(2).mean().backward()
        results.append([p.grad.cpu().numpy() for p in model.parameters()])
        results[-1].append(model[1].running_var.cpu().numpy())
        if device == "gpu":
            on_gpu(model[0].weight.grad)
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
    dist.destroy_process_group()
    print(f"rank {rank}: GPU (host copies) OK", flush=True)


if __name__ == "__main__":
    main()
