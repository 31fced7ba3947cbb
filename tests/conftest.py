"""Shared fixtures: the backend under test, thread counts, micro-kernel ISAs, random data."""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import convlab

settings.register_profile(
    "convlab", max_examples=int(os.environ.get("CONVLAB_HYPOTHESIS_EXAMPLES", "25")),
    deadline=None, derandomize=False, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large])
settings.load_profile("convlab")

if os.environ.get("CONVLAB_CUDA_EMULATOR") == "1":
    # the GPU backend on the CPU: our CUDA kernels compiled as host C++ (cuda_emulator.py)
    import cuda_emulator
    cuda_emulator.install()

_GPU = convlab.get_backend("gpu").is_available()

try:  # PyTorch (CPU) is an optional test oracle, never a dependency
    import torch
except ImportError:
    torch = None

#: Marks tests that cross-check against PyTorch; skipped (not failed) without it.
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
#: Marks GPU-only tests; skipped without a usable GPU backend (or the CUDA emulator).
needs_gpu = pytest.mark.skipif(not _GPU, reason="no usable GPU backend here")


@pytest.fixture(params=[
    pytest.param("cpu", id="cpu", marks=pytest.mark.cpu),
    pytest.param("gpu", id="gpu",
                 marks=[pytest.mark.gpu, needs_gpu]),
])
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


def _isa_params():
    cpu = convlab.get_backend("cpu")
    return [pytest.param(name, id=name,
                         marks=pytest.mark.skipif(name not in cpu.supported_isas(),
                                                  reason=f"this CPU cannot run {name}"))
            for name in ("generic", "avx2", "avx512")]


@pytest.fixture(params=_isa_params())
def isa(request):
    """Each micro-kernel instruction set this CPU supports."""
    cpu = convlab.get_backend("cpu")
    before = cpu.isa
    cpu.set_isa(request.param)
    yield request.param
    cpu.set_isa(before)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def to_numpy(backend, array):
    return None if array is None else np.asarray(backend.to_numpy(array))
