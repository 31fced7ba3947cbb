"""Reverse-mode automatic differentiation: graph nodes, the backward pass, grad modes.

A differentiable op is a :class:`Function` subclass whose ``forward`` and ``backward`` work on
raw backend arrays (``numpy`` / ``cupy``). ``Function.apply`` runs ``forward`` on the tensors'
arrays and, when any input requires a gradient, records the node on the output. A node keeps
references to the nodes (or leaf tensors) it came from and to what its ``backward`` needs, never
to the tensors it produced, so the graph holds no reference cycles and is freed as soon as the
last tensor pointing into it goes away.

Example:
    >>> import convlab
    >>> x = convlab.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad.numpy().tolist()
    [2.0, 4.0, 6.0]
"""

from __future__ import annotations

import functools
import sys
import threading
import types
import weakref
from collections.abc import Callable
from typing import Any, TypeVar, cast

from convlab import _precision

__all__ = [
    "Function",
    "backward",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "is_grad_enabled",
    "set_detect_anomaly",
    "is_anomaly_enabled",
    "AnomalyError",
    "bump_version",
    "RemovableHandle",
    "grad",
    "Variable",
    "inference_mode",
]

_F = TypeVar("_F", bound=Callable[..., Any])


class _ThreadMode(threading.local):
    """Grad mode belongs to each thread, as PyTorch's does: a ``no_grad`` block in one thread
    must not stop another thread's forward from recording its graph. New threads start with
    recording on (the class attribute is every thread's starting value)."""

    grad_enabled = True
    #: The running backward pass's final callbacks (``queue_callback``); None outside one.
    final_callbacks: list[Callable[[], Any]] | None = None


class _Mode:
    """Process-wide switches, read on every op (a plain class attribute is the cheapest read).
    Anomaly detection is process-wide, as in PyTorch."""

    detect_anomaly = False


_thread = _ThreadMode()


class AnomalyError(RuntimeError):
    """Raised under ``set_detect_anomaly(True)`` when an op produces NaN or infinity."""


def is_grad_enabled() -> bool:
    """Whether new ops in this thread record the graph for ``backward`` (grad mode belongs to
    each thread, as in PyTorch; a new thread starts with it on)."""
    return _thread.grad_enabled


class _GradMode:
    """Shared body of the grad-mode switches: context manager and decorator."""

    _mode = True

    def __enter__(self) -> None:
        self._previous = _thread.grad_enabled
        _thread.grad_enabled = self._mode

    def __exit__(self, *exc: Any) -> None:
        _thread.grad_enabled = self._previous

    def __call__(self, func: _F) -> _F:
        mode = self._mode

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            previous = _thread.grad_enabled
            _thread.grad_enabled = mode
            try:
                return func(*args, **kwargs)
            finally:
                _thread.grad_enabled = previous

        return cast(_F, wrapper)


class set_grad_enabled(_GradMode):
    """Turn graph recording on or off in this thread; usable as a function, context manager or
    decorator.

    Args:
        mode: ``True`` to record ops for ``backward``, ``False`` not to.
    """

    def __init__(self, mode: bool) -> None:
        self._previous = _thread.grad_enabled
        self._mode = bool(mode)
        _thread.grad_enabled = self._mode  # called as a plain function it switches at once

    def __enter__(self) -> None:
        # already switched by __init__: the state to restore on exit is the one before that
        _thread.grad_enabled = self._mode

    def __call__(self, func: _F) -> _F:
        _thread.grad_enabled = self._previous  # as a decorator it must not switch at definition
        return super().__call__(func)


class no_grad(_GradMode):
    """Context manager / decorator in which ops record no graph (inference, optimizer steps).

    It affects the calling thread only, as PyTorch's does: other threads keep recording.

    Example:
        >>> import convlab
        >>> w = convlab.ones(2, requires_grad=True)
        >>> with convlab.no_grad():
        ...     y = w * 2
        >>> y.requires_grad
        False
    """

    _mode = False


class inference_mode(_GradMode):
    """``torch.inference_mode``: no graph is recorded inside (convlab's ``no_grad``).

    Args:
        mode: ``False`` makes it a no-op, as in PyTorch.
    """

    def __init__(self, mode: bool = True) -> None:
        self._mode = not bool(mode)

    def __call__(self, func: _F) -> _F:
        if isinstance(func, bool):  # ``@inference_mode(False)`` used as a decorator factory
            return cast(_F, inference_mode(func))
        return super().__call__(func)


