"""Tensor-core compute on the GPU: TF32 ("high") and bf16 ("medium") GEMMs and convolutions.

Two layers of checks:

* the CUDA emulator's ``nvcuda::wmma`` and bf16 / TF32 rounding (``cuda_emulator.h``) against
  NumPy: rounding by exact comparisons with the neighbouring representable values, fragments
  by float32 loops; and its checks of the warp-collective contract. These need only a C++
  compiler.
* the GPU backend's GEMM and the three convolution passes under each precision (``-k gpu``:
  on the emulator here, on the device on a GPU machine), against float64 references with
  error bounds derived from the formats: inputs rounded with unit roundoff u (TF32 2^-11,
  bf16 2^-8), products exact, float32 sums (unit roundoff 2^-24). Each result is also held to
  the much tighter bound of float32 accumulation alone around a reference computed from the
  inputs rounded the same way in NumPy, so a wrong rounding mode, a missing rounding or the
  float32 kernels taken by mistake all fail.
"""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

import convlab
import cuda_emulator as emu
from conftest import needs_gpu, needs_torch, torch
from convlab._gpu import launch


def _old_gpu() -> bool:
    gpu = convlab.get_backend("gpu")
    return gpu.is_available() and gpu._device_capability() < 80


#: the tensor-core results need a device of compute capability >= 8.0 (the emulator's is 8.0);
#: on an older GPU the precision switch keeps float32, which the fallback test checks
needs_tensor_cores = pytest.mark.skipif(_old_gpu(), reason="GPU below compute capability 8.0")

needs_cxx = pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None, reason="no C++ compiler"
)

#: unit roundoff of the product inputs of each precision, and of the float32 sums
UNIT = {"high": 2.0**-11, "medium": 2.0**-8}
U32 = 2.0**-24


# -- NumPy references of the roundings ----------------------------------------------------
def _neighbours(x: np.ndarray, drop: int) -> tuple[np.ndarray, np.ndarray]:
    """The float32 values with the low ``drop`` mantissa bits zero just below and above |x|
    (as float64, signs restored), for finite x."""
    bits = np.abs(x.astype(np.float32)).view(np.uint32).astype(np.uint64)
    low = bits & ~np.uint64((1 << drop) - 1)
    high = low + np.uint64(1 << drop)
    as_f64 = lambda b: b.astype(np.uint32).view(np.float32).astype(np.float64)  # noqa: E731
    # a step past the largest finite exponent is 2^128 (the infinity bit pattern): kept finite
    # for the distance comparison, :func:`_overflow` makes it infinite
    up = np.where(high >= 0x7F800000, 2.0**128, as_f64(np.minimum(high, 0x7F7FFFFF)))
    return np.copysign(as_f64(low), x), np.copysign(up, x)


def _overflow(v: np.ndarray) -> np.ndarray:
    return np.where(np.abs(v) >= 2.0**128, np.copysign(np.inf, v), v)


