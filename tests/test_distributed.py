"""convlab.distributed: scripts under ``mpiexec -n 2`` (tests/distributed/) and the
single-process (world size 1) behaviour.

The multi-rank scripts compare against NumPy and PyTorch themselves and exit non-zero on a
failed assertion; each runs with a timeout, so a hang fails instead of stalling the suite.
They skip, with the reason, where mpi4py or ``mpiexec`` is absent (``pip install
"convlab[mpi]"``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import convlab
import convlab.distributed as dist
from conftest import needs_gpu, needs_torch, torch

HERE = Path(__file__).parent / "distributed"
_MPI4PY = importlib.util.find_spec("mpi4py") is not None


def _mpiexec() -> str | None:
    beside = Path(sys.executable).with_name("mpiexec")
    return str(beside) if beside.exists() else shutil.which("mpiexec")


needs_mpi4py = pytest.mark.skipif(not _MPI4PY, reason="mpi4py is not installed (convlab[mpi])")
needs_mpiexec = pytest.mark.skipif(
    not _MPI4PY or _mpiexec() is None,
    reason='mpi4py or mpiexec is not installed (pip install "convlab[mpi]")',
)


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"  # two ranks on a two-core machine
    src = str(Path(convlab.__file__).parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def run_ranks(
    script: str | list[str], n: int = 2, timeout: float = 240, **env: str
) -> subprocess.CompletedProcess:
    """Run a script of tests/distributed (or ``-c`` code) on ``n`` ranks."""
    argv = [script] if isinstance(script, str) else script
    if isinstance(script, str):
        argv = [str(HERE / script)]
    command = [_mpiexec(), "-n", str(n), sys.executable, *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=_env(**env))


def _assert_ok(result: subprocess.CompletedProcess, n: int = 2) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("OK") >= n, result.stdout + result.stderr


# -- under mpiexec ------------------------------------------------------------------------------


@needs_mpiexec
def test_collectives_two_ranks_match_numpy():
    _assert_ok(run_ranks("collectives.py"))


@needs_mpiexec
@needs_torch  # the scripts compare with PyTorch
def test_ddp_two_ranks_equal_one_rank_and_torch():
    _assert_ok(run_ranks("ddp_equivalence.py"))


@needs_mpiexec
@needs_torch  # the scripts compare with PyTorch
def test_sync_batchnorm_two_ranks_match_torch_on_the_global_batch():
    _assert_ok(run_ranks("sync_batchnorm.py"))


@needs_mpiexec
def test_ddp_refuses_different_models():
    _assert_ok(run_ranks("mismatch.py"))


@needs_mpiexec
@needs_gpu
def test_gpu_tensors_through_host_copies():
    # CONVLAB_CUDA_EMULATOR passes on to the ranks, which then install the emulator too
    _assert_ok(run_ranks("gpu_collectives.py"))


def _nccl_importable() -> bool:
    try:
        from cupy.cuda import nccl  # noqa: F401
    except Exception:  # noqa: BLE001 - no CuPy or no NCCL build
        return False
    return True


def _gpus() -> int:
    """GPUs usable with NCCL (0 without CuPy, NCCL or a device; the emulator has no NCCL)."""
    if os.environ.get("CONVLAB_CUDA_EMULATOR") == "1":
        return 0
    try:
        import cupy
        from cupy.cuda import nccl  # noqa: F401

        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # noqa: BLE001 - no CuPy, no NCCL, no driver: all mean no NCCL here
        return 0


@needs_mpiexec
@pytest.mark.skipif(_gpus() == 0, reason="NCCL needs CuPy with NCCL and a GPU (not emulated)")
def test_nccl_gpu_collectives_and_ddp():
    ranks = min(2, _gpus())
    _assert_ok(run_ranks("nccl.py", n=ranks), n=ranks)


@needs_mpiexec
def test_a_failing_rank_ends_the_job_with_its_error():
    start = time.monotonic()
    result = run_ranks("fault.py", timeout=120)
    elapsed = time.monotonic() - start
    assert result.returncode != 0
    assert "rank one broke on purpose" in result.stderr
    assert "rank 1 of 2 failed" in result.stderr
    assert "did not end the job" not in result.stdout
    assert elapsed < 60, f"the job took {elapsed:.0f} s to end"


# -- without mpi4py -----------------------------------------------------------------------------

_HIDE_MPI4PY = "import mpi4py: No module named 'mpi4py'"


def _hidden_mpi4py(tmp_path: Path) -> str:
    """A folder whose ``mpi4py`` package fails to import, as an absent one does."""
    package = tmp_path / "mpi4py"
    package.mkdir()
    (package / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'mpi4py'\", name='mpi4py')\n"
    )
    return str(tmp_path)


_INIT = "import convlab.distributed as d; d.init_process_group('mpi')"


def test_missing_mpi4py_names_the_extra(tmp_path):
    path = _hidden_mpi4py(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", _INIT],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(PYTHONPATH=path + os.pathsep + _env()["PYTHONPATH"]),
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: convlab.distributed needs mpi4py")
    assert 'pip install "convlab[mpi]"' in last


@pytest.mark.skipif(_mpiexec() is None, reason="mpiexec is not installed")
def test_missing_mpi4py_under_mpiexec_names_the_extra(tmp_path):
    path = _hidden_mpi4py(tmp_path)
    result = run_ranks(
        ["-c", _INIT], timeout=120, PYTHONPATH=path + os.pathsep + _env()["PYTHONPATH"]
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("RuntimeError")]
    assert len(lines) == 2, result.stderr
    assert all('pip install "convlab[mpi]"' in line for line in lines)


def test_import_never_imports_mpi4py_or_cupy():
    code = (
        "import sys, convlab, convlab.distributed, convlab.nn.parallel; "
        "assert 'mpi4py' not in sys.modules, 'mpi4py imported'; "
        "assert 'cupy' not in sys.modules, 'cupy imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- one process, no mpiexec --------------------------------------------------------------------


def test_without_a_process_group_the_queries_raise_as_pytorch():
    assert not dist.is_initialized()
    assert dist.is_available() is _MPI4PY
    assert dist.is_mpi_available() is _MPI4PY
    assert dist.is_gloo_available() is False
    assert dist.is_nccl_available() is (_gpus() > 0 or _nccl_importable())
    for call in (dist.get_rank, dist.get_world_size, dist.barrier):
        with pytest.raises(ValueError, match="Default process group has not been initialized"):
            call()
    with pytest.raises(ValueError, match="init_process_group"):
        dist.all_reduce(convlab.ones(2))


@pytest.fixture
def world():
    dist.init_process_group("mpi")
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


@needs_mpi4py
def test_world_of_one(world):
    assert dist.get_rank() == 0 and dist.get_world_size() == 1
    x = convlab.tensor([1.5, -2.0, 3.0])
    for op in (dist.ReduceOp.SUM, dist.ReduceOp.AVG, dist.ReduceOp.MAX):
        dist.all_reduce(x, op=op)
        np.testing.assert_array_equal(x.numpy(), [1.5, -2.0, 3.0])
    out = [convlab.zeros(3)]
    dist.all_gather(out, x)
    np.testing.assert_array_equal(out[0].numpy(), [1.5, -2.0, 3.0])
    dist.broadcast(x, src=0)
    assert dist.new_group([0]) is not dist.GroupMember.NON_GROUP_MEMBER


@needs_mpi4py
def test_argument_errors(world):
    with pytest.raises(RuntimeError, match="twice"):
        dist.init_process_group("mpi")
    with pytest.raises(ValueError, match="op: expected one of"):
        dist.all_reduce(convlab.ones(2), op="sum")
    with pytest.raises(TypeError, match="tensor: expected a convlab Tensor"):
        dist.all_reduce(np.ones(2))
    with pytest.raises(ValueError, match="src: expected the global rank"):
        dist.broadcast(convlab.ones(2), src=3)
    with pytest.raises(ValueError, match="tensor_list: expected a list of 1"):
        dist.all_gather([convlab.ones(2)] * 2, convlab.ones(2))
    with pytest.raises(ValueError, match=r"tensor_list\[0\]: expected shape \(2,\)"):
        dist.all_gather([convlab.ones(3)], convlab.ones(2))
    with pytest.raises(ValueError, match="ranks: expected global ranks in"):
        dist.new_group([0, 1])
    with pytest.raises(TypeError, match="group: expected a ProcessGroup"):
        dist.all_reduce(convlab.ones(2), group="world")


@needs_mpi4py
def test_init_arguments_checked():
    with pytest.raises(ValueError, match="backend: expected 'mpi', 'nccl' or None, got 'gloo'"):
        dist.init_process_group("gloo")
    with pytest.raises(ValueError, match="rank: MPI gives this process rank 0, got 1"):
        dist.init_process_group("mpi", rank=1)
    assert not dist.is_initialized()
    with pytest.raises(ValueError, match="init_method"):
        dist.init_process_group("mpi", init_method="tcp://10.0.0.1:23456")


@needs_mpi4py
@needs_torch
def test_ddp_world_of_one_matches_torch(world):
    from convlab import nn

    convlab.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    reference = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    reference.load_state_dict(
        {k: torch.from_numpy(v.numpy()) for k, v in model.state_dict().items()}
    )
    ddp = nn.parallel.DistributedDataParallel(model)
    assert ddp.module is model
    assert list(ddp.state_dict()) == [f"module.{k}" for k in model.state_dict()]
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    out = ddp(convlab.tensor(x))
    expected = reference(torch.from_numpy(x))
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-6)
    with ddp.no_sync():
        ddp(convlab.tensor(x)).sum().backward()
    out.sum().backward()
    expected.sum().backward()
    expected = reference(torch.from_numpy(x))
    expected.sum().backward()
    for p, tp in zip(model.parameters(), reference.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-5, atol=1e-6)


@needs_mpi4py
def test_ddp_argument_errors(world):
    from convlab import nn

    with pytest.raises(TypeError, match="module: expected a convlab.nn.Module"):
        nn.parallel.DistributedDataParallel(lambda x: x)
    with pytest.raises(ValueError, match="dim: expected 0"):
        nn.parallel.DistributedDataParallel(nn.Linear(2, 2), dim=1)
    with pytest.raises(ValueError, match="bucket_cap_mb: expected a positive size"):
        nn.parallel.DistributedDataParallel(nn.Linear(2, 2), bucket_cap_mb=0)


def test_ddp_needs_a_process_group():
    from convlab import nn

    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        nn.parallel.DistributedDataParallel(nn.Linear(2, 2))


@needs_mpi4py
def test_ddp_buckets_reverse_order_one_collective_each(world, monkeypatch):
    from convlab import nn
    from convlab.distributed import _collectives

    model = nn.Sequential(nn.Linear(100, 50), nn.Linear(50, 10))  # 20 KB, 200 B, 2 KB, 40 B
    sizes = [p.numel() * 4 for p in model.parameters()]
    whole = nn.parallel.DistributedDataParallel(model)
    assert [[p.shape for p in b] for b in whole._buckets] == [[(10,), (10, 50), (50,), (50, 100)]]
    cap = (sizes[3] + sizes[2] + 1) / 2**20  # the last two parameters fit, the third does not
    split = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=cap)
    assert [[p.shape for p in b] for b in split._buckets] == [
        [(10,), (10, 50)],
        [(50,)],
        [(50, 100)],  # over the cap: a bucket of its own
    ]
    calls = []
    original = _collectives.reduce_arrays
    monkeypatch.setattr(
        _collectives, "reduce_arrays", lambda g, a, op: calls.append(a.size) or original(g, a, op)
    )
    x = convlab.randn(4, 100)
    split(x).sum().backward()
    assert calls == [10 + 500, 50, 5000]  # one all-reduce per bucket, nothing else
    calls.clear()
    with split.no_sync():
        split(x).sum().backward()
    assert calls == []


@needs_mpi4py
def test_a_dropped_wrapper_leaves_the_model_alone(world, monkeypatch):
    import gc

    from convlab import nn
    from convlab.distributed import _collectives

    model = nn.Linear(3, 2)
    ddp = nn.parallel.DistributedDataParallel(model)
    ddp(convlab.randn(2, 3)).sum().backward()
    del ddp
    gc.collect()
    calls = []
    monkeypatch.setattr(_collectives, "reduce_arrays", lambda *args: calls.append(args))
    model(convlab.randn(2, 3)).sum().backward()
    assert calls == []
