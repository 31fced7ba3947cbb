"""``embedding``: rows of a weight matrix picked by integer ids, with PyTorch's options."""

from __future__ import annotations

from typing import Any

import numpy as np

from convlab._tensor import Tensor
from convlab.autograd import Function, bump_version

__all__ = ["embedding"]


class _Embedding(Function):
    fresh_grads = True

    def forward(
        self,
        weight: Any,
        ids: Any = None,
        padding_idx: int | None = None,
        scale_grad_by_freq: bool = False,
    ) -> Any:
        self.ids, self.rows = ids, weight.shape[0]
        self.padding_idx, self.scale = padding_idx, scale_grad_by_freq
        return weight[ids]

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        flat = self.ids.reshape(-1)
        g = grad.reshape(flat.size, -1)
        if self.scale:
            # each id's gradient divided by how often it occurs in this batch (PyTorch)
            counts = xp.bincount(flat, minlength=self.rows)
            g = g / counts[flat][:, None].astype(g.dtype)
        dw = xp.zeros((self.rows, g.shape[1]), grad.dtype)
        if xp is np and flat.size:
            # sorted ids and one reduceat per run of equal ids: a vectorised scatter-add
            # (np.add.at walks the rows one by one)
            order = np.argsort(flat, kind="stable")
            ids = flat[order]
            starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
            dw[ids[starts]] = np.add.reduceat(g[order], starts, axis=0)
        elif hasattr(xp, "add") and hasattr(xp.add, "at"):
            xp.add.at(dw, flat, g)
        else:  # pragma: no cover - CuPy without ufunc.at
            import cupyx

            cupyx.scatter_add(dw, flat, g)
        if self.padding_idx is not None:
            dw[self.padding_idx] = 0
        return (dw,)


def _renorm(weight: Tensor, ids: Any, max_norm: float, norm_type: float) -> None:
    """PyTorch's ``max_norm``: rows of ``weight`` that ``ids`` picks and whose ``norm_type``
    norm exceeds ``max_norm`` are scaled in place to norm ``max_norm`` (outside autograd)."""
    xp = weight._backend.xp
    rows = xp.unique(ids.reshape(-1))
    data = weight._data
    picked = data[rows]
    norms = (xp.abs(picked) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
    scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(data.dtype)
    data[rows] = picked * scale[:, None]
    bump_version(data)


def embedding(
    input: Tensor,
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of ``weight`` (num_embeddings, embedding_dim) for integer ``input`` of any shape:
    the result is ``input.shape + (embedding_dim,)`` (``torch.nn.functional.embedding``).

    Args:
        input: Integer ids in ``[0, num_embeddings)``.
        weight: The embedding matrix.
        padding_idx: An id whose row gets no gradient (negative counts from the end).
        max_norm: Rows picked whose ``norm_type`` norm exceeds it are first scaled in place
            to that norm.
        norm_type: The p of the p-norm for ``max_norm``.
        scale_grad_by_freq: Divide each row's gradient by its id's count in ``input``.
        sparse: Only False (sparse gradients are not supported).

    Raises:
        IndexError: For an id outside ``[0, num_embeddings)``.
        TypeError: For a non-integer ``input``.
        NotImplementedError: For ``sparse=True``.
    """
    if sparse:
        raise NotImplementedError(
            "embedding: sparse gradients are not supported; use sparse=False (dense gradient)"
        )
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        bad = input if not isinstance(input, Tensor) else weight
        raise TypeError(f"embedding: expected Tensors, got {type(bad).__name__}")
    ids = input._data
    if ids.dtype.kind not in "iu":
        raise TypeError(
            f"embedding: expected input of an integer dtype (int64 or int32), got {ids.dtype}"
        )
    if weight.ndim != 2:
        raise ValueError(
            f"embedding: expected a 2-D weight (num_embeddings, embedding_dim), got shape "
            f"{tuple(weight.shape)}"
        )
    if input._backend is not weight._backend:
        raise RuntimeError(
            f"embedding: expected input and weight on one device, got {input.device} and "
            f"{weight.device}"
        )
    rows = weight.shape[0]
    if ids.size:
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= rows:
            bad_id = low if low < 0 else high
            raise IndexError(
                f"embedding: index {bad_id} is out of range for num_embeddings {rows} "
                f"(expected 0 <= id < {rows})"
            )
    if padding_idx is not None:
        if not -rows <= padding_idx < rows:
            raise ValueError("Padding_idx must be within num_embeddings")
        padding_idx = padding_idx % rows
    if max_norm is not None and ids.size:
        _renorm(weight, ids, float(max_norm), float(norm_type))
    return _Embedding.apply(
        weight, ids=ids, padding_idx=padding_idx, scale_grad_by_freq=bool(scale_grad_by_freq)
    )
