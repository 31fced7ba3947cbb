"""Interoperability helpers: converting state dicts between PyTorch and convlab, and
:mod:`convlab.utils.data` (``torch.utils.data``'s names for :mod:`convlab.data`).

convlab's modules use PyTorch's parameter and buffer names, order and layouts (OIHW weights,
``num_batches_tracked`` as int64), so a state dict converts key for key.

Example:
    >>> import convlab
    >>> from convlab import nn
    >>> model = nn.Linear(3, 2)
    >>> state = convlab.utils.from_torch_state_dict(
    ...     {k: v.numpy() for k, v in model.state_dict().items()})
    >>> sorted(state)
    ['bias', 'weight']
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from typing import Any

import numpy as np

from convlab._tensor import Tensor
from convlab.utils import data

__all__ = ["from_torch_state_dict", "to_torch_state_dict", "data"]


def from_torch_state_dict(
    state_dict: Mapping[str, Any], device: str = "cpu"
) -> collections.OrderedDict[str, Tensor]:
    """Convert a PyTorch ``state_dict`` (torch tensors or arrays) to convlab tensors.

    Usage: ``model.load_state_dict(from_torch_state_dict(torch_model.state_dict()))``.

    Raises:
        TypeError: If a value is neither a tensor nor array-like.
    """
    out = collections.OrderedDict()
    for key, value in state_dict.items():
        if hasattr(value, "detach") and hasattr(value, "cpu") and not isinstance(value, Tensor):
            value = value.detach().cpu().numpy()  # a torch.Tensor
        elif isinstance(value, Tensor):
            value = value.numpy()
        try:
            array = np.array(value, copy=True)
        except Exception as err:  # noqa: BLE001
            raise TypeError(f"state_dict[{key!r}]: cannot convert {type(value).__name__}") from err
        if array.dtype.kind not in "biuf":
            raise TypeError(f"state_dict[{key!r}]: unsupported dtype {array.dtype}")
        from convlab._creation import tensor

        out[key] = tensor(array, device=device)
    return out


def to_torch_state_dict(state_dict: Mapping[str, Any]) -> collections.OrderedDict[str, Any]:
    """Convert a convlab ``state_dict`` to PyTorch CPU tensors (needs ``torch`` installed).

    Usage: ``torch_model.load_state_dict(to_torch_state_dict(model.state_dict()))``.

    Raises:
        ImportError: If PyTorch is not installed.
    """
    import torch

    out = collections.OrderedDict()
    for key, value in state_dict.items():
        array = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
        out[key] = torch.from_numpy(np.array(array, copy=True))
    return out
