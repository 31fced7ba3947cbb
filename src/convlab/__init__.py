"""convlab: convolutional networks on our own Cython + OpenMP (and CUDA) kernels.

A small PyTorch-like API (tensors with autograd, ``nn``, ``optim``, checkpoints) over a
``Backend`` protocol whose hot kernels are hand-written.

Example:
    >>> import convlab
    >>> from convlab import nn
    >>> x = convlab.randn(4, 3, requires_grad=True)
    >>> nn.Linear(3, 2)(x).sum().backward()
    >>> x.grad.shape
    (4, 3)
"""

from __future__ import annotations

from convlab import autograd, functional, nn, optim, utils
from convlab._creation import (
    arange,
    as_tensor,
    empty,
    from_dlpack,
    from_numpy,
    full,
    ones,
    ones_like,
    rand,
    randn,
    tensor,
    zeros,
    zeros_like,
)
from convlab._dtype import bool_, float16, float32, float64, int8, int16, int32, int64, uint8
from convlab._ops.arith import abs, clip, exp, log, sqrt
from convlab._ops.linalg import matmul
from convlab._ops.reduce import amax, amin, mean, sum
from convlab._ops.shape import (
    cat,
    dilate,
    flatten,
    flip,
    pad,
    permute,
    reshape,
    split,
    squeeze,
    stack,
    transpose,
    undilate,
    unsqueeze,
)
from convlab._random import get_rng_state, manual_seed, set_rng_state
from convlab._settings import (
    get_allocator_policy,
    get_num_threads,
    get_workspace_limit,
    max_threads,
    set_allocator_policy,
    set_num_threads,
    set_workspace_limit,
)
from convlab._show_config import show_config
from convlab._tensor import Tensor
from convlab._version import __version__
from convlab.autograd import (
    AnomalyError,
    enable_grad,
    is_anomaly_enabled,
    is_grad_enabled,
    no_grad,
    set_detect_anomaly,
    set_grad_enabled,
)
from convlab.backend import Backend, BackendUnavailableError, available_backends, get_backend
from convlab.serialization import CheckpointError, load, save

clamp = clip

__all__ = [
    "__version__",
    "Backend",
    "BackendUnavailableError",
    "available_backends",
    "get_backend",
    "get_num_threads",
    "get_workspace_limit",
    "max_threads",
    "set_num_threads",
    "set_workspace_limit",
    "set_allocator_policy",
    "get_allocator_policy",
    "show_config",
    "get_rng_state",
    "set_rng_state",
    "Tensor",
    "tensor",
    "as_tensor",
    "from_numpy",
    "from_dlpack",
    "zeros",
    "ones",
    "full",
    "empty",
    "rand",
    "randn",
    "arange",
    "zeros_like",
    "ones_like",
    "manual_seed",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "is_grad_enabled",
    "set_detect_anomaly",
    "is_anomaly_enabled",
    "AnomalyError",
    "abs",
    "clip",
    "clamp",
    "exp",
    "log",
    "sqrt",
    "matmul",
    "sum",
    "mean",
    "amax",
    "amin",
    "cat",
    "stack",
    "split",
    "pad",
    "flip",
    "dilate",
    "undilate",
    "reshape",
    "transpose",
    "permute",
    "flatten",
    "squeeze",
    "unsqueeze",
    "save",
    "load",
    "CheckpointError",
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "bool_",
    "autograd",
    "functional",
    "nn",
    "optim",
    "utils",
]