def round_bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> nearest bf16 (ties to the even mantissa), as float32; inf / NaN kept."""
    x = np.asarray(x, np.float32)
    out = x.astype(np.float64).copy()
    finite = np.isfinite(x)
    lo, hi = _neighbours(x[finite], 16)
    v = x[finite].astype(np.float64)
    dlo, dhi = np.abs(v - lo), np.abs(hi - v)
    lo_even = ((np.abs(lo).astype(np.float32).view(np.uint32) >> 16) & 1) == 0
    out[finite] = _overflow(
        np.where(dlo < dhi, lo, np.where(dhi < dlo, hi, np.where(lo_even, lo, hi)))
    )
    return out.astype(np.float32)


def round_tf32(x: np.ndarray) -> np.ndarray:
    """float32 -> nearest TF32 (10-bit mantissa, ties away from zero), as float32."""
    x = np.asarray(x, np.float32)
    out = x.astype(np.float64).copy()
    finite = np.isfinite(x)
    lo, hi = _neighbours(x[finite], 13)
    v = x[finite].astype(np.float64)
    out[finite] = _overflow(np.where(np.abs(v - lo) < np.abs(hi - v), lo, hi))
    return out.astype(np.float32)


ROUND = {"high": round_tf32, "medium": round_bf16}


def _edge_values() -> np.ndarray:
    rng = np.random.default_rng(0)
    ties = [1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8, 1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11]
    specials = [0.0, -0.0, np.inf, -np.inf, 3.4e38, -3.4e38, 1e-40, -1e-40, 1.17549435e-38]
    values = np.concatenate(
        [
            np.array(ties + [-t for t in ties] + specials, np.float32),
            rng.standard_normal(2000).astype(np.float32) * 10.0 ** rng.integers(-30, 30, 2000),
            # every pattern of the low 16 bits around 1.5
            (np.float32(1.5).view(np.uint32) + np.arange(0, 1 << 16, 7, dtype=np.uint32)).view(
                np.float32
            ),
        ]
    )
    return values.astype(np.float32)


# -- the emulated wmma against NumPy ------------------------------------------------------
FRAGMENT_SOURCE = r"""
extern "C" __global__ void round_tf32(const float *x, float *y, int n)
{
    for (int i = threadIdx.x; i < n; i += blockDim.x) y[i] = nvcuda::wmma::__float_to_tf32(x[i]);
}

extern "C" __global__ void round_bf16(const float *x, float *y, int n)
{
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        y[i] = __bfloat162float(__float2bfloat16(x[i]));
}

// D = A @ B + C for one 16 x 16 x 8 TF32 tile; A, B in either layout; convert: round the
// loaded elements with __float_to_tf32 (else the tensor cores drop their low bits)
template <typename LA, typename LB>
__device__ void tf32_tile(const float *a, const float *b, const float *c, float *d, int convert)
{
    using namespace nvcuda;
    __shared__ __align__(32) float sa[16 * 8], sb[8 * 16], sc[16 * 16];
    for (int i = threadIdx.x; i < 128; i += blockDim.x) { sa[i] = a[i]; sb[i] = b[i]; }
    for (int i = threadIdx.x; i < 256; i += blockDim.x) sc[i] = c[i];
    __syncthreads();
    wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, LA> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, LB> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 8, float> fc;
    wmma::load_matrix_sync(fa, sa, std::is_same<LA, wmma::row_major>::value ? 8 : 16);
    wmma::load_matrix_sync(fb, sb, std::is_same<LB, wmma::row_major>::value ? 16 : 8);
    wmma::load_matrix_sync(fc, sc, 16, wmma::mem_row_major);
    if (convert) {
        for (int i = 0; i < fa.num_elements; i++) fa.x[i] = wmma::__float_to_tf32(fa.x[i]);
        for (int i = 0; i < fb.num_elements; i++) fb.x[i] = wmma::__float_to_tf32(fb.x[i]);
    }
    wmma::mma_sync(fc, fa, fb, fc);
    wmma::store_matrix_sync(sc, fc, 16, wmma::mem_col_major);
    __syncthreads();
    for (int i = threadIdx.x; i < 256; i += blockDim.x) d[i] = sc[i];
}

extern "C" __global__ void tf32_rr(const float *a, const float *b, const float *c, float *d,
                                   int convert)
{
    tf32_tile<nvcuda::wmma::row_major, nvcuda::wmma::row_major>(a, b, c, d, convert);
}

extern "C" __global__ void tf32_cc(const float *a, const float *b, const float *c, float *d,
                                   int convert)
{
    tf32_tile<nvcuda::wmma::col_major, nvcuda::wmma::col_major>(a, b, c, d, convert);
}

// D = A @ B for one 16 x 16 x 16 bf16 tile, A row-major and B column-major (as stored)
extern "C" __global__ void bf16_rc(const float *a, const float *b, float *d)
{
    using namespace nvcuda;
    __shared__ __align__(32) __nv_bfloat16 sa[256], sb[256];
    __shared__ __align__(32) float sd[256];
    for (int i = threadIdx.x; i < 256; i += blockDim.x) {
        sa[i] = __float2bfloat16(a[i]);
        sb[i] = __float2bfloat16(b[i]);
    }
    __syncthreads();
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> fd;
    wmma::fill_fragment(fd, 0.0f);
    wmma::load_matrix_sync(fa, sa, 16);
    wmma::load_matrix_sync(fb, sb, 16);
    wmma::mma_sync(fd, fa, fb, fd);
    wmma::store_matrix_sync(sd, fd, 16, wmma::mem_row_major);
    __syncthreads();
    for (int i = threadIdx.x; i < 256; i += blockDim.x) d[i] = sd[i];
}

