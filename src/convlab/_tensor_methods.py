"""``Tensor`` methods that are thin wrappers over the op modules (comparisons, indexing, sorting).

They live in a mixin so that ``_tensor.py`` keeps the tensor's core: storage, autograd state,
conversion and in-place writes. Methods defined in ``_tensor.py`` win over these.

The op modules import ``Tensor``, which imports this module first, so the methods import them
when called (after the first call that is a dictionary lookup).
"""

from __future__ import annotations

import builtins
import numbers
from typing import TYPE_CHECKING, Any

import numpy as np

from convlab import _dtype

if TYPE_CHECKING:
    from convlab._tensor import Tensor

__all__ = ["TensorMethods"]

#: PyTorch's legacy type names, for ``Tensor.type()`` without arguments.
_TYPE_NAMES = {
    "float32": "torch.FloatTensor",
    "float64": "torch.DoubleTensor",
    "float16": "torch.HalfTensor",
    "int64": "torch.LongTensor",
    "int32": "torch.IntTensor",
    "int16": "torch.ShortTensor",
    "int8": "torch.CharTensor",
    "uint8": "torch.ByteTensor",
    "bool": "torch.BoolTensor",
}


def _cast_name(name: str) -> Any:
    """The dtype of a legacy type name (``"torch.FloatTensor"``, ``"torch.cuda.LongTensor"``)."""
    for dtype, legacy in _TYPE_NAMES.items():
        if name in (legacy, legacy.replace("torch.", "torch.cuda.")):
            return np.dtype(dtype)
    raise ValueError(f"type: invalid type {name!r}")


