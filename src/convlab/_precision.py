"""The compute-precision switch: ``set_float32_matmul_precision`` and the autocast state.

Tensors stay float32 whatever the switch says; only the *compute* of matrix products and
convolutions changes. The kernels ask :func:`compute_precision` (or, on the CPU,
:func:`cpu_bf16_enabled`) once per call:

* ``"highest"``: float32 multiply-adds (the default).
* ``"high"``: TF32 on GPUs that have it; on CPUs the same as ``"highest"`` (no CPU has TF32).
* ``"medium"``: bfloat16 products with float32 accumulation (the operands are rounded to
  bfloat16 as they are packed; sums, outputs and stored tensors stay float32).

An active :class:`convlab.autocast` scope with ``dtype=convlab.bfloat16`` means ``"medium"``
for its device type, whatever the global setting. The global setting is process-wide (as
PyTorch's); autocast scopes belong to the thread that enters them (as PyTorch's).
"""

from __future__ import annotations

import threading

__all__ = [
    "bfloat16",
    "set_float32_matmul_precision",
    "get_float32_matmul_precision",
    "compute_precision",
    "cpu_bf16_supported",
    "cpu_bf16_enabled",
    "is_autocast_enabled",
    "get_autocast_dtype",
    "autocast_state",
    "restored_autocast",
]

_PRECISIONS = ("highest", "high", "medium")
_matmul_precision = "highest"


class _BFloat16:
    """``convlab.bfloat16``: the marker naming bfloat16 *compute* (for :class:`autocast`).

    NumPy has no bfloat16 array type, so no tensor holds bfloat16 values: tensors stay
    float32 and the kernels round their operands to bfloat16 internally. Passing this marker
    as a tensor's ``dtype`` raises ``TypeError``.
    """

    itemsize = 2
    is_floating_point = True

    def __repr__(self) -> str:
        return "convlab.bfloat16"

    def __reduce__(self) -> str:
        # one marker per process, also after copy.copy / copy.deepcopy
        return "bfloat16"


bfloat16 = _BFloat16()


def set_float32_matmul_precision(precision: str) -> None:
    """Set the internal precision of float32 matrix products and convolutions
    (``torch.set_float32_matmul_precision``).

    Args:
        precision: ``"highest"`` (float32 compute, the default), ``"high"`` (TF32 on GPUs
            that have it, float32 on CPUs) or ``"medium"`` (bfloat16 products with float32
            accumulation, on CPUs with ``avx512_bf16`` and on GPUs with bfloat16 tensor
            cores; elsewhere float32).

    Raises:
        TypeError: If ``precision`` is not a string.
        ValueError: For another name.
    """
    global _matmul_precision
    if not isinstance(precision, str):
        raise TypeError(f"precision: expected a str, got {type(precision).__name__}")
    if precision not in _PRECISIONS:
        raise ValueError(
            f"precision: expected one of {', '.join(map(repr, _PRECISIONS))}, got {precision!r}"
        )
    _matmul_precision = precision


def get_float32_matmul_precision() -> str:
    """What :func:`set_float32_matmul_precision` last set (``"highest"`` at start)."""
    return _matmul_precision


class _AutocastState(threading.local):
    def __init__(self) -> None:
        # device type -> stack of (enabled, dtype) of the scopes this thread is inside
        self.scopes: dict[str, list[tuple[bool, object]]] = {}


_autocast = _AutocastState()


def _push_autocast(device_type: str, enabled: bool, dtype: object) -> None:
    _autocast.scopes.setdefault(device_type, []).append((enabled, dtype))


def _pop_autocast(device_type: str) -> None:
    _autocast.scopes[device_type].pop()


def is_autocast_enabled(device_type: str = "cuda") -> bool:
    """Whether the innermost :class:`convlab.autocast` scope of this thread for
    ``device_type`` (``"cpu"`` or ``"cuda"``) is enabled (``torch.is_autocast_enabled``)."""
    stack = _autocast.scopes.get(device_type)
    return bool(stack[-1][0]) if stack else False


def get_autocast_dtype(device_type: str) -> object:
    """The compute dtype of the innermost autocast scope for ``device_type``:
    :data:`convlab.bfloat16` outside any (``torch.get_autocast_dtype``; PyTorch's CUDA
    default is float16, convlab computes in bfloat16 on both)."""
    stack = _autocast.scopes.get(device_type)
    return stack[-1][1] if stack else bfloat16


def autocast_state() -> tuple[bool, bool]:
    """Whether autocast is enabled now on ``("cpu", "cuda")``: what an autograd node whose
    forward computes products records, so that its backward computes in the same precision
    (as PyTorch's backward of an autocast op runs in the dtype its forward cast to)."""
    scopes = _autocast.scopes
    cpu, cuda = scopes.get("cpu"), scopes.get("cuda")
    return (bool(cpu[-1][0]) if cpu else False, bool(cuda[-1][0]) if cuda else False)


class restored_autocast:  # noqa: N801 - a context manager, named for what it does
    """Within the scope, autocast is on or off per device type as :func:`autocast_state`
    returned (``state``), whatever scopes the thread is in: the autograd engine runs a node's
    backward in it."""

    __slots__ = ("state",)

    def __init__(self, state: tuple[bool, bool]) -> None:
        self.state = state

    def __enter__(self) -> None:
        _push_autocast("cpu", self.state[0], bfloat16)
        _push_autocast("cuda", self.state[1], bfloat16)

    def __exit__(self, *exc: object) -> None:
        _pop_autocast("cuda")
        _pop_autocast("cpu")


def compute_precision(device_type: str) -> str:
    """The precision matrix products and convolutions on ``device_type`` use now:
    ``"medium"`` inside an enabled bfloat16 autocast scope for that device type, else
    :func:`get_float32_matmul_precision` (the hardware check is the kernels')."""
    if is_autocast_enabled(device_type):
        return "medium"
    return _matmul_precision


_cpu_bf16: bool | None = None


def cpu_bf16_supported() -> bool:
    """Whether this CPU (and the build) runs the ``avx512_bf16`` kernels."""
    global _cpu_bf16
    if _cpu_bf16 is None:
        from convlab._cpu import _gemm

        _cpu_bf16 = bool(_gemm.bf16_supported())
    return _cpu_bf16


def cpu_bf16_enabled() -> bool:
    """Whether the CPU kernels compute in bfloat16 now: precision ``"medium"`` (set, or by
    autocast) on a CPU that can; elsewhere the switch changes nothing."""
    return compute_precision("cpu") == "medium" and cpu_bf16_supported()
