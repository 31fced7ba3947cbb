"""Run under ``mpiexec -n 2``: DistributedDataParallel + SyncBatchNorm + sample-indexed dropout.

1. k Adam steps of a conv / BatchNorm / dropout / linear model, 2 ranks x half batch (each rank
   the strided half a DistributedSampler gives) against the same model on 1 rank x full batch
   (run on every rank alone): parameters and running statistics equal to relative 1e-5, and
   bitwise identical across ranks.
2. Without dropout, the same against PyTorch on the full batch (the first step's averaged
   gradients, then k steps).
3. no_sync: two accumulated half steps then a synchronised one equal one backward of the sum.
"""

from __future__ import annotations

import numpy as np
import torch

import convlab
import convlab.distributed as dist
from convlab import nn

STEPS, BATCH, LR = 4, 8, 1e-2


def build(p_drop: float) -> nn.Module:
    convlab.manual_seed(7)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False),  # BN follows: a bias has no gradient
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(p_drop),
        nn.Linear(4 * 4 * 4, 3),
    )


def data(step: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1000 + step)
    x = (rng.standard_normal((BATCH, 1, 8, 8)) * 2 + 0.5).astype(np.float32)
    return x, rng.integers(0, 3, BATCH)


def train(model: nn.Module, rank: int, size: int, wrap: bool) -> nn.Module:
    """STEPS Adam steps; this rank's strided share of each batch when ``wrap``."""
    net = nn.parallel.DistributedDataParallel(model) if wrap else model
    opt = convlab.optim.Adam(net.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    convlab.manual_seed(11)  # the same dropout seeds on every rank and in the 1-rank run
    for step in range(STEPS):
        x, y = data(step)
        mine = list(range(rank, BATCH, size))
        opt.zero_grad()
        with dist.sample_indexed_dropout(mine):
            loss = loss_fn(net(convlab.tensor(x[mine])), convlab.tensor(y[mine]))
        loss.backward()
        opt.step()
    return model


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    scale = max(float(np.abs(b).max()), 1e-30)
    return float(np.abs(a.astype(np.float64) - b).max()) / scale


def state(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def check_close(ours: dict, reference: dict, tol: float, what: str) -> None:
    assert ours.keys() == reference.keys(), (ours.keys(), reference.keys())
    for key in reference:
        if reference[key].dtype.kind == "f":
            err = rel_error(ours[key], reference[key])
            assert err <= tol, f"{what}: {key} differs by {err:.2e} (relative)"
        else:
            np.testing.assert_array_equal(ours[key], reference[key], err_msg=f"{what}: {key}")


def check_identical_across_ranks(model: nn.Module, size: int) -> None:
    for name, t in model.state_dict().items():
        gathered = [convlab.zeros_like(t) for _ in range(size)]
        dist.all_gather(gathered, t)
        for r, g in enumerate(gathered):
            assert np.array_equal(g.numpy(), t.numpy()), f"{name}: rank {r} differs bitwise"


def torch_model(model: nn.Module) -> torch.nn.Module:
    reference = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1, bias=False),  # BN follows: a bias has no gradient
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Identity(),
        torch.nn.Linear(4 * 4 * 4, 3),
    )
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in state(model).items()})
    return reference


