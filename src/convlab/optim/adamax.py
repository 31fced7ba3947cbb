"""Adamax: Adam with the infinity norm of past gradients in the denominator."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from convlab import _validate as check
from convlab.optim.optimizer import Optimizer, _lerp_

__all__ = ["Adamax"]


def _check_betas(group: dict[str, Any]) -> None:
    betas = group.get("betas")
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas: expected a pair of numbers in [0, 1), got {betas!r}")
    group["betas"] = tuple(
        check.finite_number(b, f"betas[{i}]", 0.0, below=1.0) for i, b in enumerate(betas)
    )


class Adamax(Optimizer):
    """``torch.optim.Adamax``'s update rule.

    At step ``t``: ``g = grad + weight_decay * p``, ``m = m.lerp(g, 1 - b1)``,
    ``u = max(b2 u, |g| + eps)``, ``p -= lr / (1 - b1^t) * m / u``.

    Args:
        params: Tensors, or dicts of tensors and per-group settings.
        lr: Scale of the update (``>= 0``).
        betas: Decays of the first moment and of the infinity norm, each in ``[0, 1)``.
        eps: Added to ``|g|`` (``>= 0``).
        weight_decay: L2 penalty added to the gradient (``>= 0``).
        foreach: Accepted for PyTorch's signature; one implementation runs.
        maximize: Ascend the objective instead of descending it.
        differentiable: Accepted for PyTorch's signature (no effect here).
        capturable: Accepted for PyTorch's signature (no effect here).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=betas,
                eps=eps,
                weight_decay=weight_decay,
                foreach=foreach,
                maximize=maximize,
                differentiable=differentiable,
                capturable=capturable,
            ),
        )

    _state_kinds = {"step": "count", "exp_avg": "param", "exp_inf": "param"}

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        group["eps"] = check.finite_number(group.get("eps"), "eps", 0.0)
        _check_betas(group)
        group["weight_decay"] = check.finite_number(group.get("weight_decay"), "weight_decay", 0.0)
        self._check_options(group, ("maximize", "differentiable", "capturable"), ("foreach",))

    def _required_state(self, group: dict[str, Any]) -> set[str]:
        return {"step", "exp_avg", "exp_inf"}

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
                        "exp_inf": xp.zeros_like(p._data),
                    }
                if group["maximize"]:
                    g = -g
                state["step"] += 1
                if wd:
                    g = g + dtype(wd) * p._data
                exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
                _lerp_(exp_avg, g, 1 - beta1)
                exp_inf *= dtype(beta2)
                xp.maximum(exp_inf, xp.abs(g) + dtype(eps), out=exp_inf)
                clr = lr / (1 - beta1 ** float(state["step"]))
                p._data += dtype(-clr) * (exp_avg / exp_inf)
