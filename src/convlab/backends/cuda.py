"""``convlab.backends.cuda``: ``torch.backends.cuda.matmul.allow_tf32`` and friends.

As in PyTorch, ``matmul.allow_tf32`` is another spelling of the float32 matmul precision:
setting it True is ``convlab.set_float32_matmul_precision("high")`` (TF32 tensor cores on
GPUs that have them), False is ``"highest"``, and reading it says whether the precision is
below ``"highest"``. The reduced-precision-reduction switches are plain attributes, accepted
so programs that set them run unchanged.
"""

from __future__ import annotations

__all__ = ["matmul", "is_built"]


class _MatmulSwitches:
    """``torch.backends.cuda.matmul``: ``allow_tf32`` tied to the matmul precision."""

    allow_fp16_reduced_precision_reduction = True
    allow_bf16_reduced_precision_reduction = True

    @property
    def allow_tf32(self) -> bool:
        from convlab import _precision

        return _precision.get_float32_matmul_precision() != "highest"

    @allow_tf32.setter
    def allow_tf32(self, value: bool) -> None:
        from convlab import _precision

        _precision.set_float32_matmul_precision("high" if value else "highest")


#: ``matmul.allow_tf32`` (the precision switch) and the reduced-precision-reduction flags.
matmul = _MatmulSwitches()


def is_built() -> bool:
    """True: convlab's GPU backend is part of every install (it needs CuPy at run time)."""
    return True
