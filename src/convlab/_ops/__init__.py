"""Differentiable ops: ``Function`` subclasses on raw arrays and thin functions on tensors.

Everything here is written once against ``backend.xp`` (NumPy or CuPy); only convolution,
pooling and matrix products call hand-written backend kernels.
"""
