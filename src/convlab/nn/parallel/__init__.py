"""``convlab.nn.parallel``: PyTorch's single-process data-parallel names.

convlab drives at most one GPU per process, so ``DataParallel`` runs its module on that device
(or the CPU) unchanged; programs written for several GPUs (``nn.DataParallel(model)``,
``nn.parallel.data_parallel(module, input, range(ngpu))``) run as they would on one. Scaling past
one device goes through processes instead (``convlab.distributed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from convlab.nn.module import Module
from convlab.nn.parallel.distributed import DistributedDataParallel

__all__ = ["DataParallel", "DistributedDataParallel", "data_parallel"]


def _check_device_ids(device_ids: Any, name: str = "device_ids") -> None:
    if device_ids is None:
        return
    ids = list(device_ids)
    from convlab._device import device

    for entry in ids:
        index = entry if isinstance(entry, int) else device(entry).index or 0
        if index != 0:
            raise ValueError(
                f"{name}: convlab uses one GPU (index 0) per process, got {list(device_ids)}; "
                f"use convlab.distributed to train on several"
            )


class DataParallel(Module):
    """Wrap ``module`` as ``torch.nn.DataParallel`` does; with one device it just calls it.

    The wrapped module is ``self.module``, and the state dict's keys carry the ``module.``
    prefix, as PyTorch's, so checkpoints move between the libraries.

    Args:
        module: The module to run.
        device_ids: ``None`` or devices with index 0 (convlab uses one GPU per process).
        output_device: Accepted (the output stays where the module put it).
        dim: Accepted (the batch is not split: there is one device).

    Raises:
        ValueError: For a device index other than 0.
    """

    def __init__(
        self,
        module: Module,
        device_ids: Sequence[Any] | None = None,
        output_device: Any = None,
        dim: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"module: expected a convlab.nn.Module, got {type(module).__name__}")
        _check_device_ids(device_ids)
        self.module = module
        self.device_ids = [] if device_ids is None else list(device_ids)
        self.output_device = output_device
        self.dim = dim

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        """Call the wrapped module."""
        return self.module(*inputs, **kwargs)


def data_parallel(
    module: Module,
    inputs: Any,
    device_ids: Sequence[Any] | None = None,
    output_device: Any = None,
    dim: int = 0,
    module_kwargs: dict[str, Any] | None = None,
) -> Any:
    """``torch.nn.parallel.data_parallel``: with one device, ``module(*inputs)``.

    Raises:
        ValueError: For a device index other than 0.
    """
    _check_device_ids(device_ids)
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    return module(*args, **(module_kwargs or {}))
