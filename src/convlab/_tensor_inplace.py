"""In-place ``Tensor`` methods (``add_``, ``mul_``, ``clamp_``, ``normal_``, ``x += y`` ...).

PyTorch's rules, which programs rely on:

* Outside gradient recording (``no_grad``, or nothing involved requires grad) the values are
  written into the tensor's memory, so every tensor sharing it sees them: ``p.data.add_(u)``
  and ``with no_grad(): p -= lr * p.grad`` update the parameter ``p``.
* While recording, an in-place op on a leaf that requires grad is an error; on any other tensor
  it becomes part of the graph (the tensor's ``grad_fn`` is the in-place op's node).
* Each write bumps the version of the memory written; ``backward`` through a node that recorded
  an older version raises instead of computing a wrong gradient (see ``convlab.autograd``).

One deliberate difference (listed in docs/differences.rst): while recording, the op stores its
result in new memory and the tensor points to it, so other views of the old memory keep the old
values. PyTorch writes through and rebases the views' histories; without views the results agree.
"""

from __future__ import annotations

import builtins
import numbers
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from convlab import _dtype

if TYPE_CHECKING:
    from convlab._tensor import Tensor

__all__ = ["InplaceMethods"]


def _recording(target: Any, operands: tuple) -> bool:
    from convlab._tensor import Tensor
    from convlab.autograd import is_grad_enabled

    if not is_grad_enabled():
        return False
    return target._requires_grad or builtins.any(
        isinstance(o, Tensor) and o._requires_grad for o in operands
    )


def _dtype_name(dtype: Any) -> str:
    return str(np.dtype(dtype))


