"""PyTorch-style custom autograd functions: ``forward(ctx, ...)`` / ``backward(ctx, ...)``.

A user's ``class Clamp(convlab.autograd.Function)`` with static ``forward(ctx, x, ...)`` and
``backward(ctx, grad)`` works on tensors, as in PyTorch: ``forward`` runs without recording,
``ctx.save_for_backward`` keeps tensors for ``backward``, and ``backward`` returns one gradient
(or ``None``) per ``forward`` argument. (convlab's own ops subclass the same ``Function`` with
``forward(self, *arrays)`` on raw arrays; ``Function.apply`` tells the two styles apart.)
"""

from __future__ import annotations

from typing import Any

from convlab._tensor import Tensor
from convlab.autograd import Function, _thread, _version_stamp, no_grad

__all__ = ["FunctionCtx", "apply_ctx_style"]


class FunctionCtx:
    """The ``ctx`` object of a PyTorch-style custom function."""

    def __init__(self, needs: tuple[bool, ...]) -> None:
        self.needs_input_grad = needs
        self.saved_tensors: tuple[Any, ...] = ()
        self.materialize_grads = True
        self._non_differentiable: set[int] = set()

    def save_for_backward(self, *tensors: Any) -> None:
        """Keep tensors (or ``None``) for ``backward`` as ``ctx.saved_tensors``."""
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(
                    f"save_for_backward: expected tensors or None, got {type(t).__name__} "
                    f"(store other values as attributes of ctx)"
                )
        self.saved_tensors = tuple(tensors)

    def mark_dirty(self, *tensors: Any) -> None:
        """Accepted: convlab's result of ``forward`` is recorded as a new tensor anyway."""

    def mark_non_differentiable(self, *tensors: Any) -> None:
        """Outputs listed here get no gradient history."""
        self._non_differentiable.update(id(t) for t in tensors)

    def set_materialize_grads(self, value: bool) -> None:
        """Whether ``backward`` gets zeros (True, the default) or ``None`` for unused outputs."""
        self.materialize_grads = bool(value)


class _CustomNode(Function):
    """The graph node of one call of a PyTorch-style function."""

    user_cls: Any
    ctx: FunctionCtx
    positions: tuple[int, ...]  # which forward arguments are the node's tensor inputs
    n_args: int

    def backward(self, grad: Any) -> tuple[Any, ...]:
        grad_t = Tensor._wrap(grad, self.backend)
        previous = _thread.grad_enabled
        _thread.grad_enabled = False
        try:
            result = self.user_cls.backward(self.ctx, grad_t)
        finally:
            _thread.grad_enabled = previous
        grads = result if isinstance(result, tuple) else (result,)
        if len(grads) < len(self.positions) or len(grads) > self.n_args:
            raise RuntimeError(
                f"{self.user_cls.__name__}.backward: returned {len(grads)} gradients, expected "
                f"{self.n_args} (one per forward argument)"
            )
        arrays = []
        for position in self.positions:
            g = grads[position] if position < len(grads) else None
            if g is not None and not isinstance(g, Tensor):
                raise TypeError(
                    f"{self.user_cls.__name__}.backward: gradient {position} must be a Tensor "
                    f"or None, got {type(g).__name__}"
                )
            arrays.append(None if g is None else g._data)
        return tuple(arrays)


def apply_ctx_style(cls: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``cls.apply(*args, **kwargs)`` for a PyTorch-style function."""
    needs = tuple(isinstance(a, Tensor) and a._requires_grad for a in args)
    ctx = FunctionCtx(needs)
    # PyTorch 2's other style: forward(*args) without ctx, then setup_context(ctx, inputs, out)
    uses_setup = getattr(cls, "setup_context", None) is not None
    with no_grad():
        if uses_setup:
            output = cls.forward(*args, **kwargs)
            cls.setup_context(ctx, args, output)
        else:
            output = cls.forward(ctx, *args, **kwargs)
    if not (_thread.grad_enabled and any(needs)):
        return output
    if not isinstance(output, Tensor):
        raise NotImplementedError(
            f"{cls.__name__}.forward: convlab records custom functions with one tensor output; "
            f"got {type(output).__name__} (split it into one function per output)"
        )
    if id(output) in ctx._non_differentiable:
        return output
    positions = tuple(i for i, a in enumerate(args) if isinstance(a, Tensor))
    tensors = [args[i] for i in positions]
    node = _CustomNode.__new__(_CustomNode)
    node.backend = output._backend
    node.user_cls = cls
    node.ctx = ctx
    node.positions = positions
    node.n_args = len(args)
    node.needs = tuple(t._requires_grad for t in tensors)
    node.next = tuple(
        None if not t._requires_grad else (t if t._node is None else t._node) for t in tensors
    )
    node._stamps = tuple(_version_stamp(t._data) for t in tensors)
    result = Tensor._wrap(output._data, output._backend)
    result._requires_grad = True
    result._node = node
    return result