class enable_grad(_GradMode):
    """Context manager / decorator that turns graph recording back on inside ``no_grad``."""

    _mode = True


def set_detect_anomaly(mode: bool) -> None:
    """Check every op's output (forward) and every gradient (backward) for NaN / infinity.

    With it on, the first op that produces a non-finite value raises :class:`AnomalyError`
    naming the op, instead of letting NaN spread silently. It costs one pass over each result.
    """
    _Mode.detect_anomaly = bool(mode)


def is_anomaly_enabled() -> bool:
    """Whether ``set_detect_anomaly(True)`` is in effect."""
    return _Mode.detect_anomaly


def _check_finite(array: Any, what: str) -> None:
    import numpy

    if isinstance(array, numpy.ndarray):
        xp = numpy
    else:  # pragma: no cover - GPU arrays
        import cupy

        xp = cupy.get_array_module(array)
    if array.dtype.kind in "fc" and not bool(xp.isfinite(array).all()):
        kind = "NaN" if bool(xp.isnan(array).any()) else "infinity"
        raise AnomalyError(f"anomaly detected: {what} produced {kind} (shape {tuple(array.shape)})")


# -- version counters -----------------------------------------------------------------------------
# An in-place write bumps the version of the memory it writes: the root of the array's ``base``
# chain, so that every view of that memory shares one counter (as PyTorch's views share their
# base's). Nodes remember the versions of their inputs' memory when recorded; backward refuses a
# node whose input memory has been written since, instead of computing with changed values.
_versions: dict[int, int] = {}


def _root(array: Any) -> Any:
    base = getattr(array, "base", None)
    while base is not None and hasattr(base, "shape"):
        array = base
        base = getattr(array, "base", None)
    return array


def bump_version(array: Any) -> None:
    """Record an in-place write into ``array``'s memory (every view of it shares the count)."""
    root = _root(array)
    key = id(root)
    if key not in _versions:
        try:
            weakref.finalize(root, _versions.pop, key, None)
        except TypeError:  # memory we cannot watch (not weak-referenceable): not tracked
            return
    _versions[key] = _versions.get(key, 0) + 1


def _version_stamp(array: Any) -> tuple[Any, int] | None:
    root = _root(array)
    try:
        ref = weakref.ref(root)
    except TypeError:
        return None
    return ref, _versions.get(id(root), 0)


def _check_versions(node: Function) -> None:
    stamps = node.__dict__.get("_stamps")
    if not stamps:
        return
    for position, stamp in enumerate(stamps):
        if stamp is None:
            continue
        ref, version = stamp
        root = ref()
        # memory that no longer exists was not kept by the node, so it cannot matter
        if root is not None and _versions.get(id(root), 0) != version:
            raise RuntimeError(
                f"backward: one of the tensors needed for the gradient of "
                f"{type(node).__name__} (input {position}) has been modified by an in-place "
                f"operation: its memory is at version {_versions.get(id(root), 0)}, expected "
                f"version {version}. Modify a .clone() instead, or call backward before the "
                f"in-place change."
            )


# -- hooks ------------------------------------------------------------------------------------
class RemovableHandle:
    """What ``register_*hook`` returns: ``remove()`` unregisters the hook (as PyTorch's)."""

    _next_id = 0

    def __init__(self, hooks: dict[int, Any]) -> None:
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        """Unregister the hook (again: no effect)."""
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def _run_tensor_hooks(hooks: dict[int, Any], grad: Any, backend: Any) -> Any:
    """Call each ``Tensor.register_hook`` hook on the gradient; a returned tensor replaces it."""
    for hook in list(hooks.values()):
        result = hook(Tensor._wrap(grad, backend))
        if result is not None:
            if not isinstance(result, Tensor):
                raise TypeError(
                    f"hook: a tensor hook must return None or a Tensor, got {type(result).__name__}"
                )
            if tuple(result.shape) != tuple(grad.shape):
                raise RuntimeError(
                    f"hook: the returned gradient has shape {result.shape}, expected "
                    f"{tuple(grad.shape)}"
                )
            grad = result._data
    return grad


