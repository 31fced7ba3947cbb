"""``convlab.backends.cuda``: ``torch.backends.cuda.matmul.allow_tf32`` and friends, accepted.

convlab's GPU GEMM computes in fp32 regardless (see :func:`convlab.show_config`); the switches
are plain attributes so programs that set them run unchanged.
"""

from __future__ import annotations

from types import SimpleNamespace

__all__ = ["matmul", "is_built"]

#: ``matmul.allow_tf32`` / ``matmul.allow_bf16_reduced_precision_reduction`` as attributes.
matmul = SimpleNamespace(
    allow_tf32=False,
    allow_fp16_reduced_precision_reduction=True,
    allow_bf16_reduced_precision_reduction=True,
)


def is_built() -> bool:
    """True: convlab's GPU backend is part of every install (it needs CuPy at run time)."""
    return True
