"""Run under ``mpiexec -n 2``: rank 1 raises while rank 0 waits in a collective.

The job must end (not hang) with rank 1's error on stderr and a non-zero exit.
"""

from __future__ import annotations

import convlab
import convlab.distributed as dist

dist.init_process_group("mpi")
if dist.get_rank() == 1:
    raise ValueError("rank one broke on purpose")
t = convlab.ones(4)
dist.all_reduce(t)  # rank 0 waits here for a rank that will never come
print("rank 0 passed the all_reduce: the fault did not end the job", flush=True)
