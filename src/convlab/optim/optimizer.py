"""``Optimizer``: parameter groups, per-parameter state, and their state dicts."""
from __future__ import annotations

import copy
from typing import Any, Iterable

from convlab._tensor import Tensor, reset_grads

__all__ = ["Optimizer"]


class Optimizer:
    """Base class: holds ``param_groups`` (dicts of params and settings) and ``state``.

    Args:
        params: An iterable of tensors, or of dicts with a ``"params"`` entry and per-group
            settings that override ``defaults``.
        defaults: The settings of every group.
    """

    def __init__(self, params: Iterable[Any], defaults: dict) -> None:
        if isinstance(params, Tensor):
            raise TypeError("params: expected an iterable of Tensors or dicts, got a Tensor "
                            "(wrap it in a list)")
        self.defaults = dict(defaults)
        self.state: dict = {}
        self.param_groups: list = []
        groups = list(params)
        if not groups:
            raise ValueError("params: the optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
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

    def _check_group(self, group: dict) -> None:
        lr = group.get("lr")
        if lr is None or lr < 0:
            raise ValueError(f"lr: expected a learning rate >= 0, got {lr}")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every parameter (to ``None`` by default, as PyTorch)."""
        reset_grads((p for group in self.param_groups for p in group["params"]), set_to_none)

    def step(self) -> None:
        """Update every parameter that has a gradient."""
        raise NotImplementedError

    # -- state dicts: PyTorch's layout, parameters numbered in group order -------------------
    def state_dict(self) -> dict:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``."""
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            packed["params"] = ids
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: _as_tensor(v, p)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore settings and state saved by :meth:`state_dict` (values are copied).

        Raises:
            ValueError: If the number of groups or of parameters per group differs.
        """
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError("state_dict: expected a dict with keys 'state' and 'param_groups'")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"state_dict: has {len(saved_groups)} parameter groups, the "
                             f"optimizer has {len(self.param_groups)}")
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"state_dict: group {i} has {len(saved['params'])} parameters, "
                                 f"the optimizer's has {len(group['params'])}")
        by_index = {}
        for saved, group in zip(saved_groups, self.param_groups):
            for idx, p in zip(saved["params"], group["params"]):
                by_index[int(idx)] = p
        new_state: dict = {}
        for idx, values in state_dict["state"].items():
            p = by_index.get(int(idx))
            if p is None:
                raise ValueError(f"state_dict: state for unknown parameter index {idx}")
            new_state[p] = {k: _to_param(v, p) for k, v in values.items()}
        self.state = new_state
        for saved, group in zip(saved_groups, self.param_groups):
            group.update({k: copy.deepcopy(v) for k, v in saved.items() if k != "params"})

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


def _to_param(value: Any, param: Tensor) -> Any:
    """A saved state entry as a fresh array on ``param``'s device (numbers stay numbers)."""
    if isinstance(value, Tensor):
        value = value.numpy()
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        if tuple(value.shape) != param.shape and value.ndim != 0:
            raise ValueError(f"state_dict: a state entry of shape {tuple(value.shape)} does not "
                             f"fit a parameter of shape {param.shape}")
        dtype = param.dtype if value.dtype.kind == "f" else value.dtype
        return param._backend.xp.array(param._backend.asarray(value), dtype=dtype, copy=True)
    return copy.deepcopy(value)
