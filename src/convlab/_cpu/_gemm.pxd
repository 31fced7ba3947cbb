# The packed-panel GEMM engine shared by matmul and the convolution kernels.
from libc.stdint cimport int64_t

ctypedef fused real:
    float
    double

cdef struct Tiling:
    Py_ssize_t mr   # micro-tile rows (broadcast operand)
    Py_ssize_t nr   # micro-tile columns (vector operand)
    Py_ssize_t kc   # depth of one packed block
    Py_ssize_t mc   # rows of one packed A block
    Py_ssize_t nc   # columns of one packed B block

cdef int active_isa() noexcept nogil
cdef void* buffer_alloc(size_t nbytes) noexcept nogil
cdef Tiling tiling(Py_ssize_t itemsize) noexcept nogil
cdef Py_ssize_t round_up(Py_ssize_t x, Py_ssize_t m) noexcept nogil

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
