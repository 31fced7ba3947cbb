"""Recurrent layers: ``RNN``, ``LSTM``, ``GRU`` and their one-step cells, with PyTorch's
arguments, parameter names, gate order, initialisation and shapes (a PyTorch state dict loads
as is).

Each layer and direction is one autograd node (:mod:`convlab._ops.rnn`) running fused cell
kernels of the backend; see the "Recurrent layers" page of the documentation.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

from convlab import _creation
from convlab._ops import activation as _activation
from convlab._ops import index as _index
from convlab._ops import shape as _shape
from convlab._ops.rnn import GATES, recurrent_layer
from convlab._tensor import Tensor
from convlab.nn import init
from convlab.nn.module import Module
from convlab.nn.parameter import Parameter

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be greater than zero, got {value}")
    return int(value)


def _nonlinearity_mode(nonlinearity: str) -> str:
    if nonlinearity == "tanh":
        return "RNN_TANH"
    if nonlinearity == "relu":
        return "RNN_RELU"
    raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")


class RNNBase(Module):
    """The multi-layer recurrent layer behind :class:`RNN`, :class:`LSTM` and :class:`GRU`
    (``torch.nn.RNNBase``).

    Args:
        mode: ``"RNN_TANH"``, ``"RNN_RELU"``, ``"LSTM"`` or ``"GRU"``.
        input_size: Features of the input ``x``.
        hidden_size: Features of the hidden state ``h``.
        num_layers: Stacked recurrent layers.
        bias: Whether the layers have ``bias_ih`` and ``bias_hh``.
        batch_first: Inputs and outputs are ``(batch, seq, feature)`` instead of
            ``(seq, batch, feature)`` (hidden states are unaffected).
        dropout: Dropout probability on the outputs of every layer but the last (training only).
        bidirectional: Run each layer forward and backward in time and concatenate.
        proj_size: LSTM projection size; only 0 (no projection) is supported.
        device: Where to create the parameters.
        dtype: The parameters' dtype (float32 by default).

    Raises:
        ValueError: For a bad ``dropout``, sizes, or ``proj_size``.
        NotImplementedError: For ``proj_size > 0`` (see docs/differences.rst).
    """

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"Unrecognized RNN mode: {mode}")
        if (
            isinstance(dropout, bool)
            or not isinstance(dropout, numbers.Number)
            or not 0 <= float(dropout) <= 1
        ):
            raise ValueError(
                "dropout should be a number in range [0, 1] representing the probability of "
                "an element being zeroed"
            )
        if float(dropout) > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}",
                stacklevel=2,
            )
        if isinstance(input_size, bool) or not isinstance(input_size, numbers.Integral):
            raise TypeError(f"input_size should be of type int, got: {type(input_size).__name__}")
        hidden_size = _positive_int(hidden_size, "hidden_size")
        num_layers = _positive_int(num_layers, "num_layers")
        if proj_size < 0:
            raise ValueError(
                "proj_size should be a positive integer or zero to disable projections"
            )
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if proj_size:
            raise NotImplementedError(
                "LSTM: proj_size > 0 is not supported by convlab; follow the LSTM with an "
                "nn.Linear(hidden_size, proj_size) on its output instead"
            )
        self.mode: str = mode
        self.input_size: int = int(input_size)
        self.hidden_size: int = hidden_size
        self.num_layers: int = num_layers
        self.bias: bool = bool(bias)
        self.batch_first: bool = bool(batch_first)
        self.dropout: float = float(dropout)
        self.bidirectional: bool = bool(bidirectional)
        self.proj_size: int = 0
        gates = GATES[mode.lower()] * hidden_size
        directions = 2 if bidirectional else 1
        self._flat_weights_names: list[str] = []
        for layer in range(num_layers):
            layer_input = self.input_size if layer == 0 else hidden_size * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = [("weight_ih", (gates, layer_input)), ("weight_hh", (gates, hidden_size))]
                if bias:
                    shapes += [("bias_ih", (gates,)), ("bias_hh", (gates,))]
                for name, shape in shapes:
                    tensor = _creation.empty(*shape, dtype=dtype, device=device or "cpu")
                    setattr(self, name + suffix, Parameter(tensor))
                    self._flat_weights_names.append(name + suffix)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: every parameter from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            init.uniform_(weight, -bound, bound)

    def flatten_parameters(self) -> None:
        """A no-op: the weights are used where they are (PyTorch packs them for cuDNN)."""

    @property
    def all_weights(self) -> list[list[Parameter]]:
        """Per layer and direction, its parameters in PyTorch's order."""
        per = 4 if self.bias else 2
        names = self._flat_weights_names
        return [[getattr(self, n) for n in names[i : i + per]] for i in range(0, len(names), per)]

    def _check_input(self, input: Tensor) -> bool:
        """Whether ``input`` is batched; raises for a bad rank or feature size."""
        if not isinstance(input, Tensor):
            raise TypeError(f"input: expected a Tensor, got {type(input).__name__}")
        name = type(self).__name__
        if input.ndim not in (2, 3):
            raise ValueError(
                f"{name}: Expected input to be 2D or 3D, got {input.ndim}D input instead"
            )
        if input.shape[-1] != self.input_size:
            raise RuntimeError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                f"got {input.shape[-1]}"
            )
        if input.dtype != self.weight_ih_l0.dtype:
            raise RuntimeError(
                f"{name}: input dtype {input.dtype} does not match the parameters' dtype "
                f"{self.weight_ih_l0.dtype}"
            )
        return input.ndim == 3

    def _initial_states(
        self, hx: Any, batched: bool, batch: int, like: Tensor
    ) -> tuple[Tensor, Tensor | None]:
        """``(h0, c0)`` from ``forward``'s ``hx`` (``c0`` None but for the LSTM), checked."""
        if self.mode == "LSTM":
            if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
                raise TypeError("LSTM: hx should be a tuple of two tensors (h_0, c_0)")
            h0 = self._state(None if hx is None else hx[0], batched, batch, like, "hx[0]")
            c0 = self._state(None if hx is None else hx[1], batched, batch, like, "hx[1]")
            return h0, c0
        if isinstance(hx, (tuple, list)):
            raise TypeError(f"{type(self).__name__}: hx should be a Tensor, got a tuple")
        return self._state(hx, batched, batch, like, "hx"), None

    def _state(
        self, state: Tensor | None, batched: bool, batch: int, like: Tensor, what: str
    ) -> Tensor:
        """An initial state as (layers * directions, B, H): zeros when None, else checked."""
        directions = 2 if self.bidirectional else 1
        shape = (self.num_layers * directions, batch, self.hidden_size)
        if state is None:
            return _creation.zeros(*shape, dtype=like.dtype, device=like.device)
        if not isinstance(state, Tensor):
            raise TypeError(f"{what}: expected a Tensor, got {type(state).__name__}")
        if not batched:
            if state.ndim != 2:
                raise RuntimeError(
                    f"For unbatched 2-D input, {what} should also be 2-D but got "
                    f"{state.ndim}-D tensor"
                )
            state = _shape.unsqueeze(state, 1)
        elif state.ndim != 3:
            raise RuntimeError(
                f"For batched 3-D input, {what} should also be 3-D but got {state.ndim}-D tensor"
            )
        if tuple(state.shape) != shape:
            raise RuntimeError(f"Expected hidden size {shape}, got {list(state.shape)}")
        if state.dtype != like.dtype:
            raise RuntimeError(
                f"{what}: expected dtype {like.dtype} (the input's), got {state.dtype}"
            )
        return state

    def _run(
        self, input: Tensor, h0: Tensor, c0: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Time-major ``input`` through every layer; returns (output, h_n, c_n)."""
        mode = self.mode.lower()
        lstm = mode == "lstm"
        steps = input.shape[0]
        directions = 2 if self.bidirectional else 1
        x = input
        finals_h: list[Tensor] = []
        finals_c: list[Tensor] = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                index = layer * directions + direction
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                packed = recurrent_layer(
                    x,
                    h0[index],
                    c0[index] if c0 is not None else None,
                    getattr(self, "weight_ih" + suffix),
                    getattr(self, "weight_hh" + suffix),
                    getattr(self, "bias_ih" + suffix) if self.bias else None,
                    getattr(self, "bias_hh" + suffix) if self.bias else None,
                    mode,
                    reverse=bool(direction),
                )
                outputs.append(packed[:steps])
                finals_h.append(packed[steps])
                if lstm:
                    finals_c.append(packed[steps + 1])
            x = outputs[0] if directions == 1 else _shape.cat(outputs, 2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = _activation.dropout(x, self.dropout, True)
        h_n = _shape.stack(finals_h, 0)
        return x, h_n, _shape.stack(finals_c, 0) if lstm else None

    def forward(self, input: Tensor, hx: Any = None) -> tuple[Any, Any]:
        """Run the sequence; see :class:`RNN`, :class:`LSTM` and :class:`GRU` for shapes.
        ``input`` may also be a :class:`~convlab.nn.utils.rnn.PackedSequence`; the output is
        then packed the same way."""
        from convlab.nn.utils.rnn import PackedSequence

        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        batched = self._check_input(input)
        lstm = self.mode == "LSTM"
        if not batched:
            input = _shape.unsqueeze(input, 1)
        elif self.batch_first:
            input = _shape.transpose(input, 0, 1)
        if input.shape[0] == 0:
            raise RuntimeError(
                f"{type(self).__name__}: expected a non-empty sequence, got length 0"
            )
        h0, c0 = self._initial_states(hx, batched, input.shape[1], input)
        output, h_n, c_n = self._run(input, h0, c0)
        if not batched:
            output = _shape.squeeze(output, 1)
            h_n = _shape.squeeze(h_n, 1)
            c_n = _shape.squeeze(c_n, 1) if c_n is not None else None
        elif self.batch_first:
            output = _shape.transpose(output, 0, 1)
        return output, ((h_n, c_n) if lstm else h_n)

    def _forward_packed(self, packed: Any, hx: Any) -> tuple[Any, Any]:
        """A packed batch: each sequence runs over its own length only (its final state is
        the one at its last step, its outputs past that are absent). Sequences of one length
        run together through the fused layers, one call per distinct length."""
        from convlab.nn.utils import rnn as rnn_utils

        padded, lengths = rnn_utils._unpack_sorted(packed, 0.0, None)  # (T, B, *), sorted
        if padded.ndim != 3:
            raise ValueError(
                f"{type(self).__name__}: expected packed data of shape (N, input_size), got "
                f"{tuple(packed.data.shape)}"
            )
        self._check_input(padded)
        lstm = self.mode == "LSTM"
        steps, batch = padded.shape[0], padded.shape[1]
        h0, c0 = self._initial_states(hx, True, batch, padded)
        if packed.sorted_indices is not None:  # states come in the caller's batch order
            h0 = _index.index_select(h0, 1, packed.sorted_indices)
            c0 = _index.index_select(c0, 1, packed.sorted_indices) if c0 is not None else None
        outputs: list[Tensor] = []
        finals_h: list[Tensor] = []
        finals_c: list[Tensor] = []
        start = 0
        while start < batch:
            length, end = int(lengths[start]), start
            while end < batch and int(lengths[end]) == length:
                end += 1
            out, h_n, c_n = self._run(
                padded[:length, start:end],
                h0[:, start:end],
                c0[:, start:end] if c0 is not None else None,
            )
            if length < steps:
                out = _shape.pad(out, ((0, steps - length), (0, 0), (0, 0)))
            outputs.append(out)
            finals_h.append(h_n)
            if c_n is not None:
                finals_c.append(c_n)
            start = end
        output = _shape.cat(outputs, 1)
        h_n = _shape.cat(finals_h, 1)
        c_n = _shape.cat(finals_c, 1) if lstm else None
        data, _ = rnn_utils._pack_time_major(output, lengths)
        result = packed._replace(data=data)
        if packed.unsorted_indices is not None:
            h_n = _index.index_select(h_n, 1, packed.unsorted_indices)
            c_n = _index.index_select(c_n, 1, packed.unsorted_indices) if c_n is not None else None
        return result, ((h_n, c_n) if lstm else h_n)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text


class RNN(RNNBase):
    """Elman RNN, ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or ReLU)
    (``torch.nn.RNN``).

    Arguments as ``torch.nn.RNN``: ``(input_size, hidden_size, num_layers=1,
    nonlinearity="tanh", bias=True, batch_first=False, dropout=0.0, bidirectional=False,
    device=None, dtype=None)``.

    Shapes: ``input`` (L, N, H_in) ((N, L, H_in) with ``batch_first``, (L, H_in) unbatched),
    ``hx`` (D * num_layers, N, H); returns ``(output (L, N, D * H), h_n)``.

    Example:
        >>> import convlab
        >>> rnn = convlab.nn.RNN(10, 20, 2)
        >>> output, h_n = rnn(convlab.randn(5, 3, 10))
        >>> output.shape, h_n.shape
        ((5, 3, 20), (2, 3, 20))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            _nonlinearity_mode(nonlinearity),
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            device,
            dtype,
        )
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory, PyTorch's gates (i, f, g, o) (``torch.nn.LSTM``).

    Arguments as ``torch.nn.LSTM``: ``(input_size, hidden_size, num_layers=1, bias=True,
    batch_first=False, dropout=0.0, bidirectional=False, proj_size=0, device=None,
    dtype=None)``; ``forward(input, (h_0, c_0)=None)`` returns ``(output, (h_n, c_n))``.

    Example:
        >>> import convlab
        >>> lstm = convlab.nn.LSTM(10, 20, 2)
        >>> output, (h_n, c_n) = lstm(convlab.randn(5, 3, 10))
        >>> output.shape, c_n.shape
        ((5, 3, 20), (2, 3, 20))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            "LSTM",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            device,
            dtype,
        )


