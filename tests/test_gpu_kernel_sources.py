"""The CUDA kernel sources compile and export every entry point the GPU backend calls.

Runs without a GPU (CI compiles with ``nvcc -ptx``); the kernels' results are checked by the
backend parity suite (``pytest -k gpu``) on a machine with a device.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

import convlab
from convlab._gpu import modules

NVCC = shutil.which("nvcc")


def test_every_family_ships_as_package_data():
    for family in modules.FAMILIES:
        text = modules.source(family)
        for name in modules.entry_points(family):
            # entry points are stamped by macros: the base name must appear in the source
            assert name.rsplit("_", 1)[0] in text, name
    with pytest.raises(ValueError, match="family: expected one of"):
        modules.source("fft")


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed (CI has it)")
@pytest.mark.parametrize("family", sorted(modules.FAMILIES))
def test_source_compiles_and_exports_its_entry_points(family, tmp_path):
    source = tmp_path / f"{family}.cu"
    source.write_text(modules.source(family))
    ptx = tmp_path / f"{family}.ptx"
    result = subprocess.run(
        [NVCC, "-ptx", *modules.options(family), "-o", str(ptx), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"nvcc failed on {family}.cu:\n{result.stderr}"
    exported = set(re.findall(r"\.entry\s+(\w+)\(", ptx.read_text()))
    missing = set(modules.entry_points(family)) - exported
    assert not missing, f"{family}.cu does not export {sorted(missing)}"


def test_backend_reports_unavailable_instead_of_raising():
    gpu = convlab.get_backend("gpu")
    if gpu.is_available():
        assert "GiB" in gpu.describe()
        return
    assert gpu.describe().startswith("not available (")
    with pytest.raises(convlab.BackendUnavailableError, match="gpu backend"):
        _ = gpu.xp
    with pytest.raises(convlab.BackendUnavailableError):
        convlab.zeros(2, device="gpu")


@pytest.mark.parametrize("family", sorted(modules.FAMILIES))
def test_source_needs_no_host_headers(family):
    """CuPy compiles with NVRTC, which has the CUDA built-ins but not the C/C++ headers nvcc
    includes implicitly: names that only those headers define would compile here and fail
    there."""
    text = re.sub(r"//[^\n]*|/\*.*?\*/", "", modules.source(family), flags=re.S)
    for name in (
        r"#include",
        r"\bINFINITY\b",
        r"\bNAN\b",
        r"std::",
        r"\bprintf\b",
        r"(?<!static_)\bassert\(",
        r"\bFLT_MAX\b",
        r"\bDBL_MAX\b",
        r"\bsize_t\b",
    ):
        assert not re.search(name, text), f"{family}.cu uses {name!r}"
