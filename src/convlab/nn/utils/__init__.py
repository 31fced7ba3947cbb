"""Training utilities (``convlab.nn.utils``): gradient clipping and flattening parameters.

Example:
    >>> import convlab
    >>> from convlab import nn
    >>> model = nn.Linear(3, 1)
    >>> model(convlab.ones(4, 3)).sum().backward()
    >>> total = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
"""

from __future__ import annotations

from convlab.nn.utils import rnn
from convlab.nn.utils.clip_grad import (
    clip_grad_norm,
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    get_total_norm,
)
from convlab.nn.utils.convert_parameters import parameters_to_vector, vector_to_parameters

__all__ = [
    "clip_grad_norm_",
    "clip_grad_norm",
    "clip_grad_value_",
    "clip_grads_with_norm_",
    "get_total_norm",
    "parameters_to_vector",
    "vector_to_parameters",
    "rnn",
]
