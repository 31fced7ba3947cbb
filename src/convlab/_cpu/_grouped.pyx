# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Direct grouped convolution over NCHW / OIHW arrays: depthwise layers (one input channel per
group, any channel multiplier) and groups of a few channels, where an im2col + GEMM is a stack
of tiny, memory-bound products.

Depthwise layers with one output per channel on small planes take a third, channels-last
path (``*_cl``): each image transposed in scratch, every tap a pass over the channels.

The loops live in ``include/grouped_direct.h`` (in a baseline, an AVX2 and an AVX-512
version). Equal strides take its flat path: planes zero-padded into per-thread scratch, every
tap one pass over a whole plane; units are (image, group) for the forward and the input
gradient and groups for the weight gradient (each sums over the batch itself, in a fixed
order). Other strides take the row path: output planes (n, o), input planes (n, c), output
channels.
"""
from cython.parallel cimport prange
from convlab._cpu._openmp cimport omp_get_thread_num

import numpy as np

ctypedef fused real:
    float
    double

cdef extern from "grouped_direct.h" nogil:
    ctypedef struct convlab_gconv_geom:
        Py_ssize_t N, C, H, W, O, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW, CG, OG
    void convlab_gconv_forward_f32(int, const float*, const float*, const float*, float*,
                                   const convlab_gconv_geom*, Py_ssize_t, Py_ssize_t)
    void convlab_gconv_forward_f64(int, const double*, const double*, const double*, double*,
                                   const convlab_gconv_geom*, Py_ssize_t, Py_ssize_t)
    void convlab_gconv_backward_data_f32(int, const float*, const float*, float*,
                                         const convlab_gconv_geom*, Py_ssize_t, Py_ssize_t)
    void convlab_gconv_backward_data_f64(int, const double*, const double*, double*,
                                         const convlab_gconv_geom*, Py_ssize_t, Py_ssize_t)
    void convlab_gconv_backward_weight_f32(int, const float*, const float*, float*, float*,
                                           double*, const convlab_gconv_geom*, Py_ssize_t)
    void convlab_gconv_backward_weight_f64(int, const double*, const double*, double*,
                                           double*, double*, const convlab_gconv_geom*,
                                           Py_ssize_t)
    void convlab_gconv_flat_forward_f32(int, const float*, const float*, const float*, float*,
                                        float*, float*, const convlab_gconv_geom*, Py_ssize_t,
                                        Py_ssize_t)
    void convlab_gconv_flat_forward_f64(int, const double*, const double*, const double*,
                                        double*, double*, double*, const convlab_gconv_geom*,
                                        Py_ssize_t, Py_ssize_t)
    void convlab_gconv_flat_backward_data_f32(int, const float*, const float*, float*, float*,
                                              float*, const convlab_gconv_geom*, Py_ssize_t,
                                              Py_ssize_t)
    void convlab_gconv_flat_backward_data_f64(int, const double*, const double*, double*,
                                              double*, double*, const convlab_gconv_geom*,
                                              Py_ssize_t, Py_ssize_t)
    void convlab_gconv_flat_backward_weight_f32(int, const float*, const float*, float*,
                                                float*, float*, double*,
                                                const convlab_gconv_geom*, Py_ssize_t)
    void convlab_gconv_flat_backward_weight_f64(int, const double*, const double*, double*,
                                                double*, double*, double*,
                                                const convlab_gconv_geom*, Py_ssize_t)
    void convlab_gconv_flat_scratch_f32(const convlab_gconv_geom*, Py_ssize_t*, Py_ssize_t*)
    void convlab_gconv_cl_forward_f32(int, const float*, const float*, const float*, float*,
                                      float*, float*, const convlab_gconv_geom*, Py_ssize_t)
    void convlab_gconv_cl_forward_f64(int, const double*, const double*, const double*,
                                      double*, double*, double*, const convlab_gconv_geom*,
                                      Py_ssize_t)
    void convlab_gconv_cl_backward_data_f32(int, const float*, const float*, float*, float*,
                                            float*, const convlab_gconv_geom*, Py_ssize_t)
    void convlab_gconv_cl_backward_data_f64(int, const double*, const double*, double*,
                                            double*, double*, const convlab_gconv_geom*,
                                            Py_ssize_t)
    void convlab_gconv_cl_backward_weight_f32(int, const float*, const float*, double*,
                                              float*, float*, float*,
                                              const convlab_gconv_geom*, Py_ssize_t)
    void convlab_gconv_cl_backward_weight_f64(int, const double*, const double*, double*,
                                              double*, double*, double*,
                                              const convlab_gconv_geom*, Py_ssize_t)


cdef convlab_gconv_geom _geometry(const Py_ssize_t* x_shape, const Py_ssize_t* w_shape,
                                  const Py_ssize_t* y_shape, tuple params, Py_ssize_t groups):
    cdef convlab_gconv_geom g
    g.N, g.C, g.H, g.W = x_shape[0], x_shape[1], x_shape[2], x_shape[3]
    g.O, g.CG, g.KH, g.KW = w_shape[0], w_shape[1], w_shape[2], w_shape[3]
    g.OH, g.OW = y_shape[2], y_shape[3]
    g.SH, g.SW, g.PH, g.PW, g.DH, g.DW = params
    g.OG = g.O // groups
    return g


cdef tuple _scratch(const convlab_gconv_geom* g, int threads, int kind):
    """Per-thread scratch of the flat path: padded input planes and laid-out output planes."""
    cdef Py_ssize_t pad, ext
    convlab_gconv_flat_scratch_f32(g, &pad, &ext)  # sizes in elements, either dtype
    dtype = np.float32 if kind == 1 else np.float64
    rows = max(threads, 1)
    return np.empty((rows, pad), dtype), np.empty((rows, ext), dtype)


def forward(const real[:, :, :, ::1] x, const real[:, :, :, ::1] weight,
            const real[::1] bias, real[:, :, :, ::1] y, tuple params, Py_ssize_t groups,
            int isa, int threads):
    """``y`` = the grouped convolution of ``x`` (plus ``bias`` unless None).

    ``params`` is (SH, SW, PH, PW, DH, DW); ``isa`` 0 baseline, 1 AVX2, 2 AVX-512.
    """
    cdef convlab_gconv_geom g = _geometry(x.shape, weight.shape, y.shape, params, groups)
    cdef Py_ssize_t i, units = g.N * g.O, groups_ = g.O // g.OG
    cdef const real* b = &bias[0] if bias is not None else NULL
    cdef real[:, ::1] pad, ext
    cdef int t
    if g.SH == g.SW:
        pad, ext = _scratch(&g, threads, 1 if real is float else 2)
        for i in prange(g.N * groups_, nogil=True, num_threads=threads, schedule="static"):
            t = omp_get_thread_num()
            if real is float:
                convlab_gconv_flat_forward_f32(isa, &x[0, 0, 0, 0], &weight[0, 0, 0, 0], b,
                                               &y[0, 0, 0, 0], &pad[t, 0], &ext[t, 0], &g,
                                               i // groups_, i % groups_)
            else:
                convlab_gconv_flat_forward_f64(isa, &x[0, 0, 0, 0], &weight[0, 0, 0, 0], b,
                                               &y[0, 0, 0, 0], &pad[t, 0], &ext[t, 0], &g,
                                               i // groups_, i % groups_)
        return
    for i in prange(units, nogil=True, num_threads=threads, schedule="static"):
        if real is float:
            convlab_gconv_forward_f32(isa, &x[0, 0, 0, 0], &weight[0, 0, 0, 0], b,
                                      &y[0, 0, 0, 0], &g, i // g.O, i % g.O)
        else:
            convlab_gconv_forward_f64(isa, &x[0, 0, 0, 0], &weight[0, 0, 0, 0], b,
                                      &y[0, 0, 0, 0], &g, i // g.O, i % g.O)


def backward_data(const real[:, :, :, ::1] grad_output, const real[:, :, :, ::1] weight,
                  real[:, :, :, ::1] dx, tuple params, Py_ssize_t groups, int isa,
                  int threads):
    """``dx`` = the input gradient of the grouped convolution (every element written)."""
    cdef convlab_gconv_geom g = _geometry(dx.shape, weight.shape, grad_output.shape, params,
                                          groups)
    cdef Py_ssize_t i, units = g.N * g.C, groups_ = g.O // g.OG
    cdef real[:, ::1] pad, ext
    cdef int t
    if g.SH == g.SW:
        pad, ext = _scratch(&g, threads, 1 if real is float else 2)
        for i in prange(g.N * groups_, nogil=True, num_threads=threads, schedule="static"):
            t = omp_get_thread_num()
            if real is float:
                convlab_gconv_flat_backward_data_f32(isa, &grad_output[0, 0, 0, 0],
                                                     &weight[0, 0, 0, 0], &dx[0, 0, 0, 0],
                                                     &pad[t, 0], &ext[t, 0], &g,
                                                     i // groups_, i % groups_)
            else:
                convlab_gconv_flat_backward_data_f64(isa, &grad_output[0, 0, 0, 0],
                                                     &weight[0, 0, 0, 0], &dx[0, 0, 0, 0],
                                                     &pad[t, 0], &ext[t, 0], &g,
                                                     i // groups_, i % groups_)
        return
    for i in prange(units, nogil=True, num_threads=threads, schedule="static"):
        if real is float:
            convlab_gconv_backward_data_f32(isa, &grad_output[0, 0, 0, 0],
                                            &weight[0, 0, 0, 0], &dx[0, 0, 0, 0], &g,
                                            i // g.C, i % g.C)
        else:
            convlab_gconv_backward_data_f64(isa, &grad_output[0, 0, 0, 0],
                                            &weight[0, 0, 0, 0], &dx[0, 0, 0, 0], &g,
                                            i // g.C, i % g.C)


def backward_weight(const real[:, :, :, ::1] grad_output, const real[:, :, :, ::1] x,
                    real[:, :, :, ::1] dw, tuple params, Py_ssize_t groups, int isa,
                    int threads):
    """``dw`` = the weight gradient of the grouped convolution (every element written)."""
    cdef convlab_gconv_geom g = _geometry(x.shape, dw.shape, grad_output.shape, params, groups)
    cdef Py_ssize_t o, taps = g.CG * g.KH * g.KW, grp, groups_ = g.O // g.OG
    cdef int t
    cdef real[:, ::1] pad, ext
    cdef double[:, ::1] sums
    if g.SH == g.SW:
        pad, ext = _scratch(&g, threads, 1 if real is float else 2)
        sums = np.empty((max(threads, 1), g.OG * taps), np.float64)
        for grp in prange(groups_, nogil=True, num_threads=threads, schedule="dynamic"):
            t = omp_get_thread_num()
            if real is float:
                convlab_gconv_flat_backward_weight_f32(isa, &grad_output[0, 0, 0, 0],
                                                       &x[0, 0, 0, 0], &dw[0, 0, 0, 0],
                                                       &pad[t, 0], &ext[t, 0], &sums[t, 0],
                                                       &g, grp)
            else:
                convlab_gconv_flat_backward_weight_f64(isa, &grad_output[0, 0, 0, 0],
                                                       &x[0, 0, 0, 0], &dw[0, 0, 0, 0],
                                                       &pad[t, 0], &ext[t, 0], &sums[t, 0],
                                                       &g, grp)
        return
    # per-thread scratch: the lane sums of one image and their double totals
    lanes = np.empty((max(threads, 1), taps * g.OW),
                     np.float32 if real is float else np.float64)
    totals = np.empty((max(threads, 1), taps), np.float64)
    cdef real[:, ::1] acc = lanes
    cdef double[:, ::1] total = totals
    for o in prange(g.O, nogil=True, num_threads=threads, schedule="dynamic"):
        t = omp_get_thread_num()
        if real is float:
            convlab_gconv_backward_weight_f32(isa, &grad_output[0, 0, 0, 0], &x[0, 0, 0, 0],
                                              &dw[0, 0, 0, 0], &acc[t, 0], &total[t, 0], &g, o)
        else:
            convlab_gconv_backward_weight_f64(isa, &grad_output[0, 0, 0, 0], &x[0, 0, 0, 0],
                                              &dw[0, 0, 0, 0], &acc[t, 0], &total[t, 0], &g, o)


# -- channels-last path: depthwise, multiplier 1, small planes ----------------------------------
def forward_cl(const real[:, :, :, ::1] x, const real[:, ::1] weight_t, const real[::1] bias,
               real[:, :, :, ::1] y, tuple params, int isa, int threads):
    """``y`` = the depthwise convolution of ``x``; ``weight_t`` is the weight as (taps, C)."""
    cdef convlab_gconv_geom g
    g.N, g.C, g.H, g.W = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
    g.O, g.CG, g.OG, g.OH, g.OW = y.shape[1], 1, 1, y.shape[2], y.shape[3]
    g.SH, g.SW, g.PH, g.PW, g.DH, g.DW = params[:6]
    g.KH, g.KW = params[6], params[7]
    cdef const real* b = &bias[0] if bias is not None else NULL
    cdef Py_ssize_t n
    cdef int t
    dtype = np.float32 if real is float else np.float64
    cdef real[:, ::1] xt = np.empty((max(threads, 1), g.H * g.W * g.C), dtype)
    cdef real[:, ::1] yt = np.empty((max(threads, 1), g.OH * g.OW * g.C), dtype)
    for n in prange(g.N, nogil=True, num_threads=threads, schedule="static"):
        t = omp_get_thread_num()
        if real is float:
            convlab_gconv_cl_forward_f32(isa, &x[0, 0, 0, 0], &weight_t[0, 0], b, &y[0, 0, 0, 0],
                                         &xt[t, 0], &yt[t, 0], &g, n)
        else:
            convlab_gconv_cl_forward_f64(isa, &x[0, 0, 0, 0], &weight_t[0, 0], b, &y[0, 0, 0, 0],
                                         &xt[t, 0], &yt[t, 0], &g, n)


def backward_data_cl(const real[:, :, :, ::1] grad_output, const real[:, ::1] weight_t,
                     real[:, :, :, ::1] dx, tuple params, int isa, int threads):
    """``dx`` = the input gradient of the depthwise convolution (every element written)."""
    cdef convlab_gconv_geom g
    g.N, g.C, g.H, g.W = dx.shape[0], dx.shape[1], dx.shape[2], dx.shape[3]
    g.O, g.CG, g.OG = grad_output.shape[1], 1, 1
    g.OH, g.OW = grad_output.shape[2], grad_output.shape[3]
    g.SH, g.SW, g.PH, g.PW, g.DH, g.DW = params[:6]
    g.KH, g.KW = params[6], params[7]
    cdef Py_ssize_t n
    cdef int t
    dtype = np.float32 if real is float else np.float64
    cdef real[:, ::1] dxt = np.empty((max(threads, 1), g.H * g.W * g.C), dtype)
    cdef real[:, ::1] dyt = np.empty((max(threads, 1), g.OH * g.OW * g.C), dtype)
    for n in prange(g.N, nogil=True, num_threads=threads, schedule="static"):
        t = omp_get_thread_num()
        if real is float:
            convlab_gconv_cl_backward_data_f32(isa, &grad_output[0, 0, 0, 0], &weight_t[0, 0],
                                               &dx[0, 0, 0, 0], &dxt[t, 0], &dyt[t, 0], &g, n)
        else:
            convlab_gconv_cl_backward_data_f64(isa, &grad_output[0, 0, 0, 0], &weight_t[0, 0],
                                               &dx[0, 0, 0, 0], &dxt[t, 0], &dyt[t, 0], &g, n)


def backward_weight_cl(const real[:, :, :, ::1] grad_output, const real[:, :, :, ::1] x,
                       tuple params, int isa, int threads):
    """The depthwise weight gradient as (threads, taps, C) float64 partial sums: each thread's
    images (a static split); the caller adds them up in thread order."""
    cdef convlab_gconv_geom g
    g.N, g.C, g.H, g.W = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
    g.O, g.CG, g.OG = grad_output.shape[1], 1, 1
    g.OH, g.OW = grad_output.shape[2], grad_output.shape[3]
    g.SH, g.SW, g.PH, g.PW, g.DH, g.DW = params[:6]
    g.KH, g.KW = params[6], params[7]
    cdef Py_ssize_t n, taps = g.KH * g.KW
    cdef int t
    dtype = np.float32 if real is float else np.float64
    rows = max(threads, 1)
    parts = np.zeros((rows, taps * g.C), np.float64)
    cdef double[:, ::1] part = parts
    cdef real[:, ::1] xt = np.empty((rows, g.H * g.W * g.C), dtype)
    cdef real[:, ::1] dyt = np.empty((rows, g.OH * g.OW * g.C), dtype)
    cdef real[:, ::1] acc = np.empty((rows, taps * g.C), dtype)
    for n in prange(g.N, nogil=True, num_threads=threads, schedule="static"):
        t = omp_get_thread_num()
        if real is float:
            convlab_gconv_cl_backward_weight_f32(isa, &grad_output[0, 0, 0, 0], &x[0, 0, 0, 0],
                                                 &part[t, 0], &xt[t, 0], &dyt[t, 0], &acc[t, 0],
                                                 &g, n)
        else:
            convlab_gconv_cl_backward_weight_f64(isa, &grad_output[0, 0, 0, 0], &x[0, 0, 0, 0],
                                                 &part[t, 0], &xt[t, 0], &dyt[t, 0], &acc[t, 0],
                                                 &g, n)
    return parts.reshape(rows, taps, g.C)