// contract breaches: mode 1 lanes pass different pointers, 2 only half a warp calls,
// 3 a misaligned pointer, 4 an ldm that is not a multiple of 16 bytes
extern "C" __global__ void breach(float *d, int mode)
{
    using namespace nvcuda;
    __shared__ __align__(32) float s[2 * 16 * 24];
    wmma::fragment<wmma::accumulator, 16, 16, 8, float> f;
    wmma::fill_fragment(f, 1.0f);
    const int lane = threadIdx.x % 32;
    float *p = s;
    unsigned ldm = 16;
    if (mode == 1 && lane == 7) p = s + 8;
    if (mode == 3) p = s + 1;
    if (mode == 4) ldm = 18;
    if (mode != 2 || lane < 16) wmma::store_matrix_sync(p, f, ldm, wmma::mem_row_major);
    __syncthreads();
    if (threadIdx.x == 0) d[0] = s[0];
}
"""


@pytest.fixture(scope="module")
def fragments():
    return emu.RawModule(FRAGMENT_SOURCE, options=launch.options("gemm_tc"))


def _dev(array):
    return np.ascontiguousarray(array).view(emu.DeviceArray)


@needs_cxx
@pytest.mark.parametrize("fmt", ["tf32", "bf16"])
def test_emulated_rounding_matches_the_format(fragments, fmt):
    x = _edge_values()
    y = _dev(np.full_like(x, np.nan))
    fragments.get_function(f"round_{fmt}")((1,), (64,), (_dev(x), y, np.int32(x.size)))
    want = round_tf32(x) if fmt == "tf32" else round_bf16(x)
    np.testing.assert_array_equal(np.asarray(y).view(np.uint32), want.view(np.uint32))
    # NaN stays NaN
    nan = _dev(np.array([np.nan, -np.nan], np.float32))
    out = _dev(np.zeros(2, np.float32))
    fragments.get_function(f"round_{fmt}")((1,), (32,), (nan, out, np.int32(2)))
    assert np.isnan(np.asarray(out)).all()


def _float32_sum(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """c + a @ b with every product added to the float32 sum one at a time along k."""
    s = c.astype(np.float32).copy()
    for k in range(a.shape[1]):
        s = (s + (a[:, k : k + 1].astype(np.float32) * b[k : k + 1, :])).astype(np.float32)
    return s


@needs_cxx
@pytest.mark.parametrize("layout", ["rr", "cc"])
@pytest.mark.parametrize("convert", [1, 0])
def test_emulated_tf32_fragment_product(fragments, layout, convert):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((16, 8)).astype(np.float32)
    b = rng.standard_normal((8, 16)).astype(np.float32)
    c = rng.standard_normal((16, 16)).astype(np.float32)
    # stored as the layouts say: column-major A is A^T in row-major memory
    sa, sb = (a, b) if layout == "rr" else (a.T, b.T)
    d = _dev(np.zeros(256, np.float32))
    fragments.get_function(f"tf32_{layout}")(
        (1,), (32,), (_dev(sa), _dev(sb), _dev(c), d, np.int32(convert))
    )
    if convert:
        ra, rb = round_tf32(a), round_tf32(b)
    else:  # the tensor cores read the upper 19 bits
        ra, rb = ((x.view(np.uint32) & np.uint32(0xFFFFE000)).view(np.float32) for x in (a, b))
    want = _float32_sum(c, ra, rb)
    # stored column-major
    np.testing.assert_array_equal(np.asarray(d).reshape(16, 16).T, want)


@needs_cxx
def test_emulated_bf16_fragment_product(fragments):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((16, 16)).astype(np.float32)
    b = rng.standard_normal((16, 16)).astype(np.float32)
    d = _dev(np.zeros(256, np.float32))
    # B column-major: its memory is B^T row-major
    fragments.get_function("bf16_rc")((1,), (64,), (_dev(a), _dev(b.T), d))
    want = _float32_sum(np.zeros((16, 16), np.float32), round_bf16(a), round_bf16(b))
    np.testing.assert_array_equal(np.asarray(d).reshape(16, 16), want)


@needs_cxx
@pytest.mark.parametrize(
    "mode,match",
    [
        (1, "different warp-collective calls"),
        (2, "not reached by every lane of its warp"),
        (3, "32-byte"),
        (4, "multiple of 16 bytes"),
    ],
)
def test_emulator_refuses_breaches_of_the_warp_contract(fragments, mode, match):
    d = _dev(np.zeros(1, np.float32))
    with pytest.raises(emu.EmulatorError, match=match):
        fragments.get_function("breach")((1,), (64,), (d, np.int32(mode)))
    fragments.get_function("breach")((1,), (64,), (d, np.int32(0)))  # the contract kept
    assert np.asarray(d)[0] == 1.0


# -- the backend's GEMM and convolutions --------------------------------------------------
@pytest.fixture
def precision():
    """Set the float32 matmul precision for a test, restored afterwards."""
    before = convlab.get_float32_matmul_precision()
    yield convlab.set_float32_matmul_precision
    convlab.set_float32_matmul_precision(before)


def _gamma(n: int) -> float:
    return n * U32 / (1 - n * U32)


def _check(got, exact, rounded, magnitude, mode: str, terms: int) -> None:
    """``got`` against the float64 ``exact`` result within the format's bound, and against
    ``rounded`` (the same computation in float64 on inputs rounded in NumPy) within the
    float32 accumulation's bound; ``magnitude`` is the computation on absolute values."""
    got = np.asarray(got, np.float64)
    u = UNIT[mode]
    sums = _gamma(terms) * (1 + u) ** 2 * magnitude
    bound = (2 * u + u * u) * magnitude + sums
    assert np.all(np.abs(got - exact) <= bound), np.max(np.abs(got - exact) / bound)
    assert np.all(np.abs(got - rounded) <= sums + 1e-30), np.max(np.abs(got - rounded) / sums)