class InplaceMethods:
    """The in-place methods of :class:`convlab.Tensor` (a mixin; see the module docstring)."""

    __slots__ = ()

    # -- the two paths ------------------------------------------------------------------------
    def _inplace(self: Any, name: str, compute: Callable[[], Tensor], operands: tuple = ()) -> Any:
        """Replace this tensor's values with ``compute()`` (an out-of-place result) in place."""
        if _recording(self, operands):
            if self._node is None and self._requires_grad:
                raise RuntimeError(
                    f"{name}: a leaf tensor that requires grad cannot be modified in place "
                    f"while gradients are recorded; wrap the update in convlab.no_grad() "
                    f"(or modify .data)"
                )
            result = compute()
            self._check_result(name, result)
            if result._data.dtype != self._data.dtype:
                result = result.to(dtype=self._data.dtype)
            self._data = result._data
            self._node = result._node
            self._requires_grad = result._requires_grad
            return self
        from convlab.autograd import no_grad

        with no_grad():
            result = compute()
        self._check_result(name, result)
        self._write(result._data)
        return self

    def _check_result(self: Any, name: str, result: Any) -> None:
        if result.shape != self.shape:
            raise RuntimeError(
                f"{name}: the result's shape {result.shape} does not match this tensor's "
                f"shape {self.shape} (in-place ops cannot change the shape; the other "
                f"operand must broadcast to {self.shape})"
            )
        if not np.can_cast(result._data.dtype, self._data.dtype, casting="same_kind"):
            raise RuntimeError(
                f"{name}: result type {_dtype_name(result._data.dtype)} can't be cast to "
                f"this tensor's dtype {_dtype_name(self._data.dtype)}"
            )

    def _write(self: Any, values: Any) -> None:
        """Write ``values`` into this tensor's memory and bump its version."""
        from convlab.autograd import bump_version

        if not self._data.flags.writeable:
            raise RuntimeError(
                "in-place write: this tensor's memory is read-only (it wraps a read-only "
                "array); call .clone() first"
            )
        self._data[...] = values
        bump_version(self._data)

    def _operand(self: Any, value: Any) -> Any:
        from convlab._ops._util import as_tensor_like

        return as_tensor_like(value, self)

    # -- arithmetic ---------------------------------------------------------------------------
    def add_(self: Any, other: Any, *, alpha: Any = 1) -> Any:
        """``self += alpha * other`` in place."""
        other = self._operand(other)
        scaled = other if alpha == 1 else other * alpha
        return self._inplace("add_", lambda: self + scaled, (other,))

    def sub_(self: Any, other: Any, *, alpha: Any = 1) -> Any:
        """``self -= alpha * other`` in place."""
        other = self._operand(other)
        scaled = other if alpha == 1 else other * alpha
        return self._inplace("sub_", lambda: self - scaled, (other,))

    def mul_(self: Any, other: Any) -> Any:
        """``self *= other`` in place."""
        other = self._operand(other)
        return self._inplace("mul_", lambda: self * other, (other,))

    def div_(self: Any, other: Any, *, rounding_mode: str | None = None) -> Any:
        """``self /= other`` in place (``rounding_mode`` ``"trunc"`` / ``"floor"`` as PyTorch)."""
        other = self._operand(other)
        if rounding_mode not in (None, "trunc", "floor"):
            raise ValueError(
                f"rounding_mode: expected None, 'trunc' or 'floor', got {rounding_mode!r}"
            )

        def compute() -> Any:
            if rounding_mode is None:
                return self / other
            return self.div(other, rounding_mode=rounding_mode)

        return self._inplace("div_", compute, (other,))

    def pow_(self: Any, exponent: Any) -> Any:
        """``self **= exponent`` in place."""
        exponent = self._operand(exponent)
        return self._inplace("pow_", lambda: self**exponent, (exponent,))

    def addcmul_(self: Any, tensor1: Any, tensor2: Any, *, value: Any = 1) -> Any:
        """``self += value * tensor1 * tensor2`` in place."""
        t1, t2 = self._operand(tensor1), self._operand(tensor2)
        return self._inplace("addcmul_", lambda: self + (t1 * t2) * value, (t1, t2))

    def addcdiv_(self: Any, tensor1: Any, tensor2: Any, *, value: Any = 1) -> Any:
        """``self += value * tensor1 / tensor2`` in place."""
        t1, t2 = self._operand(tensor1), self._operand(tensor2)
        return self._inplace("addcdiv_", lambda: self + (t1 / t2) * value, (t1, t2))

    def lerp_(self: Any, end: Any, weight: Any) -> Any:
        """``self += weight * (end - self)`` in place."""
        end = self._operand(end)
        operands = (end, weight) if hasattr(weight, "_requires_grad") else (end,)
        return self._inplace("lerp_", lambda: self.lerp(end, weight), operands)

    def __iadd__(self: Any, other: Any) -> Any:
        return self.add_(other)

    def __isub__(self: Any, other: Any) -> Any:
        return self.sub_(other)

    def __imul__(self: Any, other: Any) -> Any:
        return self.mul_(other)

    def __itruediv__(self: Any, other: Any) -> Any:
        return self.div_(other)

    def __ipow__(self: Any, other: Any) -> Any:
        return self.pow_(other)

    # -- element-wise functions ---------------------------------------------------------------
    def _unary_(self: Any, name: str, method: str) -> Any:
        return self._inplace(name, lambda: getattr(self, method)())

    def neg_(self: Any) -> Any:
        """Negate in place."""
        return self._inplace("neg_", lambda: -self)

    def abs_(self: Any) -> Any:
        """Absolute value in place."""
        return self._unary_("abs_", "abs")

    def exp_(self: Any) -> Any:
        """``exp`` in place."""
        return self._unary_("exp_", "exp")

    def log_(self: Any) -> Any:
        """``log`` in place."""
        return self._unary_("log_", "log")

    def sqrt_(self: Any) -> Any:
        """``sqrt`` in place."""
        return self._unary_("sqrt_", "sqrt")

    def relu_(self: Any) -> Any:
        """ReLU in place."""
        return self._unary_("relu_", "relu")

    def sigmoid_(self: Any) -> Any:
        """Sigmoid in place."""
        return self._unary_("sigmoid_", "sigmoid")

    def tanh_(self: Any) -> Any:
        """``tanh`` in place."""
        return self._unary_("tanh_", "tanh")

    def reciprocal_(self: Any) -> Any:
        """``1 / self`` in place."""
        return self._inplace("reciprocal_", lambda: 1.0 / self)

    def square_(self: Any) -> Any:
        """``self * self`` in place."""
        return self._inplace("square_", lambda: self * self)

    def _rounding_(self: Any, name: str, fn: str) -> Any:
        return self._unary_(name, fn)

    def floor_(self: Any) -> Any:
        """Round down in place."""
        return self._rounding_("floor_", "floor")

    def ceil_(self: Any) -> Any:
        """Round up in place."""
        return self._rounding_("ceil_", "ceil")

    def trunc_(self: Any) -> Any:
        """Round towards zero in place."""
        return self._rounding_("trunc_", "trunc")

    def round_(self: Any, decimals: int = 0) -> Any:
        """Round half to even in place (PyTorch's rule), to ``decimals`` places."""
        return self._inplace("round_", lambda: self.round(decimals=decimals))

    def clamp_(self: Any, min: Any = None, max: Any = None) -> Any:  # noqa: A002 - PyTorch's names
        """Clamp to ``[min, max]`` in place (either bound may be ``None``)."""
        if min is None and max is None:
            raise RuntimeError("clamp_: at least one of 'min' or 'max' must not be None")
        operands = tuple(b for b in (min, max) if hasattr(b, "_requires_grad"))
        return self._inplace("clamp_", lambda: self.clip(min, max), operands)

    clip_ = clamp_

    def clamp_min_(self: Any, min: Any) -> Any:  # noqa: A002 - PyTorch's name
        """Raise values below ``min`` to ``min`` in place."""
        return self.clamp_(min, None)

    def clamp_max_(self: Any, max: Any) -> Any:  # noqa: A002 - PyTorch's name
        """Lower values above ``max`` to ``max`` in place."""
        return self.clamp_(None, max)

    # -- fills and copies ---------------------------------------------------------------------
    def _fill_from(self: Any, name: str, values: Any) -> Any:
        """Write ``values`` (an array of this tensor's backend) in place: no graph needed."""
        from convlab._tensor import Tensor

        return self._inplace(name, lambda: Tensor._wrap(values, self._backend))

    def zero_(self: Any) -> Any:
        """Fill with zeros in place."""
        return self.fill_(0)

    def fill_(self: Any, value: Any) -> Any:
        """Fill with ``value`` (a number or a one-element tensor) in place."""
        from convlab._tensor import Tensor

        if isinstance(value, Tensor):
            if value._data.size != 1:
                raise RuntimeError(
                    f"fill_: expected a number or a one-element tensor, got shape {value.shape}"
                )
            value = value.item()
        if not isinstance(value, (numbers.Number, np.generic)):
            raise TypeError(f"fill_: expected a number, got {type(value).__name__}")
        xp = self._backend.xp
        if self._data.dtype.kind in "iub" and isinstance(value, float) and not value.is_integer():
            filled = xp.full(self.shape, value)  # float result: refused by the cast check
        else:
            filled = xp.full(self.shape, value, dtype=self._data.dtype)
        return self._fill_from("fill_", filled)

    def copy_(self: Any, src: Any, non_blocking: bool = False) -> Any:
        """Copy ``src`` (broadcast, cast, moved to this device) into this tensor in place."""
        from convlab._tensor import Tensor

        if isinstance(src, Tensor) and src._backend is not self._backend:
            moved = src.to(self._backend.name)
        elif isinstance(src, Tensor):
            moved = src
        else:
            moved = Tensor._wrap(self._backend.asarray(np.asarray(src)), self._backend)
        try:
            shape = np.broadcast_shapes(moved.shape, self.shape)
        except ValueError:
            shape = None
        if shape != self.shape:
            raise RuntimeError(
                f"copy_: src of shape {moved.shape} cannot be broadcast to {self.shape}"
            )

        def compute() -> Any:
            values = moved if moved._data.dtype == self._data.dtype else moved.to(dtype=self.dtype)
            if values.shape != self.shape:
                values = values.expand(*self.shape)
            return values.clone()  # a copy: this tensor must not share src's memory afterwards

        operands = (moved,)
        if _recording(self, operands):
            return self._inplace("copy_", compute, operands)
        # copying casts whatever the kinds (PyTorch's copy_ does), so bypass the cast check
        if not self._data.flags.writeable:
            raise RuntimeError("copy_: this tensor's memory is read-only; call .clone() first")
        from convlab.autograd import bump_version

        self._data[...] = moved._data
        bump_version(self._data)
        return self

    def masked_fill_(self: Any, mask: Any, value: Any) -> Any:
        """Set the elements where ``mask`` is True to ``value`` in place."""
        mask_t = self._operand(mask)
        if mask_t._data.dtype != np.bool_:
            raise RuntimeError(
                f"masked_fill_: expected a bool mask, got dtype {_dtype_name(mask_t._data.dtype)}"
            )
        operands = (value,) if hasattr(value, "_requires_grad") else ()
        return self._inplace("masked_fill_", lambda: self.masked_fill(mask_t, value), operands)

    def scatter_(
        self: Any,
        dim: int,
        index: Any,
        src: Any = None,
        *,
        value: Any = None,
        reduce: str | None = None,
    ) -> Any:
        """Write ``src`` (or ``value``) at ``index`` along ``dim`` in place (``Tensor.scatter``)."""
        if src is None and value is None:
            raise TypeError("scatter_: expected src or value")
        source = value if src is None else src
        operands = (source,) if hasattr(source, "_requires_grad") else ()
        if reduce is not None:
            return self._inplace(
                "scatter_", lambda: self.scatter(dim, index, source, reduce=reduce), operands
            )
        return self._inplace("scatter_", lambda: self.scatter(dim, index, source), operands)

    def scatter_add_(self: Any, dim: int, index: Any, src: Any) -> Any:
        """Add ``src`` at ``index`` along ``dim`` in place (``Tensor.scatter_add``)."""
        return self._inplace("scatter_add_", lambda: self.scatter_add(dim, index, src), (src,))

    def index_fill_(self: Any, dim: int, index: Any, value: Any) -> Any:
        """Set the slices ``index`` along ``dim`` to ``value`` in place."""
        return self._inplace("index_fill_", lambda: self.index_fill(dim, index, value))

    def index_add_(self: Any, dim: int, index: Any, source: Any, *, alpha: Any = 1) -> Any:
        """Add ``alpha * source`` to the slices ``index`` along ``dim`` in place."""
        return self._inplace(
            "index_add_", lambda: self.index_add(dim, index, source, alpha=alpha), (source,)
        )

    def index_copy_(self: Any, dim: int, index: Any, source: Any) -> Any:
        """Copy ``source`` into the slices ``index`` along ``dim`` in place."""
        return self._inplace("index_copy_", lambda: self.index_copy(dim, index, source), (source,))

    # -- random fills (never recorded: PyTorch draws them without history) --------------------
    def _random_(self: Any, name: str, draw: Callable[[Any], Any]) -> Any:
        from convlab._tensor import Tensor

        if self._data.dtype.kind != "f" and name in ("normal_", "uniform_", "exponential_"):
            raise RuntimeError(
                f"{name}: expected a floating-point tensor, got dtype "
                f"{_dtype_name(self._data.dtype)}"
            )
        return self._inplace(name, lambda: Tensor._wrap(draw(self._backend), self._backend))

    def normal_(self: Any, mean: float = 0.0, std: float = 1.0, *, generator: Any = None) -> Any:
        """Fill with samples of a normal distribution in place."""
        from convlab import _random

        if std < 0:
            raise RuntimeError(f"normal_: expected std >= 0, got {std}")
        return self._random_(
            "normal_",
            lambda b: (
                _random.device_normal(b, self.shape, self._data.dtype, generator) * std + mean
            ),
        )

    def uniform_(self: Any, a: float = 0.0, b: float = 1.0, *, generator: Any = None) -> Any:
        """Fill with samples of the uniform distribution on ``[a, b)`` in place."""
        from convlab import _random

        if a > b:
            raise RuntimeError(f"uniform_: expected a <= b, got a={a}, b={b}")
        return self._random_(
            "uniform_",
            lambda be: (
                _random.device_random(be, self.shape, self._data.dtype, generator) * (b - a) + a
            ),
        )

    def exponential_(self: Any, lambd: float = 1.0, *, generator: Any = None) -> Any:
        """Fill with samples of the exponential distribution of rate ``lambd`` in place."""
        from convlab import _random

        if lambd <= 0:
            raise RuntimeError(f"exponential_: expected lambd > 0, got {lambd}")

        def draw(backend: Any) -> Any:
            u = _random.device_random(backend, self.shape, self._data.dtype, generator)
            return -backend.xp.log1p(-u) / lambd

        return self._random_("exponential_", draw)

    def bernoulli_(self: Any, p: Any = 0.5, *, generator: Any = None) -> Any:
        """Fill with 0/1 samples, 1 with probability ``p`` (a number or a tensor), in place."""
        from convlab import _random
        from convlab._tensor import Tensor

        probability = p._data if isinstance(p, Tensor) else p

        def draw(backend: Any) -> Any:
            u = _random.device_random(backend, self.shape, _dtype.float64, generator)
            return (u < probability).astype(self._data.dtype)

        return self._random_("bernoulli_", draw)

    def random_(self: Any, from_: int = 0, to: int | None = None, *, generator: Any = None) -> Any:
        """Fill with integers drawn uniformly from ``[from_, to)`` in place."""
        from convlab import _random

        if to is None:
            from_, to = 0, from_ if from_ else 2**24
        if to <= from_:
            raise RuntimeError(f"random_: expected from < to, got from={from_}, to={to}")

        def draw(backend: Any) -> Any:
            u = _random.device_random(backend, self.shape, _dtype.float64, generator)
            return backend.xp.floor(u * (to - from_) + from_).astype(self._data.dtype)

        return self._random_("random_", draw)
