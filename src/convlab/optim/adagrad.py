"""Adagrad: per-element step sizes from the sum of squared gradients."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from convlab import _validate as check
from convlab.optim.optimizer import Optimizer

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """``torch.optim.Adagrad``'s update rule (dense gradients).

    At step ``t``: ``g = grad + weight_decay * p`` (``-grad`` when maximizing),
    ``sum += g^2``, ``p -= lr / (1 + (t - 1) * lr_decay) * g / (sqrt(sum) + eps)``.
    As in PyTorch, every parameter's state (``step`` 0, ``sum`` filled with
    ``initial_accumulator_value``) is made at construction; a parameter without state at a
    step (one added later by :meth:`add_param_group`) gets the constructor's
    ``initial_accumulator_value``.

    Args:
        params: Tensors, or dicts of tensors and per-group settings.
        lr: Scale of the update (``>= 0``).
        lr_decay: Decay of the step size over steps (``>= 0``).
        weight_decay: L2 penalty added to the gradient (``>= 0``).
        initial_accumulator_value: Start of the sum of squares (``>= 0``).
        eps: Added to the square root (``>= 0``).
        foreach: Accepted for PyTorch's signature; one implementation runs.
        maximize: Ascend the objective instead of descending it.
        differentiable: Accepted for PyTorch's signature (no effect here).
        fused: Accepted for PyTorch's signature (no effect here).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            dict(
                lr=lr,
                lr_decay=lr_decay,
                eps=eps,
                weight_decay=weight_decay,
                initial_accumulator_value=initial_accumulator_value,
                foreach=foreach,
                maximize=maximize,
                differentiable=differentiable,
                fused=fused,
            ),
        )
        if self.defaults["fused"] and self.defaults["differentiable"]:
            raise RuntimeError("fused: does not support differentiable=True")
        if self.defaults["fused"] and self.defaults["foreach"]:
            raise RuntimeError("fused: can't be True together with foreach=True")
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group["initial_accumulator_value"])

    _state_kinds = {"step": "count", "sum": "param"}

    def _init_state(self, p: Any, value: float) -> dict[str, Any]:
        state = self.state[p] = {
            "step": 0,
            "sum": p._backend.xp.full(p.shape, value, dtype=p._data.dtype),
        }
        return state

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        for name in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            group[name] = check.finite_number(group.get(name), name, 0.0)
        self._check_options(group, ("maximize", "differentiable"), ("foreach", "fused"))

    def _required_state(self, group: dict[str, Any]) -> set[str]:
        return {"step", "sum"}

    def step(self) -> None:
        """One update of every parameter with a gradient."""
        for group in self.param_groups:
            lr, lr_decay, eps = group["lr"], group["lr_decay"], group["eps"]
            wd, maximize = group["weight_decay"], group["maximize"]
            for p, g in self._grads(group):
                xp = p._backend.xp
                dtype = p._data.dtype.type
                state = self.state.get(p)
                if not state:  # PyTorch fills it with the defaults' value, not the group's
                    state = self._init_state(p, self.defaults["initial_accumulator_value"])
                state["step"] += 1
                t = state["step"]
                if maximize:
                    g = -g
                if wd:
                    g = g + dtype(wd) * p._data
                clr = lr / (1 + (t - 1) * lr_decay)
                state["sum"] += g * g
                std = xp.sqrt(state["sum"])
                std += dtype(eps)
                p._data -= dtype(clr) * (g / std)
