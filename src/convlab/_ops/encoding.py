"""Index encodings: ``one_hot``."""

from __future__ import annotations

from convlab import _dtype
from convlab._tensor import Tensor

__all__ = ["one_hot"]


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """``int64`` tensor of shape ``(*tensor.shape, num_classes)`` with a 1 at each index
    (``torch.nn.functional.one_hot``).

    Args:
        tensor: An ``int64`` tensor of class indices.
        num_classes: The number of classes; -1 infers ``max + 1``.

    Raises:
        RuntimeError: For a non-int64 tensor, negative indices, indices not below
            ``num_classes``, or an empty tensor with ``num_classes=-1`` (as PyTorch).
    """
    if not isinstance(tensor, Tensor) or tensor._data.dtype != _dtype.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    xp = tensor._backend.xp
    data = tensor._data
    if num_classes == -1:
        if data.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(data.max()) + 1
    if data.size and int(data.min()) < 0:
        raise RuntimeError("Class values must be non-negative.")
    if data.size and int(data.max()) >= num_classes:
        raise RuntimeError("Class values must be smaller than num_classes.")
    classes = xp.arange(int(num_classes), dtype=data.dtype)
    return Tensor._wrap((data[..., None] == classes).astype(data.dtype), tensor._backend)
