"""The Backend registry and protocol, the GPU placeholder, and import hygiene."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import convlab
from convlab.backend import Backend, BackendUnavailableError, available_backends, get_backend


def test_registry_returns_singletons_and_accepts_cuda_alias():
    assert get_backend("cpu") is get_backend("CPU") is get_backend()
    assert get_backend("cuda") is get_backend("gpu")
    assert convlab.get_backend is get_backend


@pytest.mark.parametrize("name", ["tpu", "", None, 3])
def test_unknown_backend_is_a_clear_error(name):
    with pytest.raises(ValueError, match=r"backend: expected one of 'cpu', 'gpu'"):
        get_backend(name)


def test_cpu_backend_implements_the_protocol():
    cpu = get_backend("cpu")
    assert isinstance(cpu, Backend)
    assert cpu.name == "cpu" and cpu.xp is np and cpu.is_available()
    assert "cpu" in available_backends()
    data = cpu.asarray([[1, 2]], dtype=np.float32)
    assert isinstance(data, np.ndarray) and data.dtype == np.float32
    assert cpu.to_numpy(data) is data
    cpu.synchronize()


def test_gpu_backend_exists_and_reports_itself_unavailable():
    gpu = get_backend("gpu")
    members = [m for m in dir(Backend) if not m.startswith("_")]
    missing = [m for m in members if not hasattr(type(gpu), m)]
    assert not missing, f"GPU backend lacks {missing}"
    if gpu.is_available():
        pytest.skip("a working GPU backend is tested by the shared parity suite")
    assert "gpu" not in available_backends()
    assert "not available" in gpu.describe()
    with pytest.raises(BackendUnavailableError, match="gpu backend"):
        gpu.matmul(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(BackendUnavailableError):
        _ = gpu.xp


def test_import_is_silent_and_never_imports_cupy():
    code = (
        "import sys, convlab; convlab.get_backend('gpu').is_available(); "
        "assert 'cupy' not in sys.modules, 'cupy imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


def test_isa_selection_cpu(rng):
    cpu = get_backend("cpu")
    assert cpu.isa in cpu.supported_isas()
    assert cpu.supported_isas()[0] == "generic"
    with pytest.raises(ValueError, match="isa: expected one of"):
        cpu.set_isa("neon9")
    before = cpu.isa
    try:
        cpu.set_isa("generic")
        assert cpu.isa == "generic"
        cpu.set_isa("auto")
        assert cpu.isa == cpu.supported_isas()[-1]
    finally:
        cpu.set_isa(before)


def test_isa_from_environment_cpu():
    code = "import convlab; print(convlab.get_backend('cpu').isa)"
    for requested, expected in (("generic", "generic"), ("bogus", None)):
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={**os.environ, "CONVLAB_ISA": requested},
        )
        assert result.returncode == 0, result.stderr
        if expected:
            assert result.stdout.strip() == expected
        else:  # an unusable request falls back to the best path instead of failing import
            assert result.stdout.strip() == get_backend("cpu").supported_isas()[-1]
