"""Automatic mixed precision (``torch.amp``): :class:`autocast` and :class:`GradScaler`.

convlab's autocast switches matrix products and convolutions to bfloat16 *compute* (float32
accumulation) within its scope; tensors, outputs and gradients stay float32 (PyTorch's
autocast returns bfloat16 tensors instead, see ``docs/differences.rst``). Programs written for
``torch.autocast`` and ``torch.amp.GradScaler`` run unchanged.

Example:
    >>> import convlab
    >>> from convlab import nn
    >>> model = nn.Linear(4, 2)
    >>> with convlab.autocast("cpu", dtype=convlab.bfloat16):
    ...     y = model(convlab.ones(3, 4))
    >>> y.dtype
    dtype('float32')
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import Any

from convlab import _precision
from convlab._precision import bfloat16

__all__ = ["autocast", "GradScaler", "is_autocast_available"]

_DEVICE_TYPES = ("cpu", "cuda")


def is_autocast_available(device_type: str) -> bool:
    """Whether :class:`autocast` takes ``device_type`` (``"cpu"`` and ``"cuda"``)."""
    return device_type in _DEVICE_TYPES


class autocast:  # noqa: N801 - PyTorch's name
    """Compute matrix products and convolutions in bfloat16 within a scope
    (``torch.autocast``).

    A context manager (also a function decorator). Inside, :func:`convlab.matmul`, linear
    layers and convolutions on ``device_type`` round their operands to bfloat16 and sum in
    float32, as ``set_float32_matmul_precision("medium")`` does globally; outputs stay
    float32. Scopes nest (the innermost wins), belong to the entering thread, and restore the
    previous state on exit, also when an exception leaves the scope. On a CPU without
    ``avx512_bf16`` the scope changes nothing (``convlab.show_config()`` says which).

    Args:
        device_type: ``"cpu"`` or ``"cuda"``.
        dtype: The compute dtype; only :data:`convlab.bfloat16` (the default). Another dtype
            (``float16``) warns and disables the scope, as PyTorch does for an unsupported
            autocast dtype.
        enabled: ``False`` makes a scope that computes in float32 (nested inside an enabled
            one, it turns bfloat16 off for its body).
        cache_enabled: Accepted for PyTorch compatibility (there is no weight cast to cache).

    Raises:
        TypeError: If ``device_type`` is not a string or ``enabled`` not a bool.
        RuntimeError: For a device type other than ``"cpu"`` and ``"cuda"`` (as PyTorch).
    """

    def __init__(
        self,
        device_type: str,
        dtype: Any = None,
        enabled: bool = True,
        cache_enabled: bool | None = None,
    ) -> None:
        if not isinstance(device_type, str):
            raise TypeError(
                f"device_type: expected a str such as 'cpu', got {type(device_type).__name__}"
            )
        if device_type not in _DEVICE_TYPES:
            raise RuntimeError(
                f"device_type: expected 'cpu' or 'cuda' for autocast, got {device_type!r}"
            )
        if not isinstance(enabled, bool):
            raise TypeError(f"enabled: expected a bool, got {type(enabled).__name__}")
        if dtype is None:
            dtype = bfloat16
        if enabled and dtype is not bfloat16:
            warnings.warn(
                f"autocast: convlab computes in bfloat16 only, got dtype={dtype!r}; "
                "autocast is disabled for this scope",
                UserWarning,
                stacklevel=2,
            )
            enabled = False
        self.device = device_type
        self.fast_dtype = dtype
        self._enabled = enabled
        self._cache_enabled = cache_enabled

    def __enter__(self) -> autocast:
        _precision._push_autocast(self.device, self._enabled, self.fast_dtype)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _precision._pop_autocast(self.device)

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Decorate ``func`` to run inside this scope on every call."""

        @functools.wraps(func)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with autocast(self.device, self.fast_dtype, self._enabled, self._cache_enabled):
                return func(*args, **kwargs)

        return wrapped


def _grads(optimizer: Any) -> list[Any]:
    return [
        p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None
    ]


