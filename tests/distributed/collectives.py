"""Run under ``mpiexec -n 2`` (tests/test_distributed.py): the collectives against NumPy.

Every rank makes every rank's inputs from the same seeds, so each can compute the expected
result with NumPy on its own and compare.
"""

from __future__ import annotations

import numpy as np

import convlab
import convlab.distributed as dist


def inputs(rank: int, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    values = np.random.default_rng(100 + rank).standard_normal(shape) * 10
    return values.astype(dtype)


def main() -> None:
    dist.init_process_group("mpi")
    rank, size = dist.get_rank(), dist.get_world_size()
    assert size >= 2, size
    assert dist.is_initialized() and dist.get_backend() == "mpi"
    everyone = [inputs(r, (3, 5), "float32") for r in range(size)]

    reductions = {
        dist.ReduceOp.SUM: lambda a: np.sum(a, axis=0),
        dist.ReduceOp.AVG: lambda a: np.sum(a, axis=0) / size,
        dist.ReduceOp.MAX: lambda a: np.max(a, axis=0),
        dist.ReduceOp.MIN: lambda a: np.min(a, axis=0),
        dist.ReduceOp.PRODUCT: lambda a: np.prod(a, axis=0),
    }
    for dtype in ("float32", "float64"):
        arrays = np.stack([a.astype(dtype) for a in everyone])
        for op, reference in reductions.items():
            t = convlab.tensor(arrays[rank])
            assert dist.all_reduce(t, op=op) is None
            np.testing.assert_allclose(t.numpy(), reference(arrays), rtol=1e-6, err_msg=str(op))

    # integers, and a non-contiguous view reduced in place through a copy
    ints = np.stack([np.arange(6, dtype=np.int64) * (r + 1) for r in range(size)])
    t = convlab.tensor(ints[rank])
    dist.all_reduce(t)
    np.testing.assert_array_equal(t.numpy(), ints.sum(axis=0))
    base = convlab.tensor(np.stack(everyone)[:, :, :].copy()[rank])
    view = base[:, 1:4:2]
    dist.all_reduce(view)
    expected = np.stack(everyone)[:, :, 1:4:2].sum(axis=0)
    np.testing.assert_allclose(base.numpy()[:, 1:4:2], expected, rtol=1e-6)
    np.testing.assert_array_equal(base.numpy()[:, 0], everyone[rank][:, 0])

    # AVG of integers is refused, as PyTorch's
    try:
        dist.all_reduce(convlab.tensor(ints[rank]), op=dist.ReduceOp.AVG)
    except TypeError as error:
        assert "AVG" in str(error)
    else:
        raise AssertionError("AVG of int64 did not raise")

    # broadcast from each source, with a Work handle
    for src in range(size):
        t = convlab.tensor(everyone[rank])
        work = dist.broadcast(t, src=src, async_op=True)
        assert work.wait() and work.is_completed()
        np.testing.assert_array_equal(t.numpy(), everyone[src])

    # all_gather: entry i from rank i
    out = [convlab.zeros(3, 5) for _ in range(size)]
    dist.all_gather(out, convlab.tensor(everyone[rank]))
    for r in range(size):
        np.testing.assert_array_equal(out[r].numpy(), everyone[r])

    # sub-groups: a group of rank 1 alone, and one of all ranks in reverse order (sorted)
    solo = dist.new_group([1])
    t = convlab.tensor(everyone[rank])
    dist.all_reduce(t, group=solo)
    np.testing.assert_array_equal(t.numpy(), everyone[rank])  # alone, or not a member
    if rank == 1:
        assert dist.get_rank(solo) == 0 and dist.get_world_size(solo) == 1
        assert dist.get_process_group_ranks(solo) == [1]
    else:
        assert solo is dist.GroupMember.NON_GROUP_MEMBER
        assert dist.get_rank(solo) == -1 and dist.get_world_size(solo) == -1
    both = dist.new_group(list(reversed(range(size))))
    assert dist.get_process_group_ranks(both) == list(range(size))
    assert dist.get_global_rank(both, 1) == 1
    t = convlab.tensor(everyone[rank])
    dist.all_reduce(t, group=both)
    np.testing.assert_allclose(t.numpy(), np.sum(everyone, axis=0), rtol=1e-6)
    t = convlab.tensor(everyone[rank])
    dist.broadcast(t, group_src=1, group=both)
    np.testing.assert_array_equal(t.numpy(), everyone[1])

    dist.barrier()
    dist.destroy_process_group()
    assert not dist.is_initialized()
    print(f"rank {rank}: collectives OK", flush=True)


if __name__ == "__main__":
    main()