def _operands(rng, *shapes):
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


@needs_gpu
@needs_tensor_cores
@pytest.mark.parametrize("mode", ["high", "medium"])
@pytest.mark.parametrize(
    "m,n,k,trans_a,trans_b",
    [
        (37, 53, 70, False, False),  # edges everywhere
        (130, 129, 33, True, False),  # two block rows and columns, A read transposed
        (64, 200, 48, False, True),  # B read transposed
        (1, 17, 300, False, False),  # one row, many slices
        (20, 30, 1030, False, False),  # deep: cut into depth slices summed afterwards
    ],
)
def test_gpu_tensor_core_matmul_within_format_bounds(precision, mode, m, n, k, trans_a, trans_b):
    gpu = convlab.get_backend("gpu")
    rng = np.random.default_rng(m * n + k)
    a, b = _operands(rng, (k, m) if trans_a else (m, k), (n, k) if trans_b else (k, n))
    op_a, op_b = (a.T if trans_a else a), (b.T if trans_b else b)
    precision(mode)
    got = gpu.to_numpy(gpu.matmul(gpu.asarray(a), gpu.asarray(b), trans_a=trans_a, trans_b=trans_b))
    r = ROUND[mode]
    _check(
        got,
        op_a.astype(np.float64) @ op_b,
        r(op_a).astype(np.float64) @ r(op_b),
        np.abs(op_a).astype(np.float64) @ np.abs(op_b),
        mode,
        k,
    )


