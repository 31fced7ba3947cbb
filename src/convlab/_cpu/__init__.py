"""CPU backend: Cython + OpenMP kernels (``_gemm``, ``_im2col``, ``_conv``, ``_pool``)."""
