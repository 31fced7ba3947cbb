"""``Module``: the base class of layers and models (parameters, buffers, state dicts)."""

from __future__ import annotations

import collections
import collections.abc
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from convlab import _dtype
from convlab._tensor import Tensor, backend_for, reset_grads
from convlab.nn.parameter import Parameter

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11; for mypy only

__all__ = ["Module", "IncompatibleKeys"]

#: What ``load_state_dict`` returns, as ``torch.nn.modules.module._IncompatibleKeys``.
IncompatibleKeys = collections.namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _indent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    return lines[0] + "".join("\n" + " " * spaces + line for line in lines[1:])


class Module:
    """Base class of every layer and model.

    Assigning a :class:`Parameter`, another ``Module`` or (through :meth:`register_buffer`) a
    buffer tensor as an attribute registers it, so :meth:`parameters`, :meth:`state_dict`,
    :meth:`to` and :meth:`train` see it. Subclasses call ``super().__init__()`` first and
    implement ``forward``.

    Example:
        >>> import convlab
        >>> from convlab import nn
        >>> class Tiny(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc = nn.Linear(3, 2)
        ...     def forward(self, x):
        ...         return self.fc(x).relu()
        >>> [name for name, _ in Tiny().named_parameters()]
        ['fc.weight', 'fc.bias']
    """

    training: bool
    _parameters: dict[str, Parameter | None]
    _buffers: dict[str, Tensor | None]
    _non_persistent: set[str]
    _modules: dict[str, Module | None]

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    # -- registration -------------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() is called")
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            buffers.pop(name, None)
            modules.pop(name, None)
            self.__dict__.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            buffers.pop(name, None)
            self.__dict__.pop(name, None)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as parameter {name!r} "
                    f"(convlab.nn.Parameter or None expected)"
                )
            params[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign {type(value).__name__} as buffer {name!r} "
                    f"(Tensor or None expected)"
                )
            buffers[name] = value
        elif name in modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as child module "
                    f"{name!r} (Module or None expected)"
                )
            modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            entries = d.get(table)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or ``None``, a placeholder) under ``name``."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"param: expected a Parameter or None, got {type(param).__name__}")
        if param is None:
            self._parameters[name] = None
        else:
            setattr(self, name, param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a tensor that is part of the state but not trained (running statistics).

        Args:
            name: Attribute name.
            tensor: The buffer, or ``None``.
            persistent: Whether it is part of :meth:`state_dict`.
        """
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"tensor: expected a Tensor or None, got {type(tensor).__name__}")
        if "." in name or not name:
            raise KeyError(f"buffer name: expected a non-empty name without '.', got {name!r}")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def register_module(self, name: str, module: Module | None) -> None:
        """Alias of :meth:`add_module`, as in PyTorch."""
        self.add_module(name, module)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register a child module under ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"module: expected a Module or None, got {type(module).__name__}")
        self._modules[name] = module

    # -- calling ------------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation; every subclass defines it."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        d = self.__dict__
        if (
            "_forward_pre_hooks" in d
            or "_forward_hooks" in d
            or "_backward_hooks" in d
            or ("_backward_pre_hooks" in d)
        ):
            from convlab.nn.hooks import call_with_hooks

            return call_with_hooks(self, args, kwargs)
        return self.forward(*args, **kwargs)

    # -- hooks --------------------------------------------------------------------------------
    def _hook_table(self, name: str) -> dict[int, Any]:
        table = self.__dict__.get(name)
        if table is None:
            table = {}
            object.__setattr__(self, name, table)
        return table

    def register_forward_pre_hook(
        self, hook: Callable[..., Any], *, prepend: bool = False, with_kwargs: bool = False
    ) -> Any:
        """Call ``hook(module, args)`` before every ``forward``; a returned value replaces args.

        Args:
            hook: The callable; with ``with_kwargs=True`` it is ``hook(module, args, kwargs)``
                and may return ``(args, kwargs)``.
            prepend: Run it before the hooks already registered.
            with_kwargs: Pass the keyword arguments too.

        Returns:
            A handle whose ``remove()`` unregisters the hook.
        """
        from convlab.nn.hooks import add_hook

        return add_hook(self._hook_table("_forward_pre_hooks"), (hook, with_kwargs), prepend)

    def register_forward_hook(
        self,
        hook: Callable[..., Any],
        *,
        prepend: bool = False,
        with_kwargs: bool = False,
        always_call: bool = False,
    ) -> Any:
        """Call ``hook(module, args, output)`` after every ``forward``; a returned value
        replaces the output.

        Args:
            hook: The callable; with ``with_kwargs=True`` it is
                ``hook(module, args, kwargs, output)``.
            prepend: Run it before the hooks already registered.
            with_kwargs: Pass the keyword arguments too.
            always_call: Accepted for PyTorch compatibility (hooks do not run when
                ``forward`` raises).

        Returns:
            A handle whose ``remove()`` unregisters the hook.
        """
        from convlab.nn.hooks import add_hook

        entry = (hook, with_kwargs, always_call)
        return add_hook(self._hook_table("_forward_hooks"), entry, prepend)

    def register_full_backward_hook(self, hook: Callable[..., Any], prepend: bool = False) -> Any:
        """Call ``hook(module, grad_input, grad_output)`` when the gradients with respect to
        the module's positional tensor inputs are computed; a returned tuple replaces
        ``grad_input``.

        Returns:
            A handle whose ``remove()`` unregisters the hook.
        """
        from convlab.nn.hooks import add_hook

        return add_hook(self._hook_table("_backward_hooks"), hook, prepend)

    register_backward_hook = register_full_backward_hook

    def register_full_backward_pre_hook(
        self, hook: Callable[..., Any], prepend: bool = False
    ) -> Any:
        """Call ``hook(module, grad_output)`` when the gradients with respect to the module's
        outputs are known; a returned tuple replaces ``grad_output``.

        Returns:
            A handle whose ``remove()`` unregisters the hook.
        """
        from convlab.nn.hooks import add_hook

        return add_hook(self._hook_table("_backward_pre_hooks"), hook, prepend)

    # -- traversal ----------------------------------------------------------------------------
    def named_modules(
        self, memo: set[int] | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """``(name, module)`` for this module and every descendant, each once."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is None:
                continue
            yield from child.named_modules(
                memo, f"{prefix}.{name}" if prefix else name, remove_duplicate
            )

    def modules(self) -> Iterator[Module]:
        """This module and every descendant."""
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """``(name, module)`` for the direct children."""
        seen: set[int] = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        """The direct children."""
        for _, child in self.named_children():
            yield child

    def _named_members(self, table: str, prefix: str, recurse: bool) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        modules: Iterable[tuple[str, Module]] = (
            self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        )
        for module_prefix, module in modules:
            for name, value in getattr(module, table).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(
        self, prefix: str = "", recurse: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, Parameter)`` pairs, each parameter once."""
        yield from self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter, each once (what an optimizer takes)."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        """``(dotted name, Tensor)`` pairs of buffers."""
        yield from self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        """Every buffer."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn: Callable[[Module], Any]) -> Self:
        """Call ``fn`` on every descendant, then on this module; return ``self``."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # -- modes and devices --------------------------------------------------------------------
    def train(self, mode: bool = True) -> Self:
        """Set training mode (dropout active, batch norm uses batch statistics)."""
        if not isinstance(mode, bool):
            raise TypeError(f"mode: expected a bool, got {mode!r}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Self:
        """Set evaluation mode (same as ``train(False)``)."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters."""
        reset_grads(self.parameters(), set_to_none)

    def requires_grad_(self, requires_grad: bool = True) -> Self:
        """Turn gradient recording of every parameter on or off."""
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def to(self, *args: Any, **kwargs: Any) -> Self:
        """Move parameters and buffers to a device and/or cast the floating ones to a dtype.

        Parameters keep their identity (optimizers holding them stay valid), as in PyTorch.
        """
        from convlab._tensor import _parse_to_args

        for ignored in ("non_blocking", "memory_format"):  # accepted as Tensor.to accepts them
            kwargs.pop(ignored, None)
        device, dtype = _parse_to_args(args, kwargs)
        backend = None if device is None else backend_for(device)
        dtype = _dtype.resolve_dtype(dtype)
        if dtype is not None and dtype.kind != "f":
            raise TypeError(f"Module.to: only floating-point dtypes are allowed, got {dtype}")
        for t in list(self.parameters()) + list(self.buffers()):
            _move(t, backend, dtype)
            if t.grad is not None:
                _move(t.grad, backend, dtype)
        return self

    def cpu(self) -> Self:
        """Move everything to the CPU."""
        return self.to("cpu")

    def gpu(self, device: Any = None) -> Self:
        """Move everything to the GPU (``device``: ``None``, 0, ``"cuda"`` or ``"cuda:0"``)."""
        if device is not None:
            from convlab import cuda

            cuda.set_device(device)  # validates the index: convlab uses GPU 0
        return self.to("gpu")

    cuda = gpu

    def half(self) -> Self:
        """Cast floating parameters and buffers to float16."""
        return self.to(_dtype.float16)

    def type(self, dst_type: Any) -> Self:
        """Cast floating parameters and buffers to ``dst_type`` (a floating dtype)."""
        return self.to(dst_type)

    def share_memory(self) -> Self:
        """Return ``self``: convlab's worker processes do not share parameters (PyTorch moves
        them to shared memory for ``multiprocessing`` training, which convlab does not run)."""
        return self

    # -- lookup by dotted name ----------------------------------------------------------------
    def get_submodule(self, target: str) -> Module:
        """The descendant at the dotted path ``target`` (``""`` is this module).

        Raises:
            AttributeError: Naming the first missing part, as PyTorch.
        """
        module: Module = self
        if target == "":
            return module
        for part in target.split("."):
            child = module._modules.get(part)
            if child is None:
                raise AttributeError(
                    f"get_submodule: {module._get_name()} has no submodule {part!r} (in {target!r})"
                )
            module = child
        return module

    def _get_tensor(self, target: str, table: str, what: str) -> Any:
        prefix, _, name = target.rpartition(".")
        module = self.get_submodule(prefix)
        entries = getattr(module, table)
        if name not in entries or entries[name] is None:
            raise AttributeError(f"get_{what}: {module._get_name()} has no {what} {name!r}")
        return entries[name]

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at the dotted path ``target`` (``"layer1.0.weight"``)."""
        param: Parameter = self._get_tensor(target, "_parameters", "parameter")
        return param

    def get_buffer(self, target: str) -> Tensor:
        """The buffer at the dotted path ``target`` (``"bn.running_mean"``)."""
        buffer: Tensor = self._get_tensor(target, "_buffers", "buffer")
        return buffer

    def _get_name(self) -> str:
        return type(self).__name__

    def float(self) -> Self:
        """Cast floating parameters and buffers to float32."""
        return self.to(_dtype.float32)

    def double(self) -> Self:
        """Cast floating parameters and buffers to float64."""
        return self.to(_dtype.float64)

    # -- state --------------------------------------------------------------------------------
    def state_dict(
        self,
        destination: collections.OrderedDict[str, Tensor] | None = None,
        prefix: str = "",
        keep_vars: bool = False,
    ) -> collections.OrderedDict[str, Tensor]:
        """Parameters and persistent buffers by dotted name (PyTorch's keys and order).

        The tensors share memory with the module; ``keep_vars=False`` detaches them.
        """
        if destination is None:
            destination = collections.OrderedDict()
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                destination[prefix + name] = b if keep_vars else b.detach()
        for name, child in self._modules.items():
            if child is not None:
                child.state_dict(destination, prefix + name + ".", keep_vars)
        return destination

    def load_state_dict(self, state_dict: Any, strict: bool = True) -> IncompatibleKeys:
        """Copy values from ``state_dict`` into the parameters and buffers, in place.

        Values may be tensors or arrays; they are cast to each entry's dtype and moved to its
        device.

        Raises:
            RuntimeError: Listing every missing and unexpected key (``strict=True``) and every
                shape mismatch (always); nothing is modified when it raises.
        """
        if not isinstance(state_dict, collections.abc.Mapping):
            raise TypeError(f"state_dict: expected a mapping, got {type(state_dict).__name__}")
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        arrays = {}
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            try:
                array = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
            except (TypeError, ValueError) as err:  # ragged lists and the like
                problems.append(f"value for {key} is not an array: {err}")
                continue
            if array.shape != target.shape:
                problems.append(
                    f"size mismatch for {key}: copying a value of shape "
                    f"{array.shape}, the shape in the current model is "
                    f"{target.shape}"
                )
            elif array.dtype.kind not in "biuf":
                problems.append(
                    f"dtype mismatch for {key}: expected real numbers (cast to "
                    f"{target.dtype}), got dtype {array.dtype}"
                )
            else:
                arrays[key] = array
        if strict:
            if missing:
                problems.insert(
                    0, "Missing key(s) in state_dict: " + ", ".join(repr(k) for k in missing)
                )
            if unexpected:
                problems.insert(
                    0, "Unexpected key(s) in state_dict: " + ", ".join(repr(k) for k in unexpected)
                )
        if problems:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                + "\n\t".join(problems)
            )
        # every value checked above: nothing is modified unless all of them fit
        for key, array in arrays.items():
            target = own[key]
            target._data[...] = target._backend.asarray(array.astype(target.dtype, copy=False))
        return IncompatibleKeys(missing, unexpected)

    # -- repr ---------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The part of the repr between the parentheses (layer settings)."""
        return ""

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        children = [f"({name}): {_indent(repr(m), 2)}" for name, m in self._modules.items()]
        lines += children
        main = type(self).__name__ + "("
        if lines:
            if len(lines) == 1 and not children:
                main += lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"

    def __dir__(self) -> list[str]:
        return sorted(
            set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules)
        )


def _move(t: Tensor, backend: Any, dtype: Any) -> None:
    array = t._data
    if backend is not None and backend is not t._backend:
        array = backend.asarray(t._backend.to_numpy(array))
        t._backend = backend
    if dtype is not None and array.dtype.kind == "f" and array.dtype != dtype:
        array = array.astype(dtype)
    t._data = array