@needs_gpu
@needs_tensor_cores
def test_gpu_batched_and_accumulating_gemm_in_bf16(precision):
    """A batch of products (gridDim.z) and ``accumulate`` (C += A @ B) on the tensor cores."""
    gpu = convlab.get_backend("gpu")
    rng = np.random.default_rng(7)
    a, b, c0 = _operands(rng, (3, 40, 24), (3, 24, 50), (3, 40, 50))
    precision("medium")
    c = gpu.asarray(c0)
    gpu._gemm(gpu.asarray(a), gpu.asarray(b), c, accumulate=True)
    exact = c0 + np.einsum("bmk,bkn->bmn", a.astype(np.float64), b)
    rounded = c0 + np.einsum("bmk,bkn->bmn", round_bf16(a).astype(np.float64), round_bf16(b))
    magnitude = np.abs(c0) + np.einsum("bmk,bkn->bmn", np.abs(a).astype(np.float64), np.abs(b))
    _check(gpu.to_numpy(c), exact, rounded, magnitude, "medium", 24 + 1)


@needs_gpu
@needs_tensor_cores
def test_gpu_highest_precision_keeps_the_float32_kernels_bit_for_bit(precision):
    gpu = convlab.get_backend("gpu")
    rng = np.random.default_rng(3)
    a, b = _operands(rng, (70, 90), (90, 40))
    got = {}
    for mode in ("highest", "medium", "highest"):
        precision(mode)
        got.setdefault(mode, []).append(gpu.to_numpy(gpu.matmul(gpu.asarray(a), gpu.asarray(b))))
    np.testing.assert_array_equal(got["highest"][0], got["highest"][1])
    assert not np.array_equal(got["highest"][0], got["medium"][0])
    # float64 never goes to the tensor cores
    precision("medium")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    np.testing.assert_allclose(
        gpu.to_numpy(gpu.matmul(gpu.asarray(a64), gpu.asarray(b64))), a64 @ b64, rtol=1e-12
    )


@needs_gpu
@needs_tensor_cores
def test_gpu_autocast_cuda_means_bf16_and_devices_below_sm80_keep_float32(precision, monkeypatch):
    gpu = convlab.get_backend("gpu")
    assert gpu._tensor_core_format(np.float32) is None  # "highest"
    with convlab.autocast("cuda", dtype=convlab.bfloat16):
        assert gpu._tensor_core_format(np.float32) == "bf16"
        assert gpu._tensor_core_format(np.float64) is None
    with convlab.autocast("cpu", dtype=convlab.bfloat16):
        assert gpu._tensor_core_format(np.float32) is None
    precision("high")
    assert gpu._tensor_core_format(np.float32) == "tf32"
    monkeypatch.setattr(type(gpu), "_device_capability", lambda self: 75)
    assert gpu._tensor_core_format(np.float32) is None
    rng = np.random.default_rng(4)
    a, b = _operands(rng, (20, 30), (30, 10))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = gpu.to_numpy(gpu.matmul(gpu.asarray(a), gpu.asarray(b)))
    np.testing.assert_allclose(got, a.astype(np.float64) @ b, rtol=0, atol=1e-5)


# Convolution geometries: (N, C, H, W, O, kernel, stride, padding, dilation). The chart CNN's
# layers (5x3 kernels, padding (2, 1); I20's first layer with stride (3, 1) and dilation
# (2, 1)) with their channel counts on shorter images, and ResNet9's 3x3 layers on small maps.
CONV_CASES = {
    "chart-I20-layer1": (2, 1, 32, 20, 64, (5, 3), (3, 1), (2, 1), (2, 1)),
    "chart-I20-layer2": (1, 64, 10, 12, 128, (5, 3), (1, 1), (2, 1), (1, 1)),
    "chart-I5-layer2": (2, 64, 8, 15, 128, (5, 3), (1, 1), (2, 1), (1, 1)),
    "resnet9-prep": (2, 3, 12, 12, 64, (3, 3), (1, 1), (1, 1), (1, 1)),
    "resnet9-layer2": (1, 128, 6, 6, 256, (3, 3), (1, 1), (1, 1), (1, 1)),
}


