# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Batch norm -> (k, 1) max pool -> ReLU / Leaky ReLU in one parallel pass over channels.

The unfused layers write the normalised tensor, read it to pool, write the pooled one and
read it again for the activation; here a channel's batch statistics (batch_norm.h's two
passes, so the same numbers) are followed by one pass that writes only the pooled, activated
output and a code byte per output (norm_pool.h). A channel of the chart CNN's batches fits in
the L2 cache, so the passes after the first mostly read from it.
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

cdef extern from "norm_pool.h" nogil:
    void convlab_np_forward_f32(int, const float*, float*, unsigned char*, Py_ssize_t, Py_ssize_t,
                                Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                                float, float, float, float)
    void convlab_np_forward_f64(int, const double*, double*, unsigned char*, Py_ssize_t,
                                Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                                Py_ssize_t, double, double, double, double)
    void convlab_np_grad_sums_f32(int, const float*, const unsigned char*, const float*,
                                  Py_ssize_t,
                                  Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                                  Py_ssize_t, double, float, double*, double*)
    void convlab_np_grad_sums_f64(int, const double*, const unsigned char*, const double*,
                                  Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                                  Py_ssize_t, Py_ssize_t, double, double, double*, double*)
    void convlab_np_grad_input_f32(int, const float*, const unsigned char*, const float*, float*,
                                   Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                                   Py_ssize_t, Py_ssize_t, float, float, float, float, float,
                                   int)
    void convlab_np_grad_input_f64(int, const double*, const unsigned char*, const double*,
                                   double*, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                                   Py_ssize_t, Py_ssize_t, Py_ssize_t, double, double, double,
                                   double, double, int)


def forward(const real[:, :, :, ::1] x, const real[::1] weight, const real[::1] bias,
            real[:, :, :, ::1] y, unsigned char[:, :, :, ::1] code, double[::1] mean,
            double[::1] var, bint batch_stats, double eps, Py_ssize_t k, double slope,
            int threads):
    """Fill ``y`` and ``code`` (N, C, OH, W) from (N, C, H, W) ``x``: batch norm (batch
    statistics into ``mean`` / ``var`` with ``batch_stats``, else read from them), max over
    windows of ``k`` rows, then Leaky ReLU (ReLU for ``slope`` 0). Arguments are pre-checked;
    ``weight`` / ``bias`` may be None."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t OH = y.shape[2], c  # >= 1: the caller checked the pool geometry
    cdef double invstd, scale, shift
    cdef int isa = active_isa()   # read once: every channel runs the same version
    if N * H * W == 0:
        return
    for c in prange(C, nogil=True, num_threads=threads, schedule="dynamic"):
        if batch_stats:
            if real is float:
                convlab_bn_stats_f32(isa, &x[0, 0, 0, 0], N, C, H * W, c, &mean[c], &var[c])
            else:
                convlab_bn_stats_f64(isa, &x[0, 0, 0, 0], N, C, H * W, c, &mean[c], &var[c])
        # as _norm.forward: the scale and shift in double, rounded once to T
        invstd = 1.0 / sqrt(var[c] + eps)
        scale = invstd * (weight[c] if weight is not None else 1.0)
        shift = bias[c] if bias is not None else 0.0
        if real is float:
            convlab_np_forward_f32(isa, &x[0, 0, 0, 0], &y[0, 0, 0, 0], &code[0, 0, 0, 0], N, C, H,
                                   W, OH, k, c, <float>mean[c], <float>scale, <float>shift,
                                   <float>slope)
        else:
            convlab_np_forward_f64(isa, &x[0, 0, 0, 0], &y[0, 0, 0, 0], &code[0, 0, 0, 0], N, C, H,
                                   W, OH, k, c, mean[c], scale, shift, slope)


def backward(const real[:, :, :, ::1] g, const unsigned char[:, :, :, ::1] code,
             const real[:, :, :, ::1] x, const double[::1] mean, const double[::1] invstd,
             const real[::1] weight, real[:, :, :, ::1] gx, double[::1] sum_g,
             double[::1] sum_g_xhat, bint batch_stats, Py_ssize_t k, double slope,
             int threads):
    """Sums ``sum(g')`` and ``sum(g' * x_hat)`` per channel (the bias and weight gradients),
    ``g'`` the gradient of (N, C, OH, W) ``g`` carried back through the activation and the
    pool, and unless ``gx`` is None the input gradient of (N, C, H, W) ``x``: through the batch
    statistics with ``batch_stats`` (as ``_norm.backward``), else ``g' * invstd * weight``."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t OH = g.shape[2], c
    cdef double scale, a, b, kk, count = <double>(N * H * W)
    cdef int isa = active_isa()   # read once: every channel runs the same version
    if N * H * W == 0:
        for c in range(C):
            sum_g[c] = 0.0
            sum_g_xhat[c] = 0.0
        return
    for c in prange(C, nogil=True, num_threads=threads, schedule="dynamic"):
        if real is float:
            convlab_np_grad_sums_f32(isa, &g[0, 0, 0, 0], &code[0, 0, 0, 0], &x[0, 0, 0, 0], N, C,
                                     H, W, OH, k, c, mean[c], <float>slope, &sum_g[c],
                                     &sum_g_xhat[c])
        else:
            convlab_np_grad_sums_f64(isa, &g[0, 0, 0, 0], &code[0, 0, 0, 0], &x[0, 0, 0, 0], N, C,
                                     H, W, OH, k, c, mean[c], slope, &sum_g[c],
                                     &sum_g_xhat[c])
        sum_g_xhat[c] = sum_g_xhat[c] * invstd[c]
        if gx is not None:
            scale = invstd[c] * (weight[c] if weight is not None else 1.0)
            a = scale
            if batch_stats:
                # gx = scale * (g' - sum_g / M - x_hat * sum_g_xhat / M)
                b = -scale * invstd[c] * sum_g_xhat[c] / count
                kk = -scale * sum_g[c] / count
            else:
                b = 0.0
                kk = 0.0
            if real is float:
                convlab_np_grad_input_f32(isa, &g[0, 0, 0, 0], &code[0, 0, 0, 0], &x[0, 0, 0, 0],
                                          &gx[0, 0, 0, 0], N, C, H, W, OH, k, c,
                                          <float>mean[c], <float>a, <float>b, <float>kk,
                                          <float>slope, batch_stats)
            else:
                convlab_np_grad_input_f64(isa, &g[0, 0, 0, 0], &code[0, 0, 0, 0], &x[0, 0, 0, 0],
                                          &gx[0, 0, 0, 0], N, C, H, W, OH, k, c,
                                          mean[c], a, b, kk, slope, batch_stats)