class TensorMethods:
    """Methods of :class:`convlab.Tensor` that forward to functions of the op modules."""

    __slots__ = ()

    # -- comparisons and logic ----------------------------------------------------------------
    def eq(self: Any, other: Any) -> Tensor:
        """``self == other`` elementwise (bool)."""
        from convlab._ops import logic

        return logic.eq(self, other)

    def ne(self: Any, other: Any) -> Tensor:
        """``self != other`` elementwise (bool)."""
        from convlab._ops import logic

        return logic.ne(self, other)

    def lt(self: Any, other: Any) -> Tensor:
        """``self < other`` elementwise (bool)."""
        from convlab._ops import logic

        return logic.lt(self, other)

    def le(self: Any, other: Any) -> Tensor:
        """``self <= other`` elementwise (bool)."""
        from convlab._ops import logic

        return logic.le(self, other)

    def gt(self: Any, other: Any) -> Tensor:
        """``self > other`` elementwise (bool)."""
        from convlab._ops import logic

        return logic.gt(self, other)

    def ge(self: Any, other: Any) -> Tensor:
        """``self >= other`` elementwise (bool)."""
        from convlab._ops import logic

        return logic.ge(self, other)

    greater = gt
    greater_equal = ge
    less = lt
    less_equal = le
    not_equal = ne

    def equal(self: Any, other: Tensor) -> builtins.bool:
        """Same shape and same values."""
        from convlab._ops import logic

        return logic.equal(self, other)

    def allclose(
        self: Any,
        other: Any,
        rtol: float = 1e-05,
        atol: float = 1e-08,
        equal_nan: builtins.bool = False,
    ) -> builtins.bool:
        """Whether every element is close to ``other``'s (see :func:`convlab.isclose`)."""
        from convlab._ops import logic

        return logic.allclose(self, other, rtol, atol, equal_nan)

    def isclose(
        self: Any,
        other: Any,
        rtol: float = 1e-05,
        atol: float = 1e-08,
        equal_nan: builtins.bool = False,
    ) -> Tensor:
        """``|self - other| <= atol + rtol * |other|`` elementwise (bool)."""
        from convlab._ops import logic

        return logic.isclose(self, other, rtol, atol, equal_nan)

    def isnan(self: Any) -> Tensor:
        """Where the values are NaN (bool)."""
        from convlab._ops import logic

        return logic.isnan(self)

    def isinf(self: Any) -> Tensor:
        """Where the values are infinite (bool)."""
        from convlab._ops import logic

        return logic.isinf(self)

    def isfinite(self: Any) -> Tensor:
        """Where the values are finite (bool)."""
        from convlab._ops import logic

        return logic.isfinite(self)

    def logical_and(self: Any, other: Any) -> Tensor:
        """Elementwise AND of the truth values."""
        from convlab._ops import logic

        return logic.logical_and(self, other)

    def logical_or(self: Any, other: Any) -> Tensor:
        """Elementwise OR of the truth values."""
        from convlab._ops import logic

        return logic.logical_or(self, other)

    def logical_xor(self: Any, other: Any) -> Tensor:
        """Elementwise XOR of the truth values."""
        from convlab._ops import logic

        return logic.logical_xor(self, other)

    def logical_not(self: Any) -> Tensor:
        """Elementwise NOT of the truth values."""
        from convlab._ops import logic

        return logic.logical_not(self)

    def bitwise_and(self: Any, other: Any) -> Tensor:
        """``self & other`` for integer / bool tensors."""
        from convlab._ops import logic

        return logic.bitwise_and(self, other)

    def bitwise_or(self: Any, other: Any) -> Tensor:
        """``self | other`` for integer / bool tensors."""
        from convlab._ops import logic

        return logic.bitwise_or(self, other)

    def bitwise_xor(self: Any, other: Any) -> Tensor:
        """``self ^ other`` for integer / bool tensors."""
        from convlab._ops import logic

        return logic.bitwise_xor(self, other)

    def bitwise_not(self: Any) -> Tensor:
        """``~self`` for integer / bool tensors."""
        from convlab._ops import logic

        return logic.bitwise_not(self)

    def __and__(self: Any, other: Any) -> Tensor:
        return self.bitwise_and(other)

    def __rand__(self: Any, other: Any) -> Tensor:
        return self.bitwise_and(other)

    def __or__(self: Any, other: Any) -> Tensor:
        return self.bitwise_or(other)

    def __ror__(self: Any, other: Any) -> Tensor:
        return self.bitwise_or(other)

    def __xor__(self: Any, other: Any) -> Tensor:
        return self.bitwise_xor(other)

    def __rxor__(self: Any, other: Any) -> Tensor:
        return self.bitwise_xor(other)

    def __invert__(self: Any) -> Tensor:
        return self.bitwise_not()

    def all(self: Any, dim: Any = None, keepdim: builtins.bool = False) -> Tensor:
        """Whether every element (over ``dim``) is true."""
        from convlab._ops import logic

        return logic.all(self, dim, keepdim)

    def any(self: Any, dim: Any = None, keepdim: builtins.bool = False) -> Tensor:
        """Whether any element (over ``dim``) is true."""
        from convlab._ops import logic

        return logic.any(self, dim, keepdim)

    def count_nonzero(self: Any, dim: Any = None) -> Tensor:
        """The number of non-zero elements (over ``dim``)."""
        from convlab._ops import logic

        return logic.count_nonzero(self, dim)

    # -- shapes and types like another tensor ---------------------------------------------------
    def view_as(self: Any, other: Tensor) -> Tensor:
        """``self.view(other.shape)``."""
        return self.view(other.shape)

    def reshape_as(self: Any, other: Tensor) -> Tensor:
        """``self.reshape(other.shape)``."""
        return self.reshape(other.shape)

    def expand_as(self: Any, other: Tensor) -> Tensor:
        """``self.expand(other.shape)``."""
        return self.expand(other.shape)

    def _cast(self: Any, dtype: Any) -> Tensor:
        """``self.to(dtype)``; a cast to a non-floating dtype ends the graph, as in PyTorch."""
        dtype = _dtype.resolve_dtype(dtype)
        if dtype is not None and dtype.kind != "f" and dtype != self._data.dtype:
            return self.detach().to(dtype=dtype)
        return self.to(dtype=dtype)

    def type_as(self: Any, other: Tensor) -> Tensor:
        """This tensor in ``other``'s dtype (``self`` when it already has it)."""
        return self._cast(other.dtype)

    def type(self: Any, dtype: Any = None, non_blocking: builtins.bool = False) -> Any:
        """Without ``dtype`` the legacy type name (``"torch.FloatTensor"``); with one (a dtype or
        such a name) the tensor cast to it."""
        if dtype is None:
            name = _TYPE_NAMES[str(self._data.dtype)]
            return name if self._backend.name == "cpu" else name.replace("torch.", "torch.cuda.")
        if isinstance(dtype, str):
            dtype = _cast_name(dtype)
        elif isinstance(dtype, type) and isinstance(getattr(dtype, "_dtype", None), np.dtype):
            dtype = getattr(dtype, "_dtype")  # noqa: B009 - a legacy type (FloatTensor & co.)
        return self._cast(dtype)

    def int(self: Any) -> Tensor:
        """Cast to int32."""
        return self._cast(_dtype.int32)

    def short(self: Any) -> Tensor:
        """Cast to int16."""
        return self._cast(_dtype.int16)

    def char(self: Any) -> Tensor:
        """Cast to int8."""
        return self._cast(_dtype.int8)

    def byte(self: Any) -> Tensor:
        """Cast to uint8."""
        return self._cast(_dtype.uint8)

    def half(self: Any) -> Tensor:
        """Cast to float16."""
        return self.to(dtype=_dtype.float16)

    def bool(self: Any) -> Tensor:
        """Cast to bool (non-zero is True)."""
        return self._cast(_dtype.bool_)

    def is_floating_point(self: Any) -> builtins.bool:
        """Whether the dtype is a floating-point type."""
        return bool(self._data.dtype.kind == "f")

    def is_complex(self: Any) -> builtins.bool:
        """Always False: convlab has no complex dtypes."""
        return False

    def is_signed(self: Any) -> builtins.bool:
        """Whether the dtype can hold negative values."""
        return bool(self._data.dtype.kind in "if")

    # -- new tensors with this tensor's dtype and device ----------------------------------------
    def _new_args(self: Any, dtype: Any, device: Any) -> dict[str, Any]:
        return {
            "dtype": self._data.dtype if dtype is None else dtype,
            "device": self._backend.name if device is None else device,
        }

    def new_zeros(
        self: Any,
        *size: Any,
        dtype: Any = None,
        device: Any = None,
        requires_grad: builtins.bool = False,
    ) -> Tensor:
        """Zeros of ``size`` with this tensor's dtype and device (unless given)."""
        from convlab._creation import zeros

        return zeros(*size, **self._new_args(dtype, device), requires_grad=requires_grad)

    def new_ones(
        self: Any,
        *size: Any,
        dtype: Any = None,
        device: Any = None,
        requires_grad: builtins.bool = False,
    ) -> Tensor:
        """Ones of ``size`` with this tensor's dtype and device (unless given)."""
        from convlab._creation import ones

        return ones(*size, **self._new_args(dtype, device), requires_grad=requires_grad)

    def new_empty(
        self: Any,
        *size: Any,
        dtype: Any = None,
        device: Any = None,
        requires_grad: builtins.bool = False,
    ) -> Tensor:
        """An uninitialised tensor of ``size`` with this tensor's dtype and device."""
        from convlab._creation import empty

        return empty(*size, **self._new_args(dtype, device), requires_grad=requires_grad)

    def new_full(
        self: Any,
        size: Any,
        fill_value: Any,
        *,
        dtype: Any = None,
        device: Any = None,
        requires_grad: builtins.bool = False,
    ) -> Tensor:
        """``fill_value`` everywhere, of ``size``, with this tensor's dtype and device."""
        from convlab._creation import full

        return full(size, fill_value, **self._new_args(dtype, device), requires_grad=requires_grad)

    def new_tensor(
        self: Any,
        data: Any,
        *,
        dtype: Any = None,
        device: Any = None,
        requires_grad: builtins.bool = False,
    ) -> Tensor:
        """A copy of ``data`` with this tensor's dtype and device (unless given)."""
        from convlab._creation import tensor

        return tensor(data, **self._new_args(dtype, device), requires_grad=requires_grad)

    # -- matrix products ------------------------------------------------------------------------
    def mm(self: Any, mat2: Tensor) -> Tensor:
        """Matrix product of two 2-D tensors."""
        from convlab._ops import linalg

        return linalg.mm(self, mat2)

    def bmm(self: Any, mat2: Tensor) -> Tensor:
        """Batched matrix product of two 3-D tensors."""
        from convlab._ops import linalg

        return linalg.bmm(self, mat2)

    def matmul(self: Any, other: Any) -> Tensor:
        """``self @ other`` with broadcasting."""
        from convlab._ops import linalg

        return linalg.matmul(self, other)

    def addmm(self: Any, mat1: Tensor, mat2: Tensor, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
        """``beta * self + alpha * (mat1 @ mat2)``."""
        from convlab._ops import linalg

        return linalg.addmm(self, mat1, mat2, beta=beta, alpha=alpha)

    def dot(self: Any, other: Tensor) -> Tensor:
        """Inner product of two 1-D tensors."""
        from convlab._ops import linalg

        return linalg.dot(self, other)

    def mv(self: Any, vec: Tensor) -> Tensor:
        """Matrix times vector."""
        from convlab._ops import linalg

        return linalg.mv(self, vec)

    def outer(self: Any, vec2: Tensor) -> Tensor:
        """Outer product of two 1-D tensors."""
        from convlab._ops import linalg

        return linalg.outer(self, vec2)

    # -- indexing -------------------------------------------------------------------------------
    def masked_fill(self: Any, mask: Tensor, value: Any) -> Tensor:
        """A copy with ``value`` where ``mask`` is true."""
        from convlab._ops import index

        return index.masked_fill(self, mask, value)

    def masked_select(self: Any, mask: Tensor) -> Tensor:
        """The elements where ``mask`` is true, as a 1-D tensor."""
        from convlab._ops import index

        return index.masked_select(self, mask)

    def gather(self: Any, dim: builtins.int, index: Tensor) -> Tensor:
        """Values picked along ``dim`` by ``index`` (see :func:`convlab.gather`)."""
        from convlab._ops import index as _index

        return _index.gather(self, dim, index)

    def scatter(
        self: Any,
        dim: builtins.int,
        index: Tensor,
        src: Any = None,
        value: Any = None,
        *,
        reduce: str | None = None,
    ) -> Tensor:
        """A copy with ``src`` (or ``value``) written at ``index`` along ``dim``."""
        from convlab._ops import index as _index

        return _index.scatter(self, dim, index, src, value, reduce=reduce)

    def scatter_add(self: Any, dim: builtins.int, index: Tensor, src: Tensor) -> Tensor:
        """A copy with ``src`` added at ``index`` along ``dim``."""
        from convlab._ops import index as _index

        return _index.scatter_add(self, dim, index, src)

    def index_select(self: Any, dim: builtins.int, index: Tensor) -> Tensor:
        """The slices at ``index`` along ``dim``."""
        from convlab._ops import index as _index

        return _index.index_select(self, dim, index)

    def index_fill(self: Any, dim: builtins.int, index: Tensor, value: Any) -> Tensor:
        """A copy with the slices at ``index`` along ``dim`` set to ``value``."""
        from convlab._ops import index as _index

        return _index.index_fill(self, dim, index, value)

    def index_add(
        self: Any, dim: builtins.int, index: Tensor, source: Tensor, *, alpha: Any = 1
    ) -> Tensor:
        """A copy with ``alpha * source`` added to the slices at ``index`` along ``dim``."""
        from convlab._ops import index as _index

        return _index.index_add(self, dim, index, source, alpha=alpha)

    def index_copy(self: Any, dim: builtins.int, index: Tensor, source: Tensor) -> Tensor:
        """A copy with the slices at ``index`` along ``dim`` replaced by ``source``'s."""
        from convlab._ops import index as _index

        return _index.index_copy(self, dim, index, source)

    def take(self: Any, index: Tensor) -> Tensor:
        """Elements at ``index`` of the flattened tensor."""
        from convlab._ops import index as _index

        return _index.take(self, index)

    def nonzero(self: Any, *, as_tuple: builtins.bool = False) -> Any:
        """Indices of the non-zero elements."""
        from convlab._ops import index as _index

        return _index.nonzero(self, as_tuple=as_tuple)

    def where(self: Any, condition: Tensor, other: Any) -> Tensor:
        """``self`` where ``condition`` holds, else ``other``."""
        from convlab._ops import pointwise

        result: Tensor = pointwise.where(condition, self, other)
        return result

    # -- ordering -------------------------------------------------------------------------------
    def sort(
        self: Any,
        dim: builtins.int = -1,
        descending: builtins.bool = False,
        stable: builtins.bool = False,
    ) -> tuple[Tensor, Tensor]:
        """``(values, indices)`` sorted along ``dim``."""
        from convlab._ops import sorting

        return sorting.sort(self, dim, descending, stable)

    def argsort(
        self: Any,
        dim: builtins.int = -1,
        descending: builtins.bool = False,
        stable: builtins.bool = False,
    ) -> Tensor:
        """The indices that sort along ``dim``."""
        from convlab._ops import sorting

        return sorting.argsort(self, dim, descending, stable)

    def topk(
        self: Any,
        k: builtins.int,
        dim: builtins.int = -1,
        largest: builtins.bool = True,
        sorted: builtins.bool = True,
    ) -> tuple[Tensor, Tensor]:
        """``(values, indices)`` of the ``k`` largest (or smallest) along ``dim``."""
        from convlab._ops import sorting

        return sorting.topk(self, k, dim, largest, sorted)

    def kthvalue(
        self: Any, k: builtins.int, dim: builtins.int = -1, keepdim: builtins.bool = False
    ) -> tuple[Tensor, Tensor]:
        """``(values, indices)`` of the ``k``-th smallest along ``dim``."""
        from convlab._ops import sorting

        return sorting.kthvalue(self, k, dim, keepdim)

    def median(self: Any, dim: Any = None, keepdim: builtins.bool = False) -> Any:
        """The lower median (with ``dim``: ``(values, indices)``)."""
        from convlab._ops import sorting

        return sorting.median(self, dim, keepdim)

    def unique(
        self: Any,
        sorted: builtins.bool = True,
        return_inverse: builtins.bool = False,
        return_counts: builtins.bool = False,
        dim: builtins.int | None = None,
    ) -> Any:
        """The distinct values (see :func:`convlab.unique`)."""
        from convlab._ops import sorting

        return sorting.unique(self, sorted, return_inverse, return_counts, dim)

    # -- rearranging ----------------------------------------------------------------------------
    def repeat(self: Any, *sizes: Any) -> Tensor:
        """Repeated ``sizes[i]`` times along each dimension."""
        from convlab._ops import layout

        return layout.repeat(self, *sizes)

    def tile(self: Any, *dims: Any) -> Tensor:
        """Like :meth:`repeat`, missing leading repeats taken as 1."""
        from convlab._ops import layout

        return layout.tile(self, dims[0] if len(dims) == 1 else dims)

    def repeat_interleave(
        self: Any,
        repeats: Any,
        dim: builtins.int | None = None,
        *,
        output_size: builtins.int | None = None,
    ) -> Tensor:
        """Each element repeated ``repeats`` times along ``dim``."""
        from convlab._ops import layout

        return layout.repeat_interleave(self, repeats, dim, output_size=output_size)

    def chunk(self: Any, chunks: builtins.int, dim: builtins.int = 0) -> tuple[Tensor, ...]:
        """At most ``chunks`` equal pieces along ``dim``."""
        from convlab._ops import layout

        return layout.chunk(self, chunks, dim)

    def unbind(self: Any, dim: builtins.int = 0) -> tuple[Tensor, ...]:
        """The slices along ``dim``."""
        from convlab._ops import layout

        return layout.unbind(self, dim)

    def narrow(self: Any, dim: builtins.int, start: Any, length: builtins.int) -> Tensor:
        """``length`` entries along ``dim`` from ``start``."""
        from convlab._ops import layout

        return layout.narrow(self, dim, start, length)

    def roll(self: Any, shifts: Any, dims: Any = None) -> Tensor:
        """Elements shifted cyclically."""
        from convlab._ops import layout

        return layout.roll(self, shifts, dims)

    def movedim(self: Any, source: Any, destination: Any) -> Tensor:
        """Dimensions ``source`` moved to ``destination``."""
        from convlab._ops import layout

        return layout.movedim(self, source, destination)

    moveaxis = movedim

    def swapaxes(self: Any, axis0: builtins.int, axis1: builtins.int) -> Tensor:
        """Same as :meth:`transpose`."""
        return self.transpose(axis0, axis1)

    swapdims = swapaxes

    def tril(self: Any, diagonal: builtins.int = 0) -> Tensor:
        """The lower triangle of the last two dimensions."""
        from convlab._ops import layout

        return layout.tril(self, diagonal)

    def triu(self: Any, diagonal: builtins.int = 0) -> Tensor:
        """The upper triangle of the last two dimensions."""
        from convlab._ops import layout

        return layout.triu(self, diagonal)

    def diag(self: Any, diagonal: builtins.int = 0) -> Tensor:
        """A diagonal matrix from a vector, or a matrix's diagonal."""
        from convlab._ops import layout

        return layout.diag(self, diagonal)

    def diagonal(
        self: Any, offset: builtins.int = 0, dim1: builtins.int = 0, dim2: builtins.int = 1
    ) -> Tensor:
        """The diagonal of the ``(dim1, dim2)`` planes."""
        from convlab._ops import layout

        return layout.diagonal(self, offset, dim1, dim2)

    def trace(self: Any) -> Tensor:
        """The sum of a matrix's diagonal."""
        from convlab._ops import layout

        return layout.trace(self)

    # -- reductions -----------------------------------------------------------------------------
    def std(
        self: Any,
        dim: Any = None,
        unbiased: Any = None,
        keepdim: builtins.bool = False,
        *,
        correction: Any = None,
    ) -> Tensor:
        """Standard deviation over ``dim`` (``correction`` 1 unless ``unbiased=False``)."""
        from convlab._ops import reduce

        return reduce.std(self, dim, unbiased, keepdim, correction=correction)

    def var(
        self: Any,
        dim: Any = None,
        unbiased: Any = None,
        keepdim: builtins.bool = False,
        *,
        correction: Any = None,
    ) -> Tensor:
        """Variance over ``dim`` (``correction`` 1 unless ``unbiased=False``)."""
        from convlab._ops import reduce

        return reduce.var(self, dim, unbiased, keepdim, correction=correction)

    def prod(
        self: Any,
        dim: builtins.int | None = None,
        keepdim: builtins.bool = False,
        *,
        dtype: Any = None,
    ) -> Tensor:
        """Product of the elements (along ``dim``)."""
        from convlab._ops import reduce

        return reduce.prod(self, dim, keepdim, dtype=dtype)

    def cumsum(self: Any, dim: builtins.int, *, dtype: Any = None) -> Tensor:
        """Running sums along ``dim``."""
        from convlab._ops import reduce

        return reduce.cumsum(self, dim, dtype=dtype)

    def cumprod(self: Any, dim: builtins.int, *, dtype: Any = None) -> Tensor:
        """Running products along ``dim``."""
        from convlab._ops import reduce

        return reduce.cumprod(self, dim, dtype=dtype)

    def logsumexp(self: Any, dim: Any, keepdim: builtins.bool = False) -> Tensor:
        """``log(sum(exp(self)))`` over ``dim``, without overflow."""
        from convlab._ops import reduce

        return reduce.logsumexp(self, dim, keepdim)

    def norm(
        self: Any,
        p: Any = "fro",
        dim: Any = None,
        keepdim: builtins.bool = False,
        dtype: Any = None,
    ) -> Tensor:
        """The vector ``p``-norm over ``dim``."""
        from convlab._ops import reduce

        return reduce.norm(self, p, dim, keepdim, dtype)

    def nansum(self: Any, dim: Any = None, keepdim: builtins.bool = False) -> Tensor:
        """Sum treating NaN as zero."""
        from convlab._ops import logic, pointwise

        return pointwise.where(logic.isnan(self), 0.0, self).sum(dim, keepdim)

    # -- elementwise ----------------------------------------------------------------------------
    def maximum(self: Any, other: Any) -> Tensor:
        """Elementwise larger value."""
        from convlab._ops import pointwise

        return pointwise.maximum(self, other)

    def minimum(self: Any, other: Any) -> Tensor:
        """Elementwise smaller value."""
        from convlab._ops import pointwise

        return pointwise.minimum(self, other)

    def floor(self: Any) -> Tensor:
        """Round down."""
        from convlab._ops import pointwise

        return pointwise.floor(self)

    def ceil(self: Any) -> Tensor:
        """Round up."""
        from convlab._ops import pointwise

        return pointwise.ceil(self)

    def round(self: Any, decimals: builtins.int = 0) -> Tensor:
        """Round half to even (to ``decimals`` places)."""
        from convlab._ops import pointwise

        return pointwise.round(self, decimals=decimals)

    def trunc(self: Any) -> Tensor:
        """Round towards zero."""
        from convlab._ops import pointwise

        return pointwise.trunc(self)

    fix = trunc

    def frac(self: Any) -> Tensor:
        """The fractional part."""
        from convlab._ops import pointwise

        return pointwise.frac(self)

    def sign(self: Any) -> Tensor:
        """-1, 0 or 1 by sign."""
        from convlab._ops import pointwise

        return pointwise.sign(self)

    def neg(self: Any) -> Tensor:
        """``-self``."""
        from convlab._ops import arith

        return arith.neg(self)

    negative = neg

    def reciprocal(self: Any) -> Tensor:
        """``1 / self``."""
        from convlab._ops import pointwise

        return pointwise.reciprocal(self)

    def rsqrt(self: Any) -> Tensor:
        """``1 / sqrt(self)``."""
        from convlab._ops import pointwise

        return pointwise.rsqrt(self)

    def square(self: Any) -> Tensor:
        """``self * self``."""
        from convlab._ops import pointwise

        return pointwise.square(self)

    def sin(self: Any) -> Tensor:
        """Sine."""
        from convlab._ops import pointwise

        return pointwise.sin(self)

    def cos(self: Any) -> Tensor:
        """Cosine."""
        from convlab._ops import pointwise

        return pointwise.cos(self)

    def tan(self: Any) -> Tensor:
        """Tangent."""
        from convlab._ops import pointwise

        return pointwise.tan(self)

    def atan2(self: Any, other: Any) -> Tensor:
        """The angle of ``(other, self)``."""
        from convlab._ops import pointwise

        return pointwise.atan2(self, other)

    def log1p(self: Any) -> Tensor:
        """``log(1 + self)``."""
        from convlab._ops import pointwise

        return pointwise.log1p(self)

    def expm1(self: Any) -> Tensor:
        """``exp(self) - 1``."""
        from convlab._ops import pointwise

        return pointwise.expm1(self)

    def log2(self: Any) -> Tensor:
        """Base-2 logarithm."""
        from convlab._ops import pointwise

        return pointwise.log2(self)

    def log10(self: Any) -> Tensor:
        """Base-10 logarithm."""
        from convlab._ops import pointwise

        return pointwise.log10(self)

    def pow(self: Any, exponent: Any) -> Tensor:
        """``self ** exponent``."""
        from convlab._ops import arith

        return arith.pow(self, exponent)

    def add(self: Any, other: Any, *, alpha: Any = 1) -> Tensor:
        """``self + alpha * other``."""
        from convlab._ops import arith

        return arith.add(self, other, alpha=alpha)

    def sub(self: Any, other: Any, *, alpha: Any = 1) -> Tensor:
        """``self - alpha * other``."""
        from convlab._ops import arith

        return arith.sub(self, other, alpha=alpha)

    subtract = sub

    def mul(self: Any, other: Any) -> Tensor:
        """``self * other``."""
        from convlab._ops import arith

        return arith.mul(self, other)

    multiply = mul

    def div(self: Any, other: Any, *, rounding_mode: str | None = None) -> Tensor:
        """``self / other``, optionally rounded (``"floor"`` or ``"trunc"``)."""
        from convlab._ops import pointwise

        return pointwise.divide(self, other, rounding_mode=rounding_mode)

    divide = div
    true_divide = div

    def remainder(self: Any, other: Any) -> Tensor:
        """Python's ``%`` (sign of the divisor)."""
        from convlab._ops import pointwise

        return pointwise.remainder(self, other)

    def fmod(self: Any, other: Any) -> Tensor:
        """C's ``fmod`` (sign of the dividend)."""
        from convlab._ops import pointwise

        return pointwise.fmod(self, other)

    def floor_divide(self: Any, other: Any) -> Tensor:
        """``floor(self / other)``."""
        from convlab._ops import pointwise

        return pointwise.floor_divide(self, other)

    def __floordiv__(self: Any, other: Any) -> Tensor:
        from convlab._ops import pointwise

        return pointwise.floor_divide(self, other)

    def __rfloordiv__(self: Any, other: Any) -> Tensor:
        from convlab._ops import pointwise

        return pointwise.floor_divide(other, self)

    def __mod__(self: Any, other: Any) -> Tensor:
        from convlab._ops import pointwise

        return pointwise.remainder(self, other)

    def __rmod__(self: Any, other: Any) -> Tensor:
        from convlab._ops import pointwise

        return pointwise.remainder(other, self)

    def clamp_min(self: Any, min: Any) -> Tensor:  # noqa: A002 - PyTorch's name
        """``max(self, min)``."""
        from convlab._ops import pointwise

        return pointwise.clamp_min(self, min)

    def clamp_max(self: Any, max: Any) -> Tensor:  # noqa: A002 - PyTorch's name
        """``min(self, max)``."""
        from convlab._ops import pointwise

        return pointwise.clamp_max(self, max)

    def lerp(self: Any, end: Any, weight: Any) -> Tensor:
        """``self + weight * (end - self)``."""
        from convlab._ops import pointwise

        return pointwise.lerp(self, end, weight)

    def addcmul(self: Any, tensor1: Tensor, tensor2: Tensor, *, value: Any = 1) -> Tensor:
        """``self + value * tensor1 * tensor2``."""
        from convlab._ops import pointwise

        return pointwise.addcmul(self, tensor1, tensor2, value=value)

    def addcdiv(self: Any, tensor1: Tensor, tensor2: Tensor, *, value: Any = 1) -> Tensor:
        """``self + value * tensor1 / tensor2``."""
        from convlab._ops import pointwise

        return pointwise.addcdiv(self, tensor1, tensor2, value=value)

    def exp2(self: Any) -> Tensor:
        """``2 ** self``."""
        from convlab._ops import pointwise

        return pointwise.exp2(self)

    def asin(self: Any) -> Tensor:
        """Arcsine."""
        from convlab._ops import pointwise

        return pointwise.asin(self)

    def acos(self: Any) -> Tensor:
        """Arccosine."""
        from convlab._ops import pointwise

        return pointwise.acos(self)

    def atan(self: Any) -> Tensor:
        """Arctangent."""
        from convlab._ops import pointwise

        return pointwise.atan(self)

    def sinh(self: Any) -> Tensor:
        """Hyperbolic sine."""
        from convlab._ops import pointwise

        return pointwise.sinh(self)

    def cosh(self: Any) -> Tensor:
        """Hyperbolic cosine."""
        from convlab._ops import pointwise

        return pointwise.cosh(self)

    def asinh(self: Any) -> Tensor:
        """Inverse hyperbolic sine."""
        from convlab._ops import pointwise

        return pointwise.asinh(self)

    def acosh(self: Any) -> Tensor:
        """Inverse hyperbolic cosine."""
        from convlab._ops import pointwise

        return pointwise.acosh(self)

    def atanh(self: Any) -> Tensor:
        """Inverse hyperbolic tangent."""
        from convlab._ops import pointwise

        return pointwise.atanh(self)

    arcsin = asin
    arccos = acos
    arctan = atan
    arctan2 = atan2
    arcsinh = asinh
    arccosh = acosh
    arctanh = atanh
    sgn = sign

    def absolute(self: Any) -> Tensor:
        """Same as :meth:`abs`."""
        from convlab._ops import arith

        return arith.abs(self)

    def nan_to_num(
        self: Any, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None
    ) -> Tensor:
        """NaN and infinities replaced by finite values."""
        from convlab._ops import pointwise

        return pointwise.nan_to_num(self, nan, posinf, neginf)

    # -- more rearranging and counting --------------------------------------------------------
    def t(self: Any) -> Tensor:
        """The transpose of a matrix (tensors of fewer dimensions are returned as they are).

        Raises:
            RuntimeError: For more than two dimensions.
        """
        if self.ndim > 2:
            raise RuntimeError(
                f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D"
            )
        return self if self.ndim < 2 else self.transpose(0, 1)

    def select(self: Any, dim: builtins.int, index: builtins.int) -> Tensor:
        """The slice at ``index`` along ``dim`` (that dimension removed)."""
        from convlab._ops import layout

        return layout.select(self, dim, index)

    def unflatten(self: Any, dim: builtins.int, sizes: Any) -> Tensor:
        """Dimension ``dim`` split into ``sizes``."""
        from convlab._ops import layout

        return layout.unflatten(self, dim, sizes)

    def broadcast_to(self: Any, size: Any) -> Tensor:
        """Broadcast to ``size``."""
        from convlab._ops import layout

        return layout.broadcast_to(self, size)

    def fliplr(self: Any) -> Tensor:
        """Columns reversed."""
        from convlab._ops import layout

        return layout.fliplr(self)

    def flipud(self: Any) -> Tensor:
        """Rows reversed."""
        from convlab._ops import layout

        return layout.flipud(self)

    def rot90(self: Any, k: builtins.int = 1, dims: Any = (0, 1)) -> Tensor:
        """Rotated by 90 degrees ``k`` times in the plane ``dims``."""
        from convlab._ops import layout

        return layout.rot90(self, k, dims)

    def diff(
        self: Any,
        n: builtins.int = 1,
        dim: builtins.int = -1,
        prepend: Any = None,
        append: Any = None,
    ) -> Tensor:
        """``n``-th forward differences along ``dim``."""
        from convlab._ops import layout

        return layout.diff(self, n, dim, prepend, append)

    def bincount(self: Any, weights: Any = None, minlength: builtins.int = 0) -> Tensor:
        """Occurrences of each value of a 1-D non-negative integer tensor."""
        from convlab._ops import counting

        return counting.bincount(self, weights, minlength)

    def histc(self: Any, bins: builtins.int = 100, min: Any = 0, max: Any = 0) -> Tensor:  # noqa: A002
        """A histogram of ``bins`` equal bins over ``[min, max]``."""
        from convlab._ops import counting

        return counting.histc(self, bins, min, max)

    @property
    def itemsize(self: Any) -> builtins.int:
        """Bytes per element."""
        return builtins.int(self._data.itemsize)

    @property
    def nbytes(self: Any) -> builtins.int:
        """Bytes of all elements."""
        return builtins.int(self._data.nbytes)

    def logit(self: Any, eps: float | None = None) -> Tensor:
        """``log(self / (1 - self))``, optionally clamped to ``[eps, 1 - eps]`` first."""
        from convlab._ops import pointwise

        return pointwise.logit(self, eps)

    def unfold(
        self: Any, dimension: builtins.int, size: builtins.int, step: builtins.int
    ) -> Tensor:
        """Sliding windows of ``size`` every ``step`` along ``dimension`` (a new last dim)."""
        from convlab._ops import layout

        return layout.unfold(self, dimension, size, step)

    def sum_to_size(self: Any, *size: Any) -> Tensor:
        """Summed down to ``size``."""
        from convlab._ops import layout

        return layout.sum_to_size(self, *size)

    def addmv(self: Any, mat: Tensor, vec: Tensor, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
        """``beta * self + alpha * (mat @ vec)``."""
        from convlab._ops import linalg

        return linalg.addmv(self, mat, vec, beta=beta, alpha=alpha)

    def addr(self: Any, vec1: Tensor, vec2: Tensor, *, beta: Any = 1, alpha: Any = 1) -> Tensor:
        """``beta * self + alpha * outer(vec1, vec2)``."""
        from convlab._ops import linalg

        return linalg.addr(self, vec1, vec2, beta=beta, alpha=alpha)

    def baddbmm(
        self: Any, batch1: Tensor, batch2: Tensor, *, beta: Any = 1, alpha: Any = 1
    ) -> Tensor:
        """``beta * self + alpha * bmm(batch1, batch2)``."""
        from convlab._ops import linalg

        return linalg.baddbmm(self, batch1, batch2, beta=beta, alpha=alpha)

    def addbmm(
        self: Any, batch1: Tensor, batch2: Tensor, *, beta: Any = 1, alpha: Any = 1
    ) -> Tensor:
        """``beta * self + alpha * sum_b(batch1[b] @ batch2[b])``."""
        from convlab._ops import linalg

        return linalg.addbmm(self, batch1, batch2, beta=beta, alpha=alpha)

    def bernoulli(self: Any, p: Any = None, *, generator: Any = None) -> Tensor:
        """0/1 samples with the probabilities in ``self`` (or ``p``)."""
        from convlab._ops import sampling

        return sampling.bernoulli(self, p, generator=generator)

    def multinomial(
        self: Any,
        num_samples: builtins.int,
        replacement: builtins.bool = False,
        *,
        generator: Any = None,
    ) -> Tensor:
        """Indices drawn by the weights in each row."""
        from convlab._ops import sampling

        return sampling.multinomial(self, num_samples, replacement, generator=generator)

    # -- memory layout --------------------------------------------------------------------------
    def is_contiguous(self: Any, memory_format: Any = None) -> builtins.bool:
        """Whether the elements are laid out in row-major order without gaps."""
        return bool(self._data.flags.c_contiguous)

    def stride(self: Any, dim: builtins.int | None = None) -> Any:
        """Steps in elements between neighbours along each dimension (or ``dim``)."""
        from convlab._ops._util import normalize_dim

        steps = tuple(int(s) // self._data.itemsize for s in self._data.strides)
        return steps if dim is None else steps[normalize_dim(dim, self.ndim)]

    def data_ptr(self: Any) -> builtins.int:
        """The address of the first element."""
        data = self._data
        if isinstance(data, np.ndarray):
            return int(data.__array_interface__["data"][0])
        return int(data.data.ptr)  # pragma: no cover - CuPy

    def storage_offset(self: Any) -> builtins.int:
        """Elements between the start of the underlying buffer and the first element."""
        base = self._data
        while getattr(base, "base", None) is not None and hasattr(base.base, "dtype"):
            base = base.base
        if base is self._data:
            return 0
        if isinstance(base, np.ndarray):
            start = int(base.__array_interface__["data"][0])
        else:  # pragma: no cover - CuPy
            start = int(base.data.ptr)
        return (self.data_ptr() - start) // self._data.itemsize

    def nelement(self: Any) -> builtins.int:
        """Number of elements (same as :meth:`numel`)."""
        return int(self._data.size)

    # -- Python protocol ------------------------------------------------------------------------
    def __format__(self: Any, format_spec: str) -> str:
        """A 0-d tensor formats as its number (``f"{loss:.4f}"``); others as PyTorch's:
        only the empty format spec."""
        if self._data.ndim == 0:
            return format(self.item(), format_spec)
        return object.__format__(self, format_spec)

    def __contains__(self: Any, element: Any) -> builtins.bool:
        """``element in tensor``: whether any element equals it."""
        from convlab._tensor import Tensor

        if not isinstance(element, (Tensor, numbers.Number)):
            raise RuntimeError(
                f"Tensor.__contains__ only supports Tensor or scalar, but you passed in a "
                f"{type(element).__name__}"
            )
        return bool((self == element)._data.any())