class GRU(RNNBase):
    """Gated recurrent unit, PyTorch's gates (r, z, n) with
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))`` (``torch.nn.GRU``).

    Arguments as ``torch.nn.GRU``: ``(input_size, hidden_size, num_layers=1, bias=True,
    batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None)``.

    Example:
        >>> import convlab
        >>> gru = convlab.nn.GRU(10, 20, batch_first=True)
        >>> output, h_n = gru(convlab.randn(3, 5, 10))
        >>> output.shape, h_n.shape
        ((3, 5, 20), (1, 3, 20))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            "GRU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            device,
            dtype,
        )


class RNNCellBase(Module):
    """One step of a recurrent layer: parameters ``weight_ih`` (G*H, I), ``weight_hh``
    (G*H, H), ``bias_ih`` and ``bias_hh`` (G*H) (``torch.nn.RNNCellBase``)."""

    _mode = "rnn_tanh"
    weight_ih: Parameter
    weight_hh: Parameter
    bias_ih: Parameter | None
    bias_hh: Parameter | None

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool,
        num_chunks: int,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if isinstance(input_size, bool) or not isinstance(input_size, numbers.Integral):
            raise TypeError(f"input_size should be of type int, got: {type(input_size).__name__}")
        self.input_size: int = int(input_size)
        self.hidden_size: int = _positive_int(hidden_size, "hidden_size")
        self.bias: bool = bool(bias)
        rows = num_chunks * self.hidden_size
        where = device or "cpu"
        self.weight_ih = Parameter(
            _creation.empty(rows, self.input_size, dtype=dtype, device=where)
        )
        self.weight_hh = Parameter(
            _creation.empty(rows, self.hidden_size, dtype=dtype, device=where)
        )
        if bias:
            self.bias_ih = Parameter(_creation.empty(rows, dtype=dtype, device=where))
            self.bias_hh = Parameter(_creation.empty(rows, dtype=dtype, device=where))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: every parameter from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            init.uniform_(weight, -bound, bound)

    def _step(self, input: Tensor, hx: Any) -> tuple[Tensor, Tensor | None, bool]:
        """One step; returns (h', c' or None, batched)."""
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"input: expected a Tensor, got {type(input).__name__}")
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D instead")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(
                f"input has inconsistent input_size: got {input.shape[-1]} expected "
                f"{self.input_size}"
            )
        if input.dtype != self.weight_ih.dtype:
            raise RuntimeError(
                f"{name}: input dtype {input.dtype} does not match the parameters' dtype "
                f"{self.weight_ih.dtype}"
            )
        batched = input.ndim == 2
        x = input if batched else _shape.unsqueeze(input, 0)
        lstm = self._mode == "lstm"
        states = (hx if hx is not None else (None, None)) if lstm else (hx, None)
        if lstm and (not isinstance(states, (tuple, list)) or len(states) != 2):
            raise TypeError("LSTMCell: hx should be a tuple of two tensors (h_0, c_0)")
        ready = []
        for k, state in enumerate(states[: 2 if lstm else 1]):
            what = "hx" if not lstm else f"hx[{k}]"
            if state is None:
                state = _creation.zeros(
                    x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device
                )
            else:
                if not isinstance(state, Tensor):
                    raise TypeError(f"{what}: expected a Tensor, got {type(state).__name__}")
                if state.ndim != input.ndim:
                    raise RuntimeError(
                        f"{name}: Expected {what} to be {input.ndim}D, got {state.ndim}D instead"
                    )
                if not batched:
                    state = _shape.unsqueeze(state, 0)
                if tuple(state.shape) != (x.shape[0], self.hidden_size):
                    raise RuntimeError(
                        f"{what} has inconsistent shape: got {list(state.shape)}, expected "
                        f"{[x.shape[0], self.hidden_size]}"
                    )
                if state.dtype != x.dtype:
                    raise RuntimeError(
                        f"{what}: expected dtype {x.dtype} (the input's), got {state.dtype}"
                    )
            ready.append(state)
        packed = recurrent_layer(
            _shape.unsqueeze(x, 0),
            ready[0],
            ready[1] if lstm else None,
            self.weight_ih,
            self.weight_hh,
            self.bias_ih,
            self.bias_hh,
            self._mode,
        )
        h, c = packed[1], packed[2] if lstm else None
        if not batched:
            h = _shape.squeeze(h, 0)
            c = _shape.squeeze(c, 0) if c is not None else None
        return h, c, batched

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        return text + (", bias=False" if not self.bias else "")


class RNNCell(RNNCellBase):
    """One Elman RNN step, ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or ReLU)
    (``torch.nn.RNNCell``).

    Example:
        >>> import convlab
        >>> cell = convlab.nn.RNNCell(10, 20)
        >>> cell(convlab.randn(3, 10)).shape
        (3, 20)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        mode = _nonlinearity_mode(nonlinearity).lower()
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self._mode, self.nonlinearity = mode, nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """``h'`` (N, H) from ``input`` (N, I) and ``hx`` (N, H) (zeros when None); 1-D
        unbatched tensors too."""
        return self._step(input, hx)[0]


class LSTMCell(RNNCellBase):
    """One LSTM step (``torch.nn.LSTMCell``); ``forward(input, (h, c))`` returns ``(h', c')``.

    Example:
        >>> import convlab
        >>> cell = convlab.nn.LSTMCell(10, 20)
        >>> h, c = cell(convlab.randn(3, 10))
        >>> h.shape, c.shape
        ((3, 20), (3, 20))
    """

    _mode = "lstm"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input: Tensor, hx: Any = None) -> tuple[Tensor, Tensor]:
        """``(h', c')`` from ``input`` and ``hx = (h, c)`` (zeros when None)."""
        h, c, _ = self._step(input, hx)
        assert c is not None
        return h, c


class GRUCell(RNNCellBase):
    """One GRU step (``torch.nn.GRUCell``).

    Example:
        >>> import convlab
        >>> cell = convlab.nn.GRUCell(10, 20)
        >>> cell(convlab.randn(3, 10)).shape
        (3, 20)
    """

    _mode = "gru"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """``h'`` from ``input`` and ``hx`` (zeros when None)."""
        return self._step(input, hx)[0]
