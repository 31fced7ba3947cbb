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

from collections.abc import Sequence
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

__all__ = ["Backend", "BackendUnavailableError", "get_backend", "available_backends"]

IntPair = Any  # an int or a pair of ints


class BackendUnavailableError(RuntimeError):
    """Raised when a backend's kernels are called on a machine that cannot run them."""


@runtime_checkable
class Backend(Protocol):
    """Everything convlab's Python layers call on a backend: the whole contract.

    :class:`convlab._backend_base.BackendBase` implements every member below once (argument
    checks, allocation, empty inputs, ``out=``) on top of a few ``_..._into`` hooks; a new
    backend subclasses it and supplies the required hooks (GEMM, im2col / col2im, the three
    convolution products, pooling, the binary layer's two kernels). The fused element-wise
    members have defaults there written against ``xp``, which a backend overrides only for
    speed. Each method's semantics are documented on ``BackendBase``.

    Attributes:
        name: ``"cpu"`` or ``"gpu"``.
        xp: The array module (``numpy`` or ``cupy``).
        checks_binary_pixels: Whether :meth:`binary_conv2d_forward` rejects non-0/1 uint8
            pixels itself.
    """

    name: str
    checks_binary_pixels: bool

    @property
    def xp(self) -> ModuleType: ...

    # identity and transfers
    def is_available(self) -> bool: ...
    def describe(self) -> str: ...
    def asarray(self, data: Any, dtype: Any = None) -> Any: ...
    def to_numpy(self, array: Any) -> Any: ...
    def synchronize(self) -> None: ...

    # required kernels
    def matmul(
        self, a: Any, b: Any, out: Any = None, trans_a: bool = False, trans_b: bool = False
    ) -> Any: ...
    def im2col(
        self,
        x: Any,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        dilation: IntPair = 1,
    ) -> Any: ...
    def col2im(
        self,
        cols: Any,
        output_size: IntPair,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        dilation: IntPair = 1,
    ) -> Any: ...
    def conv2d_forward(
        self,
        x: Any,
        weight: Any,
        bias: Any = None,
        stride: IntPair = 1,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        out: Any = None,
        groups: int = 1,
    ) -> Any: ...
    def conv2d_backward_data(
        self,
        grad_output: Any,
        weight: Any,
        input_shape: Sequence[int],
        stride: IntPair = 1,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        algorithm: str = "auto",
        groups: int = 1,
    ) -> Any: ...
    def conv2d_backward_weight(
        self,
        grad_output: Any,
        x: Any,
        weight_shape: Sequence[int],
        stride: IntPair = 1,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        bias: bool = True,
        groups: int = 1,
    ) -> tuple[Any, Any | None]: ...
    def global_avg_pool2d(self, x: Any) -> Any: ...
    def global_max_pool2d(self, x: Any) -> tuple[Any, Any]: ...
    def max_pool2d(
        self,
        x: Any,
        kernel_size: IntPair,
        stride: IntPair | None = None,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        ceil_mode: bool = False,
    ) -> tuple[Any, Any]: ...
    def max_pool2d_backward(
        self,
        grad_output: Any,
        argmax: Any,
        input_shape: Sequence[int],
        kernel_size: IntPair,
        stride: IntPair | None = None,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        ceil_mode: bool = False,
    ) -> Any: ...
    def avg_pool2d(
        self,
        x: Any,
        kernel_size: IntPair,
        stride: IntPair | None = None,
        padding: IntPair = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> Any: ...
    def avg_pool2d_backward(
        self,
        grad_output: Any,
        input_shape: Sequence[int],
        kernel_size: IntPair,
        stride: IntPair | None = None,
        padding: IntPair = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> Any: ...
    def binary_conv2d_forward(
        self,
        x: Any,
        packed: bool,
        weight: Any,
        base_values: Any,
        base_index: Any,
        shape: Sequence[int],
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        out: Any = None,
    ) -> Any: ...
    def binary_conv2d_weight_sums(
        self,
        x: Any,
        packed: bool,
        grad_output: Any,
        cls: Any,
        n_classes: int,
        shape: Sequence[int],
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        row_starts: Any = None,
    ) -> tuple[Any, Any]: ...

    # fused kernels (defaults in BackendBase)
    def leaky_relu_forward(self, x: Any, slope: float) -> tuple[Any, Any]: ...
    def leaky_relu_backward(self, grad: Any, positive: Any, slope: float) -> Any: ...
    def dropout_forward(self, x: Any, p: float, seed: int) -> tuple[Any, Any]: ...
    def dropout_rows_forward(self, x: Any, p: float, seeds: Any) -> tuple[Any, Any]: ...
    def dropout_backward(self, grad: Any, keep: Any, p: float) -> Any: ...
    def batch_norm_forward(
        self, x: Any, weight: Any, bias: Any, mean: Any, var: Any, eps: float
    ) -> tuple[Any, Any, Any]: ...
    def batch_norm_backward(
        self,
        grad: Any,
        x: Any,
        mean: Any,
        invstd: Any,
        weight: Any,
        batch_stats: bool,
        input_grad: bool = True,
    ) -> tuple[Any | None, Any, Any]: ...
    def batch_norm_max_pool_forward(
        self,
        x: Any,
        weight: Any,
        bias: Any,
        mean: Any,
        var: Any,
        eps: float,
        kernel: int,
        ceil_mode: bool,
        slope: float,
    ) -> tuple[Any, Any, Any, Any]: ...
    def batch_norm_max_pool_backward(
        self,
        grad: Any,
        code: Any,
        x: Any,
        mean: Any,
        invstd: Any,
        weight: Any,
        batch_stats: bool,
        kernel: int,
        ceil_mode: bool,
        slope: float,
        input_grad: bool = True,
    ) -> tuple[Any | None, Any, Any]: ...
    def adam_step(
        self,
        param: Any,
        grad: Any,
        exp_avg: Any,
        exp_avg_sq: Any,
        lr: float,
        betas: tuple[float, float],
        eps: float,
        weight_decay: float,
        decoupled: bool,
        step: int,
    ) -> None: ...
    # recurrent cell steps (defaults in BackendBase; they write into the given arrays)
    def lstm_cell_forward(
        self, xg: Any, hg: Any, b_ih: Any, b_hh: Any, c_prev: Any, h: Any, c: Any, gates: Any
    ) -> None: ...
    def lstm_cell_backward(
        self, gates: Any, c_prev: Any, c: Any, dh: Any, dh_rec: Any, dc: Any, dgates: Any
    ) -> None: ...
    def gru_cell_forward(
        self, xg: Any, hg: Any, b_ih: Any, b_hh: Any, h_prev: Any, h: Any, saved: Any
    ) -> None: ...
    def gru_cell_backward(
        self, saved: Any, h_prev: Any, dh: Any, dh_rec: Any, dcarry: Any, dxg: Any, dhg: Any
    ) -> None: ...
    def rnn_cell_forward(
        self, xg: Any, hg: Any, b_ih: Any, b_hh: Any, h: Any, relu: bool
    ) -> None: ...
    def rnn_cell_backward(self, h: Any, dh: Any, dh_rec: Any, dpre: Any, relu: bool) -> None: ...


_ALIASES = {"cpu": "cpu", "gpu": "gpu", "cuda": "gpu"}
_INSTANCES: dict[str, Backend] = {}


def backend_name(device: Any) -> str | None:
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
