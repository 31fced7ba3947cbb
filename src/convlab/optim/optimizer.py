"""``Optimizer``: parameter groups, per-parameter state, and their state dicts."""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from convlab import _validate as check
from convlab._tensor import Tensor, reset_grads

__all__ = ["Optimizer"]


class Optimizer:
    """Base class: holds ``param_groups`` (dicts of params and settings) and ``state``.

    Args:
        params: An iterable of tensors, or of dicts with a ``"params"`` entry and per-group
            settings that override ``defaults``.
        defaults: The settings of every group.
    """

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        if isinstance(params, Tensor):
            raise TypeError(
                "params: expected an iterable of Tensors or dicts, got a Tensor (wrap it in a list)"
            )
        self.defaults = dict(defaults)
        self.state: dict[Tensor, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        groups = list(params)
        if not groups:
            raise ValueError("params: the optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a group of parameters with its own settings."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError("param group: expected a dict with a 'params' entry")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"params: expected Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("params: can't optimize a non-leaf Tensor")
            if id(p) in seen:
                raise ValueError("params: some parameters appear in more than one group")
            seen.add(id(p))
        full = dict(self.defaults)
        full.update({k: v for k, v in group.items() if k != "params"})
        full["params"] = params
        self._check_group(full)
        self.param_groups.append(full)

    # What each per-parameter state entry holds, for load_state_dict's checks: "param" an
    # array of the parameter's shape, "count" an int >= 0, "number" a finite float (a 0-d
    # array or tensor of one too). Entries not listed are arrays of the parameter's shape
    # when they are arrays, and plain values otherwise.
    _state_kinds: ClassVar[dict[str, str]] = {}

    def _check_group(self, group: dict[str, Any]) -> None:
        """Check a group's settings (at construction and when a state dict is loaded);
        optimizers extend it with their own."""
        group["lr"] = check.finite_number(group.get("lr"), "lr", 0.0)

    @staticmethod
    def _check_options(
        group: dict[str, Any], flags: Iterable[str], optional: Iterable[str] = ()
    ) -> None:
        """Check PyTorch's switches: ``flags`` are bools, ``optional`` bools or ``None``
        (``foreach`` and ``fused``: one implementation runs whatever they say)."""
        for name in flags:
            group[name] = check.flag(group.get(name), name)
        for name in optional:
            if group.get(name) is not None:
                group[name] = check.flag(group[name], name)

    def _required_state(self, group: dict[str, Any]) -> set[str]:
        """The entries a parameter's state must hold, once it has any, for ``step`` to run
        with ``group``'s settings."""
        return set()

    def _grads(self, group: dict[str, Any]) -> Iterator[tuple[Tensor, Any]]:
        """``(param, gradient array)`` for each parameter of ``group`` with a gradient.

        Raises:
            ValueError: If a gradient differs from its parameter in shape, dtype or device
                (``p.grad`` can be assigned by hand: the update must not broadcast it or run a
                kernel over the wrong number of elements).
        """
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            if (
                not isinstance(g, Tensor)
                or g.shape != p.shape
                or g.dtype != p.dtype
                or g._backend is not p._backend
            ):
                got = (
                    f"{g.dtype} {g.shape} on {g._backend.name}"
                    if isinstance(g, Tensor)
                    else type(g).__name__
                )
                raise ValueError(
                    f"grad: parameter {self._index_of(p)} has shape {p.shape} "
                    f"({p.dtype} on {p._backend.name}); its .grad must match, "
                    f"got {got}"
                )
            yield p, g._data

    def _index_of(self, param: Tensor) -> int:
        """The parameter's number in the state dict's numbering (group order)."""
        flat = [p for group in self.param_groups for p in group["params"]]
        return next(i for i, p in enumerate(flat) if p is param)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every parameter (to ``None`` by default, as PyTorch)."""
        reset_grads((p for group in self.param_groups for p in group["params"]), set_to_none)

    def step(self) -> None:
        """Update every parameter that has a gradient."""
        raise NotImplementedError

    # -- state dicts: PyTorch's layout, parameters numbered in group order -------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            packed["params"] = ids
            groups.append(packed)
        state: dict[int, dict[str, Any]] = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: _as_tensor(v, p) for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore settings and state saved by :meth:`state_dict` (values are copied).

        Raises:
            ValueError: If the number of groups or of parameters per group differs.
        """
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError("state_dict: expected a dict with keys 'state' and 'param_groups'")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"state_dict: has {len(saved_groups)} parameter groups, the "
                f"optimizer has {len(self.param_groups)}"
            )
        new_groups = []
        by_index: dict[int, Tensor] = {}
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if not isinstance(saved, dict) or not isinstance(saved.get("params"), (list, tuple)):
                raise ValueError(f"state_dict: group {i}: expected a dict with a 'params' list")
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"state_dict: group {i} has {len(saved['params'])} parameters, "
                    f"the optimizer's has {len(group['params'])}"
                )
            for idx, p in zip(saved["params"], group["params"]):
                idx = _index(idx, f"group {i}'s params")
                if idx in by_index:
                    raise ValueError(f"state_dict: parameter index {idx} appears twice")
                by_index[idx] = p
            merged = dict(group)
            merged.update({k: copy.deepcopy(v) for k, v in saved.items() if k != "params"})
            try:
                self._check_group(merged)
            except (TypeError, ValueError) as err:
                raise ValueError(f"state_dict: group {i}: {err}") from None
            new_groups.append(merged)
        if not isinstance(state_dict["state"], dict):
            raise ValueError("state_dict: 'state' must be a dict of parameter index -> dict")
        new_state: dict[Tensor, dict[str, Any]] = {}
        for idx, values in state_dict["state"].items():
            idx = _index(idx, "state")
            p = by_index.get(idx)
            if p is None:
                raise ValueError(f"state_dict: state for unknown parameter index {idx}")
            if not isinstance(values, dict):
                raise ValueError(
                    f"state_dict: parameter {idx}: expected a dict of state "
                    f"entries, got {type(values).__name__}"
                )
            new_state[p] = {k: self._state_entry(k, v, p, idx) for k, v in values.items()}
        for group, merged in zip(self.param_groups, new_groups):
            required = self._required_state(merged)
            for p in group["params"]:
                missing = required - set(new_state.get(p, required))
                if missing:
                    raise ValueError(
                        f"state_dict: parameter {self._index_of(p)} has state "
                        f"without {sorted(missing)} (this optimizer's step "
                        f"needs {sorted(required)})"
                    )
        # nothing is changed until every entry has passed
        self.state = new_state
        for group, merged in zip(self.param_groups, new_groups):
            group.update(merged)

    def _state_entry(self, key: Any, value: Any, param: Tensor, idx: int) -> Any:
        """A saved state entry checked against its parameter and copied onto its device."""
        where = f"state_dict: parameter {idx} ({key!r})"
        if isinstance(value, Tensor):
            value = value.numpy()
        is_array = hasattr(value, "shape") and hasattr(value, "dtype")
        kind = self._state_kinds.get(key, "param" if is_array else "value")
        if kind == "count":
            if is_array and value.ndim == 0 and value.dtype.kind in "iu":
                value = value.item()
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise ValueError(f"{where}: expected an int >= 0, got {value!r}")
            return int(value)
        if kind == "number":
            if is_array and value.ndim == 0 and value.dtype.kind in "fiu":
                value = value.item()
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not math.isfinite(value)
            ):
                raise ValueError(f"{where}: expected a finite number, got {value!r}")
            return float(value)
        if kind == "param":
            if not is_array:
                raise ValueError(
                    f"{where}: expected an array of shape {param.shape}, got {type(value).__name__}"
                )
            if tuple(value.shape) != param.shape:
                raise ValueError(
                    f"{where}: a state entry of shape {tuple(value.shape)} does "
                    f"not fit a parameter of shape {param.shape}"
                )
            if value.dtype.kind != "f":
                raise ValueError(
                    f"{where}: expected floating-point values (cast to the "
                    f"parameter's {param.dtype}), got dtype {value.dtype}"
                )
            backend = param._backend
            return backend.xp.array(backend.asarray(value), dtype=param.dtype, copy=True)
        return copy.deepcopy(value)

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        return "\n".join(lines) + "\n)"


def _as_tensor(value: Any, param: Tensor) -> Any:
    """State arrays are shown as tensors (sharing memory), as PyTorch's state dicts hold."""
    if isinstance(value, Tensor):
        return value.detach()
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return Tensor._wrap(value, param._backend)
    return value


def _lerp_(start: Any, end: Any, weight: float) -> None:
    """``start.lerp_(end, weight)`` in place, with PyTorch's two formulas (the one nearer
    its end for ``weight >= 0.5``), so the roundings match."""
    dtype = start.dtype.type
    if abs(weight) < 0.5:
        start += dtype(weight) * (end - start)
    else:
        diff = end - start
        diff *= dtype(1) - dtype(weight)
        start[...] = end - diff


def _index(value: Any, where: str) -> int:
    """A parameter index from a state dict (an int, or a string of one: JSON keys are)."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(
            f"state_dict: {where}: expected parameter indices (ints >= 0), got {value!r}"
        )
    return int(value)
