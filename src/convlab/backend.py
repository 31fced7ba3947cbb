"""The Backend protocol: the seam between convlab's Python layers and its compiled kernels.

A backend takes and returns raw arrays of its own array module (``numpy`` for ``"cpu"``,
``cupy`` for ``"gpu"``) and knows nothing about autograd. Everything NumPy / CuPy already do
well is written once against ``backend.xp``; a backend only supplies the hand-written kernels.

Example:
    >>> import numpy as np
    >>> from convlab.backend import get_backend
    >>> cpu = get_backend("cpu")
    >>> x = np.ones((1, 1, 4, 4), np.float32)
    >>> cpu.max_pool2d(x, 2)[0].shape
    (1, 1, 2, 2)
"""
from __future__ import annotations

from types import ModuleType
from typing import Any, Optional, Protocol, Sequence, Tuple, runtime_checkable

__all__ = ["Backend", "BackendUnavailableError", "get_backend", "available_backends"]

IntPair = Any  # an int or a pair of ints


class BackendUnavailableError(RuntimeError):
    """Raised when a backend's kernels are called on a machine that cannot run them."""


@runtime_checkable
class Backend(Protocol):
    """What every convlab backend provides.

    Attributes:
        name: ``"cpu"`` or ``"gpu"``.
        xp: The array module (``numpy`` or ``cupy``).
    """

    name: str

    @property
    def xp(self) -> ModuleType: ...

    def is_available(self) -> bool:
        """Whether this machine can run the backend's kernels."""

    def asarray(self, data: Any, dtype: Any = None) -> Any:
        """Convert ``data`` to an array of this backend."""

    def to_numpy(self, array: Any) -> Any:
        """Copy (or view) an array of this backend as a NumPy array."""

    def synchronize(self) -> None:
        """Wait for all queued kernels to finish."""

    def matmul(self, a: Any, b: Any, out: Any = None, trans_a: bool = False,
               trans_b: bool = False) -> Any:
        """``op(a) @ op(b)`` with NumPy's matmul broadcasting rules."""

    def im2col(self, x: Any, kernel_size: IntPair, stride: IntPair = 1, padding: IntPair = 0,
               dilation: IntPair = 1) -> Any:
        """(N, C, H, W) -> (N, C*KH*KW, OH*OW), as ``torch.nn.functional.unfold``."""

    def col2im(self, cols: Any, output_size: IntPair, kernel_size: IntPair, stride: IntPair = 1,
               padding: IntPair = 0, dilation: IntPair = 1) -> Any:
        """Sum columns back into (N, C, H, W), as ``torch.nn.functional.fold``."""

    def conv2d_forward(self, x: Any, weight: Any, bias: Any = None, stride: IntPair = 1,
                       padding: IntPair = 0, dilation: IntPair = 1, out: Any = None) -> Any:
        """Cross-correlation of NCHW ``x`` with OIHW ``weight`` (+ ``bias``)."""

    def conv2d_backward_data(self, grad_output: Any, weight: Any, input_shape: Sequence[int],
                             stride: IntPair = 1, padding: IntPair = 0,
                             dilation: IntPair = 1, algorithm: str = "auto") -> Any:
        """Gradient of the convolution with respect to its input (``algorithm``: ``"auto"``,
        ``"implicit"`` or ``"gemm"``, a hint a backend may serve with its one method)."""

    def conv2d_backward_weight(self, grad_output: Any, x: Any, weight_shape: Sequence[int],
                               stride: IntPair = 1, padding: IntPair = 0,
                               dilation: IntPair = 1,
                               bias: bool = True) -> Tuple[Any, Optional[Any]]:
        """Gradients of the convolution with respect to its weight and bias."""

    def max_pool2d(self, x: Any, kernel_size: IntPair, stride: Optional[IntPair] = None,
                   padding: IntPair = 0, dilation: IntPair = 1,
                   ceil_mode: bool = False) -> Tuple[Any, Any]:
        """Max pooling: values and the argmax as an offset inside each window."""

    def max_pool2d_backward(self, grad_output: Any, argmax: Any, input_shape: Sequence[int],
                            kernel_size: IntPair, stride: Optional[IntPair] = None,
                            padding: IntPair = 0, dilation: IntPair = 1,
                            ceil_mode: bool = False) -> Any:
        """Gradient of max pooling with respect to its input."""

    def avg_pool2d(self, x: Any, kernel_size: IntPair, stride: Optional[IntPair] = None,
                   padding: IntPair = 0, ceil_mode: bool = False,
                   count_include_pad: bool = True,
                   divisor_override: Optional[int] = None) -> Any:
        """Average pooling."""

    def avg_pool2d_backward(self, grad_output: Any, input_shape: Sequence[int],
                            kernel_size: IntPair, stride: Optional[IntPair] = None,
                            padding: IntPair = 0, ceil_mode: bool = False,
                            count_include_pad: bool = True,
                            divisor_override: Optional[int] = None) -> Any:
        """Gradient of average pooling with respect to its input."""


_ALIASES = {"cpu": "cpu", "gpu": "gpu", "cuda": "gpu"}
_INSTANCES: dict[str, Backend] = {}


def backend_name(device: Any) -> Optional[str]:
    """``"cpu"`` or ``"gpu"`` for a device string (``"cuda"`` and an index such as
    ``"cuda:0"`` included), None for anything else."""
    if not isinstance(device, str):
        return None
    return _ALIASES.get(device.lower().split(":")[0])


def get_backend(name: str = "cpu") -> Backend:
    """Return the backend singleton for ``"cpu"`` or ``"gpu"`` (``"cuda"`` is an alias).

    The GPU backend object exists on every machine; check ``is_available()`` before using it.

    Raises:
        ValueError: For an unknown name.
    """
    key = backend_name(name) if isinstance(name, str) and ":" not in name else None
    if key is None:
        raise ValueError(f"backend: expected one of 'cpu', 'gpu' (or 'cuda'), got {name!r}")
    if key not in _INSTANCES:
        if key == "cpu":
            from convlab._cpu.backend import CPUBackend
            _INSTANCES[key] = CPUBackend()
        else:
            from convlab._gpu.backend import GPUBackend
            _INSTANCES[key] = GPUBackend()
    return _INSTANCES[key]


def available_backends() -> list[str]:
    """Names of the backends this machine can run, CPU first."""
    return [name for name in ("cpu", "gpu") if get_backend(name).is_available()]
