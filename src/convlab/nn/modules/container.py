"""Containers: ``Sequential``, ``ModuleList``, ``ModuleDict``, ``ParameterList`` and
``ParameterDict``."""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, cast

from convlab._tensor import Tensor
from convlab.nn.module import Module
from convlab.nn.parameter import Parameter

__all__ = ["Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"]

# A container's entries are Modules (append and the constructors check them). Module._modules
# is typed Optional[Module] because setting a child attribute to None blanks its entry; a
# container blanked so by hand then fails in forward, as PyTorch's does. The casts below tell
# mypy the entries are Modules.


class Sequential(Module):
    """Modules applied one after another; built from arguments or an ``OrderedDict``.

    Example:
        >>> from convlab import nn
        >>> nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        Sequential(
          (0): Linear(in_features=4, out_features=8, bias=True)
          (1): ReLU()
        )
    """

    def __init__(self, *modules: Any) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], collections.OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, _checked(m, name))
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), _checked(m, str(i)))

    def forward(self, x: Any) -> Any:
        for m in cast("Iterable[Module]", self._modules.values()):
            x = m(x)
        return x

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(cast("Iterable[Module]", self._modules.values()))

    def __getitem__(self, index: Any) -> Any:
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(collections.OrderedDict(items[index]))
        return items[_index(index, len(items))][1]

    def append(self, module: Module) -> Sequential:
        """Add ``module`` at the end."""
        self.add_module(str(len(self)), _checked(module, str(len(self))))
        return self

    def extend(self, modules: Iterable[Module]) -> Sequential:
        """Add several modules at the end."""
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> Sequential:
        """Put ``module`` before position ``index``, renumbering the ones after it."""
        _checked(module, str(index))
        entries = list(self._modules.values())
        n = len(entries)
        if not -n <= index <= n:
            raise IndexError(f"index {index} is out of range for {n} modules")
        entries.insert(index + n if index < 0 else index, module)
        _renumber(self, entries)
        return self

    def pop(self, index: int | slice) -> Any:
        """Remove and return the module at ``index``."""
        v = self[index]
        del self[index]
        return v

    def __setitem__(self, index: int, module: Module) -> None:
        key = list(self._modules)[_index(index, len(self))]
        setattr(self, key, _checked(module, key))

    def __delitem__(self, index: int | slice) -> None:
        keys = list(self._modules)
        doomed = keys[index] if isinstance(index, slice) else [keys[_index(index, len(keys))]]
        for key in doomed:
            del self._modules[key]
        # PyTorch renumbers what is left, so indices and names stay equal
        _renumber(self, list(self._modules.values()))

    def __add__(self, other: Sequential) -> Sequential:
        if not isinstance(other, Sequential):
            raise ValueError(
                f"add operator supports only objects of Sequential class, but "
                f"{type(other).__name__} is given."
            )
        return Sequential(*self, *other)


class ModuleList(Module):
    """A list of modules whose parameters are registered (no ``forward`` of its own)."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        for m in modules or ():
            self.append(m)

    def append(self, module: Module) -> ModuleList:
        """Add ``module`` at the end."""
        self.add_module(str(len(self)), _checked(module, str(len(self))))
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Add several modules at the end."""
        for m in modules:
            self.append(m)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(cast("Iterable[Module]", self._modules.values()))

    def __getitem__(self, index: Any) -> Any:
        items = list(cast("Iterable[Module]", self._modules.values()))
        if isinstance(index, slice):
            return ModuleList(items[index])
        return items[_index(index, len(items))]

    def __setitem__(self, index: int, module: Module) -> None:
        key = list(self._modules)[_index(index, len(self))]
        setattr(self, key, _checked(module, key))

    def __delitem__(self, index: int | slice) -> None:
        keys = list(self._modules)
        doomed = keys[index] if isinstance(index, slice) else [keys[_index(index, len(keys))]]
        for key in doomed:
            del self._modules[key]
        _renumber(self, list(self._modules.values()))

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return ModuleList([*self, *other])

    def insert(self, index: int, module: Module) -> None:
        """Put ``module`` before position ``index``."""
        entries = list(self._modules.values())
        entries.insert(index, _checked(module, str(index)))
        _renumber(self, entries)

    def pop(self, index: int | slice) -> Any:
        """Remove and return the module at ``index``."""
        v = self[index]
        del self[index]
        return v


class ModuleDict(Module):
    """Modules by name, registered like attributes (``torch.nn.ModuleDict``); no ``forward``.

    Args:
        modules: A mapping or an iterable of ``(name, module)`` pairs.
    """

    def __init__(self, modules: Any = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return cast(Module, self._modules[key])

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, _checked(module, key))

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def clear(self) -> None:
        """Remove every module."""
        self._modules.clear()

    def pop(self, key: str) -> Module:
        """Remove and return the module under ``key``."""
        v = self[key]
        del self[key]
        return v

    def keys(self) -> Iterable[str]:
        """The names, in insertion order."""
        return self._modules.keys()

    def items(self) -> Iterable[tuple[str, Module]]:
        """``(name, module)`` pairs, in insertion order."""
        return cast("Iterable[tuple[str, Module]]", self._modules.items())

    def values(self) -> Iterable[Module]:
        """The modules, in insertion order."""
        return cast("Iterable[Module]", self._modules.values())

    def update(self, modules: Any) -> None:
        """Add or replace modules from a mapping or an iterable of ``(name, module)`` pairs."""
        pairs = modules.items() if isinstance(modules, Mapping) else modules
        for j, pair in enumerate(pairs):
            if not isinstance(pair, Mapping) and len(pair) != 2:
                raise ValueError(
                    f"ModuleDict update sequence element #{j} has length {len(pair)}; 2 is required"
                )
            self[pair[0]] = pair[1]