def _conv_refs(x, w, dy, geom):
    """Float64 forward, input and weight gradients (PyTorch CPU) of x, w and dy."""
    stride, padding, dilation = geom
    tx, tw, tdy = (torch.tensor(v, dtype=torch.float64) for v in (x, w, dy))
    y = torch.nn.functional.conv2d(tx, tw, None, stride, padding, dilation)
    dx = torch.nn.grad.conv2d_input(tx.shape, tw, tdy, stride, padding, dilation)
    dw = torch.nn.grad.conv2d_weight(tx, tw.shape, tdy, stride, padding, dilation)
    return y.numpy(), dx.numpy(), dw.numpy()


@needs_gpu
@needs_tensor_cores
@needs_torch
@pytest.mark.parametrize("mode", ["high", "medium"])
@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_gpu_tensor_core_convolution_passes_within_format_bounds(precision, mode, case):
    n, c, h, w_, o, kernel, stride, padding, dilation = CONV_CASES[case]
    geom = (stride, padding, dilation)
    rng = np.random.default_rng(len(case))
    x, w = _operands(rng, (n, c, h, w_), (o, c) + kernel)
    oh, ow = (
        (size + 2 * p - d * (k - 1) - 1) // s + 1
        for size, k, s, p, d in zip((h, w_), kernel, stride, padding, dilation)
    )
    (dy,) = _operands(rng, (n, o, oh, ow))
    gpu = convlab.get_backend("gpu")
    precision(mode)
    gx, gw, gdy = (gpu.asarray(v) for v in (x, w, dy))
    y = gpu.to_numpy(gpu.conv2d_forward(gx, gw, None, *geom))
    dx = gpu.to_numpy(gpu.conv2d_backward_data(gdy, gw, x.shape, *geom))
    dw = gpu.to_numpy(gpu.conv2d_backward_weight(gdy, gx, w.shape, *geom, bias=False)[0])
    r = ROUND[mode]
    exact = _conv_refs(x, w, dy, geom)
    rounded = _conv_refs(r(x), r(w), r(dy), geom)
    magnitude = _conv_refs(np.abs(x), np.abs(w), np.abs(dy), geom)
    depth = c * kernel[0] * kernel[1]
    # terms per output: the GEMM depth; col2im adds up to kh*kw columns per input pixel; the
    # weight gradient sums over every output pixel of the batch
    terms = (depth, o + kernel[0] * kernel[1], n * oh * ow + n)
    for got, e, rd, mag, t in zip((y, dx, dw), exact, rounded, magnitude, terms):
        _check(got, e, rd, mag, mode, t)


@needs_gpu
@needs_tensor_cores
@needs_torch
def test_gpu_conv2d_layer_under_autocast_matches_bf16_reference():
    """The public path: nn.Conv2d forward and backward on the GPU inside
    ``convlab.autocast("cuda")`` compute with bf16 inputs (outputs and gradients float32)."""
    rng = np.random.default_rng(5)
    x, w = _operands(rng, (2, 8, 9, 7), (16, 8, 3, 3))
    conv = convlab.nn.Conv2d(8, 16, 3, padding=1, bias=False).to("gpu")
    conv.weight.data = convlab.tensor(w, device="gpu")
    tx = convlab.tensor(x, device="gpu", requires_grad=True)
    with convlab.autocast("cuda", dtype=convlab.bfloat16):
        y = conv(tx)
        y.sum().backward()
    assert y.dtype == convlab.float32 and tx.grad.dtype == convlab.float32
    ones = np.ones((2, 16, 9, 7), np.float32)
    geom = ((1, 1), (1, 1), (1, 1))
    rounded = _conv_refs(round_bf16(x), round_bf16(w), ones, geom)
    magnitude = _conv_refs(np.abs(x), np.abs(w), ones, geom)
    exact = _conv_refs(x, w, ones, geom)
    for got, e, rd, mag, t in zip(
        (y, tx.grad, conv.weight.grad), exact, rounded, magnitude, (72, 16 + 9, 2 * 63 + 2)
    ):
        _check(got.detach().cpu().numpy(), e, rd, mag, "medium", t)


