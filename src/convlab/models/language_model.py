"""A word-level language model: needle hw4's ``LanguageModel`` with the options of
pytorch/examples' ``word_language_model`` (dropout, tied weights), on convlab's recurrent
layers."""

from __future__ import annotations

from typing import Any

from convlab import nn
from convlab._tensor import Tensor

__all__ = ["LanguageModel", "SEQ_MODELS", "detach_hidden"]

#: ``seq_model`` names and the recurrent layer (and RNN non-linearity) each builds.
SEQ_MODELS = {
    "rnn": ("RNN", "tanh"),
    "rnn_tanh": ("RNN", "tanh"),
    "rnn_relu": ("RNN", "relu"),
    "lstm": ("LSTM", None),
    "gru": ("GRU", None),
}


def detach_hidden(hidden: Any) -> Any:
    """The carried recurrent state cut from its history (truncated back-propagation through
    time): a tensor, or a tuple of tensors (an LSTM's ``(h, c)``), detached."""
    if isinstance(hidden, tuple):
        return tuple(detach_hidden(h) for h in hidden)
    return hidden.detach()


class LanguageModel(nn.Module):
    """Embedding -> dropout -> RNN / LSTM / GRU -> dropout -> linear decoder, predicting the
    next word at every position.

    The submodules are named as in pytorch/examples' ``word_language_model`` (``encoder``,
    ``rnn``, ``decoder``), so its state dicts load; the embedding and decoder weights start
    uniform in ``[-0.1, 0.1]`` and the decoder bias at zero, as there.

    Args:
        embedding_size: Size of the word vectors.
        output_size: Vocabulary size (``len(corpus.dictionary)``).
        hidden_size: Features of the recurrent state.
        num_layers: Stacked recurrent layers.
        seq_model: ``"rnn"`` (tanh), ``"rnn_relu"``, ``"lstm"`` or ``"gru"``.
        dropout: Probability of zeroing the embedding output, the output of each recurrent
            layer (between layers inside the RNN) and the last layer's output.
        tied: Share the embedding matrix with the decoder (Press & Wolf; Inan et al.); needs
            ``hidden_size == embedding_size``.
        device: Where the parameters live.
        dtype: Their floating-point dtype.

    Raises:
        ValueError: For an unknown ``seq_model``, a ``dropout`` outside ``[0, 1]`` or ``tied``
            with different embedding and hidden sizes.

    Example:
        >>> import convlab
        >>> from convlab.models import LanguageModel
        >>> model = LanguageModel(30, 1000, hidden_size=10, num_layers=2, seq_model="lstm")
        >>> logits, hidden = model(convlab.zeros(35, 4, dtype=convlab.int64))
        >>> tuple(logits.shape)
        (140, 1000)
    """

    def __init__(
        self,
        embedding_size: int,
        output_size: int,
        hidden_size: int,
        num_layers: int = 1,
        seq_model: str = "rnn",
        dropout: float = 0.0,
        tied: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        kind = str(seq_model).lower()
        if kind not in SEQ_MODELS:
            raise ValueError(
                f"seq_model: expected one of {', '.join(SEQ_MODELS)}, got {seq_model!r}"
            )
        if not 0.0 <= float(dropout) <= 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1], got {dropout!r}")
        if tied and hidden_size != embedding_size:
            raise ValueError(
                f"tied: the decoder shares the embedding only when hidden_size == "
                f"embedding_size, got {hidden_size} and {embedding_size}"
            )
        layer, nonlinearity = SEQ_MODELS[kind]
        self.seq_model, self.num_layers, self.hidden_size = kind, num_layers, hidden_size
        self.tied = bool(tied)
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(output_size, embedding_size, device=device, dtype=dtype)
        extra = {"nonlinearity": nonlinearity} if nonlinearity else {}
        self.rnn = getattr(nn, layer)(
            embedding_size,
            hidden_size,
            num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            device=device,
            dtype=dtype,
            **extra,
        )
        self.decoder = nn.Linear(hidden_size, output_size, device=device, dtype=dtype)
        self.init_weights()
        if self.tied:
            self.decoder.weight = self.encoder.weight

    def init_weights(self) -> None:
        """Embedding and decoder weights uniform in ``[-0.1, 0.1]``, decoder bias zero (the
        recurrent layer keeps PyTorch's default initialisation)."""
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def forward(self, x: Tensor, h: Any = None) -> tuple[Tensor, Any]:
        """Next-word scores for every position.

        Args:
            x: Token ids, shape ``(seq_len, batch)``: int64, or floats holding whole numbers
                (as hw4's ``batchify(..., dtype="float32")`` makes them).
            h: The recurrent state to start from (as :meth:`init_hidden` makes; an LSTM's is
                ``(h, c)``); None starts from zeros.

        Returns:
            ``(logits, h)``: unnormalised scores of shape ``(seq_len * batch, output_size)``
            (for ``cross_entropy`` against ``get_batch``'s flattened targets) and the final
            state.
        """
        if x.is_floating_point():
            # needle hw4 keeps token ids in float32 tensors (batchify(..., dtype="float32"));
            # whole numbers are taken as ids, anything else is refused as nn.Embedding would
            ids = x.long()
            if bool((ids != x).any()):
                raise TypeError(
                    f"x: expected token ids (integers, or floats holding whole numbers), "
                    f"got {x.dtype} values with a fractional part"
                )
            x = ids
        embedded = self.drop(self.encoder(x))
        output, hidden = self.rnn(embedded, h)
        output = self.drop(output)
        logits = self.decoder(output)
        return logits.reshape(-1, logits.shape[-1]), hidden

    def init_hidden(self, bsz: int) -> Any:
        """A zero state for a batch of ``bsz`` sequences, on the parameters' device and dtype:
        ``(num_layers, bsz, hidden_size)``, a pair of them for an LSTM."""
        weight = self.decoder.weight
        shape = (self.num_layers, bsz, self.hidden_size)

        def zeros() -> Tensor:
            return weight.new_zeros(shape)

        return (zeros(), zeros()) if self.seq_model == "lstm" else zeros()
