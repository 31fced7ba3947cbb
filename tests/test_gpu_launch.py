"""The GPU kernels' launch constants are written once (``convlab/_gpu/launch.py``) and reach
every compiler as ``-D`` options; the grids meant to fill the device follow its multiprocessor
count. Runs without a GPU: the options are read where they are built, the sources where they
are shipped."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

import cuda_emulator as emu
from conftest import needs_gpu
from convlab._gpu import launch, modules

FAMILIES = sorted(modules.FAMILIES)
CXX = shutil.which("c++") or shutil.which("g++")


def _code(family):
    """The family's source without comments."""
    return re.sub(r"//[^\n]*|/\*.*?\*/", "", modules.source(family), flags=re.S)


def _guard(code):
    """The constants named in the source's ``#if !defined(A) || ... #error`` guard."""
    found = re.search(r"#if\s+((?:!defined\(\w+\)|\|\||\s|\\\n)+)\n#error", code)
    return found and re.findall(r"!defined\((\w+)\)", found.group(1)), found


def test_every_family_has_its_constants():
    assert sorted(launch.CONSTANTS) == FAMILIES
    for constants in launch.CONSTANTS.values():
        for name, value in constants.items():
            assert re.fullmatch(r"[A-Z][A-Z0-9_]*", name) and type(value) is int and value > 0


@pytest.mark.parametrize("family", FAMILIES)
def test_source_uses_exactly_the_python_constants(family):
    """The source names every constant of its family in its guard, uses each, and defines no
    number itself: no ``#define BIN_CHANNELS 16`` beside launch.py's entry."""
    code = _code(family)
    constants = launch.CONSTANTS[family]
    names, guard = _guard(code)
    if not constants:
        assert guard is None, f"{family}.cu guards constants launch.py does not define"
    else:
        assert guard is not None, f"{family}.cu has no #if !defined(...) #error guard"
        assert sorted(names) == sorted(constants), f"{family}.cu's guard"
        body = code[guard.end() :]
        for name in constants:
            assert re.search(rf"\b{name}\b", body), f"{family}.cu never uses {name}"
    for name in (n for other in launch.CONSTANTS.values() for n in other):
        assert not re.search(rf"#\s*define\s+{name}\b", code), f"{family}.cu defines {name}"
    # object-like macros whose value is a number: launch constants written in the source
    literal = re.findall(r"^\s*#\s*define\s+(\w+)[ \t]+\(?[-+]?\d", code, flags=re.M)
    assert not literal, f"{family}.cu defines numbers itself: {literal} (put them in launch.py)"
    for bounds in re.findall(r"__launch_bounds__\s*\(([^)]*)\)", code):
        assert not re.search(r"\b\d+\b", bounds), f"{family}.cu: __launch_bounds__({bounds})"


@pytest.mark.parametrize("family", FAMILIES)
def test_modules_compile_with_the_constants_as_defines(family, monkeypatch):
    """What modules.py hands cupy.RawModule: the source and one -DNAME=value a constant."""
    expected = [f"-D{name}={value}" for name, value in launch.CONSTANTS[family].items()]
    options = modules.options(family)
    assert "--std=c++17" in options
    assert [o for o in options if o.startswith("-D")] == expected
    built = []

    def raw_module(code, options=()):
        built.append((code, tuple(options)))
        return object()

    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(RawModule=raw_module))
    modules._module.__wrapped__(family)  # past the cache of compiled modules
    assert built == [(modules.source(family), options)]
    with pytest.raises(ValueError, match="family: expected one of"):
        modules.options("fft")


