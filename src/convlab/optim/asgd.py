"""ASGD: averaged stochastic gradient descent."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from convlab import _validate as check
from convlab.optim.optimizer import Optimizer

__all__ = ["ASGD"]


def _f32(value: float) -> float:
    """``value`` rounded to float32: PyTorch keeps ``eta`` and ``mu`` in float32 scalar
    tensors (its default dtype), so the updates agree with it to the last bits."""
    return float(np.float32(value))


class ASGD(Optimizer):
    """``torch.optim.ASGD``'s update rule.

    At step ``t``: ``g = grad + weight_decay * p``, ``p *= 1 - lambd * eta``,
    ``p -= eta * g``; the average ``ax += mu (p - ax)`` (``ax = p`` while ``mu == 1``); then
    ``eta = lr / (1 + lambd lr t)^alpha`` and ``mu = 1 / max(1, t - t0)``.

    Args:
        params: Tensors, or dicts of tensors and per-group settings.
        lr: The initial step size (``>= 0``).
        lambd: The decay term.
        alpha: The power of the step-size schedule.
        t0: The step at which averaging starts.
        weight_decay: L2 penalty added to the gradient (``>= 0``).
        foreach: Accepted for PyTorch's signature; one implementation runs.
        maximize: Ascend the objective instead of descending it.
        differentiable: Accepted for PyTorch's signature (no effect here).
        capturable: Accepted for PyTorch's signature (no effect here).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        super().__init__(
            params,
            dict(
                lr=lr,
                lambd=lambd,
                alpha=alpha,
                t0=t0,
                weight_decay=weight_decay,
                foreach=foreach,
                maximize=maximize,
                differentiable=differentiable,
                capturable=capturable,
            ),
        )

    _state_kinds = {"step": "count", "eta": "number", "mu": "number", "ax": "param"}

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        group["weight_decay"] = check.finite_number(group.get("weight_decay"), "weight_decay", 0.0)
        for name in ("lambd", "alpha", "t0"):
            value = group.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
        self._check_options(group, ("maximize", "differentiable", "capturable"), ("foreach",))

    def _required_state(self, group: dict[str, Any]) -> set[str]:
        return {"step", "eta", "mu", "ax"}

    def step(self) -> None:
        """One update of every parameter with a gradient."""
        for group in self.param_groups:
            lr, lambd, alpha, t0 = group["lr"], group["lambd"], group["alpha"], group["t0"]
            wd = group["weight_decay"]
            for p, g in self._grads(group):
                xp = p._backend.xp
                dtype = p._data.dtype.type
                state = self.state.get(p)
                if not state:
                    state = self.state[p] = {
                        "step": 0,
                        "eta": _f32(lr),
                        "mu": 1.0,
                        "ax": xp.zeros_like(p._data),
                    }
                if group["maximize"]:
                    g = -g
                state["step"] += 1
                if wd:
                    g = g + dtype(wd) * p._data
                eta = float(state["eta"])
                p._data *= dtype(1 - lambd * eta)
                p._data += dtype(-eta) * g
                ax = state["ax"]
                if float(state["mu"]) != 1:
                    ax += (p._data - ax) * dtype(state["mu"])
                else:
                    ax[...] = p._data
                t = float(state["step"])
                state["eta"] = _f32(lr / ((1 + lambd * lr * t) ** alpha))
                state["mu"] = _f32(1 / max(1, t - t0))
