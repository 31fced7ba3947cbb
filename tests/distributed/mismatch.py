"""Run under ``mpiexec -n 2``: ranks that build different models get a clear error when
wrapping them in DistributedDataParallel (on every rank, so none is left waiting)."""

from __future__ import annotations

import convlab.distributed as dist
from convlab import nn

dist.init_process_group("mpi")
rank = dist.get_rank()
width = 5 if rank == 1 else 4
model = nn.Sequential(nn.Linear(3, width), nn.ReLU(), nn.Linear(width, 2))
try:
    nn.parallel.DistributedDataParallel(model)
except RuntimeError as error:
    text = str(error)
    assert "the ranks' models differ" in text, text
    assert "'0.weight (4, 3) float32' on rank 0 but '0.weight (5, 3) float32' on rank 1" in text
    print(f"rank {rank}: mismatch OK", flush=True)
else:
    raise AssertionError("DistributedDataParallel accepted different models")
dist.destroy_process_group()
