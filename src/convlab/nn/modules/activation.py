"""Activation layers."""

from __future__ import annotations

from typing import Any

from convlab import _creation
from convlab._ops import activation as _act
from convlab._tensor import Tensor
from convlab.nn import init
from convlab.nn.module import Module
from convlab.nn.parameter import Parameter

__all__ = [
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "LogSoftmax",
    "ReLU6",
    "Hardtanh",
    "ELU",
    "SELU",
    "CELU",
    "GELU",
    "SiLU",
    "Mish",
    "Hardswish",
    "Hardsigmoid",
    "Softplus",
    "LogSigmoid",
    "Softsign",
    "Hardshrink",
    "Softshrink",
    "Tanhshrink",
    "Softmin",
    "GLU",
    "RReLU",
    "PReLU",
    "Threshold",
    "Softmax2d",
]


class ReLU(Module):
    """``max(x, 0)``. ``inplace`` is accepted for PyTorch compatibility; convlab never
    overwrites its input."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return _act.relu(x)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """``x`` where positive, ``negative_slope * x`` elsewhere."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope, self.inplace = float(negative_slope), inplace

    def forward(self, x: Tensor) -> Tensor:
        return _act.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Sigmoid(Module):
    """``1 / (1 + exp(-x))``."""

    def forward(self, x: Tensor) -> Tensor:
        return _act.sigmoid(x)


class Tanh(Module):
    """Hyperbolic tangent."""

    def forward(self, x: Tensor) -> Tensor:
        return _act.tanh(x)


class Softmax(Module):
    """Softmax along ``dim``."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return _act.softmax(x, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """Log-softmax along ``dim``."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return _act.log_softmax(x, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class _Inplace(Module):
    """An activation with PyTorch's ``inplace`` flag: accepted and shown in the repr; the
    result is always a new tensor (convlab's activations never overwrite their input)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Hardtanh(Module):
    """``clip(x, min_val, max_val)`` (``torch.nn.Hardtanh``)."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        if max_val < min_val:
            raise ValueError(f"max_val ({max_val}) cannot be less than min_val ({min_val})")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, x: Tensor) -> Tensor:
        return _act.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        inplace = ", inplace=True" if self.inplace else ""
        return f"min_val={self.min_val}, max_val={self.max_val}{inplace}"


class ReLU6(Hardtanh):
    """``min(max(x, 0), 6)`` (``torch.nn.ReLU6``)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ELU(Module):
    """``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere (``torch.nn.ELU``)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, x: Tensor) -> Tensor:
        return _act.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class CELU(ELU):
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`` (``torch.nn.CELU``)."""

    def forward(self, x: Tensor) -> Tensor:
        return _act.celu(x, self.alpha)


class SELU(_Inplace):
    """Scaled ELU with the self-normalising constants (``torch.nn.SELU``)."""

    def forward(self, x: Tensor) -> Tensor:
        return _act.selu(x)


class GELU(Module):
    """``x * Phi(x)``, or its tanh approximation (``torch.nn.GELU``)."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return _act.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(_Inplace):
    """``x * sigmoid(x)`` (``torch.nn.SiLU``)."""

    def forward(self, x: Tensor) -> Tensor:
        return _act.silu(x)


class Mish(_Inplace):
    """``x * tanh(softplus(x))`` (``torch.nn.Mish``)."""

    def forward(self, x: Tensor) -> Tensor:
        return _act.mish(x)


class Hardswish(_Inplace):
    """``x * relu6(x + 3) / 6`` (``torch.nn.Hardswish``)."""

    def forward(self, x: Tensor) -> Tensor:
        return _act.hardswish(x)


class Hardsigmoid(_Inplace):
    """``relu6(x + 3) / 6`` (``torch.nn.Hardsigmoid``)."""

    def forward(self, x: Tensor) -> Tensor:
        return _act.hardsigmoid(x)


class Softplus(Module):
    """``log(1 + exp(beta * x)) / beta``, linear above ``threshold`` (``torch.nn.Softplus``)."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x: Tensor) -> Tensor:
        return _act.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class LogSigmoid(Module):
    """``log(sigmoid(x))`` (``torch.nn.LogSigmoid``)."""

    def forward(self, x: Tensor) -> Tensor:
        return _act.logsigmoid(x)


class Softsign(Module):
    """``x / (1 + |x|)`` (``torch.nn.Softsign``)."""

    def forward(self, x: Tensor) -> Tensor:
        return _act.softsign(x)


class Threshold(Module):
    """``x`` where ``x > threshold``, ``value`` elsewhere (``torch.nn.Threshold``)."""

    def __init__(self, threshold: float, value: float, inplace: bool = False) -> None:
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, x: Tensor) -> Tensor:
        return _act.threshold(x, self.threshold, self.value)

    def extra_repr(self) -> str:
        inplace = ", inplace=True" if self.inplace else ""
        return f"threshold={self.threshold}, value={self.value}{inplace}"


class PReLU(Module):
    """``x`` where positive, ``weight * x`` elsewhere, with a learned ``weight``: one value, or
    one per channel (``torch.nn.PReLU``).

    Args:
        num_parameters: 1, or the number of channels (input dimension 1).
        init: The initial slope.
        device: Device of the weight.
        dtype: Dtype of the weight.
    """

    def __init__(
        self, num_parameters: int = 1, init: float = 0.25, device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__()
        self.num_parameters, self.init = int(num_parameters), init
        self.weight = Parameter(
            _creation.empty(self.num_parameters, dtype=dtype, device=device or "cpu")
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every slope to ``init``."""
        init.constant_(self.weight, self.init)

    def forward(self, x: Tensor) -> Tensor:
        return _act.prelu(x, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class Softmax2d(Module):
    """Softmax over the channels of (N, C, H, W) or (C, H, W) input (``torch.nn.Softmax2d``)."""

    def forward(self, x: Tensor) -> Tensor:
        return _act.softmax2d(x)


class Hardshrink(Module):
    """``x`` where ``|x| > lambd``, 0 elsewhere (``torch.nn.Hardshrink``)."""

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, x: Tensor) -> Tensor:
        return _act.hardshrink(x, self.lambd)

    def extra_repr(self) -> str:
        return f"{self.lambd}"


class Softshrink(Hardshrink):
    """Shrink towards 0 by ``lambd``, 0 inside ``[-lambd, lambd]`` (``torch.nn.Softshrink``)."""

    def forward(self, x: Tensor) -> Tensor:
        return _act.softshrink(x, self.lambd)


class Tanhshrink(Module):
    """``x - tanh(x)`` (``torch.nn.Tanhshrink``)."""

    def forward(self, x: Tensor) -> Tensor:
        return _act.tanhshrink(x)


class Softmin(Module):
    """``softmax(-x)`` along ``dim`` (``torch.nn.Softmin``)."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return _act.softmin(x, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class GLU(Module):
    """Gated linear unit: ``a * sigmoid(b)`` for the halves of the input along ``dim``
    (``torch.nn.GLU``)."""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return _act.glu(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class RReLU(Module):
    """Randomised leaky ReLU: slopes drawn from U(lower, upper) while training, their mean in
    evaluation (``torch.nn.RReLU``)."""

    def __init__(
        self, lower: float = 1.0 / 8, upper: float = 1.0 / 3, inplace: bool = False
    ) -> None:
        super().__init__()
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def forward(self, x: Tensor) -> Tensor:
        return _act.rrelu(x, self.lower, self.upper, self.training)

    def extra_repr(self) -> str:
        return f"lower={self.lower}, upper={self.upper}" + (
            ", inplace=True" if self.inplace else ""
        )
