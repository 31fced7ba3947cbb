"""Run under ``mpiexec -n N`` (N ranks, one GPU each; N may be 1): the NCCL backend's
collectives and a DDP step on real GPUs against NumPy / the CPU. Needs CuPy with NCCL."""

from __future__ import annotations

import numpy as np

import convlab
import convlab.distributed as dist
from convlab import nn


def main() -> None:
    dist.init_process_group("nccl")
    rank, size = dist.get_rank(), dist.get_world_size()
    assert dist.get_backend() == "nccl"
    everyone = [np.random.default_rng(r).standard_normal((5, 3)) for r in range(size)]
    for dtype in ("float32", "float64"):
        data = [a.astype(dtype) for a in everyone]
        for op, reference in (
            (dist.ReduceOp.SUM, np.sum),
            (dist.ReduceOp.AVG, np.mean),
            (dist.ReduceOp.MAX, np.max),
        ):
            t = convlab.tensor(data[rank], device="gpu")
            dist.all_reduce(t, op=op)
            np.testing.assert_allclose(t.cpu().numpy(), reference(data, axis=0), rtol=1e-6)
    t = convlab.tensor(everyone[rank], device="gpu")
    dist.broadcast(t, src=size - 1)
    np.testing.assert_array_equal(t.cpu().numpy(), everyone[size - 1])
    out = [convlab.zeros(5, 3, dtype=convlab.float64, device="gpu") for _ in range(size)]
    dist.all_gather(out, convlab.tensor(everyone[rank], device="gpu"))
    for r in range(size):
        np.testing.assert_array_equal(out[r].cpu().numpy(), everyone[r])

    x = np.random.default_rng(10 + rank).standard_normal((4, 2, 6, 6)).astype(np.float32)
    grads = []
    for device in ("cpu", "gpu"):
        convlab.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(2, 3, 3, bias=False), nn.SyncBatchNorm(3), nn.Flatten())
        model = model.to(device)
        net = nn.parallel.DistributedDataParallel(model)
        net(convlab.tensor(x, device=device)).pow(2).mean().backward()
        grads.append([p.grad.cpu().numpy() for p in model.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-5)
    dist.destroy_process_group()
    print(f"rank {rank}: NCCL OK", flush=True)


if __name__ == "__main__":
    main()
