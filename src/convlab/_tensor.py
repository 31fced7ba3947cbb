"""``convlab.Tensor``: an array on a device, with an optional autograd history."""

from __future__ import annotations

import builtins
import collections
from typing import TYPE_CHECKING, Any

import numpy as np

from convlab import _dtype
from convlab._device import CPU, CUDA
from convlab._device import device as _device_type
from convlab._tensor_inplace import InplaceMethods
from convlab._tensor_methods import TensorMethods
from convlab.backend import backend_name, get_backend

if TYPE_CHECKING:
    from convlab.autograd import Function

__all__ = ["Tensor", "backend_for", "reset_grads"]

#: What ``Tensor.max(dim)`` / ``min(dim)`` return, as ``torch.return_types.max``.
MinMax = collections.namedtuple("MinMax", ["values", "indices"])


def backend_for(device: Any, name: str = "device") -> Any:
    """The backend of a device name (``"cpu"``, ``"gpu"``, ``"cuda"``, ``"cuda:0"``).

    Raises:
        ValueError: For an unknown device name.
        convlab.BackendUnavailableError: For ``"gpu"`` on a machine without one.
    """
    if device is None:
        return get_backend("cpu")
    if isinstance(device, Tensor):
        return device._backend
    key = backend_name(device)
    if key is None:
        raise ValueError(f"{name}: expected 'cpu' or 'gpu' (or 'cuda'), got {device!r}")
    backend = get_backend(key)
    if key == "gpu" and not backend.is_available():
        from convlab.backend import BackendUnavailableError

        raise BackendUnavailableError(
            f"{name}: 'gpu' requested but the GPU backend is not available here "
            f"({backend.describe()})"
        )
    return backend