@pytest.mark.parametrize("family", FAMILIES)
def test_nvcc_options_helper_prints_the_same_options(family):
    """CI's nvcc loop takes a family's options from ``python -m convlab._gpu.launch``."""
    done = subprocess.run(
        [sys.executable, "-m", "convlab._gpu.launch", "--nvcc-options", family],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == list(modules.options(family))


def test_nvcc_options_helper_refuses_an_unknown_family():
    done = subprocess.run(
        [sys.executable, "-m", "convlab._gpu.launch", "--nvcc-options", "fft"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "invalid choice" in done.stderr


@pytest.mark.skipif(CXX is None, reason="no C++ compiler")
@pytest.mark.parametrize("family", [f for f in FAMILIES if launch.CONSTANTS[f]])
def test_source_refuses_to_compile_without_its_constants(family):
    """A compiler not given the -D options stops at the guard (no silent default); the
    emulator passes them on as NVRTC does, and refuses options it does not emulate."""
    with pytest.raises(emu.EmulatorError, match="needs its launch constants"):
        emu.RawModule(modules.source(family))
    with pytest.raises(emu.EmulatorError, match="not emulated"):
        emu.RawModule(modules.source(family), options=("-G",) + modules.options(family))
    assert emu._defines(modules.options(family)) == [
        o for o in modules.options(family) if o.startswith("-D")
    ]


class _FakeDevice:
    asked = []
    current = 0
    counts = {0: 10, 1: 132}

    def __init__(self, device=None):
        self.id = _FakeDevice.current if device is None else device

    @property
    def attributes(self):
        _FakeDevice.asked.append(self.id)
        return {"MultiProcessorCount": _FakeDevice.counts[self.id]}


@pytest.fixture
def fake_device(monkeypatch):
    """A cupy whose devices have 10 and 132 multiprocessors; launch's cache emptied around."""
    _FakeDevice.asked, _FakeDevice.current = [], 0
    monkeypatch.setitem(
        sys.modules, "cupy", types.SimpleNamespace(cuda=types.SimpleNamespace(Device=_FakeDevice))
    )
    launch._multiprocessors.cache_clear()
    yield _FakeDevice
    launch._multiprocessors.cache_clear()


def test_multiprocessors_are_asked_once_per_device(fake_device):
    assert [launch.multiprocessors() for _ in range(3)] == [10, 10, 10]
    assert launch.device_blocks(4) == 40
    fake_device.current = 1
    assert launch.multiprocessors() == 132 and launch.device_blocks(4) == 528
    assert launch.multiprocessors(0) == 10
    assert fake_device.asked == [0, 1]


def test_grids_follow_the_multiprocessor_count(fake_device, monkeypatch):
    from convlab import _settings
    from convlab._gpu.backend import GPUBackend, _grid

    monkeypatch.setattr(_settings, "_workspace_limit", 64 << 20)
    gpu = GPUBackend()
    tile, k = launch.CONSTANTS["gemm"]["GEMM_F32_BM"], 1 << 22
    # device 0 (10 multiprocessors): grid-stride kernels get one block per THREADS elements,
    # up to a few waves; a GEMM whose C has fewer tiles than half the blocks the device wants
    # is cut along its deep depth so that the slices' tiles make up those blocks
    assert _grid(0) == (1,) and _grid(launch.THREADS + 1) == (2,)
    assert _grid(10**9) == (10 * launch.GRID_BLOCKS_PER_SM,)
    wanted = 10 * launch.GEMM_BLOCKS_PER_SM
    assert gpu._depth_slices(4 * tile, 4 * tile, k, np.float32) == -(-wanted // 16)
    assert gpu._depth_slices(5 * tile, 5 * tile, k, np.float32) == 1  # 25 >= wanted / 2
    # device 1 (132): larger grids, and the 25-tile product is now cut
    fake_device.current = 1
    assert _grid(10**9) == (132 * launch.GRID_BLOCKS_PER_SM,)
    wanted = 132 * launch.GEMM_BLOCKS_PER_SM
    assert gpu._depth_slices(5 * tile, 5 * tile, k, np.float32) == -(-wanted // 25)


def test_gemm_tiles_come_from_the_constants():
    from convlab._gpu.backend import GPUBackend

    gemm = launch.CONSTANTS["gemm"]
    m64 = gemm["GEMM_M64_F32_BM"]
    assert GPUBackend._gemm_kernel(m64, np.float32) == (
        "gemm_m64",
        gemm["GEMM_M64_F32_BM"],
        gemm["GEMM_M64_F32_BN"],
    )
    assert GPUBackend._gemm_kernel(m64 + 1, np.float32) == (
        "gemm",
        gemm["GEMM_F32_BM"],
        gemm["GEMM_F32_BN"],
    )
    for m in (m64, m64 + 1):
        assert GPUBackend._gemm_kernel(m, np.float64)[1:] == (
            gemm["GEMM_F64_BM"],
            gemm["GEMM_F64_BN"],
        )
    # one register tile per thread, as gemm.cu's static_assert checks
    for tiles in ("GEMM_F32", "GEMM_M64_F32", "GEMM_F64"):
        per_thread = (gemm[f"{tiles}_BM"] // gemm[f"{tiles}_TM"]) * (
            gemm[f"{tiles}_BN"] // gemm[f"{tiles}_TN"]
        )
        assert per_thread == gemm["GEMM_THREADS"], tiles


def test_emulated_device_reports_its_multiprocessors():
    assert emu._Device().attributes["MultiProcessorCount"] == emu.MULTIPROCESSORS > 0


@needs_gpu
def test_gpu_backend_sizes_grids_by_its_device():
    import cupy

    assert launch.multiprocessors() == int(cupy.cuda.Device().attributes["MultiProcessorCount"]) > 0
