"""Adam and AdamW (decoupled weight decay)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from convlab import _validate as check
from convlab.optim.optimizer import Optimizer

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """``torch.optim.Adam``'s update rule (L2 weight decay added to the gradient).

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``.
    """

    _decoupled = False

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(
            params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        )

    _state_kinds = {
        "step": "count",
        "exp_avg": "param",
        "exp_avg_sq": "param",
        "max_exp_avg_sq": "param",
    }

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        betas = group.get("betas")
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas: expected a pair of numbers in [0, 1), got {betas!r}")
        group["betas"] = tuple(
            check.finite_number(b, f"betas[{i}]", 0.0, below=1.0) for i, b in enumerate(betas)
        )
        group["eps"] = check.finite_number(group.get("eps"), "eps", 0.0)
        group["weight_decay"] = check.finite_number(group.get("weight_decay"), "weight_decay", 0.0)
        group["amsgrad"] = check.flag(group.get("amsgrad"), "amsgrad")

    def _required_state(self, group: dict[str, Any]) -> set[str]:
        # (max_exp_avg_sq is made at the next step where it is missing: amsgrad may be
        # turned on after the state was saved)
        return {"step", "exp_avg", "exp_avg_sq"}

    def step(self) -> None:
        """One update of every parameter with a gradient."""
        for group in self.param_groups:
            lr, (beta1, beta2) = group["lr"], group["betas"]
            eps, wd, amsgrad = group["eps"], group["weight_decay"], group["amsgrad"]
            for p, g in self._grads(group):
                xp = p._backend.xp
                dtype = p._data.dtype.type
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {
                        "step": 0,
                        "exp_avg": xp.zeros_like(p._data),
                        "exp_avg_sq": xp.zeros_like(p._data),
                    }
                if amsgrad and "max_exp_avg_sq" not in state:  # amsgrad turned on later
                    state["max_exp_avg_sq"] = xp.zeros_like(p._data)
                state["step"] += 1
                t = state["step"]
                if not amsgrad:
                    # the backend's update, one kernel where it has one
                    p._backend.adam_step(
                        p._data,
                        g,
                        state["exp_avg"],
                        state["exp_avg_sq"],
                        lr,
                        (beta1, beta2),
                        eps,
                        wd,
                        self._decoupled,
                        t,
                    )
                    continue
                # AMSGrad: the update with the running maximum of exp_avg_sq
                if wd:
                    if self._decoupled:
                        p._data *= dtype(1 - lr * wd)
                    else:
                        g = g + dtype(wd) * p._data
                m, v = state["exp_avg"], state["exp_avg_sq"]
                # m.lerp_(g, 1 - beta1), as PyTorch computes it
                m += dtype(1 - beta1) * (g - m)
                v *= dtype(beta2)
                v += dtype(1 - beta2) * g * g
                xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
                v = state["max_exp_avg_sq"]
                step_size = lr / (1 - beta1**t)
                denom = xp.sqrt(v)
                denom /= dtype(math.sqrt(1 - beta2**t))
                denom += dtype(eps)
                p._data -= dtype(step_size) * (m / denom)


class AdamW(Adam):
    """``torch.optim.AdamW``: Adam with decoupled weight decay ``p *= 1 - lr * weight_decay``."""

    _decoupled = True

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