class Tensor(InplaceMethods, TensorMethods):
    """An n-dimensional array on ``"cpu"`` or ``"gpu"`` that can record gradients.

    Create tensors with :func:`convlab.tensor`, :func:`convlab.zeros` and friends. ``data`` is
    the raw backend array (``numpy.ndarray`` on the CPU, ``cupy.ndarray`` on the GPU).

    Example:
        >>> import convlab
        >>> x = convlab.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        >>> y = (x @ x).sum()
        >>> y.backward()
        >>> x.grad.shape
        (2, 2)
    """

    __slots__ = ("_data", "_backend", "_requires_grad", "_node", "grad", "_hooks", "__weakref__")
    _data: Any  # the backend's array (numpy.ndarray or cupy.ndarray)
    _backend: Any
    _requires_grad: bool
    _node: Function | None  # the node that produced this tensor; None for a leaf
    grad: Tensor | None
    _hooks: dict[int, Any] | None  # Tensor.register_hook's hooks of a leaf
    __array_priority__ = 1000  # NumPy defers ``ndarray op Tensor`` to our reflected ops

    def __init__(
        self, *args: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False
    ) -> None:
        from convlab._creation import _to_array

        backend = backend_for(device)
        resolved = _dtype.resolve_dtype(dtype)
        if resolved is None:  # PyTorch's legacy constructor: the default float type
            resolved = _dtype.default_float
        if not args:
            array = backend.xp.zeros((0,), dtype=resolved)
        elif all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in args):
            if builtins.any(a < 0 for a in args):
                raise RuntimeError(f"Tensor: sizes must be non-negative, got {args}")
            array = backend.xp.zeros(tuple(int(a) for a in args), dtype=resolved)
        elif len(args) == 1:
            array = _to_array(args[0], resolved, backend, copy=False)
        else:
            raise TypeError(
                f"Tensor: expected one sequence / array / tensor, or sizes as ints, got "
                f"{len(args)} arguments of types {[type(a).__name__ for a in args]}"
            )
        self._data = array
        self._backend = backend
        self._requires_grad = False
        self._node = None
        self.grad = None
        self._hooks = None
        if requires_grad:
            self.requires_grad = True

    @classmethod
    def _wrap(cls, array: Any, backend: Any) -> Tensor:
        """A tensor around ``array`` (no copy, no checks): the ops' fast path."""
        t = object.__new__(cls)
        t._data = array
        t._backend = backend
        t._requires_grad = False
        t._node = None
        t.grad = None
        t._hooks = None
        return t

    # -- attributes -------------------------------------------------------------------------
    @property
    def data(self) -> Tensor:
        """This tensor's values without autograd history: a tensor sharing its memory.

        As in PyTorch, ``p.data.fill_(0)`` or ``p.data.add_(...)`` change ``p`` without being
        recorded, and ``p.data = t`` makes ``p`` use ``t``'s values (shape and dtype may change).
        """
        return Tensor._wrap(self._data, self._backend)

    @data.setter
    def data(self, value: Any) -> None:
        if isinstance(value, Tensor):
            if value._backend is not self._backend:
                raise RuntimeError(
                    f"data: expected a tensor on {self.device!r} (this tensor's device), "
                    f"got one on {value.device!r}"
                )
            self._data = value._data
            return
        if not isinstance(value, self._backend.xp.ndarray):
            raise TypeError(
                f"data: expected a Tensor (or a {self._backend.name} array), "
                f"got {type(value).__name__}"
            )
        self._data = value

    @property
    def shape(self) -> tuple[int, ...]:
        """The size of each dimension, as a tuple."""
        return tuple(self._data.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        """The element type (a NumPy dtype; ``convlab.float32`` etc.)."""
        dtype: np.dtype[Any] = self._data.dtype
        return dtype

    @property
    def device(self) -> _device_type:
        """The tensor's :class:`convlab.device`: ``device("cpu")`` or ``device("cuda:0")``.

        It compares equal to the strings naming it (``"cpu"``; ``"cuda"``, ``"cuda:0"`` or
        ``"gpu"`` for the GPU).
        """
        return CPU if self._backend.name == "cpu" else CUDA

    @property
    def is_cuda(self) -> bool:
        """True for a tensor on the GPU."""
        return bool(self._backend.name != "cpu")

    @property
    def is_cpu(self) -> bool:
        """True for a tensor on the CPU."""
        return bool(self._backend.name == "cpu")

    # Devices and layouts convlab does not have: PyTorch programs test them to pick code paths.
    is_xpu = property(lambda self: False, doc="False: convlab has no Intel XPU backend.")
    is_mps = property(lambda self: False, doc="False: convlab has no Apple MPS backend.")
    is_meta = property(lambda self: False, doc="False: convlab tensors always hold data.")
    is_sparse = property(lambda self: False, doc="False: convlab tensors are dense.")
    is_quantized = property(lambda self: False, doc="False: convlab has no quantized tensors.")
    is_mkldnn = property(lambda self: False, doc="False: convlab does not use oneDNN layouts.")
    is_nested = property(lambda self: False, doc="False: convlab has no nested tensors.")

    def get_device(self) -> int:
        """The GPU index (0) of a GPU tensor, -1 for a CPU tensor (as PyTorch)."""
        return -1 if self._backend.name == "cpu" else 0

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        ndim: int = self._data.ndim
        return ndim

    @property
    def requires_grad(self) -> bool:
        """Whether ``backward`` computes a gradient for this tensor."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        value = bool(value)
        if value and not _dtype.is_floating(self._data.dtype):
            raise RuntimeError(
                f"requires_grad: only floating-point tensors can require "
                f"gradients, got dtype {self._data.dtype}"
            )
        if self._node is not None and not value:
            raise RuntimeError(
                "requires_grad: you can only change requires_grad of leaf "
                "tensors; use detach() to get a tensor without history"
            )
        self._requires_grad = value

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place and return ``self``."""
        self.requires_grad = requires_grad
        return self

    @property
    def grad_fn(self) -> Any:
        """The autograd node that produced this tensor (``None`` for leaves)."""
        return self._node

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a recorded op (parameters, inputs)."""
        return self._node is None

    @property
    def T(self) -> Tensor:
        """All dimensions reversed (the transpose of a matrix)."""
        return _shape.permute(self, tuple(range(self.ndim - 1, -1, -1)))

    @property
    def mT(self) -> Tensor:
        """The last two dimensions swapped (a batch of transposed matrices)."""
        return _shape.transpose(self, -2, -1)

    def size(self, dim: int | None = None) -> Any:
        """The shape, or the size of dimension ``dim``."""
        return self.shape if dim is None else self._data.shape[dim]

    def numel(self) -> int:
        """Number of elements."""
        return int(self._data.size)

    def dim(self) -> int:
        """Number of dimensions."""
        ndim: int = self._data.ndim
        return ndim

    def element_size(self) -> int:
        """Bytes per element."""
        itemsize: int = self._data.itemsize
        return itemsize

    # -- autograd -----------------------------------------------------------------------------
    def backward(
        self,
        gradient: Any = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
        inputs: Any = None,
        *,
        grad: Any = None,
    ) -> None:
        """Accumulate the gradient of this tensor into ``.grad`` of every leaf it depends on.

        Args:
            gradient: d(loss)/d(self); may be omitted for a one-element tensor (``grad=`` is
                accepted too).
            retain_graph: Keep the graph's saved values for another ``backward``.
            create_graph: Not supported (higher-order gradients); must be False.
            inputs: Accumulate only into these tensors' ``.grad`` (a tensor or a sequence).

        Raises:
            RuntimeError: If the tensor has no history, or the graph was already freed.
            NotImplementedError: For ``create_graph=True``.
        """
        from convlab.autograd import backward

        if create_graph:
            raise NotImplementedError(
                "backward: create_graph=True (higher-order gradients) is not supported: "
                "convlab does not record its backward pass"
            )
        if gradient is not None and grad is not None:
            raise TypeError("backward: gradient given twice (gradient= and grad=)")
        backward(self, gradient if grad is None else grad, bool(retain_graph), inputs)

    def detach(self) -> Tensor:
        """The same data without history (shares memory)."""
        return Tensor._wrap(self._data, self._backend)

    def detach_(self) -> Tensor:
        """Drop this tensor's history in place."""
        self._node = None
        self._requires_grad = False
        return self

    def __copy__(self) -> Tensor:
        raise RuntimeError(
            "copy.copy of a tensor is not supported (as in PyTorch); use .clone() or copy.deepcopy"
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> Tensor:
        """``copy.deepcopy``: a leaf with copied values, on the same device (as PyTorch)."""
        if self._node is not None:
            raise RuntimeError(
                "deepcopy: only tensors created explicitly by the user (graph leaves) support "
                "the deepcopy protocol; use .detach().clone()"
            )
        if id(self) in memo:
            copied: Tensor = memo[id(self)]
            return copied
        new = object.__new__(type(self))
        memo[id(self)] = new
        new._data = self._backend.xp.array(self._data, copy=True)
        new._backend = self._backend  # the backend is a per-device singleton: never copied
        new._requires_grad = self._requires_grad
        new._node = None
        new._hooks = None
        new.grad = None if self.grad is None else self.grad.__deepcopy__(memo)
        return new

    def __reduce_ex__(self, protocol: Any) -> Any:
        """Pickling (``multiprocessing``, ``copy``): the values as a NumPy array and the device
        by name, so the unpickled tensor uses this process's backend. convlab never unpickles
        files it loads itself (see :func:`convlab.load`)."""
        if self._node is not None:
            raise RuntimeError(
                "pickle: only tensors created explicitly by the user (graph leaves) can be "
                "pickled; use .detach()"
            )
        grad = None if self.grad is None else self.grad.numpy()
        state = (type(self), self.numpy(), self._backend.name, self._requires_grad, grad)
        return (_rebuild_tensor, state)

    def register_hook(self, hook: Any) -> Any:
        """Call ``hook(grad)`` when the gradient with respect to this tensor is computed.

        The hook may return a tensor that replaces the gradient (it then flows on to this
        tensor's inputs, or into ``.grad`` for a leaf), as ``torch.Tensor.register_hook``.

        Returns:
            A handle whose ``remove()`` unregisters the hook.

        Raises:
            RuntimeError: If the tensor does not require grad.
        """
        from convlab.autograd import RemovableHandle

        if not self._requires_grad:
            raise RuntimeError(
                "register_hook: cannot register a hook on a tensor that doesn't require gradient"
            )
        if not callable(hook):
            raise TypeError(f"hook: expected a callable, got {type(hook).__name__}")
        hooks: dict[int, Any]
        if self._node is None:
            if self._hooks is None:
                self._hooks = {}
            hooks = self._hooks
        else:
            hooks = self._node.__dict__.setdefault("_tensor_hooks", {})
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        return handle

    def retain_grad(self) -> None:
        """Keep the gradient of this non-leaf tensor in ``.grad`` after ``backward``."""
        if self._node is None:
            if not self._requires_grad:
                raise RuntimeError(
                    "retain_grad: can't retain_grad on a tensor that has requires_grad=False"
                )
            return  # leaves keep their gradient anyway
        if self._node.__dict__.get("_retains") is not None:
            return
        import weakref

        target = weakref.ref(self)

        def keep(grad: Tensor) -> None:
            tensor = target()
            if tensor is not None:
                stored = grad._backend.xp.array(grad._data, copy=True)
                if tensor.grad is None:
                    tensor.grad = Tensor._wrap(stored, grad._backend)
                else:
                    tensor.grad._data = tensor.grad._data + stored

        self._node.__dict__["_retains"] = self.register_hook(keep)

    @property
    def retains_grad(self) -> bool:
        """Whether :meth:`retain_grad` was called on this non-leaf tensor."""
        return self._node is not None and self._node.__dict__.get("_retains") is not None

    # -- conversion ---------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (shares memory on the CPU, a copy from the GPU)."""
        return np.asarray(self._backend.to_numpy(self._data))

    def tolist(self) -> Any:
        """The data as (nested) Python numbers."""
        return self.numpy().tolist()

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number.

        Raises:
            ValueError: If the tensor has more than one element.
        """
        if self._data.size != 1:
            raise ValueError(
                f"item: only one-element tensors can be converted to a Python "
                f"number, got shape {self.shape}"
            )
        return self.numpy().reshape(()).item()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = self.numpy()
        if dtype is not None:
            array = array.astype(dtype, copy=False)
        return array.copy() if copy else array

    def __dlpack__(self, *args: Any, **kwargs: Any) -> Any:
        return self._data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self) -> Any:
        return self._data.__dlpack_device__()

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """A copy on another device and/or with another dtype (``self`` if nothing changes).

        Accepts ``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(other_tensor)`` and
        the keywords ``device=``, ``dtype=``, ``copy=`` (always copy), ``non_blocking=`` and
        ``memory_format=`` (accepted; convlab's copies are synchronous and row-major), as
        ``torch.Tensor.to``.
        """
        copy = bool(kwargs.pop("copy", False))
        kwargs.pop("non_blocking", None)
        kwargs.pop("memory_format", None)
        device, dtype = _parse_to_args(args, kwargs)
        backend = self._backend if device is None else backend_for(device)
        dtype = _dtype.resolve_dtype(dtype)
        if backend is self._backend and (dtype is None or dtype == self._data.dtype):
            return self.clone() if copy else self
        from convlab._ops.convert import ToDevice

        moved = ToDevice.apply(self, backend=backend, dtype=dtype)
        if dtype is not None and dtype.kind != "f" and moved._node is not None:
            return moved.detach()  # integer and bool tensors have no gradient, as in PyTorch
        return moved

    def cpu(self, memory_format: Any = None) -> Tensor:
        """This tensor on the CPU (``self`` if it is there already)."""
        return self.to("cpu")

    def gpu(self, device: Any = None, non_blocking: bool = False) -> Tensor:
        """This tensor on the GPU (``self`` if it is there already)."""
        if device is not None:
            from convlab import cuda

            cuda.set_device(device)  # validates the index: convlab uses GPU 0
        return self.to("gpu")

    cuda = gpu

    def pin_memory(self) -> Tensor:
        """A copy in page-locked host memory when a GPU is present, else ``self``."""
        if self._backend.name != "cpu":
            raise RuntimeError("pin_memory: only CPU tensors can be pinned")
        from convlab.data.loader import _pin

        pinned: Tensor = _pin(self)
        return pinned

    def is_pinned(self) -> bool:
        """Whether the tensor's memory is page-locked (CuPy's pinned memory)."""
        base = self._data
        while getattr(base, "base", None) is not None:
            base = base.base
        return type(base).__module__.startswith("cupy")

    def float(self) -> Tensor:
        """Cast to float32."""
        return self.to(dtype=_dtype.float32)

    def double(self) -> Tensor:
        """Cast to float64."""
        return self.to(dtype=_dtype.float64)

    def long(self) -> Tensor:
        """Cast to int64."""
        return self.to(dtype=_dtype.int64)

    def contiguous(self) -> Tensor:
        """A C-contiguous tensor with the same values (``self`` when already contiguous)."""
        if self._data.flags.c_contiguous:
            return self
        return _shape.reshape(self, self.shape, force_copy=True)

    def clone(self) -> Tensor:
        """A copy that stays connected to the graph."""
        return _shape.reshape(self, self.shape, force_copy=True)

    def __setitem__(self, index: Any, value: Any) -> None:
        """``x[index] = value``: an in-place write (recorded when gradients are, as PyTorch)."""
        from convlab._tensor_inplace import _recording

        if isinstance(index, Tensor):
            index = index._data
        elif isinstance(index, tuple):
            index = tuple(i._data if isinstance(i, Tensor) else i for i in index)
        operands = (value,) if isinstance(value, Tensor) else ()
        if _recording(self, operands):
            from convlab._ops.assign import set_item

            self._inplace("__setitem__", lambda: set_item(self, index, value), operands)
            return
        # not recorded: write only the indexed elements (a loop filling a batch row by row
        # must not copy the whole tensor per row)
        if isinstance(value, Tensor):
            if value._backend is not self._backend:
                raise RuntimeError(
                    f"__setitem__: value is on {value.device}, the tensor on {self.device}"
                )
            value = value._data
        if not self._data.flags.writeable:
            raise RuntimeError(
                "__setitem__: this tensor's memory is read-only (it wraps a read-only array); "
                "call .clone() first"
            )
        from convlab.autograd import bump_version

        self._data[index] = value
        bump_version(self._data)

    # -- Python protocol ----------------------------------------------------------------------
    def __repr__(self) -> str:
        from convlab._tensor_repr import format_values

        body = format_values(self.numpy())
        extras = []
        if self._backend.name != "cpu":
            extras.append(f"device='{self.device}'")
        if self._data.dtype not in (_dtype.default_float, _dtype.int64, _dtype.bool_):
            extras.append(f"dtype=convlab.{self._data.dtype}")
        if self._node is not None:
            extras.append(f"grad_fn=<{type(self._node).__name__}Backward>")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        length: int = self._data.shape[0]
        return length

    def __iter__(self) -> Any:
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(
                f"bool: the truth value of a tensor with {self._data.size} elements is ambiguous"
            )
        return bool(self.item())

    def __float__(self) -> builtins.float:  # builtins: the float() method shadows the name
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iub":
            raise TypeError(f"only integer tensors can be used as an index, got {self.dtype}")
        return int(self.item())

    __hash__ = object.__hash__

    # -- arithmetic ---------------------------------------------------------------------------
    def __add__(self, other: Any) -> Tensor:
        return _arith.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _arith.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return _arith.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _arith.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return _arith.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _arith.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return _arith.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _arith.div(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return _arith.pow(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return _arith.pow(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return _linalg.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _linalg.matmul(other, self)

    def __neg__(self) -> Tensor:
        return _arith.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _arith.abs(self)

    def __lt__(self, other: Any) -> Tensor:
        return _arith.compare(self, other, "less")

    def __le__(self, other: Any) -> Tensor:
        return _arith.compare(self, other, "less_equal")

    def __gt__(self, other: Any) -> Tensor:
        return _arith.compare(self, other, "greater")

    def __ge__(self, other: Any) -> Tensor:
        return _arith.compare(self, other, "greater_equal")

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _arith.compare(self, other, "equal")

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _arith.compare(self, other, "not_equal")

    def exp(self) -> Tensor:
        """Elementwise e**x."""
        return _arith.exp(self)

    def log(self) -> Tensor:
        """Elementwise natural logarithm."""
        return _arith.log(self)

    def sqrt(self) -> Tensor:
        """Elementwise square root."""
        return _arith.sqrt(self)

    def abs(self) -> Tensor:
        """Elementwise absolute value."""
        return _arith.abs(self)

    def clip(self, min: Any = None, max: Any = None) -> Tensor:
        """Limit values to ``[min, max]`` (either bound may be ``None``)."""
        return _arith.clip(self, min, max)

    clamp = clip

    def relu(self) -> Tensor:
        """max(x, 0)."""
        return _activation.relu(self)

    def sigmoid(self) -> Tensor:
        """1 / (1 + exp(-x))."""
        return _activation.sigmoid(self)

    def tanh(self) -> Tensor:
        """Hyperbolic tangent."""
        return _activation.tanh(self)

    def softmax(self, dim: int, dtype: Any = None) -> Tensor:
        """Softmax along ``dim`` (computed in ``dtype`` when given)."""
        return _activation.softmax(self, dim, dtype=dtype)

    def log_softmax(self, dim: int, dtype: Any = None) -> Tensor:
        """Log-softmax along ``dim`` (computed in ``dtype`` when given)."""
        return _activation.log_softmax(self, dim, dtype=dtype)

    # -- reductions ---------------------------------------------------------------------------
    def sum(
        self,
        dim: Any = None,
        keepdim: bool = False,
        *,
        dtype: Any = None,
        axis: Any = None,
        keepdims: bool | None = None,
    ) -> Tensor:
        """Sum over ``dim`` (all dimensions when ``None``); NumPy's ``axis``/``keepdims`` too."""
        return _reduce.sum(self, *_reduce.dims(dim, keepdim, axis, keepdims), dtype=dtype)

    def mean(
        self,
        dim: Any = None,
        keepdim: bool = False,
        *,
        dtype: Any = None,
        axis: Any = None,
        keepdims: bool | None = None,
    ) -> Tensor:
        """Mean over ``dim`` (all dimensions when ``None``)."""
        return _reduce.mean(self, *_reduce.dims(dim, keepdim, axis, keepdims), dtype=dtype)

    def max(
        self,
        dim: Any = None,
        keepdim: bool = False,
        *,
        axis: Any = None,
        keepdims: bool | None = None,
    ) -> Any:
        """Largest value; with ``dim`` (PyTorch style) a ``(values, indices)`` pair.

        ``x.max()`` and NumPy-style ``x.max(axis=...)`` return the values only; the gradient
        is shared equally among tied maxima. ``x.max(dim)`` returns ``values, indices`` and
        sends the gradient to the returned index, as PyTorch does.
        """
        return _reduce.extreme(self, "max", dim, keepdim, axis, keepdims)

    def min(
        self,
        dim: Any = None,
        keepdim: bool = False,
        *,
        axis: Any = None,
        keepdims: bool | None = None,
    ) -> Any:
        """Smallest value; see :meth:`max` for the two calling styles."""
        return _reduce.extreme(self, "min", dim, keepdim, axis, keepdims)

    def amax(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        """Largest values over ``dim`` (ties share the gradient)."""
        return _reduce.amax(self, *_reduce.dims(dim, keepdim, None, None))

    def amin(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        """Smallest values over ``dim`` (ties share the gradient)."""
        return _reduce.amin(self, *_reduce.dims(dim, keepdim, None, None))

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Index of the largest value (first on ties), over the flattened tensor by default."""
        return _reduce.arg(self, "argmax", dim, keepdim)

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Index of the smallest value (first on ties)."""
        return _reduce.arg(self, "argmin", dim, keepdim)

    # -- shape --------------------------------------------------------------------------------
    def reshape(self, *shape: Any) -> Tensor:
        """The same elements in a new shape (one dimension may be -1)."""
        return _shape.reshape(self, _shape.shape_args(shape))

    def view(self, *shape: Any) -> Tensor:
        """Same as :meth:`reshape` (convlab copies when a view is impossible)."""
        return _shape.reshape(self, _shape.shape_args(shape))

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        """Swap two dimensions."""
        return _shape.transpose(self, dim0, dim1)

    def permute(self, *dims: Any) -> Tensor:
        """Reorder the dimensions."""
        return _shape.permute(self, _shape.shape_args(dims))

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge dimensions ``start_dim..end_dim`` into one."""
        return _shape.flatten(self, start_dim, end_dim)

    def squeeze(self, dim: Any = None) -> Tensor:
        """Remove dimensions of size 1 (only ``dim`` when given)."""
        return _shape.squeeze(self, dim)

    def unsqueeze(self, dim: int) -> Tensor:
        """Insert a dimension of size 1 at ``dim``."""
        return _shape.unsqueeze(self, dim)

    def expand(self, *shape: Any) -> Tensor:
        """Broadcast to ``shape`` (-1 keeps a dimension)."""
        return _shape.expand(self, _shape.shape_args(shape))

    def split(self, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
        """Split into chunks of a size, or of the listed sizes, along ``dim``."""
        return _shape.split(self, split_size_or_sections, dim)

    def flip(self, dims: Any) -> Tensor:
        """Reverse the order of elements along ``dims``."""
        return _shape.flip(self, dims)

    def __getitem__(self, index: Any) -> Tensor:
        return _shape.getitem(self, index)


def _rebuild_tensor(
    cls: type, values: np.ndarray, device: str, requires_grad: bool, grad: Any
) -> Tensor:
    """Unpickle a tensor (see ``Tensor.__reduce_ex__``) on this process's backend."""
    if not (isinstance(cls, type) and issubclass(cls, Tensor)):
        raise TypeError(f"pickle: expected a Tensor class, got {cls!r}")
    backend = backend_for(device)
    t = cls._wrap(backend.asarray(np.asarray(values)), backend)
    t._requires_grad = bool(requires_grad)
    if grad is not None:
        t.grad = Tensor._wrap(backend.asarray(np.asarray(grad)), backend)
    return t


def reset_grads(tensors: Any, set_to_none: bool = True) -> None:
    """Drop (or zero) the gradients of ``tensors``: ``zero_grad`` of modules and optimizers.

    Zeroing replaces the array instead of writing into it: the engine may share a gradient
    array between leaves.
    """
    for t in tensors:
        if t.grad is None:
            continue
        if set_to_none:
            t.grad = None
        else:
            t.grad = Tensor._wrap(t._backend.xp.zeros_like(t.grad._data), t._backend)


def _parse_to_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    if kwargs:
        raise TypeError(f"to: unexpected keyword arguments {sorted(kwargs)}")
    for arg in args:
        if isinstance(arg, str) or isinstance(arg, Tensor):
            if isinstance(arg, Tensor):
                dtype = dtype or arg.dtype
                arg = arg.device
            if device is not None:
                raise TypeError("to: device given twice")
            device = arg
        else:
            if dtype is not None:
                raise TypeError("to: dtype given twice")
            dtype = arg
    return device, dtype


# The op modules build on Tensor, so they come after it.
from convlab._ops import activation as _activation  # noqa: E402
from convlab._ops import arith as _arith  # noqa: E402
from convlab._ops import linalg as _linalg  # noqa: E402
from convlab._ops import reduce as _reduce  # noqa: E402
from convlab._ops import shape as _shape  # noqa: E402
