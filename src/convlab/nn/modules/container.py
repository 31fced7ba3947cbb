"""Containers: ``Sequential`` and ``ModuleList``."""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator
from typing import Any, cast

from convlab.nn.module import Module

__all__ = ["Sequential", "ModuleList"]

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


def _checked(module: Any, name: str) -> Module:
    if not isinstance(module, Module):
        raise TypeError(f"module {name}: expected a Module, got {type(module).__name__}")
    return module


def _index(index: int, length: int) -> int:
    if not -length <= index < length:
        raise IndexError(f"index {index} is out of range for {length} modules")
    return index % length
