"""Reductions: sum, mean, max / min (values, or values and indices), argmax / argmin, var / std,
prod, running sums and products, logsumexp and norms."""

from __future__ import annotations

import math
from typing import Any, cast

from convlab._ops._util import normalize_dim
from convlab._tensor import MinMax, Tensor
from convlab.autograd import Function

__all__ = [
    "sum",
    "mean",
    "amax",
    "amin",
    "extreme",
    "arg",
    "dims",
    "var",
    "std",
    "prod",
    "cumsum",
    "cumprod",
    "logsumexp",
    "norm",
    "reduce_max",
    "reduce_min",
    "std_mean",
    "var_mean",
    "argmax",
    "argmin",
]


def dims(dim: Any, keepdim: bool, axis: Any, keepdims: bool | None) -> tuple:
    """Merge PyTorch's ``dim``/``keepdim`` with NumPy's ``axis``/``keepdims`` spellings."""
    if axis is not None:
        if dim is not None:
            raise TypeError("give either dim or axis, not both")
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    return dim, bool(keepdim)


def _axes(dim: Any, ndim: int) -> tuple | None:
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        axes = tuple(normalize_dim(d, ndim) for d in dim)
        if len(set(axes)) != len(axes):
            raise ValueError(f"dim: each dimension may appear once, got {tuple(dim)}")
        return axes
    return (normalize_dim(dim, ndim),)


def _expand_grad(grad: Any, shape: tuple, axes: tuple | None, keepdim: bool, xp: Any) -> Any:
    """Reshape a reduction's gradient so it broadcasts against the input."""
    if not keepdim:
        keep_shape = tuple(1 if axes is None or i in axes else s for i, s in enumerate(shape))
        grad = grad.reshape(keep_shape)
    return xp.broadcast_to(grad, shape)


class Sum(Function):
    def forward(self, a: Any, axes: tuple | None = None, keepdim: bool = False) -> Any:
        self.shape, self.axes, self.keepdim = a.shape, axes, keepdim
        return self.backend.xp.asarray(a.sum(axis=axes, keepdims=keepdim))

    def backward(self, grad: Any) -> tuple:
        return (_expand_grad(grad, self.shape, self.axes, self.keepdim, self.backend.xp),)


class Mean(Function):
    def forward(self, a: Any, axes: tuple | None = None, keepdim: bool = False) -> Any:
        self.shape, self.axes, self.keepdim = a.shape, axes, keepdim
        count = a.size if axes is None else math.prod(a.shape[i] for i in axes)
        self.count = max(count, 1)
        return self.backend.xp.asarray(a.mean(axis=axes, keepdims=keepdim))

    def backward(self, grad: Any) -> tuple:
        return (
            _expand_grad(grad / self.count, self.shape, self.axes, self.keepdim, self.backend.xp),
        )


class _EmptyReduction(ValueError, RuntimeError):
    """Reducing an empty tensor with max / min: PyTorch's ``RuntimeError``, and the
    ``ValueError`` earlier convlab releases raised."""


class AMax(Function):
    """Max/min values; tied extremes share the gradient equally (``torch.amax``)."""

    def forward(
        self, a: Any, axes: tuple | None = None, keepdim: bool = False, largest: bool = True
    ) -> Any:
        if a.size == 0:
            raise _EmptyReduction(
                f"{'max' if largest else 'min'}: expected a non-empty tensor "
                f"(or dimension), got shape {tuple(a.shape)}"
            )
        xp = self.backend.xp
        out = (a.max if largest else a.min)(axis=axes, keepdims=True)
        self.a, self.out_keep, self.axes, self.keepdim = a, out, axes, keepdim
        if keepdim:
            return out
        return xp.asarray(
            out.reshape([s for i, s in enumerate(a.shape) if axes is not None and i not in axes])
        )

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        mask = self.a == self.out_keep
        count = mask.sum(axis=self.axes, keepdims=True)
        g = _expand_grad(grad, self.a.shape, self.axes, self.keepdim, xp)
        return (xp.where(mask, g / count, 0).astype(self.a.dtype, copy=False),)


