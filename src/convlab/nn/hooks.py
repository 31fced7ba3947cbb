"""Module hooks (``register_forward_hook`` & co.): what ``Module.__call__`` runs around ``forward``.

PyTorch's semantics:

* forward pre-hooks: ``hook(module, args)`` (or ``hook(module, args, kwargs)`` with
  ``with_kwargs=True``) before ``forward``; a returned value replaces the arguments.
* forward hooks: ``hook(module, args, output)`` (or ``(module, args, kwargs, output)``) after it;
  a returned value replaces the output.
* full backward pre-hooks: ``hook(module, grad_output)`` when the gradients with respect to the
  module's outputs are known; a returned tuple replaces them.
* full backward hooks: ``hook(module, grad_input, grad_output)`` when the gradients with respect to
  the module's positional tensor inputs are known (``None`` for inputs that need none); a returned
  tuple replaces ``grad_input``.

The backward hooks work as PyTorch's do: the inputs and outputs pass through identity nodes of the
graph whose backward sees the gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from convlab._tensor import Tensor
from convlab.autograd import Function, RemovableHandle, is_grad_enabled

__all__ = ["call_with_hooks", "add_hook"]


def add_hook(table: dict[int, Any], entry: Any, prepend: bool) -> RemovableHandle:
    """Register ``entry`` in ``table`` (kept in call order) and return its handle."""
    handle = RemovableHandle(table)
    if prepend:
        items = list(table.items())
        table.clear()
        table[handle.id] = entry
        table.update(items)
    else:
        table[handle.id] = entry
    return handle


class _GradientTap(Function):
    """Identity whose backward hands the incoming gradient to a callback (which may replace it)."""

    def forward(self, x: Any, callback: Callable[[Any], Any] | None = None) -> Any:
        self.callback = callback
        return x

    def backward(self, grad: Any) -> tuple[Any, ...]:
        callback = self.callback
        assert callback is not None
        return (callback(grad),)


def _as_grads(values: Any, backend: Any) -> Any:
    return None if values is None else Tensor._wrap(values, backend)


class _BackwardState:
    """One forward call's bookkeeping for the module's backward hooks."""

    def __init__(self, module: Any, n_inputs: int, input_needs: list[bool]) -> None:
        self.module = module
        self.input_needs = input_needs
        self.grad_inputs: list[Any] = [None] * n_inputs
        self.pending_inputs = sum(input_needs)
        self.grad_outputs: list[Any] = []
        self.pending_outputs = 0
        self.backend: Any = None

    # outputs --------------------------------------------------------------------------------
    def output_tap(self, position: int) -> Callable[[Any], Any]:
        def tap(grad: Any) -> Any:
            self.grad_outputs[position] = grad
            self.pending_outputs -= 1
            if self.pending_outputs == 0:
                grad = self._outputs_done(position, grad)
            return grad

        return tap

    def _outputs_done(self, position: int, grad: Any) -> Any:
        module = self.module
        grad_output = tuple(_as_grads(g, self.backend) for g in self.grad_outputs)
        for hook in list(module.__dict__.get("_backward_pre_hooks", {}).values()):
            result = hook(module, grad_output)
            if result is not None:
                grad_output = _check_replacement(result, grad_output, "backward pre-hook")
        self.grad_output = grad_output
        # the replacement can reach the graph only through the output being processed now
        self._require_only_current(grad_output, self.grad_outputs, position, "grad_output")
        replaced = grad_output[position]
        if self.pending_inputs == 0:  # no input needs a gradient: hooks run now, as PyTorch's
            self._call_backward_hooks()
        return replaced._data if isinstance(replaced, Tensor) else replaced

    # inputs ---------------------------------------------------------------------------------
    def input_tap(self, position: int) -> Callable[[Any], Any]:
        def tap(grad: Any) -> Any:
            self.grad_inputs[position] = grad
            self.pending_inputs -= 1
            if self.pending_inputs == 0:
                result = self._call_backward_hooks()
                if result is not None:
                    self._require_only_current(result, self.grad_inputs, position, "grad_input")
                    new = result[position]
                    return new._data if isinstance(new, Tensor) else new
            return grad

        return tap

    def _call_backward_hooks(self) -> tuple[Any, ...] | None:
        module = self.module
        grad_output = getattr(self, "grad_output", None)
        if grad_output is None:
            grad_output = tuple(_as_grads(g, self.backend) for g in self.grad_outputs)
        grad_input = tuple(_as_grads(g, self.backend) for g in self.grad_inputs)
        replaced = None
        for hook in list(module.__dict__.get("_backward_hooks", {}).values()):
            result = hook(module, grad_input, grad_output)
            if result is not None:
                grad_input = _check_replacement(result, grad_input, "backward hook")
                replaced = grad_input
        return replaced

    @staticmethod
    def _require_only_current(
        new: tuple[Any, ...], old: list[Any], position: int, what: str
    ) -> None:
        for i, (n, o) in enumerate(zip(new, old)):
            if i == position:
                continue
            n_array = n._data if isinstance(n, Tensor) else n
            if n_array is not o:
                raise RuntimeError(
                    f"backward hook: replacing {what}[{i}] is not supported by convlab when the "
                    f"module has several tensor {what.split('_')[1]}s (its gradient has already "
                    f"been passed on); replace only the last one, or use Tensor.register_hook"
                )


def _check_replacement(result: Any, previous: tuple[Any, ...], what: str) -> tuple[Any, ...]:
    if not isinstance(result, (tuple, list)):
        result = (result,)
    if len(result) != len(previous):
        raise RuntimeError(f"{what}: returned {len(result)} gradients, expected {len(previous)}")
    for new, old in zip(result, previous):
        if new is not None and not isinstance(new, Tensor):
            raise TypeError(f"{what}: expected Tensors or None, got {type(new).__name__}")
        if isinstance(new, Tensor) and old is not None and new.shape != old.shape:
            raise RuntimeError(
                f"{what}: returned a gradient of shape {new.shape}, expected {old.shape}"
            )
    return tuple(result)


def _tap_outputs(output: Any, state: _BackwardState) -> Any:
    tensors = (
        [output]
        if isinstance(output, Tensor)
        else list(output)
        if isinstance(output, (tuple, list))
        else []
    )
    wanted = [t for t in tensors if isinstance(t, Tensor) and t._requires_grad]
    if not wanted:
        return output
    state.grad_outputs = [None] * len(tensors)
    state.pending_outputs = len(wanted)
    tapped = []
    for i, t in enumerate(tensors):
        if isinstance(t, Tensor) and t._requires_grad:
            state.backend = t._backend
            t = _GradientTap.apply(t, callback=state.output_tap(i))
        tapped.append(t)
    if isinstance(output, Tensor):
        return tapped[0]
    return type(output)(tapped) if isinstance(output, list) else tuple(tapped)


def call_with_hooks(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``module.forward(*args, **kwargs)`` with the module's hooks around it."""
    d = module.__dict__
    for hook, with_kwargs in list(d.get("_forward_pre_hooks", {}).values()):
        if with_kwargs:
            result = hook(module, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(
                        "forward pre-hook: with with_kwargs=True a hook must return None or "
                        "an (args, kwargs) tuple"
                    )
                args, kwargs = result
        else:
            result = hook(module, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
    state = None
    if (d.get("_backward_hooks") or d.get("_backward_pre_hooks")) and is_grad_enabled():
        needs = [isinstance(a, Tensor) and a._requires_grad for a in args]
        state = _BackwardState(module, len(args), needs)
        args = tuple(
            _GradientTap.apply(a, callback=state.input_tap(i)) if needs[i] else a
            for i, a in enumerate(args)
        )
    output = module.forward(*args, **kwargs)
    for hook, with_kwargs, _always in list(d.get("_forward_hooks", {}).values()):
        result = hook(module, args, kwargs, output) if with_kwargs else hook(module, args, output)
        if result is not None:
            output = result
    if state is not None:
        output = _tap_outputs(output, state)
    return output
