"""NAdam: Adam with Nesterov momentum and a momentum-decay schedule."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from convlab import _validate as check
from convlab.optim.optimizer import Optimizer, _lerp_

__all__ = ["NAdam"]


class NAdam(Optimizer):
    """``torch.optim.NAdam``'s update rule.

    At step ``t``: weight decay (``p *= 1 - lr * weight_decay`` when decoupled, else
    ``g = grad + weight_decay * p``), ``mu_t = b1 (1 - 0.96^(t * momentum_decay) / 2)``,
    ``mu_product *= mu_t``, ``m = m.lerp(g, 1 - b1)``, ``v = b2 v + (1 - b2) g^2``,
    ``denom = sqrt(v / (1 - b2^t)) + eps`` and
    ``p -= lr (1 - mu_t) / (1 - mu_product) * g / denom
    + lr mu_{t+1} / (1 - mu_product mu_{t+1}) * m / denom``.

    ``mu_product`` is kept rounded to float32 after each product, as PyTorch keeps it in a
    float32 scalar tensor (its default dtype), so the updates agree with it to the last
    bits; the state dict holds it as a Python float.

    Args:
        params: Tensors, or dicts of tensors and per-group settings.
        lr: Scale of the update (``>= 0``).
        betas: Decays of the first and second moments, each in ``[0, 1)``.
        eps: Added to the denominator (``>= 0``).
        weight_decay: Weight decay factor (``>= 0``).
        momentum_decay: The ``psi`` of the momentum schedule (``>= 0``).
        decoupled_weight_decay: Decay the weights directly (NAdamW) instead of adding an
            L2 term to the gradient.
        foreach: Accepted for PyTorch's signature; one implementation runs.
        maximize: Ascend the objective instead of descending it.
        capturable: Accepted for PyTorch's signature (no effect here).
        differentiable: Accepted for PyTorch's signature (no effect here).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
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
                momentum_decay=momentum_decay,
                decoupled_weight_decay=decoupled_weight_decay,
                maximize=maximize,
                foreach=foreach,
                capturable=capturable,
                differentiable=differentiable,
            ),
        )

    _state_kinds = {
        "step": "count",
        "mu_product": "number",
        "exp_avg": "param",
        "exp_avg_sq": "param",
    }

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        group["eps"] = check.finite_number(group.get("eps"), "eps", 0.0)
        betas = group.get("betas")
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas: expected a pair of numbers in [0, 1), got {betas!r}")
        group["betas"] = tuple(
            check.finite_number(b, f"betas[{i}]", 0.0, below=1.0) for i, b in enumerate(betas)
        )
        group["weight_decay"] = check.finite_number(group.get("weight_decay"), "weight_decay", 0.0)
        group["momentum_decay"] = check.finite_number(
            group.get("momentum_decay"), "momentum_decay", 0.0
        )
        self._check_options(
            group,
            ("decoupled_weight_decay", "maximize", "capturable", "differentiable"),
            ("foreach",),
        )

    def _required_state(self, group: dict[str, Any]) -> set[str]:
        return {"step", "mu_product", "exp_avg", "exp_avg_sq"}

    def step(self) -> None:
        """One update of every parameter with a gradient."""
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            wd, psi = group["weight_decay"], group["momentum_decay"]
            for p, g in self._grads(group):
                xp = p._backend.xp
                dtype = p._data.dtype.type
                state = self.state.get(p)
                if not state:
                    state = self.state[p] = {
                        "step": 0,
                        "mu_product": 1.0,
                        "exp_avg": xp.zeros_like(p._data),
                        "exp_avg_sq": xp.zeros_like(p._data),
                    }
                if group["maximize"]:
                    g = -g
                state["step"] += 1
                t = float(state["step"])
                bias_correction2 = 1 - beta2**t
                if wd:
                    if group["decoupled_weight_decay"]:
                        p._data *= dtype(1 - lr * wd)
                    else:
                        g = g + dtype(wd) * p._data
                mu = beta1 * (1.0 - 0.5 * (0.96 ** (t * psi)))
                mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((t + 1) * psi)))
                mu_product = float(np.float32(state["mu_product"]) * np.float32(mu))
                state["mu_product"] = mu_product
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                _lerp_(exp_avg, g, 1 - beta1)
                exp_avg_sq *= dtype(beta2)
                exp_avg_sq += dtype(1 - beta2) * (g * g)
                denom = xp.sqrt(exp_avg_sq / dtype(bias_correction2))
                denom += dtype(eps)
                mu_product_next = mu_product * mu_next
                p._data += dtype(-lr * (1.0 - mu) / (1.0 - mu_product)) * (g / denom)
                p._data += dtype((-lr * mu_next) / (1.0 - mu_product_next)) * (exp_avg / denom)
