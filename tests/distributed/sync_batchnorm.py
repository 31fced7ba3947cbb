"""Run under ``mpiexec -n 2``: SyncBatchNorm on each rank's shard against
torch.nn.BatchNorm2d on the concatenated global batch, in float64: output, running
statistics, input gradient of the shard and parameter gradients (summed over ranks). Shards
of unequal size, and a process group of one rank (plain BatchNorm)."""

from __future__ import annotations

import numpy as np
import torch

import convlab
import convlab.distributed as dist
from convlab import nn


def check(rank: int, size: int, sizes: list[int], momentum: float | None) -> None:
    rng = np.random.default_rng(5)
    total = sum(sizes)
    x = rng.standard_normal((total, 3, 4, 5)) * 3 + 1
    upstream = rng.standard_normal(x.shape)
    weight, bias = rng.standard_normal(3), rng.standard_normal(3)
    start = sum(sizes[:rank])
    mine = slice(start, start + sizes[rank])

    layer = nn.SyncBatchNorm(3, momentum=momentum).double()
    reference = torch.nn.BatchNorm2d(3, momentum=momentum).double()
    with convlab.no_grad():
        layer.weight.copy_(convlab.tensor(weight))
        layer.bias.copy_(convlab.tensor(bias))
    with torch.no_grad():
        reference.weight.copy_(torch.from_numpy(weight))
        reference.bias.copy_(torch.from_numpy(bias))

    for _ in range(2):  # twice: the running statistics' second update too
        xs = convlab.tensor(x[mine], requires_grad=True)
        y = layer(xs)
        (y * convlab.tensor(upstream[mine])).sum().backward()
        tx = torch.tensor(x, requires_grad=True)
        ty = reference(tx)
        (ty * torch.from_numpy(upstream)).sum().backward()
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy()[mine], rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(xs.grad.numpy(), tx.grad.numpy()[mine], rtol=1e-8, atol=1e-10)
        grads = [layer.weight.grad.clone(), layer.bias.grad.clone()]
        for g in grads:
            dist.all_reduce(g)  # the global batch's gradient is the sum of the shards'
        np.testing.assert_allclose(grads[0].numpy(), reference.weight.grad.numpy(), rtol=1e-9)
        np.testing.assert_allclose(grads[1].numpy(), reference.bias.grad.numpy(), rtol=1e-9)
        np.testing.assert_allclose(
            layer.running_mean.numpy(), reference.running_mean.numpy(), rtol=1e-10
        )
        np.testing.assert_allclose(
            layer.running_var.numpy(), reference.running_var.numpy(), rtol=1e-10
        )
        layer.zero_grad()
        reference.zero_grad()
    assert int(layer.num_batches_tracked.item()) == 2
    # evaluation uses the running statistics on each rank alone
    layer.eval()
    reference.eval()
    with convlab.no_grad():
        out = layer(convlab.tensor(x[mine]))
    np.testing.assert_allclose(
        out.numpy(), reference(torch.from_numpy(x)).detach().numpy()[mine], rtol=1e-9, atol=1e-12
    )


def solo_group(rank: int) -> None:
    """In a group of one rank, SyncBatchNorm is BatchNorm on the rank's own batch."""
    groups = [dist.new_group([r]) for r in range(dist.get_world_size())]
    x = np.random.default_rng(rank).standard_normal((4, 2, 3, 3))
    layer = nn.SyncBatchNorm(2, process_group=groups[rank]).double()
    expected = torch.nn.BatchNorm2d(2).double()(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(layer(convlab.tensor(x)).numpy(), expected, rtol=1e-9, atol=1e-12)


def main() -> None:
    dist.init_process_group("mpi")
    rank, size = dist.get_rank(), dist.get_world_size()
    check(rank, size, [3] * size, 0.1)
    check(rank, size, [2 + 3 * r for r in range(size)], None)  # unequal shards, cumulative
    solo_group(rank)
    dist.destroy_process_group()
    print(f"rank {rank}: SyncBatchNorm OK", flush=True)


if __name__ == "__main__":
    main()
