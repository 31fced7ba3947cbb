"""``Embedding``: a lookup table of learnable vectors, one row per token id."""

from __future__ import annotations

import numbers
from typing import Any

from convlab import _creation
from convlab._ops.embedding import embedding
from convlab._tensor import Tensor
from convlab.autograd import no_grad
from convlab.nn import init
from convlab.nn.module import Module
from convlab.nn.parameter import Parameter

__all__ = ["Embedding"]


class Embedding(Module):
    """Rows of ``weight`` (num_embeddings, embedding_dim) looked up by integer ids
    (``torch.nn.Embedding``); the weight starts from N(0, 1), the padding row at zero.

    Args:
        num_embeddings: Size of the vocabulary.
        embedding_dim: Length of each vector.
        padding_idx: An id whose row starts at zero and gets no gradient (negative counts
            from the end).
        max_norm: Rows looked up whose norm exceeds it are scaled in place to that norm.
        norm_type: The p of the p-norm for ``max_norm``.
        scale_grad_by_freq: Divide each row's gradient by its id's count in the batch.
        sparse: Only False: gradients are dense.
        _weight: An initial weight (as ``torch.nn.Embedding``; prefer :meth:`from_pretrained`).
        _freeze: With ``_weight``, whether it is frozen.
        device: Where to create the weight.
        dtype: The weight's dtype (float32 by default).

    Raises:
        ValueError: For a ``padding_idx`` outside the table or a ``_weight`` of another shape.
        NotImplementedError: For ``sparse=True``.

    Example:
        >>> import convlab
        >>> emb = convlab.nn.Embedding(10, 3, padding_idx=0)
        >>> emb(convlab.tensor([[1, 2, 0], [4, 3, 9]])).shape
        (2, 3, 3)
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: Tensor | None = None,
        _freeze: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        for value, name in ((num_embeddings, "num_embeddings"), (embedding_dim, "embedding_dim")):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise ValueError(f"{name}: expected a non-negative int, got {value!r}")
        if sparse:
            raise NotImplementedError(
                "Embedding: sparse gradients are not supported; use sparse=False"
            )
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError("Padding_idx must be within num_embeddings")
            padding_idx = padding_idx % num_embeddings
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.padding_idx, self.max_norm, self.norm_type = padding_idx, max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = bool(scale_grad_by_freq), False
        if _weight is None:
            weight = _creation.empty(
                self.num_embeddings, self.embedding_dim, dtype=dtype, device=device or "cpu"
            )
            self.weight = Parameter(weight, requires_grad=not _freeze)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (self.num_embeddings, self.embedding_dim):
                raise ValueError("Shape of weight does not match num_embeddings and embedding_dim")
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        """PyTorch's default: N(0, 1), with the padding row zero."""
        init.normal_(self.weight)
        self._fill_padding_idx_with_zero()

    def _fill_padding_idx_with_zero(self) -> None:
        if self.padding_idx is not None:
            with no_grad():
                self.weight._data[self.padding_idx] = 0

    def forward(self, input: Tensor) -> Tensor:
        """``input.shape + (embedding_dim,)`` rows of the weight."""
        return embedding(
            input,
            self.weight,
            self.padding_idx,
            self.max_norm,
            self.norm_type,
            self.scale_grad_by_freq,
            self.sparse,
        )

    @classmethod
    def from_pretrained(
        cls,
        embeddings: Tensor,
        freeze: bool = True,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
    ) -> Embedding:
        """An Embedding whose weight is ``embeddings`` (2-D), frozen unless ``freeze=False``.

        Raises:
            ValueError: For an ``embeddings`` that is not 2-D.
        """
        if not isinstance(embeddings, Tensor) or embeddings.ndim != 2:
            raise ValueError("Embeddings parameter is expected to be 2-dimensional")
        rows, cols = embeddings.shape
        return cls(
            rows,
            cols,
            padding_idx,
            max_norm,
            norm_type,
            scale_grad_by_freq,
            sparse,
            _weight=embeddings,
            _freeze=freeze,
        )

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            text += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            text += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            text += ", scale_grad_by_freq=True"
        return text
