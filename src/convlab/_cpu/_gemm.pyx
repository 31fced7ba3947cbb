# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Packed-panel GEMM (the GotoBLAS / BLIS structure) with OpenMP, and the micro-kernel choice.

``C (+)= A @ B`` for row-major C and arbitrarily strided A and B, in float32 or float64.

Loop nest (``gemm_tile`` for one thread's tile, ``gemm_shared_b`` for all threads at once)::

    for jc in N by NC:
      for pc in K by KC:          pack B[pc:pc+KC, jc:jc+NC] -> NR-wide panels
        for ic in M by MC:        pack A[ic:ic+MC, pc:pc+KC] -> MR-tall panels
          for ir in MC by MR:     one A panel (MR x KC) stays in L1 ...
            for jr in NC by NR:   ... while the B panels stream past it through the micro-kernel

The micro-kernels (``include/ukernels.h``, picked at run time for the CPU) hold an MR x NR tile
of C in vector registers. Large products pack one B block shared by all threads, which split
the row blocks of A; others give each thread its own tile of C. When B has only a few panels,
A is read in place instead of packed (``use_direct_a``). ``macro_kernel`` is shared with the
convolutions, which fill the panels themselves (``_conv.pyx``).
"""
import os

import numpy as np

from convlab import _precision

from cython.parallel cimport parallel, prange
from libc.stdlib cimport free
from libc.string cimport memset

from convlab._cpu._openmp cimport omp_get_thread_num

cdef extern from "stdlib.h" nogil:
    void* aligned_alloc(size_t alignment, size_t size)

cdef extern from "pack.h" nogil:
    void convlab_pack_a_rows_f32(const float* a, Py_ssize_t lda, Py_ssize_t rows,
                                 Py_ssize_t kc, float* out, Py_ssize_t mr)
    void convlab_pack_a_rows_f64(const double* a, Py_ssize_t lda, Py_ssize_t rows,
                                 Py_ssize_t kc, double* out, Py_ssize_t mr)
    void convlab_pack_a_cols_f32(const float* a, Py_ssize_t cs, Py_ssize_t mc, Py_ssize_t kc,
                                 float* out, Py_ssize_t mr)
    void convlab_pack_a_cols_f64(const double* a, Py_ssize_t cs, Py_ssize_t mc,
                                 Py_ssize_t kc, double* out, Py_ssize_t mr)
    void convlab_pack_b_rows_f32(const float* b, Py_ssize_t rs, Py_ssize_t k0, Py_ssize_t k1,
                                 Py_ssize_t kc, Py_ssize_t nc, float* out, Py_ssize_t nr)
    void convlab_pack_b_rows_f64(const double* b, Py_ssize_t rs, Py_ssize_t k0,
                                 Py_ssize_t k1, Py_ssize_t kc, Py_ssize_t nc, double* out,
                                 Py_ssize_t nr)

cdef extern from "bf16_pack.h" nogil:
    void convlab_bf16_panels_inplace(float* base, Py_ssize_t panels, Py_ssize_t kc,
                                     Py_ssize_t width, Py_ssize_t lo, Py_ssize_t hi)
    void convlab_bf16_pack_a_rows(const float* a, Py_ssize_t lda, Py_ssize_t rows,
                                  Py_ssize_t kc, unsigned short* out, Py_ssize_t mr)
    unsigned short convlab_bf16_round(float f)
    convlab_ukr_bf16 convlab_bf16_kernel()
    int CONVLAB_BF16_MR, CONVLAB_BF16_NR

cdef extern from "ukernels.h" nogil:
    int CONVLAB_ISA_GENERIC, CONVLAB_ISA_AVX2, CONVLAB_ISA_AVX512
    int convlab_isa_supported(int isa)
    convlab_kernel_set convlab_kernels_for(int isa)
    int convlab_best_isa()

ISA_NAMES = {"generic": CONVLAB_ISA_GENERIC, "avx2": CONVLAB_ISA_AVX2,
             "avx512": CONVLAB_ISA_AVX512}

# One immutable kernel set per ISA; the one in use is a pointer swapped atomically, so that a
# kernel call reads one consistent set (tile sizes and micro-kernels together) however often
# set_isa runs in other threads.
cdef extern from *:
    """
    static const void* convlab_active_set = 0;
    static inline const void* convlab_load_set(void) {
        return __atomic_load_n(&convlab_active_set, __ATOMIC_ACQUIRE);
    }
    static inline void convlab_store_set(const void* set) {
        __atomic_store_n(&convlab_active_set, set, __ATOMIC_RELEASE);
    }
    """
    const void* convlab_load_set() noexcept nogil
    void convlab_store_set(const void* set) noexcept nogil

cdef convlab_kernel_set _SETS[3]
_SETS[0] = convlab_kernels_for(CONVLAB_ISA_GENERIC)
_SETS[1] = convlab_kernels_for(CONVLAB_ISA_AVX2)
_SETS[2] = convlab_kernels_for(CONVLAB_ISA_AVX512)


cdef void _use_isa(int isa) noexcept:
    cdef int i
    for i in range(3):
        if _SETS[i].isa == isa:
            convlab_store_set(&_SETS[i])
            return
    convlab_store_set(&_SETS[0])


cdef inline const convlab_kernel_set* _active_set() noexcept nogil:
    return <const convlab_kernel_set*>convlab_load_set()


_use_isa(convlab_best_isa())

# The avx512_bf16 micro-kernel, NULL where the CPU has none (every request then stays float32).
cdef convlab_ukr_bf16 _BF16 = convlab_bf16_kernel()


def bf16_supported():
    """Whether this CPU runs the bfloat16 (``avx512_bf16``) micro-kernel."""
    return _BF16 != NULL


cdef bint bf16_requested(Py_ssize_t itemsize) noexcept:
    """Whether a float32 product started now computes in bfloat16: the precision switch
    (``convlab.set_float32_matmul_precision("medium")`` or an autocast scope) is on and the
    CPU has the kernel. Read once per call, with the GIL, before the kernels start. A
    narrower ISA chosen by ``set_isa`` (or ``CONVLAB_ISA``) keeps float32: the bf16 kernel is
    AVX-512 code."""
    if itemsize != 4 or _BF16 == NULL or active_isa() != CONVLAB_ISA_AVX512:
        return False
    try:
        return bool(_precision.cpu_bf16_enabled())
    except Exception:  # a broken setting must not break the product: float32 then
        return False


def bf16_enabled():
    """Whether float32 products started now take the bfloat16 kernels (for tests)."""
    return bf16_requested(4)


def round_bf16(const float[::1] x):
    """``x`` rounded to bfloat16 as the packers round (to nearest, ties to even), returned as
    float32: the values the bfloat16 kernels multiply."""
    out = np.empty(x.shape[0], np.float32)
    cdef float[::1] o = out
    cdef Py_ssize_t i
    cdef unsigned int bits
    for i in range(x.shape[0]):
        bits = (<unsigned int>convlab_bf16_round(x[i])) << 16
        o[i] = (<float*>&bits)[0]
    return out


cdef enum:
    # Below this many multiply-adds a single thread beats starting a parallel region.
    PARALLEL_MIN_FLOPS = 1 << 18
    # Up to this many B panels, A is read in place instead of packed.
    DIRECT_MAX_PANELS = 16
    # B elements (k x n) up to which an A read in place is split into extra row tiles
    DIRECT_SPLIT_MAX_B = 1 << 18
    # Work items per thread where threads take them dynamically.
    BLOCKS_PER_THREAD = 3


cdef int active_isa() noexcept nogil:
    """The micro-kernel ISA in use (other kernels follow the same choice)."""
    return _active_set().isa


def supported_isas():
    """Names of the micro-kernel ISAs this CPU can run, best last."""
    return [name for name, code in ISA_NAMES.items() if convlab_isa_supported(code)]


def get_isa():
    """Name of the micro-kernel ISA in use."""
    cdef int isa = _active_set().isa
    for name, code in ISA_NAMES.items():
        if code == isa:
            return name


def set_isa(name):
    """Select the micro-kernels (``"generic"``, ``"avx2"``, ``"avx512"``) or ``"auto"``.

    Safe while kernels run in other threads: each kernel call reads the choice once, at its
    start, and keeps it to its end.
    """
    if name == "auto":
        _use_isa(convlab_best_isa())
        return
    if name not in ISA_NAMES:
        raise ValueError(f"isa: expected one of {sorted(ISA_NAMES) + ['auto']}, got {name!r}")
    if not convlab_isa_supported(ISA_NAMES[name]):
        raise ValueError(f"isa: this CPU cannot run {name!r}; supported: {supported_isas()}")
    _use_isa(ISA_NAMES[name])


def _select_isa_from_environment():
    requested = os.environ.get("CONVLAB_ISA", "auto").strip().lower() or "auto"
    try:
        set_isa(requested)
    except ValueError:
        set_isa("auto")   # an unusable request falls back; show_config() reports what runs


_select_isa_from_environment()


def tile_shape(itemsize):
    """``(mr, nr, kc, mc, nc)`` blocking used for elements of ``itemsize`` bytes."""
    cdef Tiling t = tiling(itemsize)
    return (t.mr, t.nr, t.kc, t.mc, t.nc)


# Blocking per element size: [kc, nc, mc in units of mr]. Measured on Zen 4 (1 MiB L2, 32 MiB
# L3): a deep KC (fewer passes over each C tile) matters more than keeping the KC x NC block of
# B in L2 — streaming it from L3 under the L1-resident A panel costs less than repacking A.
cdef Py_ssize_t _BLOCK32[3]
cdef Py_ssize_t _BLOCK64[3]
_BLOCK32[:] = [512, 2048, 16]
_BLOCK64[:] = [512, 1024, 16]


cdef Tiling tiling(Py_ssize_t itemsize) noexcept nogil:
    cdef Tiling t
    cdef Py_ssize_t* block = &_BLOCK32[0] if itemsize == 4 else &_BLOCK64[0]
    t.ks = _active_set()
    t.mr = t.ks.mr32 if itemsize == 4 else t.ks.mr64
    t.nr = t.ks.nr32 if itemsize == 4 else t.ks.nr64
    t.kc = block[0]
    t.nc = block[1]
    t.mc = block[2] * t.mr
    t.bf16 = NULL
    return t


cdef Tiling tiling_for(Py_ssize_t itemsize, bint bf16) noexcept nogil:
    """``tiling(itemsize)``, switched to the bfloat16 kernel (and its tile) when ``bf16``
    and the elements are float32 and the CPU has the kernel."""
    cdef Tiling t = tiling(itemsize)
    if bf16 and itemsize == 4 and _BF16 != NULL:
        t.bf16 = _BF16
        t.mr = CONVLAB_BF16_MR
        t.nr = CONVLAB_BF16_NR
        t.mc = _BLOCK32[2] * t.mr
    return t


cdef void bf16_panels(real* base, Py_ssize_t panels, Py_ssize_t kc, Py_ssize_t width,
                      Py_ssize_t lo, Py_ssize_t hi, Tiling t) noexcept nogil:
    """With the bfloat16 kernel: convert ``panels`` freshly packed float32 panels (``width``
    x ``kc`` each, ``width * kc`` apart) to its pair layout, in place, rows outside ``[lo,
    hi)`` as zeros. Otherwise nothing."""
    if real is float:
        if t.bf16 != NULL and kc > 0:
            convlab_bf16_panels_inplace(base, panels, kc, width, lo, hi)


cdef inline Py_ssize_t _round_up(Py_ssize_t x, Py_ssize_t m) noexcept nogil:
    return ((x + m - 1) // m) * m


cdef Py_ssize_t round_up(Py_ssize_t x, Py_ssize_t m) noexcept nogil:
    """``x`` rounded up to a multiple of ``m`` (for the other modules; inline here only)."""
    return _round_up(x, m)


cdef void* buffer_alloc(size_t nbytes) noexcept nogil:
    """A cache-line (64-byte) aligned buffer, so that vector loads of packed panels never
    straddle two lines; release it with ``free``. Callers keep per-thread slices at multiples of
    16 elements (64 bytes) to keep every slice aligned."""
    return aligned_alloc(64, ((nbytes + 63) // 64) * 64 if nbytes else 64)


cdef void pack_a(const real* a, Py_ssize_t rs, Py_ssize_t cs, Py_ssize_t mc, Py_ssize_t kc,
                 real* out, Py_ssize_t mr) noexcept nogil:
    """A[mc x kc] (element strides rs, cs) -> MR-row panels, each kc x MR, zero-padded."""
    cdef Py_ssize_t p, p_block, i, k, rows
    cdef const real* src
    cdef real* dst
    if rs == 1 and cs != 1:
        # column-major A (a transposed operand): whole columns dealt out (include/pack.h)
        if real is float:
            convlab_pack_a_cols_f32(a, cs, mc, kc, out, mr)
        else:
            convlab_pack_a_cols_f64(a, cs, mc, kc, out, mr)
        return
    for p_block in range((mc + mr - 1) // mr):
        p = p_block * mr
        rows = mr if mc - p >= mr else mc - p
        dst = out + p * kc
        if cs == 1:
            # row-major A: a transpose, done in registers (include/pack.h)
            if real is float:
                convlab_pack_a_rows_f32(a + p * rs, rs, rows, kc, dst, mr)
            else:
                convlab_pack_a_rows_f64(a + p * rs, rs, rows, kc, dst, mr)
            continue
        for k in range(kc):
            src = a + p * rs + k * cs
            for i in range(rows):
                dst[k * mr + i] = src[i * rs]
        if rows < mr:
            for k in range(kc):
                for i in range(rows, mr):
                    dst[k * mr + i] = 0


cdef void pack_a_full(const real* a, Py_ssize_t rs, Py_ssize_t cs, Py_ssize_t m, Py_ssize_t k,
                      real* out, Tiling t) noexcept nogil:
    """All of A, one packed block per KC slice; block ``pc`` starts at ``round_up(m, mr) * pc``."""
    cdef Py_ssize_t pc, pc_block, kc
    cdef Py_ssize_t rows = _round_up(m, t.mr)
    for pc_block in range((k + t.kc - 1) // t.kc):
        pc = pc_block * t.kc
        kc = t.kc if k - pc >= t.kc else k - pc
        pack_a(a + pc * cs, rs, cs, m, kc, out + rows * pc, t.mr)
        bf16_panels(out + rows * pc, rows // t.mr, kc, t.mr, 0, kc, t)


cdef inline void pack_b_rows(const real* b, Py_ssize_t rs, Py_ssize_t k0, Py_ssize_t k1,
                             Py_ssize_t kc, Py_ssize_t nc, real* out,
                             Py_ssize_t nr) noexcept nogil:
    """Rows [k0, k1) of a row-major B[kc x nc] (row stride ``rs``) -> its NR-column panels."""
    if real is float:
        convlab_pack_b_rows_f32(b, rs, k0, k1, kc, nc, out, nr)
    else:
        convlab_pack_b_rows_f64(b, rs, k0, k1, kc, nc, out, nr)


cdef void pack_b(const real* b, Py_ssize_t rs, Py_ssize_t cs, Py_ssize_t kc, Py_ssize_t nc,
                 real* out, Py_ssize_t nr) noexcept nogil:
    """B[kc x nc] (element strides rs, cs) -> NR-column panels, each kc x NR, zero-padded."""
    cdef Py_ssize_t q, q_block, j, k, cols
    cdef const real* src
    cdef real* dst
    if cs == 1:
        # row-major B: each row dealt out to the panels (include/pack.h)
        pack_b_rows(b, rs, 0, kc, kc, nc, out, nr)
        return
    for q_block in range((nc + nr - 1) // nr):
        q = q_block * nr
        cols = nr if nc - q >= nr else nc - q
        dst = out + q * kc
        if rs == 1:
            # column-major B (a transposed operand, as a weight gradient's dY^T): the same
            # transpose as packing a row-major A, in registers (include/pack.h)
            if real is float:
                convlab_pack_a_rows_f32(b + q * cs, cs, cols, kc, dst, nr)
            else:
                convlab_pack_a_rows_f64(b + q * cs, cs, cols, kc, dst, nr)
        else:
            for k in range(kc):
                src = b + k * rs + q * cs
                for j in range(cols):
                    dst[k * nr + j] = src[j * cs]
                for j in range(cols, nr):
                    dst[k * nr + j] = 0


cdef inline void run_ukernel(const convlab_kernel_set* ks, Py_ssize_t kc, const real* a,
                             Py_ssize_t lda, const real* b, real* c, Py_ssize_t ldc,
                             bint accumulate, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    """One micro-tile; A packed (``lda == 0``) or read in place (row stride ``lda``)."""
    if real is float:
        if lda == 0:
            ks.f32(kc, a, 0, b, c, ldc, accumulate, rows, cols)
        else:
            ks.direct_f32(kc, a, lda, b, c, ldc, accumulate, rows, cols)
    else:
        if lda == 0:
            ks.f64(kc, a, 0, b, c, ldc, accumulate, rows, cols)
        else:
            ks.direct_f64(kc, a, lda, b, c, ldc, accumulate, rows, cols)


cdef void macro_kernel(Py_ssize_t mc, Py_ssize_t nc, Py_ssize_t kc, const real* a,
                       Py_ssize_t lda, const real* bp, Py_ssize_t pw, real* c, Py_ssize_t ldc,
                       bint accumulate, const Py_ssize_t* depth_a, const Py_ssize_t* depth_b,
                       real* abuf, Tiling t) noexcept nogil:
    """C[mc x nc] (+)= A[mc x kc] @ B[kc x nc], B packed.

    A is packed when ``lda == 0``, else read in place from a row-major matrix with row stride
    ``lda`` (its last, partial row panel is packed into ``abuf``: reading past A is not allowed).
    Each B panel holds ``pw <= NR`` columns of C (plain GEMM: ``pw == NR``; the convolutions
    may align panels with feature-map rows). ``depth_a`` / ``depth_b`` are NULL or hold
    ``[lo, hi)`` per A / B micro-panel: the depth range outside which that panel is zero. The
    kernel then skips the rest — this is how the convolutions skip kernel taps that fall into
    the zero padding.
    """
    cdef Py_ssize_t ir_block, jr_block, ir, jr, rows, cols, lo, hi, lda_panel
    cdef Py_ssize_t a_panels = (mc + t.mr - 1) // t.mr, b_panels = (nc + pw - 1) // pw
    cdef Py_ssize_t full = mc // t.mr
    cdef const real* a_panel
    if real is float:
        if t.bf16 != NULL:
            _macro_kernel_bf16(mc, nc, kc, a, lda, bp, pw, c, ldc, accumulate, depth_a,
                               depth_b, abuf, t)
            return
    if lda != 0 and full < a_panels:
        pack_a(a + full * t.mr * lda, lda, 1, mc - full * t.mr, kc, abuf, t.mr)
    for ir_block in range(a_panels):
        ir = ir_block * t.mr
        rows = t.mr if mc - ir >= t.mr else mc - ir
        lda_panel = lda
        if lda == 0:
            a_panel = a + ir * kc
        elif ir_block == full:
            a_panel = abuf
            lda_panel = 0
        else:
            a_panel = a + ir * lda
        for jr_block in range(b_panels):
            jr = jr_block * pw
            cols = pw if nc - jr >= pw else nc - jr
            lo = 0
            hi = kc
            if depth_a != NULL:
                lo = depth_a[2 * ir_block] if depth_a[2 * ir_block] > lo else lo
                hi = depth_a[2 * ir_block + 1] if depth_a[2 * ir_block + 1] < hi else hi
            if depth_b != NULL:
                lo = depth_b[2 * jr_block] if depth_b[2 * jr_block] > lo else lo
                hi = depth_b[2 * jr_block + 1] if depth_b[2 * jr_block + 1] < hi else hi
            if hi < lo:
                hi = lo
            if hi == lo and accumulate:
                continue
            run_ukernel(t.ks, hi - lo, a_panel + (lo * t.mr if lda_panel == 0 else lo),
                        lda_panel, bp + jr_block * t.nr * kc + lo * t.nr, c + ir * ldc + jr,
                        ldc, accumulate, rows, cols)


cdef void _macro_kernel_bf16(Py_ssize_t mc, Py_ssize_t nc, Py_ssize_t kc, const float* a,
                             Py_ssize_t lda, const float* bp, Py_ssize_t pw, float* c,
                             Py_ssize_t ldc, bint accumulate, const Py_ssize_t* depth_a,
                             const Py_ssize_t* depth_b, float* abuf, Tiling t) noexcept nogil:
    """``macro_kernel`` on bfloat16 panels (already converted by ``bf16_panels``, each in its
    float32 panel's place). An A read in place is rounded one MR-row panel at a time into
    ``abuf``. Depth ranges widen to whole pairs: the extra row of a pair is zero in the panel
    whose range excludes it (or a zero row the conversion wrote)."""
    cdef Py_ssize_t ir_block, jr_block, ir, jr, rows, cols, lo, hi
    cdef Py_ssize_t a_panels = (mc + t.mr - 1) // t.mr, b_panels = (nc + pw - 1) // pw
    cdef const unsigned short* a_panel
    for ir_block in range(a_panels):
        ir = ir_block * t.mr
        rows = t.mr if mc - ir >= t.mr else mc - ir
        if lda == 0:
            a_panel = <const unsigned short*>(a + ir * kc)
        else:
            convlab_bf16_pack_a_rows(a + ir * lda, lda, rows, kc, <unsigned short*>abuf, t.mr)
            a_panel = <const unsigned short*>abuf
        for jr_block in range(b_panels):
            jr = jr_block * pw
            cols = pw if nc - jr >= pw else nc - jr
            lo = 0
            hi = kc
            if depth_a != NULL:
                lo = depth_a[2 * ir_block] if depth_a[2 * ir_block] > lo else lo
                hi = depth_a[2 * ir_block + 1] if depth_a[2 * ir_block + 1] < hi else hi
            if depth_b != NULL:
                lo = depth_b[2 * jr_block] if depth_b[2 * jr_block] > lo else lo
                hi = depth_b[2 * jr_block + 1] if depth_b[2 * jr_block + 1] < hi else hi
            if hi < lo:
                hi = lo
            if hi == lo and accumulate:
                continue
            lo = lo - (lo & 1)
            hi = hi + (hi & 1)
            t.bf16((hi - lo) // 2, a_panel + lo * t.mr,
                   <const unsigned short*>(bp + jr_block * t.nr * kc) + lo * t.nr,
                   c + ir * ldc + jr, ldc, accumulate, rows, cols)


cdef bint use_direct_a(Py_ssize_t rsa, Py_ssize_t csa, Py_ssize_t n, Tiling t) noexcept nogil:
    """Whether to read a row-major A in place: with few B panels, each packed A panel would be
    used only a few times and packing would cost more than it saves. (Rows must be ``rsa > 0``
    apart: ``macro_kernel`` takes ``lda == 0`` to mean "packed".)"""
    return csa == 1 and rsa > 0 and n <= DIRECT_MAX_PANELS * t.nr


cdef void gemm_tile(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                    const real* a, Py_ssize_t rsa, Py_ssize_t csa,
                    const real* b, Py_ssize_t rsb, Py_ssize_t csb,
                    real* c, Py_ssize_t ldc, bint accumulate,
                    real* abuf, real* bbuf, Tiling t) noexcept nogil:
    """Single-threaded C (+)= A @ B with caller-provided pack buffers.

    ``abuf`` holds ``_round_up(mc, mr) * kc`` and ``bbuf`` ``kc * _round_up(nc, nr)`` elements.
    """
    cdef Py_ssize_t jc, pc, ic, jc_block, pc_block, ic_block, nc, kc, mc, i
    cdef bint direct = use_direct_a(rsa, csa, n, t)
    if k == 0:
        if not accumulate:
            for i in range(m):
                memset(c + i * ldc, 0, n * sizeof(real))
        return
    for jc_block in range((n + t.nc - 1) // t.nc):
        jc = jc_block * t.nc
        nc = t.nc if n - jc >= t.nc else n - jc
        for pc_block in range((k + t.kc - 1) // t.kc):
            pc = pc_block * t.kc
            kc = t.kc if k - pc >= t.kc else k - pc
            pack_b(b + pc * rsb + jc * csb, rsb, csb, kc, nc, bbuf, t.nr)
            bf16_panels(bbuf, (nc + t.nr - 1) // t.nr, kc, t.nr, 0, kc, t)
            for ic_block in range((m + t.mc - 1) // t.mc):
                ic = ic_block * t.mc
                mc = t.mc if m - ic >= t.mc else m - ic
                if direct:
                    macro_kernel(mc, nc, kc, a + ic * rsa + pc, rsa, bbuf, t.nr,
                                 c + ic * ldc + jc, ldc, accumulate or pc > 0, NULL, NULL, abuf,
                                 t)
                else:
                    pack_a(a + ic * rsa + pc * csa, rsa, csa, mc, kc, abuf, t.mr)
                    bf16_panels(abuf, (mc + t.mr - 1) // t.mr, kc, t.mr, 0, kc, t)
                    macro_kernel(mc, nc, kc, abuf, 0, bbuf, t.nr, c + ic * ldc + jc, ldc,
                                 accumulate or pc > 0, NULL, NULL, NULL, t)


cdef inline Py_ssize_t _part_start(Py_ssize_t units, Py_ssize_t parts, Py_ssize_t index,
                                   Py_ssize_t unit, Py_ssize_t total) noexcept nogil:
    """First element of part ``index`` when ``units`` blocks of ``unit`` elements (``total`` in
    all) are shared out as evenly as possible over ``parts``. Part i ends where part i+1
    starts. (Returned, not written through a pointer: inside a prange a variable assigned only
    through a pointer would be shared between threads.)"""
    cdef Py_ssize_t base = units // parts, extra = units % parts
    cdef Py_ssize_t first = index * base + (index if index < extra else extra)
    return first * unit if first * unit < total else total


cdef int _grid(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, int threads, Tiling t,
               int* mt, int* nt) noexcept nogil:
    """Pick mt x nt thread tiles (mt * nt = threads used) with the least repacking."""
    cdef Py_ssize_t mu = (m + t.mr - 1) // t.mr, nu = (n + t.nr - 1) // t.nr
    cdef int p, q, best_p = 1, best_q = 1, used
    cdef double cost, best_cost = -1
    if m * n * k < PARALLEL_MIN_FLOPS:
        threads = 1
    for used in range(threads, 0, -1):
        for p in range(1, used + 1):
            if used % p:
                continue
            q = used // p
            if p > mu or q > nu:
                continue
            # every thread packs its share of A once per column tile and of B once per row tile
            cost = <double>p * n + <double>q * m
            if best_cost < 0 or cost < best_cost:
                best_cost = cost
                best_p = p
                best_q = q
        if best_cost >= 0:
            break
    mt[0] = best_p
    nt[0] = best_q
    return best_p * best_q


cdef int gemm_shared_b(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                       const real* a, Py_ssize_t rsa, Py_ssize_t csa,
                       const real* b, Py_ssize_t rsb, Py_ssize_t csb,
                       real* c, Py_ssize_t ldc, bint accumulate, int threads,
                       bint bf16) noexcept nogil:
    """C (+)= A @ B for big square-ish problems, BLIS-style: all threads pack one shared B block
    together, then share out the MC-row blocks of A (each packs its own). Nothing is packed
    twice, and the threads read one B block from the shared cache. -1: no memory."""
    cdef Tiling t = tiling_for(sizeof(real), bf16)
    cdef Py_ssize_t abuf_len = _round_up(_round_up(t.mc, t.mr) * t.kc, 16)
    cdef Py_ssize_t jc, pc, nc, kc, jc_block, pc_block, q, ic_block, ic, mc, cols
    # row blocks of at most MC rows, equal to a panel, at least BLOCKS_PER_THREAD per thread
    # and taken dynamically: on a shared machine one thread may get less CPU than another
    cdef Py_ssize_t panels = (m + t.mr - 1) // t.mr
    cdef Py_ssize_t blocks = threads * ((panels + threads * (t.mc // t.mr) - 1)
                                        // (threads * (t.mc // t.mr)))
    if blocks < threads * BLOCKS_PER_THREAD:
        blocks = threads * BLOCKS_PER_THREAD
    if blocks > panels:
        blocks = panels
    cdef real* shared_b = <real*>buffer_alloc(t.kc * _round_up(t.nc, t.nr) * sizeof(real))
    cdef real* a_buffers = <real*>buffer_alloc(threads * abuf_len * sizeof(real))
    cdef real* mine
    if shared_b == NULL or a_buffers == NULL:
        free(shared_b)
        free(a_buffers)
        return -1
    with parallel(num_threads=threads):
        mine = a_buffers + omp_get_thread_num() * abuf_len
        for jc_block in range((n + t.nc - 1) // t.nc):
            jc = jc_block * t.nc
            nc = t.nc if n - jc >= t.nc else n - jc
            for pc_block in range((k + t.kc - 1) // t.kc):
                pc = pc_block * t.kc
                kc = t.kc if k - pc >= t.kc else k - pc
                if csb == 1:
                    # a row-major B: the threads deal out ranges of its rows to all panels
                    for q in prange(threads, schedule="static"):
                        pack_b_rows(b + pc * rsb + jc, rsb, q * kc // threads,
                                    (q + 1) * kc // threads, kc, nc, shared_b, t.nr)
                    if t.bf16 != NULL:
                        for q in prange((nc + t.nr - 1) // t.nr, schedule="static"):
                            bf16_panels(shared_b + q * t.nr * kc, 1, kc, t.nr, 0, kc, t)
                else:
                    for q in prange((nc + t.nr - 1) // t.nr, schedule="static"):
                        cols = t.nr if nc - q * t.nr >= t.nr else nc - q * t.nr
                        pack_b(b + pc * rsb + (jc + q * t.nr) * csb, rsb, csb, kc, cols,
                               shared_b + q * t.nr * kc, t.nr)
                        bf16_panels(shared_b + q * t.nr * kc, 1, kc, t.nr, 0, kc, t)
                for ic_block in prange(blocks, schedule="dynamic"):
                    ic = _part_start(panels, blocks, ic_block, t.mr, m)
                    mc = _part_start(panels, blocks, ic_block + 1, t.mr, m) - ic
                    pack_a(a + ic * rsa + pc * csa, rsa, csa, mc, kc, mine, t.mr)
                    bf16_panels(mine, (mc + t.mr - 1) // t.mr, kc, t.mr, 0, kc, t)
                    macro_kernel(mc, nc, kc, mine, 0, shared_b, t.nr, c + ic * ldc + jc, ldc,
                                 accumulate or pc > 0, NULL, NULL, NULL, t)
    free(shared_b)
    free(a_buffers)
    return 0


cdef Py_ssize_t tile_buffers(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, Tiling t,
                             Py_ssize_t* abuf_len) noexcept nogil:
    """Elements of one thread's ``gemm_tile`` pack buffers for an m x n x k product: the A
    buffer's length goes to ``abuf_len``, the B buffer follows it. Sized for this problem,
    not the largest block, so small products stay cheap."""
    cdef Py_ssize_t kc = t.kc if k > t.kc else (k if k > 0 else 1)
    cdef Py_ssize_t b_cols = _round_up(t.nc if n > t.nc else n, t.nr)
    abuf_len[0] = _round_up(_round_up(t.mc if m > t.mc else m, t.mr) * kc, 16)
    return abuf_len[0] + _round_up(kc * b_cols, 16)


cdef int gemm_parallel(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                       const real* a, Py_ssize_t rsa, Py_ssize_t csa,
                       const real* b, Py_ssize_t rsb, Py_ssize_t csb,
                       real* c, Py_ssize_t ldc, bint accumulate, int threads,
                       bint bf16) noexcept nogil:
    """C (+)= A @ B on up to ``threads`` threads (``bf16``: products in bfloat16 where the CPU
    can). Returns -1 if the pack buffers do not fit."""
    cdef Tiling t = tiling_for(sizeof(real), bf16)
    cdef int mt, nt, used, tile
    cdef Py_ssize_t abuf_len
    cdef Py_ssize_t per_thread = tile_buffers(m, n, k, t, &abuf_len)
    cdef Py_ssize_t m0, m1, n0, n1
    cdef real* buffers
    cdef real* mine
    if m == 0 or n == 0:
        return 0
    if threads > 1 and k > 0 and not use_direct_a(rsa, csa, n, t) and m >= threads * t.mc:
        return gemm_shared_b(m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, accumulate, threads,
                             bf16)
    used = _grid(m, n, k, threads, t, &mt, &nt)
    if used > 1 and use_direct_a(rsa, csa, n, t) and k * n <= DIRECT_SPLIT_MAX_B:
        # B is small here, so more row tiles cost little repacking; threads take them
        # dynamically, which keeps both busy when the machine gives one less CPU. (Every row
        # tile packs all of B: a deep B, such as a decoder's input gradient over a 10k
        # vocabulary, would be packed BLOCKS_PER_THREAD times over.)
        mt = mt * BLOCKS_PER_THREAD if mt * BLOCKS_PER_THREAD <= (m + t.mr - 1) // t.mr else mt
    buffers = <real*>buffer_alloc(used * per_thread * sizeof(real))
    if buffers == NULL:
        return -1
    for tile in prange(mt * nt, num_threads=used, schedule="dynamic"):
        mine = buffers + omp_get_thread_num() * per_thread
        m0 = _part_start((m + t.mr - 1) // t.mr, mt, tile // nt, t.mr, m)
        m1 = _part_start((m + t.mr - 1) // t.mr, mt, tile // nt + 1, t.mr, m)
        n0 = _part_start((n + t.nr - 1) // t.nr, nt, tile % nt, t.nr, n)
        n1 = _part_start((n + t.nr - 1) // t.nr, nt, tile % nt + 1, t.nr, n)
        gemm_tile(m1 - m0, n1 - n0, k, a + m0 * rsa, rsa, csa, b + n0 * csb, rsb, csb,
                  c + m0 * ldc + n0, ldc, accumulate, mine, mine + abuf_len, t)
    free(buffers)
    return 0


def gemm(const real[:, :] a, const real[:, :] b, real[:, ::1] c, bint accumulate, int threads,
         bf16=None):
    """``c (+)= a @ b`` for strided 2-D ``a``, ``b`` and row-contiguous ``c`` (same dtype).

    Shapes and dtypes are checked by the caller (``convlab._cpu.backend``). ``bf16``: float32
    products in bfloat16 with float32 sums (True), in float32 (False), or as the precision
    switch says (None, see ``convlab.set_float32_matmul_precision``).
    """
    cdef Py_ssize_t isz = sizeof(real)
    cdef bint use_bf16 = bf16_requested(isz) if bf16 is None else (bool(bf16) and isz == 4)
    cdef Py_ssize_t m = a.shape[0], k = a.shape[1], n = b.shape[1]
    cdef int status
    if m == 0 or n == 0:
        return
    with nogil:
        status = gemm_parallel(m, n, k, &a[0, 0] if k else <real*>NULL,
                               a.strides[0] // isz, a.strides[1] // isz,
                               &b[0, 0] if k else <real*>NULL,
                               b.strides[0] // isz, b.strides[1] // isz,
                               &c[0, 0], c.strides[0] // isz, accumulate, threads, use_bf16)
    if status:
        raise MemoryError("matmul: could not allocate the packing buffers")


cdef int gemm_batched_parallel(Py_ssize_t count, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                               const real* a, Py_ssize_t bsa, Py_ssize_t rsa, Py_ssize_t csa,
                               const real* b, Py_ssize_t bsb, Py_ssize_t rsb, Py_ssize_t csb,
                               real* c, Py_ssize_t bsc, Py_ssize_t ldc, bint accumulate,
                               int threads, bint bf16) noexcept nogil:
    """``count`` products C[i] (+)= A[i] @ B[i] (batch strides ``bsa`` / ``bsb`` / ``bsc``,
    0 for an operand shared by all), each whole on one thread with its own pack buffers,
    the threads taking products in turn. For stacks of small products (a grouped
    convolution's per image and group), where splitting each product over the threads would
    start a parallel region per product and split too little work. Each element is summed
    by ``gemm_tile`` in the same order as the one-product path. -1: no memory."""
    cdef Tiling t = tiling_for(sizeof(real), bf16)
    cdef Py_ssize_t abuf_len
    cdef Py_ssize_t per_thread = tile_buffers(m, n, k, t, &abuf_len)
    cdef Py_ssize_t i
    cdef real* buffers
    cdef real* mine
    if count == 0 or m == 0 or n == 0:
        return 0
    if threads > count:
        threads = <int>count
    buffers = <real*>buffer_alloc(threads * per_thread * sizeof(real))
    if buffers == NULL:
        return -1
    for i in prange(count, num_threads=threads, schedule="static"):
        mine = buffers + omp_get_thread_num() * per_thread
        gemm_tile(m, n, k, a + i * bsa, rsa, csa, b + i * bsb, rsb, csb, c + i * bsc, ldc,
                  accumulate, mine, mine + abuf_len, t)
    free(buffers)
    return 0


def gemm_batched(const real[:, :, :] a, const real[:, :, :] b, real[:, :, :] c,
                 bint accumulate, int threads, bf16=None):
    """``c[i] (+)= a[i] @ b[i]`` for every ``i``, each product on one thread (see
    ``gemm_batched_parallel``): strided 3-D ``a``, ``b`` (a zero batch stride shares one
    matrix) and ``c`` with unit column stride, one dtype; shapes checked by the caller."""
    cdef Py_ssize_t isz = sizeof(real)
    cdef bint use_bf16 = bf16_requested(isz) if bf16 is None else (bool(bf16) and isz == 4)
    cdef Py_ssize_t count = a.shape[0], m = a.shape[1], k = a.shape[2], n = b.shape[2]
    cdef int status
    if count == 0 or m == 0 or n == 0:
        return
    if c.strides[2] != isz:
        raise ValueError("gemm_batched: c needs unit column stride")
    with nogil:
        status = gemm_batched_parallel(
            count, m, n, k,
            &a[0, 0, 0] if k else <real*>NULL,
            a.strides[0] // isz, a.strides[1] // isz, a.strides[2] // isz,
            &b[0, 0, 0] if k else <real*>NULL,
            b.strides[0] // isz, b.strides[1] // isz, b.strides[2] // isz,
            &c[0, 0, 0], c.strides[0] // isz, c.strides[1] // isz, accumulate, threads,
            use_bf16)
    if status:
        raise MemoryError("matmul: could not allocate the packing buffers")