class GradScaler:
    """Loss scaling for mixed precision (``torch.amp.GradScaler``).

    float16 gradients underflow without it; convlab computes in bfloat16 (float32's exponent
    range) and keeps gradients in float32, so scaling is never needed here:
    ``GradScaler(enabled=False)`` makes :meth:`scale` return its input and :meth:`step` call
    ``optimizer.step()``. Enabled (the default, as PyTorch), it does what PyTorch's does:
    multiplies the loss by the scale, divides the gradients back before the step, skips
    steps whose gradients hold an inf or NaN and adapts the scale, so programs written for
    ``torch.amp`` behave the same.

    Args:
        device: ``"cpu"`` or ``"cuda"`` (recorded; the arithmetic is the same).
        init_scale: The starting scale.
        growth_factor: Multiplies the scale after ``growth_interval`` finite steps in a row.
        backoff_factor: Multiplies the scale after a step with non-finite gradients.
        growth_interval: Finite steps between growths.
        enabled: ``False`` turns every method into a pass-through.

    Raises:
        ValueError: If ``growth_factor <= 1`` or ``backoff_factor`` is not in (0, 1).
    """

    def __init__(
        self,
        device: str = "cuda",
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
    ) -> None:
        if not growth_factor > 1.0:
            raise ValueError(f"growth_factor: expected a number > 1, got {growth_factor!r}")
        if not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"backoff_factor: expected a number in (0, 1), got {backoff_factor!r}")
        self._device = device
        self._enabled = bool(enabled)
        self._scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0
        # per optimizer (by id) in this iteration: "unscaled" / "stepped", and found_inf
        self._per_optimizer: dict[int, dict[str, Any]] = {}

    def is_enabled(self) -> bool:
        """Whether this scaler scales."""
        return self._enabled

    def get_scale(self) -> float:
        """The current scale (1.0 when disabled)."""
        return self._scale if self._enabled else 1.0

    def scale(self, outputs: Any) -> Any:
        """``outputs`` (a tensor, or nested lists / tuples of them) times the scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        return outputs * self._scale

    def _state(self, optimizer: Any) -> dict[str, Any]:
        return self._per_optimizer.setdefault(id(optimizer), {"stage": "ready", "found_inf": False})

    def unscale_(self, optimizer: Any) -> None:
        """Divide ``optimizer``'s gradients by the scale, in place (once per step).

        Raises:
            RuntimeError: If called twice for one optimizer before :meth:`update`, or after
                :meth:`step`.
        """
        if not self._enabled:
            return
        state = self._state(optimizer)
        if state["stage"] == "unscaled":
            raise RuntimeError(
                "unscale_() has already been called on this optimizer since the last update()."
            )
        if state["stage"] == "stepped":
            raise RuntimeError("unscale_() is being called after step().")
        from convlab.autograd import no_grad

        inverse = 1.0 / self._scale
        found = False
        with no_grad():
            for grad in _grads(optimizer):
                grad.mul_(inverse)
                found = found or not bool(grad._backend.xp.isfinite(grad._data).all())
        state["found_inf"] = found
        state["stage"] = "unscaled"

    def step(self, optimizer: Any, *args: Any, **kwargs: Any) -> Any:
        """Unscale (unless :meth:`unscale_` did) and run ``optimizer.step(*args, **kwargs)``
        when every gradient is finite; skip it otherwise. Returns what the step returns."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        state = self._state(optimizer)
        if state["stage"] == "stepped":
            raise RuntimeError("step() has already been called since the last update().")
        if state["stage"] == "ready":
            self.unscale_(optimizer)
        result = None if state["found_inf"] else optimizer.step(*args, **kwargs)
        state["stage"] = "stepped"
        return result

    def update(self, new_scale: float | None = None) -> None:
        """Adapt the scale after this iteration's steps (or set it to ``new_scale``)."""
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale)
        else:
            found = any(state["found_inf"] for state in self._per_optimizer.values())
            if found:
                self._scale *= self._backoff_factor
                self._growth_tracker = 0
            elif self._per_optimizer:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    grown = self._scale * self._growth_factor
                    if math.isfinite(grown):
                        self._scale = grown
                    self._growth_tracker = 0
        self._per_optimizer = {}

    def state_dict(self) -> dict[str, Any]:
        """The scaler's settings and state (empty when disabled)."""
        if not self._enabled:
            return {}
        return {
            "scale": self._scale,
            "growth_factor": self._growth_factor,
            "backoff_factor": self._backoff_factor,
            "growth_interval": self._growth_interval,
            "_growth_tracker": self._growth_tracker,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned.

        Raises:
            RuntimeError: If ``state_dict`` is empty (from a disabled scaler).
        """
        if not self._enabled:
            return
        if not state_dict:
            raise RuntimeError("state_dict: the loaded state is empty (a disabled GradScaler's)")
        self._scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])