def against_torch(rank: int, size: int) -> None:
    model = nn.SyncBatchNorm.convert_sync_batchnorm(build(0.0))
    reference = torch_model(model)
    net = nn.parallel.DistributedDataParallel(model)
    opt = convlab.optim.Adam(net.parameters(), lr=LR)
    topt = torch.optim.Adam(reference.parameters(), lr=LR)
    loss_fn, tloss_fn = nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    for step in range(STEPS):
        x, y = data(step)
        mine = list(range(rank, BATCH, size))
        opt.zero_grad()
        loss_fn(net(convlab.tensor(x[mine])), convlab.tensor(y[mine])).backward()
        topt.zero_grad()
        tloss_fn(reference(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        if step == 0:
            for (name, p), tp in zip(model.named_parameters(), reference.parameters()):
                err = rel_error(p.grad.numpy(), tp.grad.double().numpy())
                assert err <= 1e-5, f"torch: gradient of {name} differs by {err:.2e}"
        opt.step()
        topt.step()
    theirs = {k: v.detach().numpy() for k, v in reference.state_dict().items()}
    check_close(state(model), theirs, 1e-4, "2 ranks vs torch")
    check_identical_across_ranks(model, size)


def no_sync_accumulates(rank: int, size: int) -> None:
    model = build(0.0).eval()  # running statistics: micro-batches normalise as the batch
    net = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=0.0005)  # several buckets
    assert len(net._buckets) > 1
    x, y = data(0)
    mine = list(range(rank, BATCH, size))
    half = len(mine) // 2
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    with net.no_sync():
        loss_fn(net(convlab.tensor(x[mine[:half]])), convlab.tensor(y[mine[:half]])).backward()
    local_only = [p.grad.numpy().copy() for p in model.parameters()]
    loss_fn(net(convlab.tensor(x[mine[half:]])), convlab.tensor(y[mine[half:]])).backward()
    # reference: PyTorch's gradient of the whole batch's summed loss, averaged over ranks
    reference = torch_model(build(0.0)).eval()
    torch.nn.CrossEntropyLoss(reduction="sum")(
        reference(torch.from_numpy(x)), torch.from_numpy(y)
    ).backward()
    for p, tp, before in zip(model.parameters(), reference.parameters(), local_only):
        err = rel_error(p.grad.numpy(), tp.grad.double().numpy() / size)
        assert err <= 1e-5, f"no_sync: averaged gradient differs by {err:.2e}"
        assert not np.array_equal(before, p.grad.numpy())
    check_identical_across_ranks(model, size)


class Lookup(nn.Module):
    """Integer input (no floating-point tensor in the graph's inputs) and a parameter used
    apart from it."""

    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Parameter(convlab.randn(10, 4))
        self.extra = nn.Parameter(convlab.randn(4))

    def forward(self, idx: convlab.Tensor) -> convlab.Tensor:
        return (self.table[idx] * self.extra).tanh() + self.extra * 2


def hook_paths(rank: int, size: int) -> None:
    """Integer inputs: gradients averaged at the end of backward, against PyTorch on the whole
    batch."""
    convlab.manual_seed(3)
    model = Lookup()
    table, extra = (torch.tensor(p.numpy(), requires_grad=True) for p in model.parameters())
    model.register_buffer("marker", convlab.tensor([0.0]))
    net = nn.parallel.DistributedDataParallel(model)
    idx = np.random.default_rng(8).integers(0, 10, (size * 3, 2))
    mine = idx[rank * 3 : rank * 3 + 3]
    model.marker.fill_(float(rank))
    if rank == 0:  # an evaluation on one rank alone: no collective, so no hang
        with convlab.no_grad():
            net(convlab.tensor(mine))
    assert float(model.marker.item()) == rank
    net(convlab.tensor(mine)).pow(2).mean().backward()
    assert float(model.marker.item()) == 0.0  # a training forward took rank 0's buffers
    ((table[torch.from_numpy(idx)] * extra).tanh() + extra * 2).pow(2).mean().backward()
    for p, tp in zip(model.parameters(), (table, extra)):
        err = rel_error(p.grad.numpy(), tp.grad.double().numpy())
        assert err <= 1e-5, f"hook path: gradient differs by {err:.2e}"
    check_identical_across_ranks(model, size)


class Apart(nn.Module):
    """A parameter used apart from the input: its gradient comes from another branch of the
    graph than the input's."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.extra = nn.Parameter(convlab.randn(2))

    def forward(self, x: convlab.Tensor) -> convlab.Tensor:
        return self.lin(x) + (self.extra * 2).tanh()


def apart_path(rank: int, size: int) -> None:
    """Every gradient averaged once, in one bucket, after the whole backward (the engine's
    final callback), whichever branch it came from: against torch."""
    convlab.manual_seed(4)
    model = Apart()
    named = {n: torch.tensor(p.numpy(), requires_grad=True) for n, p in model.named_parameters()}
    weight, bias, extra = named["lin.weight"], named["lin.bias"], named["extra"]
    net = nn.parallel.DistributedDataParallel(model)
    seen = []
    reduce_buckets = net._reduce_buckets

    def counted() -> None:
        # by now every parameter's gradient is accumulated
        seen.append([p.grad is not None for p in model.parameters()])
        reduce_buckets()

    object.__setattr__(net, "_reduce_buckets", counted)
    x = np.random.default_rng(9).standard_normal((2 * size, 3)).astype(np.float32)
    net(convlab.tensor(x[2 * rank : 2 * rank + 2])).pow(2).mean().backward()
    assert seen == [[True, True, True]], f"averaging ran {seen} (one call, all gradients in)"
    assert len(net._buckets) == 1
    tx = torch.from_numpy(x)
    (tx @ weight.T + bias + (extra * 2).tanh()).pow(2).mean().backward()
    for name, p in model.named_parameters():
        err = rel_error(p.grad.numpy(), named[name].grad.double().numpy())
        assert err <= 1e-5, f"late path: gradient of {name} differs by {err:.2e}"
        gathered = [convlab.zeros_like(p.grad) for _ in range(size)]
        dist.all_gather(gathered, p.grad)
        assert all(np.array_equal(g.numpy(), p.grad.numpy()) for g in gathered)


def main() -> None:
    dist.init_process_group("mpi")
    rank, size = dist.get_rank(), dist.get_world_size()

    single = train(build(0.5), 0, 1, wrap=False)
    double = train(nn.SyncBatchNorm.convert_sync_batchnorm(build(0.5)), rank, size, wrap=True)
    assert isinstance(double[1], nn.SyncBatchNorm)
    check_close(state(double), state(single), 1e-5, f"{size} ranks vs 1 rank")
    check_identical_across_ranks(double, size)
    # the masks really differ between samples and steps (dropout was active)
    assert not np.array_equal(
        state(double)["6.weight"], state(train(build(0.0), 0, 1, False))["6.weight"]
    )

    against_torch(rank, size)
    no_sync_accumulates(rank, size)
    hook_paths(rank, size)
    apart_path(rank, size)
    dist.destroy_process_group()
    print(f"rank {rank}: DDP OK", flush=True)


if __name__ == "__main__":
    main()