class MaxWithIndex(Function):
    """Max/min along one dimension; the gradient goes to the returned (first) index."""

    def forward(self, a: Any, dim: int = 0, keepdim: bool = False, largest: bool = True) -> Any:
        if a.shape[dim] == 0:
            raise IndexError(
                f"{'max' if largest else 'min'}: cannot reduce an empty "
                f"dimension {dim} of shape {tuple(a.shape)}"
            )
        xp = self.backend.xp
        index = (xp.argmax if largest else xp.argmin)(a, axis=dim)
        index_keep = xp.expand_dims(index, dim)
        out = xp.take_along_axis(a, index_keep, axis=dim)
        self.shape, self.dim, self.index, self.keepdim = a.shape, dim, index_keep, keepdim
        self.indices = index_keep if keepdim else index
        return out if keepdim else out.reshape(index.shape)

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        g = grad if self.keepdim else xp.expand_dims(grad, self.dim)
        out = xp.zeros(self.shape, dtype=grad.dtype)
        xp.put_along_axis(out, self.index, g, axis=self.dim)
        return (out,)


def sum(a: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:  # noqa: A001
    """Sum over ``dim`` (an int, a tuple, or ``None`` for all), in ``dtype`` when given."""
    if dtype is not None:
        a = _cast_input(a, dtype)
    return Sum.apply(a, axes=_axes(dim, a.ndim), keepdim=keepdim)


def _cast_input(a: Tensor, dtype: Any) -> Tensor:
    from convlab import _dtype

    resolved = _dtype.resolve_dtype(dtype)
    return a if resolved == a._data.dtype else a.to(dtype=resolved)


def mean(a: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """Mean over ``dim`` (in ``dtype`` when given); integer tensors are rejected as in
    PyTorch."""
    if dtype is not None:
        a = _cast_input(a, dtype)
    if a._data.dtype.kind != "f":
        raise TypeError(f"mean: expected a floating-point tensor, got dtype {a.dtype}")
    return Mean.apply(a, axes=_axes(dim, a.ndim), keepdim=keepdim)


def amax(a: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Largest values over ``dim``."""
    return AMax.apply(a, axes=_axes(dim, a.ndim), keepdim=keepdim, largest=True)


def amin(a: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Smallest values over ``dim``."""
    return AMax.apply(a, axes=_axes(dim, a.ndim), keepdim=keepdim, largest=False)


def extreme(
    a: Tensor, which: str, dim: Any, keepdim: bool, axis: Any, keepdims: bool | None
) -> Any:
    """``Tensor.max``/``min`` for both the PyTorch (``dim``) and NumPy (``axis``) styles."""
    largest = which == "max"
    if isinstance(dim, Tensor):  # x.max(other): the elementwise maximum, as PyTorch
        from convlab._ops import pointwise

        return (pointwise.maximum if largest else pointwise.minimum)(a, dim)
    if axis is not None or keepdims is not None or dim is None or isinstance(dim, (tuple, list)):
        d, k = dims(dim, keepdim, axis, keepdims)
        return AMax.apply(a, axes=_axes(d, a.ndim), keepdim=k, largest=largest)
    d = normalize_dim(dim, a.ndim)
    if a.ndim == 0:
        return MinMax(a, Tensor._wrap(a._backend.xp.asarray(0), a._backend))
    values = MaxWithIndex.apply(a, dim=d, keepdim=bool(keepdim), largest=largest)
    node = cast("MaxWithIndex | None", values._node)  # the node apply just recorded
    indices = (
        node.indices
        if node is not None
        else (a._backend.xp.argmax if largest else a._backend.xp.argmin)(a._data, axis=d)
    )
    if node is None and keepdim:
        indices = a._backend.xp.expand_dims(indices, d)
    return MinMax(values, Tensor._wrap(indices.astype("int64", copy=False), a._backend))


def arg(a: Tensor, which: str, dim: int | None, keepdim: bool) -> Tensor:
    """argmax / argmin (no gradient), over the flattened tensor when ``dim`` is None."""
    xp = a._backend.xp
    if dim is None:
        index = getattr(xp, which)(a._data)
        if keepdim:
            index = xp.asarray(index).reshape((1,) * a.ndim)
    else:
        d = normalize_dim(dim, a.ndim)
        index = getattr(xp, which)(a._data, axis=d)
        if keepdim:
            index = xp.expand_dims(index, d)
    return Tensor._wrap(xp.asarray(index).astype("int64", copy=False), a._backend)


# -- statistics, products, running sums -----------------------------------------------------
class Var(Function):
    """Variance with ``correction`` (1: unbiased, Bessel's); d/da = 2 (a - mean) / (n - c)."""

    def forward(
        self, a: Any, axes: tuple | None = None, keepdim: bool = False, correction: float = 1
    ) -> Any:
        xp = self.backend.xp
        count = a.size if axes is None else math.prod(a.shape[i] for i in axes)
        with _quiet(xp):  # an empty reduction is NaN, as in PyTorch (and silent)
            self.centred = a - a.sum(axis=axes, keepdims=True) / a.dtype.type(count)
        self.divisor = max(count - correction, 0)
        self.shape, self.axes, self.keepdim = a.shape, axes, keepdim
        squares = (self.centred * self.centred).sum(axis=axes, keepdims=keepdim)
        with _quiet(xp):
            return xp.asarray(squares / a.dtype.type(self.divisor)).astype(a.dtype, copy=False)

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        g = _expand_grad(grad, self.shape, self.axes, self.keepdim, xp)
        with _quiet(xp):
            return ((g * (2 * self.centred / self.divisor)).astype(grad.dtype, copy=False),)


def _quiet(xp: Any) -> Any:
    """Silence NumPy's divide-by-zero warnings: 0/0 is NaN in PyTorch too, without a warning."""
    return xp.errstate(divide="ignore", invalid="ignore") if hasattr(xp, "errstate") else _Nothing()


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _correction(dim: Any, unbiased: Any, correction: Any, what: str) -> tuple[Any, float]:
    """PyTorch's spellings: ``var(x, unbiased)``, ``var(x, dim, unbiased)``, ``correction=``."""
    if isinstance(dim, bool):  # var(x, False): the old positional ``unbiased``
        if unbiased is not None:
            raise TypeError(f"{what}: unbiased given twice")
        dim, unbiased = None, dim
    if unbiased is not None and correction is not None:
        raise TypeError(f"{what}: give unbiased or correction, not both")
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    return dim, float(correction)


def var(
    a: Tensor,
    dim: Any = None,
    unbiased: bool | None = None,
    keepdim: bool = False,
    *,
    correction: float | None = None,
) -> Tensor:
    """Variance over ``dim`` with ``correction`` (default 1; ``unbiased=False`` means 0)."""
    if a._data.dtype.kind != "f":
        raise RuntimeError(f"var: expected a floating-point tensor, got dtype {a.dtype}")
    dim, corr = _correction(dim, unbiased, correction, "var")
    return Var.apply(a, axes=_axes(dim, a.ndim), keepdim=bool(keepdim), correction=corr)


def std(
    a: Tensor,
    dim: Any = None,
    unbiased: bool | None = None,
    keepdim: bool = False,
    *,
    correction: float | None = None,
) -> Tensor:
    """Standard deviation, the square root of :func:`var`."""
    from convlab._ops.arith import sqrt

    return sqrt(var(a, dim, unbiased, keepdim, correction=correction))


def _to_last(array: Any, axis: int, xp: Any) -> Any:
    return xp.moveaxis(array, axis, -1)


class Prod(Function):
    """Product over one axis (or all); each input's gradient is the product of the others,
    built from running products from both ends so zeros need no division."""

    def forward(self, a: Any, axis: int | None = None, keepdim: bool = False) -> Any:
        xp = self.backend.xp
        self.shape, self.axis, self.keepdim, self.a = a.shape, axis, keepdim, a
        out = a.prod(axis=axis, keepdims=keepdim)
        return xp.asarray(out)

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        a = self.a
        flat = a.reshape(-1) if self.axis is None else _to_last(a, self.axis, xp)
        ones = xp.ones(flat.shape[:-1] + (1,), dtype=flat.dtype)
        before = xp.cumprod(xp.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
        after = xp.flip(
            xp.cumprod(xp.concatenate([ones, xp.flip(flat, axis=-1)[..., :-1]], axis=-1), axis=-1),
            axis=-1,
        )
        others = before * after
        others = (
            others.reshape(a.shape) if self.axis is None else xp.moveaxis(others, -1, self.axis)
        )
        axes = None if self.axis is None else (self.axis,)
        g = _expand_grad(grad, self.shape, axes, self.keepdim, xp)
        return (g * others,)


def _sum_dtype(a: Tensor, dtype: Any) -> Any:
    from convlab import _dtype

    if dtype is not None:
        return _dtype.resolve_dtype(dtype)
    # integer and bool sums and products are int64, as in PyTorch
    return _dtype.int64 if a._data.dtype.kind in "iub" else None


def prod(a: Tensor, dim: int | None = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """Product of all elements, or along ``dim`` (int64 for integer input)."""
    cast = _sum_dtype(a, dtype)
    if cast is not None and cast != a._data.dtype:
        a = a.to(dtype=cast)
    axis = None if dim is None else normalize_dim(dim, a.ndim)
    if a.ndim == 0:
        axis = None
    return Prod.apply(a, axis=axis, keepdim=bool(keepdim) and axis is not None)


class CumSum(Function):
    """Running sums; the gradient is the reversed running sum of the output gradient."""

    def forward(self, a: Any, axis: int = 0) -> Any:
        self.axis = axis
        return self.backend.xp.cumsum(a, axis=axis)

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        return (xp.flip(xp.cumsum(xp.flip(grad, axis=self.axis), axis=self.axis), axis=self.axis),)


def cumsum(a: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
    """Running sums along ``dim`` (int64 for integer input)."""
    cast = _sum_dtype(a, dtype)
    if cast is not None and cast != a._data.dtype:
        a = a.to(dtype=cast)
    if a.ndim == 0:
        normalize_dim(dim, 0)
        return CumSum.apply(a.reshape(1), axis=0).reshape(())
    return CumSum.apply(a, axis=normalize_dim(dim, a.ndim))


class CumProd(Function):
    """Running products; the gradient sums ``grad_j * out_j / a_i`` over ``j >= i``, with
    an exact product-of-others fallback for lines that contain a zero."""

    def forward(self, a: Any, axis: int = 0) -> Any:
        self.axis, self.a = axis, a
        self.out = self.backend.xp.cumprod(a, axis=axis)
        return self.out

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        if bool((self.a != 0).all()):
            ax = self.axis
            tail = xp.flip(xp.cumsum(xp.flip(grad * self.out, axis=ax), axis=ax), axis=ax)
            return (tail / self.a,)
        a = _to_last(self.a, self.axis, xp)
        g = _to_last(grad, self.axis, xp)
        n = a.shape[-1]
        # d out_j / d a_i = prod_{k <= j, k != i} a_k for j >= i: an n x n table per line
        eye = xp.eye(n, dtype=bool)
        upto = xp.tril(xp.ones((n, n), dtype=bool))  # [j, k]: k <= j
        result = xp.zeros(a.shape, dtype=grad.dtype)
        for i in range(n):
            keep = upto & ~eye[i][None, :]  # k <= j and k != i
            factors = xp.where(keep, a[..., None, :], a.dtype.type(1))
            partial = factors.prod(axis=-1)  # [..., j]
            partial = xp.where(xp.arange(n) >= i, partial, 0)
            result[..., i] = (g * partial).sum(axis=-1)
        return (xp.moveaxis(result, -1, self.axis),)


def cumprod(a: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
    """Running products along ``dim`` (int64 for integer input)."""
    cast = _sum_dtype(a, dtype)
    if cast is not None and cast != a._data.dtype:
        a = a.to(dtype=cast)
    if a.ndim == 0:
        normalize_dim(dim, 0)
        return CumProd.apply(a.reshape(1), axis=0).reshape(())
    return CumProd.apply(a, axis=normalize_dim(dim, a.ndim))


class LogSumExp(Function):
    """``log(sum(exp(a)))`` shifted by the maximum; the gradient is the softmax."""

    def forward(self, a: Any, axes: tuple = (), keepdim: bool = False) -> Any:
        xp = self.backend.xp
        if a.size == 0:  # the log of an empty sum is -inf, as in PyTorch
            keep_shape = tuple(1 if i in axes else s for i, s in enumerate(a.shape))
            out_keep = xp.full(keep_shape, -xp.inf, dtype=a.dtype)
        else:
            peak = a.max(axis=axes, keepdims=True)
            peak = xp.where(xp.isfinite(peak), peak, 0)  # all -inf lines give -inf, not NaN
            out_keep = xp.log(xp.exp(a - peak).sum(axis=axes, keepdims=True)) + peak
        self.a, self.out_keep, self.axes, self.keepdim = a, out_keep, axes, keepdim
        if keepdim:
            return out_keep
        return xp.asarray(out_keep.reshape([s for i, s in enumerate(a.shape) if i not in axes]))

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        g = _expand_grad(grad, self.a.shape, self.axes, self.keepdim, xp)
        return (g * xp.exp(self.a - self.out_keep),)


def logsumexp(a: Tensor, dim: Any, keepdim: bool = False) -> Tensor:
    """``log(sum(exp(a)))`` over ``dim``, computed without overflow."""
    if a._data.dtype.kind != "f":
        raise TypeError(f"logsumexp: expected a floating-point tensor, got dtype {a.dtype}")
    axes = _axes(dim, a.ndim) if a.ndim else None
    if axes is None:
        axes = tuple(range(a.ndim))
    return LogSumExp.apply(a, axes=axes, keepdim=bool(keepdim))


class Norm2(Function):
    """The 2-norm; the gradient is ``a / norm`` and 0 where the norm is 0 (as PyTorch)."""

    def forward(self, a: Any, axes: tuple | None = None, keepdim: bool = False) -> Any:
        xp = self.backend.xp
        out_keep = xp.sqrt((a * a).sum(axis=axes, keepdims=True))
        self.a, self.out_keep, self.axes, self.keepdim = a, out_keep, axes, keepdim
        if keepdim:
            return out_keep
        return xp.asarray(
            out_keep.reshape(
                [s for i, s in enumerate(a.shape) if axes is not None and i not in axes]
            )
        )

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        g = _expand_grad(grad, self.a.shape, self.axes, self.keepdim, xp)
        safe = xp.where(self.out_keep == 0, 1, self.out_keep)
        return (xp.where(self.out_keep == 0, 0, g * self.a / safe).astype(grad.dtype),)


def norm(
    a: Tensor, p: Any = "fro", dim: Any = None, keepdim: bool = False, dtype: Any = None
) -> Tensor:
    """The vector p-norm over ``dim`` (all elements when None): ``p`` is ``"fro"`` or 2, 1,
    ``inf``, ``-inf``, 0 or any other number.

    Raises:
        TypeError: For integer input without a floating ``dtype``.
        ValueError: For an unsupported ``p`` (``"nuc"``: use a matrix library).
    """
    from convlab import _dtype
    from convlab._ops import arith

    if dtype is not None:
        a = a.to(dtype=_dtype.resolve_dtype(dtype))
    if a._data.dtype.kind != "f":
        raise TypeError(f"norm: expected a floating-point tensor, got dtype {a.dtype}")
    axes = _axes(dim, a.ndim)
    keepdim = bool(keepdim)
    if p == "fro" or p == 2:
        return Norm2.apply(a, axes=axes, keepdim=keepdim)
    if isinstance(p, str) or isinstance(p, bool) or not isinstance(p, (int, float)):
        raise ValueError(f"p: expected 'fro' or a number, got {p!r}")
    size = arith.abs(a)
    if p == math.inf:
        return AMax.apply(size, axes=axes, keepdim=keepdim, largest=True)
    if p == -math.inf:
        return AMax.apply(size, axes=axes, keepdim=keepdim, largest=False)
    if p == 0:
        nonzero = Tensor._wrap((a._data != 0).astype(a._data.dtype), a._backend)
        return Sum.apply(nonzero, axes=axes, keepdim=keepdim)
    if p == 1:
        return Sum.apply(size, axes=axes, keepdim=keepdim)
    total = Sum.apply(arith.pow(size, float(p)), axes=axes, keepdim=keepdim)
    return arith.pow(total, 1.0 / float(p))


def std_mean(
    a: Tensor,
    dim: Any = None,
    unbiased: bool | None = None,
    keepdim: bool = False,
    *,
    correction: float | None = None,
) -> tuple[Tensor, Tensor]:
    """``(std, mean)`` over ``dim`` (see :func:`std`)."""
    dim, corr = _correction(dim, unbiased, correction, "std_mean")
    return std(a, dim, keepdim=keepdim, correction=corr), mean(a, dim, keepdim)


def var_mean(
    a: Tensor,
    dim: Any = None,
    unbiased: bool | None = None,
    keepdim: bool = False,
    *,
    correction: float | None = None,
) -> tuple[Tensor, Tensor]:
    """``(var, mean)`` over ``dim`` (see :func:`var`)."""
    dim, corr = _correction(dim, unbiased, correction, "var_mean")
    return var(a, dim, keepdim=keepdim, correction=corr), mean(a, dim, keepdim)


def reduce_max(a: Tensor, dim: Any = None, keepdim: bool = False, *, other: Any = None) -> Any:
    """``torch.max``: the largest value, ``(values, indices)`` along ``dim``, or with a tensor
    as the second argument the elementwise :func:`~convlab.maximum`."""
    return _max_or_min(a, dim, keepdim, other, "max")


def reduce_min(a: Tensor, dim: Any = None, keepdim: bool = False, *, other: Any = None) -> Any:
    """``torch.min``: see :func:`reduce_max`."""
    return _max_or_min(a, dim, keepdim, other, "min")


def _max_or_min(a: Tensor, dim: Any, keepdim: bool, other: Any, which: str) -> Any:
    if isinstance(dim, Tensor):
        dim, other = None, dim
    if other is not None:
        from convlab._ops import pointwise

        return (pointwise.maximum if which == "max" else pointwise.minimum)(a, other)
    if not isinstance(a, Tensor):
        raise TypeError(f"{which}: expected a Tensor as input, got {type(a).__name__}")
    return extreme(a, which, dim, keepdim, None, None)


def argmax(a: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the largest value (int64), over the flattened tensor when ``dim`` is None."""
    return arg(a, "argmax", dim, keepdim)


def argmin(a: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the smallest value (int64)."""
    return arg(a, "argmin", dim, keepdim)
