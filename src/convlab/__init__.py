"""convlab: convolutional networks on our own Cython + OpenMP (and CUDA) kernels.

Example:
    >>> import convlab
    >>> convlab.get_backend("cpu").name
    'cpu'
"""
from __future__ import annotations

from convlab._config import (get_num_threads, get_workspace_limit, set_num_threads,
                             set_workspace_limit, show_config)
from convlab._version import __version__
from convlab.backend import (Backend, BackendUnavailableError, available_backends,
                             get_backend)

__all__ = [
    "__version__",
    "Backend",
    "BackendUnavailableError",
    "available_backends",
    "get_backend",
    "get_num_threads",
    "get_workspace_limit",
    "set_num_threads",
    "set_workspace_limit",
    "show_config",
]
