"""A stand-in for CuPy that runs our CUDA kernels on the CPU, for machines without a GPU.

``install()`` puts a ``cupy`` (and ``cupyx``) module into ``sys.modules`` before convlab probes
for a device. The GPU backend then runs unchanged: its arrays are :class:`DeviceArray` (a NumPy
array type that stands for device memory), NumPy does CuPy's array work, and every kernel of
``src/convlab/_gpu/kernels/*.cu`` is compiled by the host C++ compiler against
``cuda_emulator.h``, with the ``-D`` options (launch constants) the backend gives
``RawModule``, and launched with the grid, block and arguments the backend gives it. The
emulated device reports ``MULTIPROCESSORS`` multiprocessors, by which the backend sizes grids.

It checks what a GPU would not report clearly:

- every argument against the kernel's C parameter type (CuPy passes a wrong scalar type or a
  wrong array dtype through and the kernel reads garbage);
- host arrays passed where device memory is expected (CuPy raises for them);
- writes outside an array's memory (guard bytes around every array argument);
- launch dimensions beyond the device's limits or the kernel's ``__launch_bounds__``;
- ``__syncthreads()`` not reached by every thread of a block.

Warp-collective calls (the ``nvcuda::wmma`` fragment API of the tensor-core GEMM, and
``__syncwarp``) are checked for their contract: every lane of a warp makes the same calls with
the same pointers; ``cuda_emulator.h`` says how fragments are modelled.

It cannot show races between threads, warp-level timing or speed: those need a GPU. Enable
it for a test run with ``CONVLAB_CUDA_EMULATOR=1`` (``tests/conftest.py`` installs it);
``CONVLAB_CUDA_EMULATOR_THREADS`` caps the cores it spreads blocks over (default: all).
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.machinery
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import types
from pathlib import Path
from typing import Any

import numpy as np

HEADER = Path(__file__).with_name("cuda_emulator.h")
#: Device limits checked at launch (those of every GPU since compute capability 3.0).
MAX_BLOCK = (1024, 1024, 64)
MAX_THREADS_PER_BLOCK = 1024
MAX_GRID = (2**31 - 1, 65535, 65535)
#: The multiprocessor count the emulated device reports (``Device().attributes``), that of a
#: large data-centre GPU: the backend sizes its device-filling grids by it.
MULTIPROCESSORS = 128
#: The compute capability the emulated device reports (``Device().compute_capability``): 8.0,
#: which has the TF32 and bf16 tensor-core fragments that ``cuda_emulator.h`` emulates.
COMPUTE_CAPABILITY = "80"
#: CUDA headers whose names ``cuda_emulator.h`` defines (mma.h: bf16 and the wmma fragments)
EMULATED_HEADERS = ("mma.h",)
GUARD_BYTES = 4096
_GUARD = 0xA7
# CuPy allocates in 256-byte units; the kernels' vector paths look at pointer alignment
_ALIGN = 256
_SCALAR_TYPES = {
    "b1": (np.bool_,),
    "i8": (np.int8,),
    "u8": (np.uint8,),
    "i16": (np.int16,),
    "u16": (np.uint16,),
    "i32": (np.int32,),
    "u32": (np.uint32,),
    "i64": (np.int64,),
    "u64": (np.uint64,),
    "f32": (np.float32,),
    "f64": (np.float64,),
}
_CTYPES = {
    "b1": ctypes.c_bool,
    "i8": ctypes.c_int8,
    "u8": ctypes.c_uint8,
    "i16": ctypes.c_int16,
    "u16": ctypes.c_uint16,
    "i32": ctypes.c_int32,
    "u32": ctypes.c_uint32,
    "i64": ctypes.c_int64,
    "u64": ctypes.c_uint64,
    "f32": ctypes.c_float,
    "f64": ctypes.c_double,
}
# the element types a pointer parameter accepts (unsigned char also takes NumPy bools)
_POINTEE = {
    "u8": ("uint8", "bool"),
    "i8": ("int8",),
    "i16": ("int16",),
    "u16": ("uint16",),
    "i32": ("int32",),
    "u32": ("uint32",),
    "i64": ("int64",),
    "u64": ("uint64",),
    "f32": ("float32",),
    "f64": ("float64",),
    "b1": ("bool",),
}
# Host build of the kernels, blocks spread over the cores with OpenMP. No -ffast-math: float
# results must round as C++ says. The fibers' _longjmp between stacks needs glibc's fortified
# same-stack check off.
_FLAGS = (
    "-std=c++17",
    "-O2",
    "-march=native",
    "-fopenmp",
    "-fPIC",
    "-shared",
    "-fno-strict-aliasing",
    "-U_FORTIFY_SOURCE",
    "-D_FORTIFY_SOURCE=0",
    "-Wno-unknown-pragmas",
)
# OS threads that run blocks side by side (whatever convlab.set_num_threads says)
_CORES = int(os.environ.get("CONVLAB_CUDA_EMULATOR_THREADS", "0")) or len(os.sched_getaffinity(0))
_lock = threading.Lock()
_launches = 0


class EmulatorError(RuntimeError):
    """A kernel launch that would be wrong on a GPU."""


class DeviceArray(np.ndarray):
    """An array in (emulated) device memory: NumPy underneath, kept apart from host arrays."""

    def get(self) -> np.ndarray:
        """A host copy (``cupy.ndarray.get``)."""
        return np.array(self, copy=True).view(np.ndarray)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        # CuPy refuses to mix host and device arrays in one operation
        for value in inputs:
            if type(value) is np.ndarray and value.ndim > 0:
                raise TypeError(
                    f"cupy emulator: {ufunc.__name__} got a host numpy array next to a device array"
                )
        plain = tuple(v.view(np.ndarray) if isinstance(v, DeviceArray) else v for v in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(
                o.view(np.ndarray) if isinstance(o, DeviceArray) else o for o in kwargs["out"]
            )
        result = getattr(ufunc, method)(*plain, **kwargs)
        return _to_device(result)


# it stands for cupy.ndarray: error messages that name the array type say so
DeviceArray.__module__, DeviceArray.__name__, DeviceArray.__qualname__ = (
    "cupy",
    "ndarray",
    "ndarray",
)


def _to_device(value: Any) -> Any:
    if type(value) is np.ndarray:
        return value.view(DeviceArray)
    if isinstance(value, tuple):
        return tuple(_to_device(v) for v in value)
    if isinstance(value, list):
        return [_to_device(v) for v in value]
    return value


def _device_function(function):
    def wrapper(*args, **kwargs):
        return _to_device(function(*args, **kwargs))

    wrapper.__name__ = getattr(function, "__name__", "function")
    return wrapper


# -- kernels ------------------------------------------------------------------------------
def _compiler() -> str:
    for name in (os.environ.get("CXX"), sysconfig.get_config_var("CXX"), "c++", "g++"):
        if name and shutil.which(name.split()[0]):
            return name.split()[0]
    raise EmulatorError("cuda emulator: no C++ compiler found (set CXX)")


def _defines(options: tuple[str, ...]) -> list[str]:
    """The ``-DNAME=value`` options of a ``RawModule`` (the kernels' launch constants), for the
    host compiler; the C++ standard is the emulator's own, so are the CUDA headers it emulates
    (``--pre-include`` of one of ``EMULATED_HEADERS``), and any other option is refused."""
    defines = []
    for option in options:
        if re.fullmatch(r"-D[A-Za-z_]\w*(=\S*)?", option):
            defines.append(option)
        elif option.startswith("--pre-include=") and option.split("=", 1)[1] in EMULATED_HEADERS:
            continue  # cuda_emulator.h has its own version of the header's names
        elif option not in ("--std=c++17", "-std=c++17"):
            raise EmulatorError(f"cuda emulator: compiler option {option!r} is not emulated")
    return defines


def _entry_points(code: str, workdir: Path, cxx: str, defines: list[str]) -> dict[str, int]:
    """``extern "C"`` kernels of a source -> their ``__launch_bounds__`` (0: none)."""
    source = workdir / "scan.cu"
    source.write_text(code)
    done = subprocess.run(
        [
            cxx,
            "-std=c++17",
            "-E",
            "-P",
            "-x",
            "c++",
            "-DCONVLAB_EMU_SCAN",
            *defines,
            "-include",
            str(HEADER),
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise EmulatorError(
            f"cuda emulator: the kernels do not preprocess as host C++:\n{done.stderr[-4000:]}"
        )
    text = done.stdout
    found = re.findall(
        r'extern\s+"C"\s+CONVLAB_EMU_GLOBAL\s+void\s+'
        r"(?:CONVLAB_EMU_BOUNDS\s*\(\s*(\d+)\s*(?:,\s*\d+\s*)?\)\s+)?(\w+)\s*\(",
        text,
    )
    return {name: int(bound or 0) for bound, name in found}


def _build(code: str, build: Path, cxx: str, defines: list[str], cache: Path) -> None:
    """Compile ``code`` in the folder ``build`` into ``cache``'s kernels.so and bounds.txt."""
    bounds = _entry_points(code, build, cxx, defines)
    (build / "kernels.cu").write_text(code)
    wrapper = [f'#include "{HEADER}"', '#include "kernels.cu"']
    wrapper += [f"CONVLAB_EMU_EXPORT({name})" for name in bounds]
    (build / "wrapper.cpp").write_text("\n".join(wrapper) + "\n")
    done = subprocess.run(
        [cxx, *_FLAGS, *defines, "-o", str(build / "kernels.so"), str(build / "wrapper.cpp")],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise EmulatorError(
            f"cuda emulator: the kernels do not compile as host C++:\n{done.stderr[-4000:]}"
        )
    (build / "bounds.txt").write_text("\n".join(f"{n} {b}" for n, b in bounds.items()))
    os.replace(build / "bounds.txt", cache / "bounds.txt")
    os.replace(build / "kernels.so", cache / "kernels.so")  # last: marks the cache done


class RawModule:
    """``cupy.RawModule(code=..., options=...)`` compiled for the host; ``get_function`` gives
    a kernel. The ``-D`` options reach the host compiler as they reach NVRTC."""

    def __init__(self, code: str, options: tuple[str, ...] = (), **_: Any) -> None:
        cxx = _compiler()
        defines = _defines(tuple(options))
        key = hashlib.sha256(
            "\0".join([code, HEADER.read_text(), cxx, *_FLAGS, *defines]).encode()
        ).hexdigest()[:20]
        cache = Path(tempfile.gettempdir()) / f"convlab-cuda-emulator-{os.getuid()}" / key
        library = cache / "kernels.so"
        # fibers for any barrier: __syncthreads, and the warp-collective calls (wmma,
        # __syncwarp), where the lanes of a warp wait for each other
        self._fibers = any(word in code for word in ("__syncthreads", "__syncwarp", "wmma"))
        with _lock:
            if not library.exists():
                cache.mkdir(parents=True, exist_ok=True)
                build = Path(tempfile.mkdtemp(dir=cache))
                try:
                    _build(code, build, cxx, defines, cache)
                finally:
                    shutil.rmtree(build, ignore_errors=True)
        self._bounds = dict(
            (line.split()[0], int(line.split()[1]))
            for line in (cache / "bounds.txt").read_text().splitlines()
        )
        self._library = ctypes.CDLL(str(library))

    def get_function(self, name: str) -> RawKernel:
        """The kernel ``name`` (an ``extern "C"`` entry point of the source)."""
        if name not in self._bounds:
            raise AttributeError(
                f"cuda emulator: no kernel {name!r} in the module (it has {sorted(self._bounds)})"
            )
        return RawKernel(self._library, name, self._bounds[name], self._fibers)


class RawKernel:
    """A compiled kernel: ``kernel(grid, block, args)`` as CuPy's ``RawKernel``."""

    def __init__(self, library: Any, name: str, bound: int, fibers: bool) -> None:
        self.name, self._bound, self._fibers = name, bound, fibers
        self._launch = getattr(library, f"convlab_emu_launch_{name}")
        self._launch.restype = ctypes.c_int
        self._launch.argtypes = [
            ctypes.POINTER(ctypes.c_uint),
            ctypes.POINTER(ctypes.c_uint),
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        signature = getattr(library, f"convlab_emu_signature_{name}")
        signature.restype = ctypes.c_char_p
        self.params = signature().decode().rstrip(",").split(",")
        if "?" in "".join(self.params):
            raise EmulatorError(
                f"cuda emulator: {name} has a parameter type it cannot check ({self.params})"
            )

    def __call__(self, grid: tuple, block: tuple, args: tuple, *, shared_mem: int = 0) -> None:
        global _launches
        grid3, block3 = _dims("grid", grid, MAX_GRID), _dims("block", block, MAX_BLOCK)
        threads = block3[0] * block3[1] * block3[2]
        limit = self._bound or MAX_THREADS_PER_BLOCK
        if threads > limit:
            raise EmulatorError(
                f"{self.name}: block of {threads} threads exceeds the limit "
                f"{limit} (too many resources requested for launch)"
            )
        if len(args) != len(self.params):
            raise EmulatorError(
                f"{self.name}: expected {len(self.params)} arguments "
                f"({', '.join(self.params)}), got {len(args)}"
            )
        values = []
        arrays = []
        for i, (value, code) in enumerate(zip(args, self.params)):
            if code.startswith("*"):
                arrays.append((i, _check_array(self.name, i, value, code[1:])))
                values.append(None)
            else:
                values.append(_scalar(self.name, i, value, code))
        regions = _Regions([a for _, a in arrays])
        for i, array in arrays:
            values[i] = ctypes.c_void_p(regions.pointer(array))
        argv = (ctypes.c_void_p * max(1, len(values)))(
            *[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values]
        )
        error = ctypes.create_string_buffer(512)
        with _lock:
            _launches += 1
            seed = _launches
            status = self._launch(
                (ctypes.c_uint * 3)(*grid3),
                (ctypes.c_uint * 3)(*block3),
                argv,
                int(self._fibers),
                seed,
                _CORES,
                error,
                len(error),
            )
        if status:
            raise EmulatorError(f"{self.name}: {error.value.decode()}")
        regions.finish(self.name)


def _dims(what: str, value: Any, limits: tuple) -> tuple:
    if isinstance(value, (int, np.integer)):
        value = (value,)
    if not isinstance(value, tuple) or not 1 <= len(value) <= 3:
        raise EmulatorError(f"{what}: expected a tuple of 1 to 3 ints, got {value!r}")
    dims = tuple(int(v) for v in value) + (1,) * (3 - len(value))
    for axis, (size, top) in enumerate(zip(dims, limits)):
        if not 1 <= size <= top:
            raise EmulatorError(
                f"{what} dimension {'xyz'[axis]} = {size} is outside "
                f"1..{top} (invalid configuration argument)"
            )
    return dims


def _check_array(kernel: str, index: int, value: Any, pointee: str) -> np.ndarray:
    if not isinstance(value, DeviceArray):
        raise EmulatorError(
            f"{kernel}: argument {index} must be a device array ({pointee} *), "
            f"got {type(value).__name__}"
        )
    if value.dtype.name not in _POINTEE[pointee]:
        raise EmulatorError(
            f"{kernel}: argument {index} points to {pointee}, got an array of {value.dtype}"
        )
    return value


def _scalar(kernel: str, index: int, value: Any, code: str) -> Any:
    # CuPy's rules: NumPy scalars pass as their own type, Python int as long long, float as
    # double, bool as bool; anything else reaches the kernel as the wrong bytes
    python = {"i64": int, "f64": float, "b1": bool}.get(code)
    if isinstance(value, _SCALAR_TYPES[code]) or (python is not None and type(value) is python):
        return _CTYPES[code](value.item() if isinstance(value, np.generic) else value)
    raise EmulatorError(
        f"{kernel}: argument {index} is a {code} parameter, got "
        f"{type(value).__name__} {value!r} (CuPy would pass other bytes)"
    )


class _Regions:
    """Guarded copies of the arrays a launch touches, one per span of overlapping memory.

    The kernel sees each array at the same offset inside its copy, with the original
    alignment modulo 256 bytes, and guard bytes before and after; ``finish`` checks the guards
    and copies the memory back."""

    def __init__(self, arrays: list[np.ndarray]) -> None:
        spans = []
        for a in arrays:
            lo, hi = (
                np.lib.array_utils.byte_bounds(a)
                if hasattr(np.lib, "array_utils")
                else np.byte_bounds(a)
            )
            spans.append((lo, max(hi, lo + 1)))
        self._regions: list[list] = []  # [lo, hi, buffer, offset]
        for lo, hi in sorted(spans):
            if self._regions and lo < self._regions[-1][1]:
                self._regions[-1][1] = max(self._regions[-1][1], hi)
            else:
                self._regions.append([lo, hi, None, 0])
        for region in self._regions:
            lo, hi = region[0], region[1]
            size = hi - lo
            buffer = np.full(size + 2 * GUARD_BYTES + _ALIGN, _GUARD, dtype=np.uint8)
            start = buffer.ctypes.data + GUARD_BYTES
            offset = GUARD_BYTES + (lo - start) % _ALIGN
            buffer[offset : offset + size] = np.ctypeslib.as_array(
                (ctypes.c_uint8 * size).from_address(lo)
            )
            region[2], region[3] = buffer, offset

    def pointer(self, array: np.ndarray) -> int:
        address = array.ctypes.data
        for lo, hi, buffer, offset in self._regions:
            if lo <= address < hi:
                return buffer.ctypes.data + offset + (address - lo)
        raise AssertionError("array outside every region")

    def finish(self, kernel: str) -> None:
        for lo, hi, buffer, offset in self._regions:
            size = hi - lo
            before, after = buffer[:offset], buffer[offset + size :]
            if (before != _GUARD).any() or (after != _GUARD).any():
                first = np.flatnonzero(np.concatenate([before, after]) != _GUARD)[0]
                where = (
                    f"{offset - first} bytes before its start"
                    if first < offset
                    else f"{first - offset} bytes past its end"
                )
                raise EmulatorError(
                    f"{kernel}: wrote outside an argument's memory (a stray "
                    f"byte {where}; the span is {size} bytes)"
                )
            np.ctypeslib.as_array((ctypes.c_uint8 * size).from_address(lo))[:] = buffer[
                offset : offset + size
            ]


# -- the cupy module ----------------------------------------------------------------------
def _random_module() -> Any:
    state = {"rng": np.random.default_rng(0)}

    def seed(value: int = 0) -> None:
        state["rng"] = np.random.default_rng(int(value))

    def random(size: Any = None, dtype: Any = float) -> Any:
        return _to_device(np.asarray(state["rng"].random(size, dtype=np.dtype(dtype))))

    def standard_normal(size: Any = None, dtype: Any = float) -> Any:
        return _to_device(np.asarray(state["rng"].standard_normal(size, dtype=np.dtype(dtype))))

    return types.SimpleNamespace(seed=seed, random=random, standard_normal=standard_normal)


class _OutOfMemoryError(MemoryError):
    pass


class _Stream:
    def synchronize(self) -> None:
        pass


class _Device:
    """``cupy.cuda.Device``: its id, and the attributes the backend sizes grids by."""

    id = 0

    def __init__(self, device: int = 0) -> None:
        self.id = device

    @property
    def compute_capability(self) -> str:
        """``"80"`` (:data:`COMPUTE_CAPABILITY`), as CuPy spells 8.0."""
        return COMPUTE_CAPABILITY

    @property
    def attributes(self) -> dict[str, int]:
        return {
            "MultiProcessorCount": MULTIPROCESSORS,
            "MaxThreadsPerBlock": MAX_THREADS_PER_BLOCK,
            "MaxBlockDimX": MAX_BLOCK[0],
            "MaxBlockDimY": MAX_BLOCK[1],
            "MaxBlockDimZ": MAX_BLOCK[2],
            "MaxGridDimX": MAX_GRID[0],
            "MaxGridDimY": MAX_GRID[1],
            "MaxGridDimZ": MAX_GRID[2],
        }


def _runtime() -> Any:
    def memory() -> tuple:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        return free, total

    return types.SimpleNamespace(
        getDeviceCount=lambda: 1,
        memGetInfo=memory,
        getDeviceProperties=lambda i: {"name": b"CUDA emulator (CPU)"},
    )


class _CupyModule(types.ModuleType):
    """``cupy``: NumPy functions returning device arrays, and the pieces convlab uses."""

    def __getattr__(self, name: str) -> Any:
        value = getattr(np, name)
        if callable(value) and not isinstance(value, (type, np.ufunc)):
            value = _device_function(value)
        return value


def _make_cupy() -> types.ModuleType:
    cupy = _CupyModule("cupy", "CUDA emulator standing in for CuPy (tests only)")
    cupy.__spec__ = importlib.machinery.ModuleSpec("cupy", None)
    cupy.__version__ = "emulator"
    cupy.ndarray = DeviceArray
    cupy.RawModule = RawModule
    cupy.RawKernel = RawKernel

    def asarray(data: Any, dtype: Any = None, order: Any = None) -> DeviceArray:
        if isinstance(data, DeviceArray) and (dtype is None or data.dtype == np.dtype(dtype)):
            return data
        return np.array(data, dtype=dtype, order=order or "K", copy=True).view(DeviceArray)

    def asnumpy(array: Any) -> np.ndarray:
        return np.array(array, copy=True).view(np.ndarray)

    def get_array_module(*arrays: Any) -> Any:
        return cupy if any(isinstance(a, DeviceArray) for a in arrays) else np

    cupy.asarray = asarray
    cupy.array = lambda data, dtype=None, copy=True, **kw: np.array(
        data, dtype=dtype, copy=True, **kw
    ).view(DeviceArray)
    cupy.asnumpy = asnumpy
    cupy.get_array_module = get_array_module
    cupy.random = _random_module()
    cupy.cuda = types.SimpleNamespace(
        runtime=_runtime(),
        Device=_Device,
        get_current_stream=lambda: _Stream(),
        memory=types.SimpleNamespace(OutOfMemoryError=_OutOfMemoryError),
    )
    return cupy


def _make_cupyx() -> types.ModuleType:
    cupyx = types.ModuleType("cupyx")
    cupyx.__spec__ = importlib.machinery.ModuleSpec("cupyx", None)

    def scatter_add(a: Any, index: Any, b: Any) -> None:
        np.add.at(a.view(np.ndarray), index, b)

    def empty_pinned(shape: Any, dtype: Any = float) -> np.ndarray:
        # page-locked host memory is host memory: a NumPy array, as CuPy's is
        return np.empty(shape, dtype)

    cupyx.scatter_add = scatter_add
    cupyx.empty_pinned = empty_pinned
    return cupyx


def install() -> None:
    """Make ``import cupy`` give the emulator (before convlab's GPU backend is first used)."""
    import convlab

    gpu = convlab.get_backend("gpu")
    if getattr(gpu, "_status", None) is not None:
        raise RuntimeError("cuda emulator: install it before the GPU backend is probed")
    sys.modules["cupy"] = _make_cupy()
    sys.modules["cupyx"] = _make_cupyx()
