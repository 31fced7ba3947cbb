"""Shared fixtures: the backend under test, thread counts, micro-kernel ISAs, random data."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import convlab

settings.register_profile(
    "convlab",
    max_examples=int(os.environ.get("CONVLAB_HYPOTHESIS_EXAMPLES", "25")),
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
settings.load_profile("convlab")

if os.environ.get("CONVLAB_CUDA_EMULATOR") == "1":
    # the GPU backend on the CPU: our CUDA kernels compiled as host C++ (cuda_emulator.py)
    import cuda_emulator

    cuda_emulator.install()

if os.environ.get("CONVLAB_TEST_BACKEND") == "reference":
    # every "cpu" tensor on a backend of NumPy references written to the required protocol
    # only (reference_backend.py): the contract is complete if the op, module and chart-CNN
    # tests pass on it unchanged
    import reference_backend
    from convlab import backend as _registry

    _registry._INSTANCES["cpu"] = reference_backend.ReferenceBackend()

_GPU = convlab.get_backend("gpu").is_available()

try:  # PyTorch (CPU) is an optional test oracle, never a dependency
    import torch
except ImportError:
    torch = None

#: Marks tests that cross-check against PyTorch; skipped (not failed) without it.
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
#: Marks GPU-only tests; skipped without a usable GPU backend (or the CUDA emulator).
needs_gpu = pytest.mark.skipif(not _GPU, reason="no usable GPU backend here")


def _backend_params():
    return [pytest.param("cpu", id="cpu"), pytest.param("gpu", id="gpu", marks=needs_gpu)]


def _isa_params(prefix=""):
    from convlab._cpu import _gemm  # the compiled kernels' own switch, on any test backend

    return [
        pytest.param(
            name,
            id=prefix + name,
            marks=pytest.mark.skipif(
                name not in _gemm.supported_isas(), reason=f"this CPU cannot run {name}"
            ),
        )
        for name in ("generic", "avx2", "avx512")
    ]


def pytest_generate_tests(metafunc):
    """Parametrize ``backend`` and ``isa``: each backend in turn, each micro-kernel ISA in turn,
    and for a test that takes both, every ISA on the CPU and the GPU once (an ISA means
    nothing there). Tests are selected by these ids and by names: ``-k cpu`` / ``-k gpu``."""
    names = metafunc.fixturenames
    if "backend" in names and "isa" in names:
        pairs = [
            pytest.param("cpu", p.values[0], id=p.id, marks=p.marks) for p in _isa_params("cpu-")
        ]
        pairs.append(pytest.param("gpu", None, id="gpu", marks=needs_gpu))
        metafunc.parametrize(("backend", "isa"), pairs, indirect=True)
    elif "backend" in names:
        metafunc.parametrize("backend", _backend_params(), indirect=True)
    elif "isa" in names:
        metafunc.parametrize("isa", _isa_params(), indirect=True)


@pytest.fixture
def backend(request):
    """Each backend in turn; kernel tests run unchanged on every one."""
    return convlab.get_backend(request.param)


@pytest.fixture(params=[1, 2], ids=["t1", "t2"])
def threads(request):
    """Run the test with 1 and with 2 kernel threads."""
    before = convlab.get_num_threads()
    convlab.set_num_threads(request.param)
    yield request.param
    convlab.set_num_threads(before)


@pytest.fixture
def isa(request):
    """Each micro-kernel instruction set this CPU supports (None beside the GPU backend)."""
    if request.param is None:
        yield None
        return
    from convlab._cpu import _gemm

    before = _gemm.get_isa()
    _gemm.set_isa(request.param)
    yield request.param
    _gemm.set_isa(before)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def to_numpy(backend, array):
    return None if array is None else np.asarray(backend.to_numpy(array))
