"""The GPU backend: CuPy arrays, with the heavy kernels our own CUDA (``kernels/*.cu``).

It exists on every machine, so code can ask ``get_backend("gpu").is_available()`` without
importing CuPy; CuPy is imported on the first real use. The argument checks, allocation and
empty-input answers live once in :class:`convlab._backend_base.BackendBase`; this module
supplies the GEMM, im2col / col2im, convolution and pooling hooks, and the class takes its
fused element-wise kernels from :mod:`~convlab._gpu.elementwise`, the binary layer from
:mod:`~convlab._gpu.binary` and the direct grouped convolutions from
:mod:`~convlab._gpu.grouped`. Convolutions follow the CPU backend's rule of a bounded
workspace: the column matrix is built for as many images at a time as fit in
:func:`convlab.get_workspace_limit`.
"""

from __future__ import annotations

import functools
import importlib.util
import warnings
from types import ModuleType
from typing import Any

import numpy as np

from convlab import _settings
from convlab._backend_base import BackendBase, ConvGeometry, PoolGeometry, public_kernel
from convlab._gpu import launch
from convlab._gpu.binary import GPUBinaryKernels
from convlab._gpu.elementwise import GPUElementwise
from convlab._gpu.grouped import GPUGroupedKernels
from convlab._gpu.rnn import GPURecurrent
from convlab.backend import BackendUnavailableError

__all__ = ["GPUBackend", "DeviceMemoryError"]

_THREADS = launch.THREADS
_GEMM = launch.CONSTANTS["gemm"]
_GEMM_TC = launch.CONSTANTS["gemm_tc"]
# float32 matmul precision -> the tensor-core input format it allows (gemm_tc.cu), on devices of
# compute capability >= _TENSOR_CORE_CAPABILITY; "highest" keeps the float32 FFMA kernels
_TENSOR_CORE_FORMATS = {"high": "tf32", "medium": "bf16"}
_TENSOR_CORE_CAPABILITY = 80
# a GEMM whose result has fewer tiles than half of launch.GEMM_BLOCKS_PER_SM blocks per
# multiprocessor (blocks to keep the device busy) is cut along its depth into slices of at
# least _GEMM_MIN_DEPTH, whose products (at most _GEMM_SPLIT_BYTES of them) are added afterwards
_GEMM_MIN_DEPTH = 256
_GEMM_SPLIT_BYTES = 64 << 20


class DeviceMemoryError(MemoryError):
    """The GPU ran out of memory (the message says how much was asked for)."""


def _matmul_precision() -> str:
    """The precision GPU matrix products compute in now: the float32 matmul precision, or
    "medium" inside ``convlab.autocast("cuda")`` (:func:`convlab._precision.compute_precision`)."""
    from convlab import _precision

    return _precision.compute_precision("cuda")


@functools.cache
def _compute_capability(cupy: Any, device: int) -> int:
    return int(cupy.cuda.Device(device).compute_capability)


