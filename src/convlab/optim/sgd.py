"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from convlab import _validate as check
from convlab.optim.optimizer import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    """``torch.optim.SGD``'s update rule.

    ``g = grad + weight_decay * p``; with momentum ``buf = momentum * buf + (1 - dampening) * g``
    (``buf = g`` on the first step), then ``g = g + momentum * buf`` (Nesterov) or ``g = buf``;
    finally ``p -= lr * g``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                dampening=dampening,
                weight_decay=weight_decay,
                nesterov=nesterov,
            ),
        )

    _state_kinds = {"momentum_buffer": "param"}

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        momentum = group["momentum"] = check.finite_number(group.get("momentum"), "momentum", 0.0)
        dampening = group["dampening"] = check.finite_number(group.get("dampening"), "dampening")
        group["weight_decay"] = check.finite_number(group.get("weight_decay"), "weight_decay", 0.0)
        group["nesterov"] = check.flag(group.get("nesterov"), "nesterov")
        if group["nesterov"] and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov: requires a momentum > 0 and zero dampening")

    def step(self) -> None:
        """One update of every parameter with a gradient."""
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            wd, nesterov = group["weight_decay"], group["nesterov"]
            for p, g in self._grads(group):
                dtype = p._data.dtype.type
                if wd:
                    g = g + dtype(wd) * p._data
                if momentum:
                    state = self.state.setdefault(p, {})
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = g.copy()
                        state["momentum_buffer"] = buf
                    else:
                        buf *= dtype(momentum)
                        buf += dtype(1 - dampening) * g
                    g = g + dtype(momentum) * buf if nesterov else buf
                p._backend._scaled_add_(p._data, g, -lr)