def _as_parameter(value: Any) -> Any:
    """As PyTorch's parameter containers: a plain tensor becomes a Parameter."""
    if isinstance(value, Tensor) and not isinstance(value, Parameter):
        return Parameter(value)
    return value


class ParameterList(Module):
    """A list of parameters, registered under ``"0"``, ``"1"``, ... (``torch.nn.ParameterList``).

    Plain tensors are wrapped into :class:`Parameter`; other objects are stored as they are.
    """

    def __init__(self, values: Iterable[Any] | None = None) -> None:
        super().__init__()
        object.__setattr__(self, "_size", 0)
        for v in values or ():
            self.append(v)

    def _store(self, key: str, value: Any) -> None:
        value = _as_parameter(value)
        if isinstance(value, Parameter):
            self.register_parameter(key, value)
        else:
            self._parameters.pop(key, None)
            object.__setattr__(self, key, value)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return ParameterList([self[i] for i in range(len(self))[index]])
        return getattr(self, str(_index(index, len(self))))

    def __setitem__(self, index: int, value: Any) -> None:
        self._store(str(_index(index, len(self))), value)

    def __len__(self) -> int:
        return cast(int, self.__dict__["_size"])

    def __iter__(self) -> Iterator[Any]:
        return (self[i] for i in range(len(self)))

    def __iadd__(self, values: Iterable[Any]) -> ParameterList:
        return self.extend(values)

    def append(self, value: Any) -> ParameterList:
        """Add ``value`` at the end."""
        n = len(self)
        object.__setattr__(self, "_size", n + 1)
        self._store(str(n), value)
        return self

    def extend(self, values: Iterable[Any]) -> ParameterList:
        """Add several values at the end."""
        for v in values:
            self.append(v)
        return self

    def extra_repr(self) -> str:
        return "\n".join(_describe(str(i), p) for i, p in enumerate(self))


class ParameterDict(Module):
    """Parameters by name (``torch.nn.ParameterDict``); plain tensors become Parameters.

    Args:
        parameters: A mapping or an iterable of ``(name, value)`` pairs.
    """

    def __init__(self, parameters: Any = None) -> None:
        super().__init__()
        object.__setattr__(self, "_keys", {})
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        self.__dict__["_keys"][key] = None
        value = _as_parameter(value)
        if isinstance(value, Parameter):
            self.register_parameter(key, value)
        else:
            self._parameters.pop(key, None)
            object.__setattr__(self, key, value)

    def __delitem__(self, key: str) -> None:
        del self.__dict__["_keys"][key]
        delattr(self, key)

    def __len__(self) -> int:
        return len(self.__dict__["_keys"])

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.__dict__["_keys"]))

    def __contains__(self, key: object) -> bool:
        return key in self.__dict__["_keys"]

    def keys(self) -> Iterable[str]:
        """The names, in insertion order."""
        return list(self.__dict__["_keys"])

    def items(self) -> Iterable[tuple[str, Any]]:
        """``(name, value)`` pairs, in insertion order."""
        return [(k, self[k]) for k in self.__dict__["_keys"]]

    def values(self) -> Iterable[Any]:
        """The values, in insertion order."""
        return [self[k] for k in self.__dict__["_keys"]]

    def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key``, or ``default``."""
        return self[key] if key in self else default

    def pop(self, key: str) -> Any:
        """Remove and return the value under ``key``."""
        v = self[key]
        del self[key]
        return v

    def clear(self) -> None:
        """Remove every entry."""
        for k in list(self.__dict__["_keys"]):
            del self[k]

    def update(self, parameters: Any) -> None:
        """Add or replace entries from a mapping or an iterable of ``(name, value)`` pairs."""
        pairs = parameters.items() if isinstance(parameters, Mapping) else parameters
        for k, v in pairs:
            self[k] = v

    def extra_repr(self) -> str:
        return "\n".join(_describe(k, v) for k, v in self.items())


def _describe(key: str, value: Any) -> str:
    """One line of a parameter container's repr, in PyTorch's layout."""
    if isinstance(value, Tensor):
        kind = "Parameter" if isinstance(value, Parameter) else "Tensor"
        size = "x".join(str(s) for s in value.shape)
        return f"  ({key}): {kind} containing: [{value.dtype} of size {size}]"
    return f"  ({key}): Object of type: {type(value).__name__}"


def _checked(module: Any, name: str) -> Module:
    if not isinstance(module, Module):
        raise TypeError(f"module {name}: expected a Module, got {type(module).__name__}")
    return module


def _renumber(container: Module, entries: list[Module | None]) -> None:
    """Register ``entries`` under ``"0"``, ``"1"``, ... in order (as PyTorch after a delete)."""
    container._modules.clear()
    for i, m in enumerate(entries):
        container._modules[str(i)] = m


def _index(index: int, length: int) -> int:
    if not -length <= index < length:
        raise IndexError(f"index {index} is out of range for {length} modules")
    return index % length