def _grid(total: int) -> tuple:
    # grid-stride loops in the kernels: cap the grid at a few waves of the device, every
    # element is still visited
    cap = launch.device_blocks(launch.GRID_BLOCKS_PER_SM)
    return (max(1, min(-(-int(total) // _THREADS), cap)),)


class GPUBackend(GPUElementwise, GPUBinaryKernels, GPUGroupedKernels, GPURecurrent, BackendBase):
    """Kernels for CuPy arrays on an NVIDIA GPU (float32 and float64, NCHW / OIHW)."""

    name = "gpu"

    def __init__(self) -> None:
        self._cupy: ModuleType | None = None
        self._status: str | None = None  # None: not probed; "": available
        # why the tensor-core GEMM cannot be built here (None: not known to fail)
        self._tensor_core_error: str | None = None

    # -- availability ---------------------------------------------------------------------
    def _probe(self) -> str:
        if self._status is None:
            if importlib.util.find_spec("cupy") is None:
                self._status = (
                    "CuPy is not installed (pip install 'convlab[cuda12]' or 'convlab[cuda13]')"
                )
            else:
                try:
                    import cupy

                    count = cupy.cuda.runtime.getDeviceCount()
                    self._status = "" if count > 0 else "CuPy found no CUDA device"
                    self._cupy = cupy if count > 0 else None
                except Exception as err:  # no driver, no device, broken install
                    self._status = f"CuPy cannot reach a CUDA device ({type(err).__name__}: {err})"
        return self._status

    def is_available(self) -> bool:
        """True when CuPy is installed and sees a CUDA device (never raises)."""
        return self._probe() == ""

    def describe(self) -> str:
        """The device's name and memory, or why the backend is unavailable."""
        why = self._probe()
        if why:
            return f"not available ({why})"
        cupy = self._require()
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        free, total = cupy.cuda.runtime.memGetInfo()
        return (
            f"{name}, {total / 2**30:.0f} GiB ({free / 2**30:.0f} GiB free), "
            f"{self._tensor_core_text()}, CuPy {cupy.__version__}"
        )

    def _tensor_core_text(self) -> str:
        """The compute capability and what the precision switch can do on it."""
        capability = self._device_capability()
        text = f"compute capability {capability // 10}.{capability % 10}"
        if capability < _TENSOR_CORE_CAPABILITY:
            return text + " (no TF32 / bf16 tensor cores: matmul computes in float32)"
        if self._tensor_core_error is not None:
            return text + f" (tensor-core GEMM does not build: {self._tensor_core_error})"
        return text + " (TF32 / bf16 tensor cores at matmul precision 'high' / 'medium')"

    def _require(self) -> ModuleType:
        why = self._probe()
        if why or self._cupy is None:
            raise BackendUnavailableError(f"gpu backend: {why}")
        return self._cupy

    @property
    def xp(self) -> ModuleType:
        """The array module: ``cupy``."""
        return self._require()

    def _translate_error(self, err: Exception, method: str) -> Exception | None:
        cupy = self._cupy
        if cupy is not None and isinstance(err, cupy.cuda.memory.OutOfMemoryError):
            return DeviceMemoryError(
                f"gpu: out of memory in {method} ({err}); use a smaller batch or "
                f"convlab.set_workspace_limit() to cap the convolution workspace"
            )
        return None

    # -- transfers ------------------------------------------------------------------------
    @public_kernel
    def asarray(self, data: Any, dtype: Any = None) -> Any:
        """A CuPy array of ``data`` (host data is copied to the device)."""
        return self._require().asarray(data, dtype=dtype)

    def to_numpy(self, array: Any) -> np.ndarray:
        """A NumPy copy of a device array."""
        return self._require().asnumpy(array)

    def synchronize(self) -> None:
        """Wait for every queued kernel (for timing)."""
        self._require().cuda.get_current_stream().synchronize()

    def _launch(
        self,
        family: str,
        name: str,
        dtype: Any,
        total: int,
        args: tuple,
        block: int = _THREADS,
        grid: tuple | None = None,
    ) -> None:
        from convlab._gpu.modules import kernel

        kernel(family, name, dtype)(grid or _grid(total), (block,), args)

    # -- GEMM -----------------------------------------------------------------------------
    def _gemm(self, a: Any, b: Any, c: Any, accumulate: bool = False) -> None:
        """``c[i] (+)= a[i] @ b[i]`` over a leading batch axis (3-D operands; strides any)."""
        batch, m, k = a.shape
        n = b.shape[2]
        if m == 0 or n == 0 or batch == 0:
            return
        isz = a.itemsize
        if any(s % isz for x in (a, b) for s in x.strides):
            raise ValueError("matmul: operands must have element-aligned strides")
        sa, sb, sc = (tuple(s // isz for s in x.strides) for x in (a, b, c))
        slices = self._depth_slices(m, n, k, a.dtype) if batch == 1 else 1
        if slices > 1:
            self._gemm_by_depth(a, sa, b, sb, c, accumulate, slices)
            return
        for b0 in range(0, batch, launch.MAX_GRID_YZ):  # the batch is gridDim.z
            count = min(launch.MAX_GRID_YZ, batch - b0)
            self._gemm_launch(
                count,
                m,
                n,
                k,
                a[b0 : b0 + count],
                sa,
                b[b0 : b0 + count],
                sb,
                c[b0 : b0 + count],
                sc,
                accumulate,
            )

    @staticmethod
    def _gemm_kernel(m: int, dtype: Any, tensor_cores: str | None = None) -> tuple:
        """The GEMM entry point for a C of ``m`` rows, and the rows and columns of C one of
        its blocks computes (gemm.cu, with the tile sizes of launch.py): ``gemm_m64`` for C
        of at most GEMM_M64_F32_BM rows; the GEMM_F32_* or GEMM_M64_F32_* tiles in float32,
        GEMM_F64_* in float64. With ``tensor_cores`` ("tf32" or "bf16"): ``gemm_tf32`` or
        ``gemm_bf16`` of gemm_tc.cu with GEMM_TC_BM x GEMM_TC_BN tiles, or for C of at most
        GEMM_TC_M64_BM rows ``gemm_m64_tf32`` / ``gemm_m64_bf16`` with tiles that many rows
        tall."""
        if tensor_cores is not None:
            if m <= _GEMM_TC["GEMM_TC_M64_BM"]:
                name, rows = f"gemm_m64_{tensor_cores}", _GEMM_TC["GEMM_TC_M64_BM"]
            else:
                name, rows = f"gemm_{tensor_cores}", _GEMM_TC["GEMM_TC_BM"]
            return name, rows, _GEMM_TC["GEMM_TC_BN"]
        name = "gemm_m64" if m <= _GEMM["GEMM_M64_F32_BM"] else "gemm"
        tiles = (
            "GEMM_F64"
            if np.dtype(dtype) != np.float32
            else "GEMM_M64_F32"
            if name == "gemm_m64"
            else "GEMM_F32"
        )
        return name, _GEMM[f"{tiles}_BM"], _GEMM[f"{tiles}_BN"]

    def _device_capability(self) -> int:
        """The current device's compute capability as CuPy spells it (8.0 -> 80)."""
        return _compute_capability(self._require(), self._require().cuda.Device().id)

    def _tensor_core_format(self, dtype: Any) -> str | None:
        """The tensor-core input format a float32 GEMM computes in now: "tf32" when
        ``set_float32_matmul_precision("high")``, "bf16" when "medium", on a device of compute
        capability 8.0 or newer whose NVRTC builds gemm_tc.cu; None (the float32 kernels) for
        "highest", float64, older devices, or a failed build."""
        if np.dtype(dtype) != np.float32 or self._tensor_core_error is not None:
            return None
        fmt = _TENSOR_CORE_FORMATS.get(_matmul_precision())
        if fmt is None or self._device_capability() < _TENSOR_CORE_CAPABILITY:
            return None
        return fmt

    def _tensor_core_kernel(self, name: str) -> Any:
        """The gemm_tc.cu entry point ``name``, or None when NVRTC cannot build the family
        (no mma.h on its include path, say): the GEMMs then stay in float32, with one
        warning that says why."""
        from convlab._gpu.modules import kernel

        compiler = getattr(self._require().cuda, "compiler", None)
        failure = getattr(compiler, "CompileException", None)
        if failure is None:
            return kernel("gemm_tc", name, np.float32)
        try:
            return kernel("gemm_tc", name, np.float32)
        except failure as err:
            self._tensor_core_error = str(err).strip().splitlines()[0] if str(err) else "?"
            warnings.warn(
                "gpu: the tensor-core GEMM (gemm_tc.cu) does not compile here "
                f"({self._tensor_core_error}); matmul and convolutions compute in float32",
                RuntimeWarning,
                stacklevel=3,
            )
            return None

    def _gemm_launch(
        self,
        count: int,
        m: int,
        n: int,
        k: int,
        a: Any,
        sa: tuple,
        b: Any,
        sb: tuple,
        c: Any,
        sc: tuple,
        accumulate: bool,
    ) -> None:
        """One launch over ``count`` products; operands as base arrays and element strides.
        Float32 products go to the tensor cores when the matmul precision allows it
        (:meth:`_tensor_core_format`)."""
        from convlab._gpu.modules import kernel

        fmt = self._tensor_core_format(a.dtype)
        gemm = self._tensor_core_kernel(f"gemm_{fmt}") if fmt is not None else None
        if gemm is None:
            fmt = None
            name, tile_m, tile_n = self._gemm_kernel(m, a.dtype)
            gemm, threads = kernel("gemm", name, a.dtype), _GEMM["GEMM_THREADS"]
        else:
            _, tile_m, tile_n = self._gemm_kernel(m, a.dtype, fmt)
            threads = _GEMM_TC["GEMM_TC_THREADS"]
        gemm(
            (-(-n // tile_n), -(-m // tile_m), count),
            (threads,),
            (
                np.int32(m),
                np.int32(n),
                np.int32(k),
                a,
                np.int64(sa[0]),
                np.int64(sa[1]),
                np.int64(sa[2]),
                b,
                np.int64(sb[0]),
                np.int64(sb[1]),
                np.int64(sb[2]),
                c,
                np.int64(sc[0]),
                np.int64(sc[1]),
                np.int32(bool(accumulate)),
            ),
        )

    def _depth_slices(self, m: int, n: int, k: int, dtype: Any) -> int:
        """Into how many slices to cut the depth of one product whose C has too few tiles to
        fill the device (a weight gradient: C is the small weight, the depth every pixel of
        the batch; a fully connected layer's forward), 1 for none."""
        _, tile_m, tile_n = self._gemm_kernel(m, dtype, self._tensor_core_format(dtype))
        tiles = -(-m // tile_m) * -(-n // tile_n)
        blocks = launch.device_blocks(launch.GEMM_BLOCKS_PER_SM)
        if tiles >= blocks // 2 or k < 2 * _GEMM_MIN_DEPTH:
            return 1
        room = min(_GEMM_SPLIT_BYTES, _settings.get_workspace_limit()) // (
            m * n * np.dtype(dtype).itemsize
        )
        return max(1, min(-(-blocks // tiles), k // _GEMM_MIN_DEPTH, room))

    def _gemm_by_depth(
        self, a: Any, sa: tuple, b: Any, sb: tuple, c: Any, accumulate: bool, slices: int
    ) -> None:
        """``c[0] (+)= a[0] @ b[0]`` as ``slices`` products over stretches of the depth, run
        side by side as one batch and added in order afterwards (deterministic)."""
        cp = self._require()
        _, m, k = a.shape
        n = b.shape[2]
        depth = -(-k // slices)
        full = k // depth
        rest = k - full * depth
        partial = cp.empty((full + (rest > 0), m, n), c.dtype)
        # product s reads a[0, :, s*depth:(s+1)*depth] and b[0, s*depth:(s+1)*depth, :]: the
        # batch strides step along the depth
        self._gemm_launch(
            full,
            m,
            n,
            depth,
            a,
            (depth * sa[2], sa[1], sa[2]),
            b,
            (depth * sb[1], sb[1], sb[2]),
            partial,
            (m * n, n, 1),
            False,
        )
        if rest:
            self._gemm_launch(
                1,
                m,
                n,
                rest,
                a[:, :, full * depth :],
                sa,
                b[:, full * depth :, :],
                sb,
                partial[full:],
                (m * n, n, 1),
                False,
            )
        total = partial.sum(axis=0)
        if accumulate:
            c[0] += total
        else:
            c[0][...] = total

    def _gemm_into(self, a: Any, b: Any, c: Any) -> None:
        self._gemm(a, b, c)

    # -- im2col / col2im ------------------------------------------------------------------
    @staticmethod
    def _geom_args(n: int, c: int, hw: tuple, geom: ConvGeometry) -> tuple:
        return tuple(
            np.int32(v)
            for v in (
                n,
                c,
                *hw,
                *geom.kernel,
                *geom.stride,
                *geom.padding,
                *geom.dilation,
                *geom.out_hw,
            )
        )

    def _im2col_launch(self, x: Any, cols: Any, args: tuple, sn: int, sk: int) -> None:
        """im2col of ``x`` into ``cols`` whose image and row strides are ``sn`` and ``sk``."""
        # args = (N, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW)
        n, c, kh, kw, oh, ow = (int(args[i]) for i in (0, 1, 4, 5, 12, 13))
        self._launch(
            "im2col",
            "im2col",
            x.dtype,
            n * c * kh * kw * oh * ow,
            (x, cols, *args, np.int64(sn), np.int64(sk)),
        )

    def _col2im_launch(self, cols: Any, x: Any, args: tuple, sn: int, sk: int) -> None:
        self._launch(
            "im2col", "col2im", x.dtype, x.size, (cols, x, *args, np.int64(sn), np.int64(sk))
        )

    def _im2col_into(self, x: Any, cols: Any, geom: ConvGeometry) -> None:
        args = self._geom_args(x.shape[0], x.shape[1], x.shape[2:], geom)
        self._im2col_launch(x, cols, args, cols.shape[1] * cols.shape[2], cols.shape[2])

    def _col2im_into(self, cols: Any, x: Any, geom: ConvGeometry) -> None:
        # a gather per output element: no atomics, deterministic
        args = self._geom_args(x.shape[0], x.shape[1], x.shape[2:], geom)
        self._col2im_launch(cols, x, args, cols.shape[1] * cols.shape[2], cols.shape[2])

    # -- conv2d ---------------------------------------------------------------------------
    @staticmethod
    def _chunk(n: int, per_image: int, itemsize: int) -> int:
        return max(1, min(n, _settings.get_workspace_limit() // max(per_image * itemsize, 1)))

    def _conv2d_forward_into(
        self, x: Any, weight: Any, bias: Any | None, y: Any, geom: ConvGeometry
    ) -> None:
        # im2col of a chunk of images, then one batched GEMM
        cp = self.xp
        n, o = x.shape[0], weight.shape[0]
        k, p = x.shape[1] * geom.kernel[0] * geom.kernel[1], geom.out_hw[0] * geom.out_hw[1]
        w2 = weight.reshape(o, k)
        y3 = y.reshape(n, o, p)
        step = self._chunk(n, k * p, x.itemsize)
        cols = cp.empty((step, k, p), x.dtype)
        for n0 in range(0, n, step):
            m = min(step, n - n0)
            args = self._geom_args(m, x.shape[1], x.shape[2:], geom)
            self._im2col_launch(x[n0 : n0 + m], cols[:m], args, k * p, p)
            # Y[i] = W @ cols[i]: the weight with batch stride 0
            self._gemm(cp.broadcast_to(w2, (m, o, k)), cols[:m], y3[n0 : n0 + m])
        if bias is not None:
            y += bias[:, None, None]

    def _conv2d_backward_data_into(
        self, grad_output: Any, weight: Any, dx: Any, geom: ConvGeometry, algorithm: str
    ) -> None:
        # W^T @ dY per chunk of images, then col2im (a gather); every algorithm hint gets
        # this one way of computing it
        cp = self.xp
        n, o = dx.shape[0], weight.shape[0]
        k, p = dx.shape[1] * geom.kernel[0] * geom.kernel[1], geom.out_hw[0] * geom.out_hw[1]
        dy = grad_output.reshape(n, o, p)
        w_t = weight.reshape(o, k).T  # (K, O) view
        step = self._chunk(n, k * p, dx.itemsize)
        cols = cp.empty((step, k, p), dx.dtype)
        for n0 in range(0, n, step):
            m = min(step, n - n0)
            self._gemm(cp.broadcast_to(w_t, (m, k, o)), dy[n0 : n0 + m], cols[:m])
            args = self._geom_args(m, dx.shape[1], dx.shape[2:], geom)
            self._col2im_launch(cols[:m], dx[n0 : n0 + m], args, k * p, p)

    def _conv2d_backward_weight_into(
        self, grad_output: Any, x: Any, dw: Any, db: Any | None, geom: ConvGeometry
    ) -> None:
        # one GEMM per chunk over all its pixels, accumulated
        cp = self.xp
        n, o = x.shape[0], dw.shape[0]
        k, p = x.shape[1] * geom.kernel[0] * geom.kernel[1], geom.out_hw[0] * geom.out_hw[1]
        if db is not None:
            db[...] = grad_output.sum(axis=(0, 2, 3))
        dw2 = dw.reshape(o, k)
        dy = grad_output.reshape(n, o, p)
        step = self._chunk(n, k * p + o * p, x.itemsize)
        cols = cp.empty((k, step * p), x.dtype)
        for n0 in range(0, n, step):
            m = min(step, n - n0)
            # columns of the chunk's images side by side: (K, m*P), and dY as (O, m*P)
            args = self._geom_args(m, x.shape[1], x.shape[2:], geom)
            part = cols[:, : m * p]
            # row stride of the slice: the full buffer's step * P
            self._im2col_launch(x[n0 : n0 + m], part, args, p, cols.shape[1])
            dy_rows = cp.ascontiguousarray(dy[n0 : n0 + m].transpose(1, 0, 2)).reshape(o, -1)
            self._gemm(dy_rows[None], part.T[None], dw2[None], accumulate=n0 > 0)

    # -- pooling --------------------------------------------------------------------------
    @staticmethod
    def _pool_args(shape: tuple, geom: PoolGeometry) -> tuple:
        return tuple(
            np.int32(v)
            for v in (
                shape[0] * shape[1],
                *shape[2:],
                *geom.out_hw,
                *geom.kernel,
                *geom.stride,
                *geom.padding,
                *geom.dilation,
            )
        )

    def _max_pool2d_into(self, x: Any, y: Any, argmax: Any, geom: PoolGeometry) -> None:
        cp = self.xp
        # the kernel writes int32 offsets; the result narrows them as the CPU's does
        index = argmax if argmax.dtype == cp.int32 else cp.empty(argmax.shape, cp.int32)
        self._launch(
            "pool", "max_pool2d", x.dtype, y.size, (x, y, index, *self._pool_args(x.shape, geom))
        )
        if index is not argmax:
            argmax[...] = index

    def _max_pool2d_backward_into(
        self, grad_output: Any, argmax: Any, dx: Any, geom: PoolGeometry
    ) -> None:
        # each input element gathers the gradients whose argmax it is
        self._launch(
            "pool",
            "max_pool2d_backward",
            dx.dtype,
            dx.size,
            (
                grad_output,
                self.xp.ascontiguousarray(argmax, dtype=self.xp.int32),
                dx,
                *self._pool_args(dx.shape, geom),
            ),
        )

    def _avg_pool2d_into(self, x: Any, y: Any, geom: PoolGeometry) -> None:
        self._launch(
            "pool",
            "avg_pool2d",
            x.dtype,
            y.size,
            (
                x,
                y,
                *self._pool_args(x.shape, geom),
                np.int32(geom.count_include_pad),
                np.int32(geom.divisor),
            ),
        )

    def _avg_pool2d_backward_into(self, grad_output: Any, dx: Any, geom: PoolGeometry) -> None:
        self._launch(
            "pool",
            "avg_pool2d_backward",
            dx.dtype,
            dx.size,
            (
                grad_output,
                dx,
                *self._pool_args(dx.shape, geom),
                np.int32(geom.count_include_pad),
                np.int32(geom.divisor),
            ),
        )