class Function:
    """A node of the autograd graph.

    Subclasses implement ``forward(self, *arrays, **params) -> array`` and
    ``backward(self, grad) -> tuple`` (one gradient or ``None`` per positional input). They may
    store on ``self`` whatever ``backward`` needs; it is dropped after the backward pass unless
    the graph is retained. ``self.backend`` is the inputs' backend and ``self.needs[i]`` says
    whether input ``i`` wants a gradient (valid in ``backward``).
    """

    #: Whether the op computes matrix products or convolutions, whose precision autocast sets:
    #: such a node records the autocast state of its forward and its backward runs in it.
    follows_autocast: bool = False

    #: Whether every array ``backward`` returns is newly allocated and referenced nowhere else
    #: (no input, saved array or other returned gradient shares its memory): a leaf's first
    #: gradient is then kept as it is instead of copied.
    fresh_grads: bool = False

    backend: Any
    needs: tuple[bool, ...]
    next: tuple[Function | Tensor | None, ...]  # per input: its node, a leaf, or None
    _stamps: tuple[tuple[Any, int] | None, ...]  # per input: its memory's version when recorded
    _autocast: tuple[bool, bool]  # follows_autocast nodes: the autocast state of their forward

    def forward(self, *arrays: Any, **params: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad: Any) -> tuple[Any, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any, **params: Any) -> Tensor:
        """Run the op on tensors (``None`` allowed for optional inputs); record it if needed."""
        if cls in _CTX_STYLE or _is_ctx_style(cls):
            from convlab._custom_function import apply_ctx_style

            output: Tensor = apply_ctx_style(cls, inputs, params)
            return output
        backend = None
        requires = False
        arrays: list[Any] = []
        for t in inputs:
            if t is None:
                arrays.append(None)
                continue
            if backend is None:
                backend = t._backend
            elif t._backend is not backend:
                raise RuntimeError(
                    f"{cls.__name__}: expected all tensors on one device, got "
                    + " and ".join(sorted({x._backend.name for x in inputs if x is not None}))
                )
            requires = requires or t._requires_grad
            arrays.append(t._data)
        fn = cls.__new__(cls)
        fn.backend = backend
        out = fn.forward(*arrays, **params)
        if _Mode.detect_anomaly:
            _check_finite(out, f"{cls.__name__}.forward")
        result = Tensor._wrap(out, fn.backend)  # fn.backend: a device copy changes it
        if requires and _thread.grad_enabled:
            fn.needs = tuple(t is not None and t._requires_grad for t in inputs)
            fn.next = tuple(
                None if t is None or not t._requires_grad else (t if t._node is None else t._node)
                for t in inputs
            )
            fn._stamps = tuple(None if t is None else _version_stamp(t._data) for t in inputs)
            if cls.follows_autocast:
                fn._autocast = _precision.autocast_state()
            result._requires_grad = True
            result._node = fn
        return result

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


_CTX_STYLE: set[type] = set()
_ARRAY_STYLE: set[type] = set()


def _is_ctx_style(cls: type) -> bool:
    """Whether ``cls`` is written in PyTorch's style: ``forward(ctx, ...)`` a staticmethod."""
    if cls in _ARRAY_STYLE:
        return False
    import inspect

    ctx_style = isinstance(inspect.getattr_static(cls, "forward"), staticmethod)
    (_CTX_STYLE if ctx_style else _ARRAY_STYLE).add(cls)
    return ctx_style


def _topological_order(root: Function) -> list[Function]:
    """Nodes reachable from ``root``, each after every node that consumes its output."""
    order: list[Function] = []
    visited: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        nexts = node.__dict__.get("next")
        if nexts is None:
            raise RuntimeError(
                "backward: trying to backward through the graph a second time (or directly "
                "access saved tensors after they have already been freed). Saved intermediate "
                "values of the graph are freed when you call .backward(); specify "
                "retain_graph=True if you need to backward through the graph a second time."
            )
        for n in nexts:
            if n is not None and isinstance(n, Function) and id(n) not in visited:
                stack.append((n, False))
    order.reverse()
    return order


