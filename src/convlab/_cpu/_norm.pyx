# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Batch normalisation forward and backward, one parallel pass per step over channels.

NumPy's reductions over axes (0, 2, 3) of an NCHW array walk it with strides and allocate a
temporary per step; these kernels read each channel's contiguous runs instead, and never
store the normalised input (the backward recomputes it from ``x``).
"""
from cython.parallel cimport prange
from libc.math cimport sqrt

from convlab._cpu._gemm cimport active_isa

ctypedef fused real:
    float
    double

cdef extern from "batch_norm.h" nogil:
    void convlab_bn_stats_f32(int, const float*, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                              double*, double*)
    void convlab_bn_stats_f64(int, const double*, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                              double*, double*)
    void convlab_bn_apply_f32(int, const float*, float*, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                              Py_ssize_t, float, float, float)
    void convlab_bn_apply_f64(int, const double*, double*, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                              Py_ssize_t, double, double, double)
    void convlab_bn_grad_sums_f32(int, const float*, const float*, Py_ssize_t, Py_ssize_t,
                                  Py_ssize_t, Py_ssize_t, double, double*, double*)
    void convlab_bn_grad_sums_f64(int, const double*, const double*, Py_ssize_t, Py_ssize_t,
                                  Py_ssize_t, Py_ssize_t, double, double*, double*)
    void convlab_bn_grad_scale_f32(int, const float*, float*, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                                   Py_ssize_t, float)
    void convlab_bn_grad_scale_f64(int, const double*, double*, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                                   Py_ssize_t, double)
    void convlab_bn_grad_input_f32(int, const float*, const float*, float*, Py_ssize_t, Py_ssize_t,
                                   Py_ssize_t, Py_ssize_t, float, float, float, float)
    void convlab_bn_grad_input_f64(int, const double*, const double*, double*, Py_ssize_t,
                                   Py_ssize_t, Py_ssize_t, Py_ssize_t, double, double, double,
                                   double)


def forward(const real[:, :, ::1] x, const real[::1] weight, const real[::1] bias,
            real[:, :, ::1] y, double[::1] mean, double[::1] var, bint batch_stats,
            double eps, int threads):
    """``y = (x - mean) / sqrt(var + eps) * weight + bias`` per channel of (N, C, L) ``x``.

    With ``batch_stats`` the biased batch mean and variance are computed into ``mean`` and
    ``var``; otherwise they are read from them (the running statistics). ``weight`` / ``bias``
    may be None.
    """
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2], c
    cdef double invstd, scale, shift
    cdef int isa = active_isa()   # read once: every channel runs the same version
    if N * L == 0:
        return
    for c in prange(C, nogil=True, num_threads=threads, schedule="dynamic"):
        if batch_stats:
            if real is float:
                convlab_bn_stats_f32(isa, &x[0, 0, 0], N, C, L, c, &mean[c], &var[c])
            else:
                convlab_bn_stats_f64(isa, &x[0, 0, 0], N, C, L, c, &mean[c], &var[c])
        invstd = 1.0 / sqrt(var[c] + eps)
        scale = invstd * (weight[c] if weight is not None else 1.0)
        shift = bias[c] if bias is not None else 0.0
        if real is float:
            convlab_bn_apply_f32(isa, &x[0, 0, 0], &y[0, 0, 0], N, C, L, c, <float>mean[c],
                                 <float>scale, <float>shift)
        else:
            convlab_bn_apply_f64(isa, &x[0, 0, 0], &y[0, 0, 0], N, C, L, c, mean[c], scale, shift)


def backward(const real[:, :, ::1] g, const real[:, :, ::1] x, const double[::1] mean,
             const double[::1] invstd, const real[::1] weight, real[:, :, ::1] gx,
             double[::1] sum_g, double[::1] sum_g_xhat, bint batch_stats, int threads):
    """Sums ``sum(g)`` and ``sum(g * x_hat)`` per channel (the bias and weight gradients) and,
    unless ``gx`` is None, the input gradient: with ``batch_stats`` through the batch
    statistics, otherwise ``g * invstd * weight``."""
    cdef Py_ssize_t N = g.shape[0], C = g.shape[1], L = g.shape[2], c
    cdef double scale, a, b, k, count = <double>(N * L)
    cdef int isa = active_isa()   # read once: every channel runs the same version
    if N * L == 0:
        for c in range(C):
            sum_g[c] = 0.0
            sum_g_xhat[c] = 0.0
        return
    for c in prange(C, nogil=True, num_threads=threads, schedule="dynamic"):
        if real is float:
            convlab_bn_grad_sums_f32(isa, &g[0, 0, 0], &x[0, 0, 0], N, C, L, c, mean[c], &sum_g[c],
                                     &sum_g_xhat[c])
        else:
            convlab_bn_grad_sums_f64(isa, &g[0, 0, 0], &x[0, 0, 0], N, C, L, c, mean[c], &sum_g[c],
                                     &sum_g_xhat[c])
        sum_g_xhat[c] = sum_g_xhat[c] * invstd[c]
        if gx is not None:
            scale = invstd[c] * (weight[c] if weight is not None else 1.0)
            a = scale
            if batch_stats:
                # gx = scale * (g - sum_g / M - x_hat * sum_g_xhat / M)
                b = -scale * invstd[c] * sum_g_xhat[c] / count
                k = -scale * sum_g[c] / count
            else:
                b = 0.0
                k = 0.0
            if not batch_stats:
                if real is float:
                    convlab_bn_grad_scale_f32(isa, &g[0, 0, 0], &gx[0, 0, 0], N, C, L, c, <float>a)
                else:
                    convlab_bn_grad_scale_f64(isa, &g[0, 0, 0], &gx[0, 0, 0], N, C, L, c, a)
            elif real is float:
                convlab_bn_grad_input_f32(isa, &g[0, 0, 0], &x[0, 0, 0], &gx[0, 0, 0], N, C, L, c,
                                          <float>mean[c], <float>a, <float>b, <float>k)
            else:
                convlab_bn_grad_input_f64(isa, &g[0, 0, 0], &x[0, 0, 0], &gx[0, 0, 0], N, C, L, c,
                                          mean[c], a, b, k)
