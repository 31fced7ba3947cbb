"""``Tensor`` methods that are thin wrappers over the op modules (comparisons, indexing, sorting).

They live in a mixin so that ``_tensor.py`` keeps the tensor's core: storage, autograd state,
conversion and in-place writes.
"""

from __future__ import annotations

__all__ = ["TensorMethods"]


class TensorMethods:
    """Methods of :class:`convlab.Tensor` that forward to functions of the op modules."""

    __slots__ = ()