def _accumulate_leaf(leaf: Tensor, grad: Any, fresh: bool = False) -> None:
    """Add ``grad`` into ``leaf.grad``. ``fresh``: the array is the op's own (see
    :attr:`Function.fresh_grads`), so a first gradient that is contiguous is kept without a
    copy."""
    if leaf._hooks:
        hooked = _run_tensor_hooks(leaf._hooks, grad, leaf._backend)
        fresh = fresh and hooked is grad
        grad = hooked
    if grad.shape != leaf._data.shape:
        raise RuntimeError(
            f"backward: gradient of shape {tuple(grad.shape)} reached a leaf of "
            f"shape {tuple(leaf._data.shape)} (an op's backward is wrong)"
        )
    if grad.dtype != leaf._data.dtype:
        grad, fresh = grad.astype(leaf._data.dtype), True
    if leaf.grad is None:
        if not (fresh and grad.flags.c_contiguous and grad.flags.writeable):
            # it may alias another op's gradient or a read-only broadcast view: own a copy
            grad = leaf._backend.xp.array(grad, copy=True)
        leaf.grad = Tensor._wrap(grad, leaf._backend)
        return
    held = leaf.grad
    current = held._data
    if _only_held_by(held, current) and current.flags.writeable:
        # PyTorch's AccumulateGrad adds in place when nothing else holds the gradient
        # (through the backend's one-pass parallel update where it has one: the same bits)
        leaf._backend._scaled_add_(current, grad, 1.0)
    else:
        held._data = current + grad


def _only_held_by(tensor: Tensor, data: Any) -> bool:
    """Whether ``data`` is referenced only by ``tensor._data`` and the caller's one local
    name: no view, NumPy array or other tensor shares it."""
    return tensor._data is data and sys.getrefcount(data) <= _UNSHARED_REFS


def _unshared_refs() -> int:
    """What ``sys.getrefcount`` reports in :func:`_only_held_by` for an object held only by an
    attribute and the caller's local (measured: interpreters count borrowed references
    differently): the probe holds one the same way and counts through the same call depth."""
    holder = types.SimpleNamespace(_data=[0.0])
    current = holder._data
    return _refcount(current)


def _refcount(data: Any) -> int:
    return sys.getrefcount(data)


_UNSHARED_REFS = _unshared_refs()


