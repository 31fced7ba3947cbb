"""DistributedSampler against torch.utils.data.DistributedSampler (same indices for the same
arguments, shuffled or not) and its own guarantees (every index once per epoch across ranks)."""

from __future__ import annotations

import itertools

import pytest

from conftest import needs_torch, torch
from convlab.utils.data import DataLoader, DistributedSampler
from convlab.utils.data.distributed import torch_randperm


@needs_torch
@pytest.mark.parametrize("n", [0, 1, 2, 7, 100, 1001])
@pytest.mark.parametrize("seed", [0, 3, 2**33 + 5])
def test_permutation_is_torch_randperm(n, seed):
    expected = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    assert torch_randperm(n, seed) == expected


@needs_torch
@pytest.mark.parametrize(
    "size, replicas, shuffle, drop_last, seed, epoch",
    [
        (size, replicas, shuffle, drop_last, seed, epoch)
        for size, replicas in ((10, 2), (11, 2), (11, 3), (5, 4), (3, 5), (101, 7))
        for shuffle, drop_last in itertools.product((False, True), repeat=2)
        for seed, epoch in ((0, 0), (42, 3))
    ],
)
def test_same_indices_as_torch(size, replicas, shuffle, drop_last, seed, epoch):
    from torch.utils.data import DistributedSampler as TorchSampler

    for rank in range(replicas):
        ours = DistributedSampler(range(size), replicas, rank, shuffle, seed, drop_last)
        theirs = TorchSampler(range(size), replicas, rank, shuffle, seed, drop_last)
        ours.set_epoch(epoch)
        theirs.set_epoch(epoch)
        assert list(ours) == list(theirs)
        assert len(ours) == len(theirs)
        assert (ours.num_samples, ours.total_size) == (theirs.num_samples, theirs.total_size)


@pytest.mark.parametrize("size, replicas", [(12, 3), (13, 3), (40, 4), (7, 2)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_every_index_once_per_epoch(size, replicas, drop_last):
    shares = [
        list(DistributedSampler(range(size), replicas, r, True, 5, drop_last))
        for r in range(replicas)
    ]
    counts = {len(s) for s in shares}
    assert len(counts) == 1  # equal shares, so ranks step together
    seen = sorted(i for s in shares for i in s)
    if drop_last:
        assert len(seen) == len(set(seen)) == size - size % replicas
    else:
        assert sorted(set(seen)) == list(range(size))  # every index at least once
        assert len(seen) == -(-size // replicas) * replicas  # padded by repeats only
        assert len(seen) - len(set(seen)) == len(seen) - size


def test_set_epoch_reshuffles_the_same_way_on_every_rank():
    samplers = [DistributedSampler(range(50), 2, r, seed=9) for r in range(2)]
    first = [list(s) for s in samplers]
    for s in samplers:
        s.set_epoch(1)
    second = [list(s) for s in samplers]
    assert first != second
    assert sorted(first[0] + first[1]) == sorted(second[0] + second[1]) == list(range(50))
    again = DistributedSampler(range(50), 2, 0, seed=9)
    again.set_epoch(1)
    assert list(again) == second[0]


def test_unshuffled_is_strided():
    assert list(DistributedSampler(range(5), 2, 1, shuffle=False)) == [1, 3, 0]
    assert list(DistributedSampler(range(5), 2, 1, shuffle=False, drop_last=True)) == [1, 3]


def test_in_a_loader():
    sampler = DistributedSampler(list(range(8)), num_replicas=2, rank=0, shuffle=False)
    batches = [b.tolist() for b in DataLoader(list(range(8)), batch_size=2, sampler=sampler)]
    assert batches == [[0, 2], [4, 6]]


def test_argument_errors():
    with pytest.raises(
        ValueError, match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"
    ):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas: expected a positive int"):
        DistributedSampler(range(4), num_replicas=0, rank=0)
    with pytest.raises(TypeError, match="rank: expected an int"):
        DistributedSampler(range(4), num_replicas=2, rank=1.0)
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedSampler(range(4))
