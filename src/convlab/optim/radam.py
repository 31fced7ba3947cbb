"""RAdam: Adam with the variance of the adaptive learning rate rectified."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from convlab import _validate as check
from convlab.optim.adamax import _check_betas
from convlab.optim.optimizer import Optimizer, _lerp_

__all__ = ["RAdam"]


class RAdam(Optimizer):
    """``torch.optim.RAdam``'s update rule.

    At step ``t``: weight decay (``p *= 1 - lr * weight_decay`` when decoupled, else
    ``g = grad + weight_decay * p``), ``m = m.lerp(g, 1 - b1)``, ``v = b2 v + (1 - b2) g^2``,
    ``rho_inf = 2 / (1 - b2) - 1``, ``rho_t = rho_inf - 2 t b2^t / (1 - b2^t)``; when
    ``rho_t > 5``: ``p -= lr m / (1 - b1^t) * sqrt(1 - b2^t) / (sqrt(v) + eps) * r_t`` with
    ``r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))``, else
    ``p -= lr m / (1 - b1^t)`` (plain momentum while the variance estimate is unreliable).

    Args:
        params: Tensors, or dicts of tensors and per-group settings.
        lr: Scale of the update (``>= 0``).
        betas: Decays of the first and second moments, each in ``[0, 1)``.
        eps: Added to the denominator (``>= 0``).
        weight_decay: Weight decay factor (``>= 0``).
        decoupled_weight_decay: Decay the weights directly (AdamW style) instead of adding
            an L2 term to the gradient.
        foreach: Accepted for PyTorch's signature; one implementation runs.
        maximize: Ascend the objective instead of descending it.
        capturable: Accepted for PyTorch's signature (no effect here).
        differentiable: Accepted for PyTorch's signature (no effect here).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=betas,
                eps=eps,
                weight_decay=weight_decay,
                decoupled_weight_decay=decoupled_weight_decay,
                foreach=foreach,
                maximize=maximize,
                capturable=capturable,
                differentiable=differentiable,
            ),
        )

    _state_kinds = {"step": "count", "exp_avg": "param", "exp_avg_sq": "param"}

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        group["eps"] = check.finite_number(group.get("eps"), "eps", 0.0)
        _check_betas(group)
        group["weight_decay"] = check.finite_number(group.get("weight_decay"), "weight_decay", 0.0)
        self._check_options(
            group,
            ("decoupled_weight_decay", "maximize", "capturable", "differentiable"),
            ("foreach",),
        )

    def _required_state(self, group: dict[str, Any]) -> set[str]:
        return {"step", "exp_avg", "exp_avg_sq"}

    def step(self) -> None:
        """One update of every parameter with a gradient."""
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            wd = group["weight_decay"]
            for p, g in self._grads(group):
                xp = p._backend.xp
                dtype = p._data.dtype.type
                state = self.state.get(p)
                if not state:
                    state = self.state[p] = {
                        "step": 0,
                        "exp_avg": xp.zeros_like(p._data),
                        "exp_avg_sq": xp.zeros_like(p._data),
                    }
                if group["maximize"]:
                    g = -g
                state["step"] += 1
                t = float(state["step"])
                if wd:
                    if group["decoupled_weight_decay"]:
                        p._data *= dtype(1 - lr * wd)
                    else:
                        g = g + dtype(wd) * p._data
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                _lerp_(exp_avg, g, 1 - beta1)
                exp_avg_sq *= dtype(beta2)
                exp_avg_sq += dtype(1 - beta2) * g * g
                bias_correction1 = 1 - beta1**t
                bias_correction2 = 1 - beta2**t
                # the same sequence of roundings as PyTorch's single-tensor loop
                update = (exp_avg / dtype(bias_correction1)) * dtype(lr)
                rho_inf = 2 / (1 - beta2) - 1
                rho_t = rho_inf - 2 * t * (beta2**t) / bias_correction2
                if rho_t > 5.0:
                    rect = math.sqrt(
                        (rho_t - 4)
                        * (rho_t - 2)
                        * rho_inf
                        / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
                    )
                    denom = xp.sqrt(exp_avg_sq) + dtype(eps)
                    adaptive = (dtype(1) / denom) * dtype(bias_correction2**0.5)
                    update = update * adaptive * dtype(rect)
                p._data -= update