def _seed(tensor: Any, grad: Any, what: str) -> Any:
    """The starting gradient array for ``tensor`` (ones for a one-element tensor)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{what}: expected a Tensor, got {type(tensor).__name__}")
    if not tensor._requires_grad:
        raise RuntimeError(
            f"{what}: the tensor does not require grad and has no grad_fn "
            "(did you compute it under no_grad, or from tensors without "
            "requires_grad=True?)"
        )
    xp = tensor._backend.xp
    if grad is None:
        if tensor._data.size != 1:
            raise RuntimeError(
                f"{what}: grad can be implicitly created only for scalar "
                f"outputs; got shape {tuple(tensor._data.shape)}, pass grad="
            )
        return xp.ones_like(tensor._data)
    grad_array = grad._data if isinstance(grad, Tensor) else xp.asarray(grad)
    if tuple(grad_array.shape) != tuple(tensor._data.shape):
        raise ValueError(
            f"grad: expected shape {tuple(tensor._data.shape)}, got {tuple(grad_array.shape)}"
        )
    return grad_array.astype(tensor._data.dtype, copy=False)


class _Roots(Function):
    """The virtual node above the tensors a backward pass starts from: it hands each its seed."""

    seeds: list[Any]

    def backward(self, grad: Any) -> tuple[Any, ...]:
        return tuple(self.seeds)


class _Capture:
    """Where ``autograd.grad`` collects the gradients of its ``inputs`` (no ``.grad`` written).

    Leaves are caught as they would be accumulated; a non-leaf input's gradient is the total
    that reaches its node, caught when the node is processed.
    """

    def __init__(self, inputs: list[Tensor]) -> None:
        self.leaves = {id(t): i for i, t in enumerate(inputs) if t._node is None}
        self.nodes = {id(t._node): i for i, t in enumerate(inputs) if t._node is not None}
        self.grads: list[Any] = [None] * len(inputs)

    def add(self, position: int, grad: Any) -> None:
        old = self.grads[position]
        self.grads[position] = grad if old is None else old + grad


def _run_backward(
    tensors: list[Tensor], seeds: list[Any], retain_graph: bool, capture: _Capture | None
) -> None:
    """The backward pass from ``tensors`` (with their seed gradients) through the graph."""
    root = _Roots.__new__(_Roots)
    root.backend = tensors[0]._backend
    root.seeds = seeds
    root.next = tuple(t if t._node is None else t._node for t in tensors)
    root.needs = tuple(True for _ in tensors)
    anomaly = _Mode.detect_anomaly
    grads: dict[int, Any] = {id(root): True}
    previous = _thread.grad_enabled
    _thread.grad_enabled = False  # backward formulas work on raw arrays; record nothing
    outer_callbacks = _thread.final_callbacks  # a backward run from inside a hook keeps its own
    callbacks: list[Callable[[], Any]] = []
    _thread.final_callbacks = callbacks
    try:
        for node in _topological_order(root):
            g = grads.pop(id(node), None)
            if g is None:  # every path into this node was cut (no input needs grad)
                if not retain_graph:
                    node.__dict__.clear()
                continue
            hooks = node.__dict__.get("_tensor_hooks")
            if hooks:
                g = _run_tensor_hooks(hooks, g, node.backend)
            if capture is not None and id(node) in capture.nodes:
                capture.add(capture.nodes[id(node)], g)
            _check_versions(node)
            recorded = node.__dict__.get("_autocast")
            if recorded is not None and recorded != _precision.autocast_state():
                with _precision.restored_autocast(recorded):
                    input_grads = node.backward(g)
            else:
                input_grads = node.backward(g)
            for target, gi in zip(node.next, input_grads):
                if target is None or gi is None:
                    continue
                if anomaly:
                    _check_finite(gi, f"{type(node).__name__}.backward")
                if isinstance(target, Function):
                    key = id(target)
                    previous_grad = grads.get(key)
                    grads[key] = gi if previous_grad is None else previous_grad + gi
                elif capture is None:
                    _accumulate_leaf(target, gi, node.fresh_grads)
                elif id(target) in capture.leaves:
                    if target._hooks:
                        gi = _run_tensor_hooks(target._hooks, gi, target._backend)
                    capture.add(capture.leaves[id(target)], gi)
            if not retain_graph:
                node.__dict__.clear()
        # after every gradient is accumulated; a callback may queue further ones
        done = 0
        while done < len(callbacks):
            callbacks[done]()
            done += 1
    finally:
        _thread.grad_enabled = previous
        _thread.final_callbacks = outer_callbacks


def backward(
    tensor: Tensor, grad: Any = None, retain_graph: bool = False, inputs: Any = None
) -> None:
    """Accumulate d(tensor)/d(leaf) into every leaf's ``.grad`` (see ``Tensor.backward``).

    ``tensor`` may also be a sequence of tensors, with ``grad`` a sequence of their gradients
    (``torch.autograd.backward``); ``inputs`` limits the accumulation to those tensors.
    """
    tensors = list(tensor) if isinstance(tensor, (list, tuple)) else [tensor]
    if not tensors:
        raise ValueError("backward: expected at least one tensor")
    grads = list(grad) if isinstance(grad, (list, tuple)) else [grad] * len(tensors)
    if len(grads) != len(tensors):
        raise ValueError(
            f"grad_tensors: expected {len(tensors)} gradients (one per tensor), got {len(grads)}"
        )
    seeds = [_seed(t, g, "backward") for t, g in zip(tensors, grads)]
    if inputs is None:
        _run_backward(tensors, seeds, retain_graph, None)
        return
    targets = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    capture = _Capture(targets)
    _run_backward(tensors, seeds, retain_graph, capture)
    for t, g in zip(targets, capture.grads):
        if g is not None:
            if t._node is None:
                _accumulate_leaf_plain(t, g)
            else:
                t.grad = Tensor._wrap(g, t._backend)


def _accumulate_leaf_plain(leaf: Tensor, grad: Any) -> None:
    """``_accumulate_leaf`` without running the leaf's hooks (they already ran)."""
    hooks, leaf._hooks = leaf._hooks, None
    try:
        _accumulate_leaf(leaf, grad)
    finally:
        leaf._hooks = hooks


