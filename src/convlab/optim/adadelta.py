"""Adadelta: step sizes from running averages of squared gradients and squared updates."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from convlab import _validate as check
from convlab.optim.optimizer import Optimizer

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    """``torch.optim.Adadelta``'s update rule.

    ``g = grad + weight_decay * p`` (``-grad`` when maximizing),
    ``v = rho v + (1 - rho) g^2``, ``delta = sqrt(u + eps) / sqrt(v + eps) * g``,
    ``u = rho u + (1 - rho) delta^2``, ``p -= lr * delta``; ``v`` is the state's
    ``square_avg``, ``u`` its ``acc_delta``.

    Args:
        params: Tensors, or dicts of tensors and per-group settings.
        lr: Scale of the update (``>= 0``).
        rho: Decay of both running averages, in ``[0, 1]``.
        eps: Added inside both square roots (``>= 0``).
        weight_decay: L2 penalty added to the gradient (``>= 0``).
        foreach: Accepted for PyTorch's signature; one implementation runs.
        capturable: Accepted for PyTorch's signature (no effect here).
        maximize: Ascend the objective instead of descending it.
        differentiable: Accepted for PyTorch's signature (no effect here).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        super().__init__(
            params,
            dict(
                lr=lr,
                rho=rho,
                eps=eps,
                weight_decay=weight_decay,
                maximize=maximize,
                capturable=capturable,
                foreach=foreach,
                differentiable=differentiable,
            ),
        )

    _state_kinds = {"step": "count", "square_avg": "param", "acc_delta": "param"}

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        group["rho"] = check.finite_number(group.get("rho"), "rho", 0.0)
        if group["rho"] > 1.0:
            raise ValueError(f"rho: expected a number in [0, 1], got {group['rho']!r}")
        group["eps"] = check.finite_number(group.get("eps"), "eps", 0.0)
        group["weight_decay"] = check.finite_number(group.get("weight_decay"), "weight_decay", 0.0)
        self._check_options(group, ("maximize", "capturable", "differentiable"), ("foreach",))

    def _required_state(self, group: dict[str, Any]) -> set[str]:
        return {"step", "square_avg", "acc_delta"}

    def step(self) -> None:
        """One update of every parameter with a gradient."""
        for group in self.param_groups:
            lr, rho, eps = group["lr"], group["rho"], group["eps"]
            wd, maximize = group["weight_decay"], group["maximize"]
            for p, g in self._grads(group):
                xp = p._backend.xp
                dtype = p._data.dtype.type
                state = self.state.get(p)
                if not state:
                    state = self.state[p] = {
                        "step": 0,
                        "square_avg": xp.zeros_like(p._data),
                        "acc_delta": xp.zeros_like(p._data),
                    }
                state["step"] += 1
                if maximize:
                    g = -g
                if wd:
                    g = g + dtype(wd) * p._data
                square_avg, acc_delta = state["square_avg"], state["acc_delta"]
                square_avg *= dtype(rho)
                square_avg += dtype(1 - rho) * (g * g)
                std = xp.sqrt(square_avg + dtype(eps))
                delta = xp.sqrt(acc_delta + dtype(eps))
                delta /= std
                delta *= g
                acc_delta *= dtype(rho)
                acc_delta += dtype(1 - rho) * (delta * delta)
                p._data -= dtype(lr) * delta