@needs_gpu
def test_gpu_tensor_core_build_failure_warns_once_and_keeps_float32(precision, monkeypatch):
    """NVRTC without mma.h on its include path: one warning naming the cause, then float32."""
    import types

    from convlab._gpu import modules

    gpu = convlab.get_backend("gpu")

    class CompileException(Exception):
        pass

    def kernel(family, name, dtype):
        if family == "gemm_tc":
            raise CompileException('catastrophic error: cannot open source file "mma.h"')
        return original(family, name, dtype)

    original = modules.kernel
    monkeypatch.setattr(modules, "kernel", kernel)
    monkeypatch.setattr(
        gpu._require().cuda,
        "compiler",
        types.SimpleNamespace(CompileException=CompileException),
        raising=False,
    )
    monkeypatch.setattr(gpu, "_tensor_core_error", None)
    precision("medium")
    rng = np.random.default_rng(6)
    a, b = _operands(rng, (24, 40), (40, 16))
    with pytest.warns(RuntimeWarning, match='cannot open source file "mma.h"'):
        got = gpu.to_numpy(gpu.matmul(gpu.asarray(a), gpu.asarray(b)))
    np.testing.assert_allclose(got, a.astype(np.float64) @ b, rtol=0, atol=1e-5)
    assert gpu._tensor_core_format(np.float32) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gpu.matmul(gpu.asarray(a), gpu.asarray(b))


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed (CI has it)")
@pytest.mark.parametrize("arch", ["compute_80", "compute_90"])
def test_tensor_core_source_compiles_to_wmma_for_sm80_and_newer(arch, tmp_path):
    """CI's nvcc step compiles for nvcc's default (older) architecture, where gemm_tc.cu's
    entry points are empty; here the real kernels: TF32 and bf16 wmma instructions."""
    import re
    import subprocess

    from convlab._gpu import modules

    source = tmp_path / "gemm_tc.cu"
    source.write_text(modules.source("gemm_tc"))
    ptx = tmp_path / "gemm_tc.ptx"
    done = subprocess.run(
        ["nvcc", "-ptx", f"-arch={arch}", *modules.options("gemm_tc"), "-o", str(ptx), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    text = ptx.read_text()
    assert set(re.findall(r"\.entry\s+(\w+)\(", text)) == set(modules.entry_points("gemm_tc"))
    for kind in ("m16n16k8.f32.tf32.tf32.f32", "m16n16k16.f32.bf16.bf16.f32"):
        assert f"wmma.mma.sync.aligned.row.row.{kind}" in text, kind


@needs_gpu
def test_gpu_describe_says_what_the_precision_switch_does(monkeypatch):
    """``convlab.show_config()``'s GPU line: the compute capability and the tensor cores."""
    gpu = convlab.get_backend("gpu")
    capability = gpu._device_capability()
    text = gpu.describe()
    assert f"compute capability {capability // 10}.{capability % 10}" in text
    if capability >= 80:
        assert "TF32 / bf16 tensor cores at matmul precision 'high' / 'medium'" in text
    monkeypatch.setattr(type(gpu), "_device_capability", lambda self: 75)
    assert "compute capability 7.5 (no TF32 / bf16 tensor cores" in gpu.describe()
    monkeypatch.setattr(type(gpu), "_device_capability", lambda self: 90)
    monkeypatch.setattr(gpu, "_tensor_core_error", "cannot open mma.h")
    assert "tensor-core GEMM does not build: cannot open mma.h" in gpu.describe()


def test_tensor_core_tiles_come_from_the_constants():
    """C of at most GEMM_TC_M64_BM rows (a 64-channel layer) gets the shorter tiles."""
    from convlab._gpu.backend import GPUBackend

    tc = launch.CONSTANTS["gemm_tc"]
    short, tall = tc["GEMM_TC_M64_BM"], tc["GEMM_TC_BM"]
    for fmt in ("tf32", "bf16"):
        assert GPUBackend._gemm_kernel(short, np.float32, fmt) == (
            f"gemm_m64_{fmt}",
            short,
            tc["GEMM_TC_BN"],
        )
        assert GPUBackend._gemm_kernel(short + 1, np.float32, fmt) == (
            f"gemm_{fmt}",
            tall,
            tc["GEMM_TC_BN"],
        )
