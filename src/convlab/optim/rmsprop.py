"""RMSprop, with momentum and the centered variant."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from convlab import _validate as check
from convlab.optim.optimizer import Optimizer, _lerp_

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """``torch.optim.RMSprop``'s update rule.

    ``g = grad + weight_decay * p`` (``-grad`` when maximizing),
    ``v = alpha v + (1 - alpha) g^2``; centered: ``m = m.lerp(g, 1 - alpha)`` and
    ``avg = sqrt(v - m^2) + eps``, else ``avg = sqrt(v) + eps``; with momentum
    ``buf = momentum * buf + g / avg`` and ``p -= lr * buf``, else ``p -= lr * g / avg``.
    The state holds ``step``, ``square_avg`` (``v``), ``momentum_buffer`` when momentum is
    on and ``grad_avg`` (``m``) when centered.

    Args:
        params: Tensors, or dicts of tensors and per-group settings.
        lr: Scale of the update (``>= 0``).
        alpha: Decay of the running averages (``>= 0``).
        eps: Added to the denominator (``>= 0``).
        weight_decay: L2 penalty added to the gradient (``>= 0``).
        momentum: Momentum factor (``>= 0``).
        centered: Normalize by the estimated variance instead of the second moment.
        capturable: Accepted for PyTorch's signature (no effect here).
        foreach: Accepted for PyTorch's signature; one implementation runs.
        maximize: Ascend the objective instead of descending it.
        differentiable: Accepted for PyTorch's signature (no effect here).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                alpha=alpha,
                eps=eps,
                centered=centered,
                weight_decay=weight_decay,
                capturable=capturable,
                foreach=foreach,
                maximize=maximize,
                differentiable=differentiable,
            ),
        )

    _state_kinds = {
        "step": "count",
        "square_avg": "param",
        "momentum_buffer": "param",
        "grad_avg": "param",
    }

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        for name in ("eps", "momentum", "weight_decay", "alpha"):
            group[name] = check.finite_number(group.get(name), name, 0.0)
        self._check_options(
            group, ("centered", "capturable", "maximize", "differentiable"), ("foreach",)
        )

    def _required_state(self, group: dict[str, Any]) -> set[str]:
        required = {"step", "square_avg"}
        if group["momentum"] > 0:
            required.add("momentum_buffer")
        if group["centered"]:
            required.add("grad_avg")
        return required

    def step(self) -> None:
        """One update of every parameter with a gradient."""
        for group in self.param_groups:
            lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
            wd, momentum, centered = group["weight_decay"], group["momentum"], group["centered"]
            for p, g in self._grads(group):
                xp = p._backend.xp
                dtype = p._data.dtype.type
                state = self.state.get(p)
                if not state:
                    state = self.state[p] = {"step": 0, "square_avg": xp.zeros_like(p._data)}
                # (made where missing: momentum or centered may be switched on later)
                if momentum > 0 and "momentum_buffer" not in state:
                    state["momentum_buffer"] = xp.zeros_like(p._data)
                if centered and "grad_avg" not in state:
                    state["grad_avg"] = xp.zeros_like(p._data)
                state["step"] += 1
                if group["maximize"]:
                    g = -g
                if wd:
                    g = g + dtype(wd) * p._data
                square_avg = state["square_avg"]
                square_avg *= dtype(alpha)
                square_avg += dtype(1 - alpha) * (g * g)
                if centered:
                    grad_avg = state["grad_avg"]
                    _lerp_(grad_avg, g, 1 - alpha)
                    avg = xp.sqrt(square_avg - grad_avg * grad_avg)
                else:
                    avg = xp.sqrt(square_avg)
                avg += dtype(eps)
                if momentum > 0:
                    buf = state["momentum_buffer"]
                    buf *= dtype(momentum)
                    buf += g / avg
                    p._data -= dtype(lr) * buf
                else:
                    p._data -= dtype(lr) * (g / avg)
