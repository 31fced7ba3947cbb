# im2col on one image, shared by the explicit im2col / col2im kernels and the convolutions.
from convlab._cpu._gemm cimport real

cdef extern from "im2col_fill.h" nogil:
    ctypedef struct ConvGeom "convlab_conv_geom":
        Py_ssize_t C, H, W      # input channels and spatial size of one image
        Py_ssize_t KH, KW       # kernel
        Py_ssize_t SH, SW       # stride
        Py_ssize_t PH, PW       # zero padding (may be negative: the transposed conv crops)
        Py_ssize_t DH, DW       # dilation
        Py_ssize_t OH, OW       # output size

    ctypedef struct Segment "convlab_segment":
        Py_ssize_t panel, offset, src, len

cdef ConvGeom make_geom(Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t KH, Py_ssize_t KW,
                        Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH, Py_ssize_t PW,
                        Py_ssize_t DH, Py_ssize_t DW) noexcept nogil

cdef void im2col_fill(const real* plane, const ConvGeom* g, Py_ssize_t kh, Py_ssize_t kw,
                      Py_ssize_t oh, Py_ssize_t ow, Py_ssize_t count, real* dst, Py_ssize_t step,
                      Py_ssize_t panel, Py_ssize_t jump, bint slack) noexcept nogil
cdef Py_ssize_t floor_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil
cdef Py_ssize_t taps_lo(const ConvGeom* g, Py_ssize_t oh) noexcept nogil
cdef Py_ssize_t taps_hi(const ConvGeom* g, Py_ssize_t oh) noexcept nogil
cdef Py_ssize_t rows_lo(const ConvGeom* g, Py_ssize_t kh) noexcept nogil
cdef Py_ssize_t rows_hi(const ConvGeom* g, Py_ssize_t kh) noexcept nogil
cdef void col2im_add(const real* cols, Py_ssize_t ld, const ConvGeom* g, Py_ssize_t k0,
                     Py_ssize_t k1, Py_ssize_t p0, Py_ssize_t count, real* x) noexcept nogil

cdef bint can_gather(const ConvGeom* g) noexcept nogil
cdef Py_ssize_t padded_size(const ConvGeom* g) noexcept nogil
cdef void pad_image(const real* x, const ConvGeom* g, real* out) noexcept nogil
cdef Py_ssize_t make_segments(const ConvGeom* g, Py_ssize_t p0, Py_ssize_t count,
                              Py_ssize_t panel, Segment* seg) noexcept nogil
cdef const real* tap_source(const real* xpad, const ConvGeom* g, Py_ssize_t c, Py_ssize_t kh,
                            Py_ssize_t kw) noexcept nogil
cdef void gather_tap(const real* xpad, const ConvGeom* g, Py_ssize_t c, Py_ssize_t kh,
                     Py_ssize_t kw, real* dst, Py_ssize_t stride, const Segment* seg,
                     Py_ssize_t n, bint slack) noexcept nogil
