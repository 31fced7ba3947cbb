# The packed-panel GEMM engine shared by matmul and the convolution kernels.
from libc.stdint cimport int64_t

ctypedef fused real:
    float
    double

cdef extern from "ukernels.h" nogil:
    ctypedef void (*convlab_ukr_f32)(int64_t, const float*, int64_t, const float*, float*,
                                     int64_t, int, int, int) noexcept nogil
    ctypedef void (*convlab_ukr_f64)(int64_t, const double*, int64_t, const double*, double*,
                                     int64_t, int, int, int) noexcept nogil
    ctypedef void (*convlab_ukr_bf16)(int64_t, const unsigned short*, const unsigned short*,
                                      float*, int64_t, int, int, int) noexcept nogil
    ctypedef struct convlab_kernel_set:
        int isa
        int mr32, nr32, mr64, nr64
        convlab_ukr_f32 f32, direct_f32
        convlab_ukr_f64 f64, direct_f64

cdef struct Tiling:
    # the micro-kernels the tile sizes below belong to, read once per call: set_isa from
    # another thread must not pair one ISA's panels with another's kernel
    const convlab_kernel_set* ks
    Py_ssize_t mr   # micro-tile rows (broadcast operand)
    Py_ssize_t nr   # micro-tile columns (vector operand)
    Py_ssize_t kc   # depth of one packed block
    Py_ssize_t mc   # rows of one packed A block
    Py_ssize_t nc   # columns of one packed B block
    # not NULL: float32 products in bfloat16 (include/bf16_pack.h): packers convert each panel
    # in place after filling it (bf16_panels), macro_kernel reads the pair layout
    convlab_ukr_bf16 bf16

cdef int active_isa() noexcept nogil
cdef void* buffer_alloc(size_t nbytes) noexcept nogil
cdef Tiling tiling(Py_ssize_t itemsize) noexcept nogil
cdef Tiling tiling_for(Py_ssize_t itemsize, bint bf16) noexcept nogil
cdef bint bf16_requested(Py_ssize_t itemsize) noexcept
cdef void bf16_panels(real* base, Py_ssize_t panels, Py_ssize_t kc, Py_ssize_t width,
                      Py_ssize_t lo, Py_ssize_t hi, Tiling t) noexcept nogil
# inline inside _gemm only: an inline body here changes how the compiler lays out _conv's
# kernels (its weight gradient ran slower); other modules call it through Cython's table
cdef Py_ssize_t round_up(Py_ssize_t x, Py_ssize_t m) noexcept nogil  # no-cython-lint

cdef void pack_a(const real* a, Py_ssize_t rs, Py_ssize_t cs, Py_ssize_t mc, Py_ssize_t kc,
                 real* out, Py_ssize_t mr) noexcept nogil
cdef void pack_a_full(const real* a, Py_ssize_t rs, Py_ssize_t cs, Py_ssize_t m, Py_ssize_t k,
                      real* out, Tiling t) noexcept nogil
cdef void pack_b(const real* b, Py_ssize_t rs, Py_ssize_t cs, Py_ssize_t kc, Py_ssize_t nc,
                 real* out, Py_ssize_t nr) noexcept nogil
cdef void macro_kernel(Py_ssize_t mc, Py_ssize_t nc, Py_ssize_t kc, const real* a,
                       Py_ssize_t lda, const real* bp, Py_ssize_t pw, real* c, Py_ssize_t ldc,
                       bint accumulate, const Py_ssize_t* depth_a, const Py_ssize_t* depth_b,
                       real* abuf, Tiling t) noexcept nogil
