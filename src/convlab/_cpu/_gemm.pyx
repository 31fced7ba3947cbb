# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Packed-panel GEMM (the GotoBLAS / BLIS structure) with OpenMP.

``C (+)= A @ B`` for row-major C and arbitrarily strided A and B, in float32 or float64.

Loop nest of one thread's tile (``gemm_tile``)::

    for jc in N by NC:            pack B[pc:pc+KC, jc:jc+NC] -> NR-wide panels   (stays in L2)
      for pc in K by KC:
        for ic in M by MC:        pack A[ic:ic+MC, pc:pc+KC] -> MR-tall panels
          for ir in MC by MR:     one A panel (MR x KC) stays in L1 ...
            for jr in NC by NR:   ... while the B panels stream from L2 through the micro-kernel

The micro-kernels (``include/ukernels.h``) hold an MR x NR tile of C in vector registers.
``matmul`` splits C into one tile per thread along its longer side, so each thread packs only
its own panels and no thread ever waits on another.
"""
import os

from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from convlab._cpu._openmp cimport omp_get_thread_num

cdef extern from "ukernels.h" nogil:
    ctypedef void (*convlab_ukr_f32)(int64_t, const float*, int64_t, const float*, float*,
                                     int64_t, int) noexcept nogil
    ctypedef void (*convlab_ukr_f64)(int64_t, const double*, int64_t, const double*, double*,
                                     int64_t, int) noexcept nogil
    ctypedef struct convlab_kernel_set:
        int isa
        int mr32, nr32, mr64, nr64
        convlab_ukr_f32 f32, direct_f32
        convlab_ukr_f64 f64, direct_f64
    int CONVLAB_ISA_GENERIC, CONVLAB_ISA_AVX2, CONVLAB_ISA_AVX512
    int convlab_isa_supported(int isa)
    convlab_kernel_set convlab_kernels_for(int isa)
    int convlab_best_isa()

ISA_NAMES = {"generic": CONVLAB_ISA_GENERIC, "avx2": CONVLAB_ISA_AVX2,
             "avx512": CONVLAB_ISA_AVX512}

cdef convlab_kernel_set _KS = convlab_kernels_for(convlab_best_isa())

cdef enum:
    # Largest micro-tile of any kernel set (elements); sizes the edge-tile scratch buffer.
    MAX_TILE = 512
    # Below this many multiply-adds a single thread beats starting a parallel region.
    PARALLEL_MIN_FLOPS = 1 << 18
    # Up to this many B panels, A is read in place instead of packed.
    DIRECT_MAX_PANELS = 16


def supported_isas():
    """Names of the micro-kernel ISAs this CPU can run, best last."""
    return [name for name, code in ISA_NAMES.items() if convlab_isa_supported(code)]


def get_isa():
    """Name of the micro-kernel ISA in use."""
    for name, code in ISA_NAMES.items():
        if code == _KS.isa:
            return name


def set_isa(name):
    """Select the micro-kernels (``"generic"``, ``"avx2"``, ``"avx512"``) or ``"auto"``.

    Not thread-safe: call it while no kernel is running.
    """
    global _KS
    if name == "auto":
        _KS = convlab_kernels_for(convlab_best_isa())
        return
    if name not in ISA_NAMES:
        raise ValueError(f"isa: expected one of {sorted(ISA_NAMES) + ['auto']}, got {name!r}")
    if not convlab_isa_supported(ISA_NAMES[name]):
        raise ValueError(f"isa: this CPU cannot run {name!r}; supported: {supported_isas()}")
    _KS = convlab_kernels_for(ISA_NAMES[name])


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


# Blocking per element size, [kc, nc, mc in units of mr]. KC x NC of B (the streamed operand)
# fits in a 1 MiB L2 and one MR x KC panel of A in L1.
cdef Py_ssize_t _BLOCK32[3]
cdef Py_ssize_t _BLOCK64[3]
_BLOCK32[:] = [384, 1024, 16]
_BLOCK64[:] = [256, 256, 32]


def _set_blocking(itemsize, kc, nc, mc_panels):
    """Override the cache blocking (for tuning experiments only)."""
    cdef Py_ssize_t* block = &_BLOCK32[0] if itemsize == 4 else &_BLOCK64[0]
    block[0] = kc
    block[1] = nc
    block[2] = mc_panels


cdef Tiling tiling(Py_ssize_t itemsize) noexcept nogil:
    cdef Tiling t
    cdef Py_ssize_t* block = &_BLOCK32[0] if itemsize == 4 else &_BLOCK64[0]
    t.mr = _KS.mr32 if itemsize == 4 else _KS.mr64
    t.nr = _KS.nr32 if itemsize == 4 else _KS.nr64
    t.kc = block[0]
    t.nc = block[1]
    t.mc = block[2] * t.mr
    return t


cdef inline Py_ssize_t round_up(Py_ssize_t x, Py_ssize_t m) noexcept nogil:
    return ((x + m - 1) // m) * m


cdef Py_ssize_t a_pack_size(Tiling t, Py_ssize_t m, Py_ssize_t k) noexcept nogil:
    """Elements needed by ``pack_a_full`` for an m x k matrix."""
    return round_up(m, t.mr) * k


cdef void pack_a(const real* a, Py_ssize_t rs, Py_ssize_t cs, Py_ssize_t mc, Py_ssize_t kc,
                 real* out, Py_ssize_t mr) noexcept nogil:
    """A[mc x kc] (element strides rs, cs) -> MR-row panels, each kc x MR, zero-padded."""
    cdef Py_ssize_t p, p_block, i, k, rows
    cdef const real* src
    cdef real* dst
    for p_block in range((mc + mr - 1) // mr):
        p = p_block * mr
        rows = mr if mc - p >= mr else mc - p
        dst = out + p * kc
        if cs == 1:
            for i in range(rows):
                src = a + (p + i) * rs
                for k in range(kc):
                    dst[k * mr + i] = src[k]
        else:
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
    cdef Py_ssize_t rows = round_up(m, t.mr)
    for pc_block in range((k + t.kc - 1) // t.kc):
        pc = pc_block * t.kc
        kc = t.kc if k - pc >= t.kc else k - pc
        pack_a(a + pc * cs, rs, cs, m, kc, out + rows * pc, t.mr)


cdef void pack_b(const real* b, Py_ssize_t rs, Py_ssize_t cs, Py_ssize_t kc, Py_ssize_t nc,
                 real* out, Py_ssize_t nr) noexcept nogil:
    """B[kc x nc] (element strides rs, cs) -> NR-column panels, each kc x NR, zero-padded."""
    cdef Py_ssize_t q, q_block, j, k, cols
    cdef const real* src
    cdef real* dst
    for q_block in range((nc + nr - 1) // nr):
        q = q_block * nr
        cols = nr if nc - q >= nr else nc - q
        dst = out + q * kc
        if cs == 1:
            for k in range(kc):
                memcpy(dst + k * nr, b + k * rs + q, cols * sizeof(real))
                for j in range(cols, nr):
                    dst[k * nr + j] = 0
        else:
            for k in range(kc):
                src = b + k * rs + q * cs
                for j in range(cols):
                    dst[k * nr + j] = src[j * cs]
                for j in range(cols, nr):
                    dst[k * nr + j] = 0


cdef inline void run_ukernel(Py_ssize_t kc, const real* a, const real* b, real* c,
                             Py_ssize_t ldc, bint accumulate) noexcept nogil:
    if real is float:
        _KS.f32(kc, a, 0, b, c, ldc, accumulate)
    else:
        _KS.f64(kc, a, 0, b, c, ldc, accumulate)


cdef inline void run_direct_ukernel(Py_ssize_t kc, const real* a, Py_ssize_t lda, const real* b,
                                    real* c, Py_ssize_t ldc, bint accumulate) noexcept nogil:
    if real is float:
        _KS.direct_f32(kc, a, lda, b, c, ldc, accumulate)
    else:
        _KS.direct_f64(kc, a, lda, b, c, ldc, accumulate)


cdef void macro_kernel(Py_ssize_t mc, Py_ssize_t nc, Py_ssize_t kc, const real* a,
                       Py_ssize_t lda, const real* bp, real* c, Py_ssize_t ldc, bint accumulate,
                       const Py_ssize_t* depth_a, const Py_ssize_t* depth_b, real* abuf,
                       Tiling t) noexcept nogil:
    """C[mc x nc] (+)= A[mc x kc] @ B[kc x nc], B packed.

    A is packed when ``lda == 0``, else read in place from a row-major matrix with row stride
    ``lda`` (its last, partial row panel is packed into ``abuf``: reading past A is not allowed).
    ``depth_a`` / ``depth_b`` are NULL or hold ``[lo, hi)`` per A / B micro-panel: the depth
    range outside which that panel is zero. The kernel then skips the rest — this is how the
    convolutions skip kernel taps that fall into the zero padding. Partial edge tiles go via
    a scratch tile.
    """
    cdef Py_ssize_t ir, jr, ir_block, jr_block, i, j, rows, cols, lo, hi
    cdef bint packed_panel
    cdef real scratch[MAX_TILE]
    cdef const real* a_panel
    cdef real* cij
    for ir_block in range((mc + t.mr - 1) // t.mr):
        ir = ir_block * t.mr
        rows = t.mr if mc - ir >= t.mr else mc - ir
        packed_panel = lda == 0 or rows < t.mr
        if lda == 0:
            a_panel = a + ir * kc
        elif rows < t.mr:
            pack_a(a + ir * lda, lda, 1, rows, kc, abuf, t.mr)
            a_panel = abuf
        else:
            a_panel = a + ir * lda
        for jr_block in range((nc + t.nr - 1) // t.nr):
            jr = jr_block * t.nr
            cols = t.nr if nc - jr >= t.nr else nc - jr
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
            cij = c + ir * ldc + jr
            if rows == t.mr and cols == t.nr:
                if packed_panel:
                    run_ukernel(hi - lo, a_panel + lo * t.mr, bp + jr * kc + lo * t.nr, cij,
                                ldc, accumulate)
                else:
                    run_direct_ukernel(hi - lo, a_panel + lo, lda, bp + jr * kc + lo * t.nr,
                                       cij, ldc, accumulate)
                continue
            if packed_panel:
                run_ukernel(hi - lo, a_panel + lo * t.mr, bp + jr * kc + lo * t.nr, scratch,
                            t.nr, False)
            else:
                run_direct_ukernel(hi - lo, a_panel + lo, lda, bp + jr * kc + lo * t.nr,
                                   scratch, t.nr, False)
            for i in range(rows):
                if accumulate:
                    for j in range(cols):
                        cij[i * ldc + j] += scratch[i * t.nr + j]
                else:
                    for j in range(cols):
                        cij[i * ldc + j] = scratch[i * t.nr + j]


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

    ``abuf`` holds ``round_up(mc, mr) * kc`` and ``bbuf`` ``kc * round_up(nc, nr)`` elements.
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
            for ic_block in range((m + t.mc - 1) // t.mc):
                ic = ic_block * t.mc
                mc = t.mc if m - ic >= t.mc else m - ic
                if direct:
                    macro_kernel(mc, nc, kc, a + ic * rsa + pc, rsa, bbuf, c + ic * ldc + jc,
                                 ldc, accumulate or pc > 0, NULL, NULL, abuf, t)
                else:
                    pack_a(a + ic * rsa + pc * csa, rsa, csa, mc, kc, abuf, t.mr)
                    macro_kernel(mc, nc, kc, abuf, 0, bbuf, c + ic * ldc + jc, ldc,
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


cdef int gemm_parallel(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                       const real* a, Py_ssize_t rsa, Py_ssize_t csa,
                       const real* b, Py_ssize_t rsb, Py_ssize_t csb,
                       real* c, Py_ssize_t ldc, bint accumulate, int threads) noexcept nogil:
    """C (+)= A @ B on up to ``threads`` threads. Returns -1 if the pack buffers do not fit."""
    cdef Tiling t = tiling(sizeof(real))
    cdef int mt, nt, used, tile
    cdef Py_ssize_t abuf_len = round_up(t.mc, t.mr) * t.kc
    cdef Py_ssize_t per_thread = abuf_len + t.kc * round_up(t.nc, t.nr)
    cdef Py_ssize_t m0, m1, n0, n1
    cdef real* buffers
    cdef real* mine
    if m == 0 or n == 0:
        return 0
    used = _grid(m, n, k, threads, t, &mt, &nt)
    buffers = <real*>malloc(used * per_thread * sizeof(real))
    if buffers == NULL:
        return -1
    for tile in prange(used, num_threads=used, schedule="static", chunksize=1):
        mine = buffers + omp_get_thread_num() * per_thread
        m0 = _part_start((m + t.mr - 1) // t.mr, mt, tile // nt, t.mr, m)
        m1 = _part_start((m + t.mr - 1) // t.mr, mt, tile // nt + 1, t.mr, m)
        n0 = _part_start((n + t.nr - 1) // t.nr, nt, tile % nt, t.nr, n)
        n1 = _part_start((n + t.nr - 1) // t.nr, nt, tile % nt + 1, t.nr, n)
        gemm_tile(m1 - m0, n1 - n0, k, a + m0 * rsa, rsa, csa, b + n0 * csb, rsb, csb,
                  c + m0 * ldc + n0, ldc, accumulate, mine, mine + abuf_len, t)
    free(buffers)
    return 0


def gemm(const real[:, :] a, const real[:, :] b, real[:, ::1] c, bint accumulate, int threads):
    """``c (+)= a @ b`` for strided 2-D ``a``, ``b`` and row-contiguous ``c`` (same dtype).

    Shapes and dtypes are checked by the caller (``convlab._cpu.backend``).
    """
    cdef Py_ssize_t isz = sizeof(real)
    cdef Py_ssize_t m = a.shape[0], k = a.shape[1], n = b.shape[1]
    cdef int status
    if m == 0 or n == 0:
        return
    with nogil:
        status = gemm_parallel(m, n, k, &a[0, 0] if k else <real*>NULL,
                               a.strides[0] // isz, a.strides[1] // isz,
                               &b[0, 0] if k else <real*>NULL,
                               b.strides[0] // isz, b.strides[1] // isz,
                               &c[0, 0], c.strides[0] // isz, accumulate, threads)
    if status:
        raise MemoryError("matmul: could not allocate the packing buffers")
