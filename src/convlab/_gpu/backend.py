"""The GPU backend object.

It exists on every machine so code can ask ``get_backend("gpu").is_available()`` without
importing CuPy. The CuPy kernels land with the GPU backend issue; until then the backend reports
itself unavailable and its kernels raise ``BackendUnavailableError``.
"""
from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any, NoReturn

from convlab.backend import BackendUnavailableError

__all__ = ["GPUBackend"]

_NOT_YET = ("the GPU kernels are not part of this convlab build yet; "
            "use get_backend('cpu')")


class GPUBackend:
    """Placeholder for the CuPy backend: reports unavailable, raises on use."""

    name = "gpu"

    def is_available(self) -> bool:
        """False: this build has no GPU kernels."""
        return False

    def describe(self) -> str:
        """Why the backend is unavailable (and whether CuPy is installed)."""
        cupy = "installed" if importlib.util.find_spec("cupy") is not None else "not installed"
        return f"not available ({_NOT_YET}; CuPy {cupy})"

    @property
    def xp(self) -> ModuleType:
        """The array module; raises while the backend is unavailable."""
        self._unavailable()

    def _unavailable(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise BackendUnavailableError(f"gpu backend: {_NOT_YET}")

    asarray = to_numpy = synchronize = matmul = im2col = col2im = _unavailable
    conv2d_forward = conv2d_backward_data = conv2d_backward_weight = _unavailable
    max_pool2d = max_pool2d_backward = avg_pool2d = avg_pool2d_backward = _unavailable