def grad(
    outputs: Any,
    inputs: Any,
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    only_inputs: bool = True,
    allow_unused: bool | None = None,
    is_grads_batched: bool = False,
    materialize_grads: bool = False,
) -> tuple[Tensor | None, ...]:
    """The gradients of ``outputs`` with respect to ``inputs``, as ``torch.autograd.grad``.

    Nothing is accumulated into any ``.grad``. ``grad_outputs`` gives d(loss)/d(output) for
    outputs with more than one element.

    Args:
        outputs: A tensor or a sequence of tensors.
        inputs: A tensor or a sequence of tensors that require grad.
        grad_outputs: A tensor (or ``None``) per output.
        retain_graph: Keep the graph for another backward (default: ``create_graph``).
        create_graph: Not supported: convlab's backward formulas are not themselves recorded,
            so higher-order gradients (gradient penalties) cannot be taken.
        only_inputs: Accepted (PyTorch ignores it too).
        allow_unused: Return ``None`` for an input that ``outputs`` do not depend on, instead
            of raising.
        is_grads_batched: Not supported.
        materialize_grads: Return zeros instead of ``None`` for unused inputs.

    Raises:
        NotImplementedError: For ``create_graph=True`` or ``is_grads_batched=True``.
        RuntimeError: If an input is unused and neither ``allow_unused`` nor
            ``materialize_grads`` is set, or a tensor does not require grad.
    """
    if create_graph:
        raise NotImplementedError(
            "autograd.grad: create_graph=True (higher-order gradients, e.g. a gradient "
            "penalty) is not supported: convlab does not record its backward pass"
        )
    if is_grads_batched:
        raise NotImplementedError("autograd.grad: is_grads_batched=True is not supported")
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if not outs or not ins:
        raise ValueError("autograd.grad: expected at least one output and one input")
    for i, t in enumerate(ins):
        if not isinstance(t, Tensor) or not t._requires_grad:
            raise RuntimeError(
                f"autograd.grad: inputs[{i}] does not require grad (every input must)"
            )
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_list = [grad_outputs] * len(outs)
    else:
        grad_list = list(grad_outputs)
    if len(grad_list) != len(outs):
        raise ValueError(
            f"grad_outputs: expected {len(outs)} gradients (one per output), got {len(grad_list)}"
        )
    seeds = [_seed(t, g, "autograd.grad") for t, g in zip(outs, grad_list)]
    capture = _Capture(ins)
    _run_backward(outs, seeds, bool(retain_graph), capture)
    result: list[Tensor | None] = []
    for i, (t, g) in enumerate(zip(ins, capture.grads)):
        if g is None:
            if materialize_grads:
                result.append(Tensor._wrap(t._backend.xp.zeros_like(t._data), t._backend))
                continue
            if not allow_unused:
                raise RuntimeError(
                    f"autograd.grad: inputs[{i}] was not used to compute the outputs; pass "
                    f"allow_unused=True to get None for it"
                )
            result.append(None)
            continue
        if g.dtype != t._data.dtype:
            g = g.astype(t._data.dtype)
        result.append(Tensor._wrap(g, t._backend))
    return tuple(result)


def Variable(data: Any, requires_grad: bool = False, volatile: bool = False) -> Tensor:  # noqa: N802
    """PyTorch's deprecated ``Variable(tensor)``: the tensor itself (Variables and tensors
    are one type since PyTorch 0.4); ``requires_grad=True`` sets it on the tensor.

    ``Variable._execution_engine.queue_callback(fn)`` is PyTorch's hook for running ``fn``
    at the end of the current backward pass (see :class:`_ExecutionEngine`)."""
    t = data if isinstance(data, Tensor) else Tensor(data)
    if requires_grad:
        t.requires_grad_(True)
    return t


class _ExecutionEngine:
    """The part of PyTorch's ``Variable._execution_engine`` that programs use."""

    @staticmethod
    def queue_callback(callback: Callable[[], Any]) -> None:
        """Run ``callback()`` once the backward pass now running has accumulated every
        gradient (callbacks run in the order queued, with gradient recording off).

        Args:
            callback: A function of no arguments.

        Raises:
            RuntimeError: Outside a backward pass (for example in a forward hook).
        """
        queue = _thread.final_callbacks
        if queue is None:
            raise RuntimeError("Final callbacks can only be installed during backward pass.")
        queue.append(callback)


Variable._execution_engine = _ExecutionEngine()  # type: ignore[attr-defined]


from convlab._tensor import Tensor  # noqa: E402  (Tensor needs this module's Function first)
