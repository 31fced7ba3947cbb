"""Tensor methods and top-level functions against PyTorch (issue 29, item 6).

Each case is one program written once and run on both libraries (``lib`` is ``convlab`` or
``torch``): the values, dtypes and shapes must agree, and for floating results the gradients of
``sum(out * w)`` with respect to the inputs (PyTorch's autograd is the reference).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import convlab

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(29)
M = RNG.standard_normal((3, 4))  # a general matrix
SQ = RNG.standard_normal((3, 3))
B = RNG.standard_normal((2, 3, 4))
V = RNG.standard_normal(4)
TIES = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, -1.0, 2.0], [0.5, 0.0, 0.5, 4.0]])
ZEROS = np.array([[1.5, 0.0, 2.0, -1.0], [0.0, 0.0, 3.0, 1.0], [2.0, -0.5, 1.0, 1.25]])
INTS = np.array([[3, -7, 2, 0], [5, 5, -1, 8], [9, -2, 4, 6]], dtype=np.int64)
SPECIAL = np.array([[1.0, np.nan, np.inf], [-np.inf, 0.0, np.nan]])
IDX = np.array([[0, 1, 2, 0], [2, 2, 1, 0]], dtype=np.int64)


def _lib_tensor(lib, array, grad, device="cpu"):
    if lib is torch:
        return torch.tensor(array, requires_grad=grad)
    return convlab.tensor(array, requires_grad=grad, device=device)


def _flatten(out):
    """Tensors, numbers and bools of a result, in order (namedtuples and tuples unpacked)."""
    if isinstance(out, (tuple, list)):
        return [leaf for item in out for leaf in _flatten(item)]
    return [out]


def _as_numpy(value, lib):
    if lib is torch and isinstance(value, torch.Tensor):
        return value.detach().numpy()
    if isinstance(value, convlab.Tensor):
        return value.detach().numpy()
    return value


def _same_dtype(ours, theirs):
    return str(ours.dtype) == str(theirs.dtype).replace("torch.", "")


def _run(case, args, grad, device="cpu"):
    results = {}
    for lib in (convlab, torch):
        tensors = [_lib_tensor(lib, a, grad and a.dtype.kind == "f", device) for a in args]
        results[lib] = (tensors, case(lib, *tensors))
    return results


def _compare(ours, theirs, rtol=1e-6, atol=1e-7):
    leaves_ours, leaves_theirs = _flatten(ours), _flatten(theirs)
    assert len(leaves_ours) == len(leaves_theirs)
    for a, b in zip(leaves_ours, leaves_theirs):
        if isinstance(b, torch.Tensor):
            assert isinstance(a, convlab.Tensor), type(a)
            assert a.shape == tuple(b.shape)
            assert _same_dtype(a, b), (a.dtype, b.dtype)
            np.testing.assert_allclose(
                a.detach().numpy(), b.detach().numpy(), rtol=rtol, atol=atol, equal_nan=True
            )
        else:
            assert type(a) is type(b) and a == b, (a, b)


# (id, program(lib, *inputs), inputs); programs use the same spelling in both libraries
CASES = [
    # comparisons and logic
    ("eq", lambda lib, x, y: x.eq(y), (M, M.round())),
    ("ne_scalar", lambda lib, x: x.ne(0.0), (ZEROS,)),
    ("lt_fn", lambda lib, x, y: lib.lt(x, y), (M, SQ[:, :1])),
    ("le", lambda lib, x: x.le(0.5), (TIES,)),
    ("gt_fn", lambda lib, x: lib.gt(x, 0), (INTS,)),
    ("ge", lambda lib, x, y: x.ge(y), (INTS, INTS[::-1].copy())),
    ("isclose", lambda lib, x, y: lib.isclose(x, y, atol=0.3), (M, M.round())),
    ("isnan_isinf", lambda lib, x: (x.isnan(), lib.isinf(x), x.isfinite(), x.isinf()), (SPECIAL,)),
    ("isnan_ints", lambda lib, x: (x.isnan(), x.isinf(), lib.isfinite(x)), (INTS,)),
    ("logical", lambda lib, x: (x > 0).logical_and(x < 2).logical_or(x == 0), (ZEROS,)),
    ("logical_xor_not", lambda lib, x: lib.logical_xor(x > 0, ~(x < 1)), (ZEROS,)),
    ("bitwise_ints", lambda lib, x, y: (x & y, x | y, x ^ y, ~x), (INTS, INTS[::-1].copy())),
    ("bool_operators", lambda lib, x: ((x > 0) & (x < 2)) | ~(x != 0), (ZEROS,)),
    ("all_any", lambda lib, x: (x.all(), (x > 0).any(1), lib.all(x > -9, dim=0)), (ZEROS,)),
    ("count_nonzero", lambda lib, x: (x.count_nonzero(), lib.count_nonzero(x, dim=1)), (ZEROS,)),
    (
        "equal_allclose",
        lambda lib, x: (lib.equal(x, x), x.equal(x[:2]), x.allclose(x + 1e-9)),
        (M,),
    ),
    # shapes and types
    ("view_as", lambda lib, x, y: x.view_as(y), (M, M.reshape(4, 3))),
    ("reshape_as", lambda lib, x, y: x.T.reshape_as(y), (M, M.reshape(2, 6))),
    ("expand_as", lambda lib, x, y: x.expand_as(y), (V, B)),
    ("type_as", lambda lib, x, y: (x.type_as(y), y.type_as(x)), (INTS, M)),
    ("casts", lambda lib, x: (x.int(), x.short(), x.char(), x.byte(), x.bool()), (M * 9,)),
    ("cast_half", lambda lib, x: x.half().detach(), (M * 9,)),
    ("casts_back", lambda lib, x: (x.long().float(), x.double()), (M * 9,)),
    ("is_fp", lambda lib, x, y: (x.is_floating_point(), lib.is_floating_point(y)), (M, INTS)),
    (
        "new_ctors",
        lambda lib, x: (x.new_zeros(2, 3), x.new_ones((2,)), x.new_full((2, 2), 7)),
        (M,),
    ),
    ("new_tensor", lambda lib, x: x.new_tensor([1, 2]), (INTS,)),
    ("numel", lambda lib, x: (x.nelement(), lib.numel(x), lib.is_tensor(x)), (B,)),
    # matrix products
    ("mm", lambda lib, x, y: x.mm(y), (M, M.T.copy())),
    ("bmm_fn", lambda lib, x, y: lib.bmm(x, y), (B, B.transpose(0, 2, 1).copy())),
    ("addmm", lambda lib, c, x, y: lib.addmm(c, x, y, beta=0.5, alpha=2.0), (SQ[0], M, M.T.copy())),
    ("addmm_method", lambda lib, c, x, y: c.addmm(x, y), (SQ, M, M.T.copy())),
    ("dot_mv_outer", lambda lib, x, v: (v.dot(v), x.mv(v), lib.outer(v, x[0])), (M, V)),
    ("matmul_method", lambda lib, x, y: x.matmul(y), (B, M.T.copy())),
    ("einsum_mm", lambda lib, x, y: lib.einsum("ij,jk->ik", x, y), (M, M.T.copy())),
    ("einsum_batch", lambda lib, x, y: lib.einsum("bij,bkj->bik", x, y), (B, B)),
    ("einsum_ellipsis", lambda lib, x, v: lib.einsum("...j,j", x, v), (B, V)),
    ("einsum_trace_outer", lambda lib, x, v: lib.einsum("ii,j->j", x, v), (SQ, V)),
    ("einsum_list", lambda lib, x: lib.einsum("ij->ji", [x]), (M,)),
    # indexing
    ("masked_fill", lambda lib, x: x.masked_fill(x > 0, -1.5), (M,)),
    ("masked_fill_bcast", lambda lib, x: x.masked_fill(x[0] > 0, 2), (M,)),
    ("masked_fill_tensor_value", lambda lib, x, v: x.masked_fill(x < 0, v.sum()), (M, V)),
    ("masked_select", lambda lib, x: x.masked_select(x[:, :1] > 0), (M,)),
    ("gather_0", lambda lib, x, i: x.gather(0, i), (M, IDX)),
    ("gather_1", lambda lib, x, i: lib.gather(x, 1, i), (M, IDX[:, :3] % 3)),
    ("scatter", lambda lib, x, i, s: x.scatter(0, i, s[:1]), (np.zeros((3, 4)), IDX[:1], M)),
    ("scatter_big_src", lambda lib, x, i, s: x.scatter(0, i, s.detach()), (M, IDX[:1], M)),
    ("scatter_value", lambda lib, x, i: x.scatter(1, i, 2.5), (M, IDX[:, :2])),
    ("scatter_add", lambda lib, x, i, s: x.scatter_add(0, i, s[:2]), (M, IDX, M)),
    ("scatter_reduce_add", lambda lib, x, i, s: x.scatter(0, i, s, reduce="add"), (M, IDX, M)),
    ("index_select", lambda lib, x, i: x.index_select(1, i[0]), (M, IDX)),
    ("index_fill", lambda lib, x, i: x.index_fill(0, i[0, :2], -2.0), (M, IDX)),
    ("index_add", lambda lib, x, i, s: x.index_add(1, i[0], s, alpha=3), (M, IDX, M)),
    ("index_copy", lambda lib, x, i, s: x.index_copy(0, i[1, 2:], s[:2]), (M, IDX, M)),
    ("take", lambda lib, x, i: x.take(i), (M, IDX * 3)),
    ("where", lambda lib, x, y: lib.where(x > 0, x, y), (M, SQ[:, :1])),
    ("where_scalar", lambda lib, x: lib.where(x > 0, x, 0.0), (M,)),
    ("where_method", lambda lib, x, y: x.where(x < 0, y), (M, V)),
    ("where_one_arg", lambda lib, x: lib.where(x > 0), (M,)),
    ("nonzero", lambda lib, x: (x.nonzero(), lib.nonzero(x, as_tuple=True)), (ZEROS,)),
    # ordering
    ("sort", lambda lib, x: x.sort(), (M,)),
    ("sort_desc_ties", lambda lib, x: x.sort(dim=0, descending=True, stable=True), (TIES,)),
    ("sort_ties_stable", lambda lib, x: lib.sort(x, stable=True), (TIES,)),
    ("sort_ints", lambda lib, x: x.sort(dim=1, descending=True, stable=True), (INTS,)),
    ("argsort", lambda lib, x: (x.argsort(), lib.argsort(x, dim=0, descending=True)), (M,)),
    ("topk", lambda lib, x: x.topk(2), (M,)),
    ("topk_smallest_dim0", lambda lib, x: lib.topk(x, 2, dim=0, largest=False), (M,)),
    ("kthvalue", lambda lib, x: (x.kthvalue(2), x.kthvalue(1, 0, keepdim=True)), (M,)),
    ("median", lambda lib, x: (x.median(), x.median(1)), (M,)),
    ("unique", lambda lib, x: lib.unique(x, return_inverse=True, return_counts=True), (INTS % 4,)),
    ("unique_method", lambda lib, x: x.unique(), (TIES,)),
    ("unique_dim", lambda lib, x: x.unique(dim=0), (np.array([[1, 2], [0, 1], [1, 2]]),)),
    # rearranging
    ("repeat", lambda lib, x: x.repeat(2, 1, 3), (M,)),
    ("tile", lambda lib, x: (x.tile((2,)), lib.tile(x, (2, 1, 1))), (M,)),
    ("repeat_interleave", lambda lib, x: x.repeat_interleave(2), (M,)),
    (
        "repeat_interleave_t",
        lambda lib, x, r: x.repeat_interleave(r, dim=0),
        (M, np.array([1, 0, 2])),
    ),
    ("chunk", lambda lib, x: x.chunk(3, 1), (M,)),
    ("chunk_fn", lambda lib, x: lib.chunk(x, 2), (B,)),
    ("unbind", lambda lib, x: x.unbind(1), (M,)),
    ("narrow", lambda lib, x: (x.narrow(1, 1, 2), lib.narrow(x, 0, -2, 2)), (M,)),
    ("roll", lambda lib, x: (x.roll(1, 0), x.roll((1, -2), (0, 1)), lib.roll(x, 5)), (M,)),
    ("movedim", lambda lib, x: (x.movedim(0, -1), x.moveaxis((0, 1), (2, 0))), (B,)),
    ("swapaxes", lambda lib, x: x.swapaxes(0, 2), (B,)),
    ("tril_triu", lambda lib, x: (x.tril(), x.triu(1), lib.tril(x, -1)), (M,)),
    ("diag", lambda lib, x, v: (x.diag(), lib.diag(v, 1), x.diag(-1)), (M, V)),
    ("diagonal", lambda lib, x: x.diagonal(0, 1, 2), (B,)),
    ("trace", lambda lib, x: x.trace(), (SQ,)),
    ("meshgrid_ij", lambda lib, x, y: lib.meshgrid(x, y, indexing="ij"), (V, V[:3])),
    ("meshgrid_xy", lambda lib, x, y: lib.meshgrid(x, y, indexing="xy"), (V, V[:3])),
    # reductions
    ("std_var", lambda lib, x: (x.std(), x.var(1), x.std(0, keepdim=True)), (M,)),
    ("var_unbiased", lambda lib, x: (x.var(0, unbiased=False), lib.var(x, False)), (M,)),
    ("var_correction", lambda lib, x: lib.std(x, dim=(0, 1), correction=0), (B,)),
    ("prod", lambda lib, x: (x.prod(), x.prod(1), lib.prod(x, 0, keepdim=True)), (M,)),
    ("prod_zeros", lambda lib, x: (x.prod(1), x.prod()), (ZEROS,)),
    ("prod_int", lambda lib, x: x.prod(0), (INTS,)),
    ("cumsum", lambda lib, x: (x.cumsum(1), lib.cumsum(x, dim=0)), (M,)),
    ("cumsum_int", lambda lib, x: x.cumsum(0), (INTS.astype(np.int32),)),
    ("cumprod", lambda lib, x: x.cumprod(1), (M,)),
    ("cumprod_zeros", lambda lib, x: x.cumprod(1), (ZEROS,)),
    ("logsumexp", lambda lib, x: (x.logsumexp(1), lib.logsumexp(x, (0, 1), keepdim=True)), (M,)),
    ("norm", lambda lib, x: (x.norm(), x.norm(dim=1), lib.norm(x, 2, dim=0, keepdim=True)), (M,)),
    ("norm_p", lambda lib, x: (x.norm(1), x.norm(3, dim=1), x.norm(float("inf"), dim=0)), (M,)),
    ("norm_neg_inf", lambda lib, x: x.norm(-math.inf, dim=1), (M,)),
    ("max_min_fns", lambda lib, x, y: (lib.max(x), lib.max(x, 1), lib.min(x, y)), (M, V)),
    ("max_keepdim", lambda lib, x: lib.min(x, dim=0, keepdim=True), (M,)),
    ("argmax_fns", lambda lib, x: (lib.argmax(x), lib.argmin(x, dim=1, keepdim=True)), (M,)),
    ("max_min_other", lambda lib, x, y: (x.max(y), x.min(y)), (TIES, TIES[::-1].copy())),
    (
        "sum_mean_dtype",
        lambda lib, x: (lib.sum(x, dtype=lib.float32), lib.mean(x, 1, dtype=lib.float32)),
        (M,),
    ),
    ("sum_int_dtype", lambda lib, i: lib.sum(i, dtype=lib.float64), (INTS,)),
    ("nansum", lambda lib, x: (x.nansum(), x.nansum(1)), (np.where(ZEROS == 0, np.nan, ZEROS),)),
    # elementwise
    (
        "maximum_ties",
        lambda lib, x, y: (lib.maximum(x, y), x.minimum(y)),
        (TIES, TIES[::-1].copy()),
    ),
    ("rounding", lambda lib, x: (x.floor(), x.ceil(), x.trunc(), x.frac(), x.round()), (M * 3,)),
    ("round_decimals", lambda lib, x: (x.round(decimals=2), lib.round(x, decimals=-1)), (M * 77,)),
    ("rounding_ints", lambda lib, x: (x.floor(), x.sign(), x.square(), x.neg()), (INTS,)),
    ("sign", lambda lib, x: (x.sign(), lib.sign(x)), (ZEROS,)),
    ("reciprocal_rsqrt", lambda lib, x: (x.reciprocal(), x.abs().rsqrt()), (M,)),
    ("trig", lambda lib, x: (x.sin(), x.cos(), lib.tan(x), lib.sin(x)), (M,)),
    ("logs", lambda lib, x: (x.log1p(), x.expm1(), x.log2(), lib.log10(x)), (np.abs(M),)),
    ("float_of_int", lambda lib, x: (x.sin(), x.reciprocal(), lib.log2(x.abs() + 1)), (INTS,)),
    ("atan2", lambda lib, x, y: (x.atan2(y), lib.atan2(y, x)), (M, SQ[:, :1])),
    ("remainder_fmod", lambda lib, x, y: (x % y, x.remainder(y), lib.fmod(x, y)), (M, V + 2)),
    ("remainder_ints", lambda lib, x: (x % 3, x.fmod(3), x // 3, 7 % x.clamp_min(1)), (INTS,)),
    ("floor_divide", lambda lib, x, y: (x // y, lib.floor_divide(x, 0.7)), (M, V + 2)),
    (
        "div_rounding",
        lambda lib, x: (x.div(3, rounding_mode="trunc"), x.div(3, rounding_mode="floor")),
        (INTS,),
    ),
    ("div_rounding_float", lambda lib, x: lib.div(x, 0.3, rounding_mode="trunc"), (M,)),
    ("clamp_min_max", lambda lib, x: (x.clamp_min(-0.2), lib.clamp_max(x, 0.3)), (M,)),
    ("lerp", lambda lib, x, y: (x.lerp(y, 0.3), lib.lerp(x, y, y.sigmoid())), (M, SQ[:, :1])),
    (
        "addcmul_addcdiv",
        lambda lib, x, y: (x.addcmul(x, y, value=2), lib.addcdiv(x, x, y + 3, value=0.5)),
        (M, V),
    ),
    (
        "add_sub_alpha",
        lambda lib, x, y: (x.add(y, alpha=2), lib.sub(x, y, alpha=0.5), lib.add(x, 1)),
        (M, V),
    ),
    (
        "mul_div_neg_pow",
        lambda lib, x, y: (lib.mul(x, y), x.div(y + 3), lib.neg(x), lib.pow(x, 2)),
        (M, V),
    ),
    (
        "activations",
        lambda lib, x: (
            lib.sigmoid(x),
            lib.tanh(x),
            lib.relu(x),
            lib.softmax(x, 1),
            lib.log_softmax(x, dim=0),
        ),
        (M,),
    ),
    ("square_pow", lambda lib, x: (x.square(), x.pow(3), x.abs().sqrt()), (M,)),
    # PyTorch's type promotion (NumPy's differs for 0-d tensors and integer division)
    (
        "promote_int_float",
        lambda lib, i, x: (i * x, x + i, i / 3, i / (i.abs() + 1), i.abs() ** 2.5, i - x),
        (INTS, M),
    ),
    (
        "promote_zero_dim",
        lambda lib, x, z, i: (x.float() * z, i * z, i.int() * i[0, 0], x.half() * x.float()),
        (M, np.array(2.5), INTS),
    ),
    ("promote_bool", lambda lib, x: ((x > 0) + (x > 1), (x > 0) * x, (x > 0) + 2), (M,)),
    (
        "promote_in_functions",
        lambda lib, i, x: (lib.maximum(i, x), lib.where(x > 0, i, x)),
        (INTS, M),
    ),
    ("inverse_trig", lambda lib, x: (x.asin(), x.acos(), lib.atan(x), x.arctan()), (M / 3,)),
    ("hyperbolic", lambda lib, x: (x.sinh(), lib.cosh(x), x.asinh(), x.atanh()), (M / 3,)),
    ("acosh_exp2", lambda lib, x: (lib.acosh(x.abs() + 1.5), x.exp2(), lib.exp2(x)), (M,)),
    ("sgn_absolute", lambda lib, x: (x.sgn(), x.absolute()), (ZEROS,)),
    ("nan_to_num", lambda lib, x: (x.nan_to_num(), lib.nan_to_num(x, 1.0, 2.0, -3.0)), (SPECIAL,)),
    ("t", lambda lib, x, v: (x.t(), v.t()), (M, V)),
    ("select", lambda lib, x: (x.select(1, -1), lib.select(x, 0, 1)), (B,)),
    ("unflatten", lambda lib, x: (x.unflatten(1, (2, 2)), lib.unflatten(x, -1, (-1, 1))), (M,)),
    ("broadcast_to", lambda lib, x: (x.broadcast_to((2, 4)), lib.broadcast_to(x, (3, 4))), (V,)),
    ("flips", lambda lib, x: (x.fliplr(), lib.flipud(x)), (M,)),
    ("rot90", lambda lib, x: (x.rot90(), lib.rot90(x, 2), x.rot90(-1, (2, 1)), x.rot90(4)), (B,)),
    ("diff", lambda lib, x: (x.diff(), lib.diff(x, 2, dim=0), x.diff(append=x[:, :1])), (M,)),
    ("diff_bool", lambda lib, x: (x > 0).diff(), (M,)),
    ("bincount", lambda lib, i, w: (i.bincount(), lib.bincount(i, w, minlength=9)), (IDX[0], V)),
    ("histc", lambda lib, x: (x.histc(5), lib.histc(x, bins=4, min=-1, max=1)), (M,)),
    (
        "std_var_mean",
        lambda lib, x: (lib.std_mean(x, 1), lib.var_mean(x, dim=0, correction=0)),
        (M,),
    ),
    ("sizes", lambda lib, x: (x.itemsize, x.nbytes, x.element_size()), (M,)),
    (
        "empty_reductions",
        lambda lib, x: (x.logsumexp(1), x.sum(1), x.norm(dim=1), x.prod(1)),
        (np.zeros((2, 0)),),
    ),
    (
        "zero_dim",
        lambda lib, x: (x.sort(), x.topk(1), x.cumsum(0), x.prod(0), x.kthvalue(1)),
        (np.array(2.5),),
    ),
    (
        "zero_dim_index",
        lambda lib, x, i: (x.gather(0, i[0, 0]), x.index_select(0, i[0, :1]), x.unique().detach()),
        (np.array(2.5), IDX),
    ),
    ("logit", lambda lib, x: (x.sigmoid().logit(), lib.logit(x.sigmoid(), eps=0.3)), (M,)),
    ("unfold", lambda lib, x: (x.unfold(1, 2, 1), x.unfold(0, 2, 2), x.unfold(2, 4, 3)), (B,)),
    (
        "sum_to_size",
        lambda lib, x: (x.sum_to_size(3, 1), x.sum_to_size((1, 4)), x.sum_to_size(4)),
        (M,),
    ),
    (
        "addmv_addr",
        lambda lib, c, x, v: (c.addmv(x, v, beta=2), lib.addr(x, c, v, alpha=0.5)),
        (SQ[0], M, V),
    ),
    (
        "baddbmm",
        lambda lib, c, x: (
            c.baddbmm(x, x.transpose(1, 2)),
            lib.addbmm(c[0], x, x.transpose(1, 2), beta=0.5),
        ),
        (np.ones((2, 3, 3)), B),
    ),
]


@pytest.mark.parametrize("case,inputs", [pytest.param(c, i, id=n) for n, c, i in CASES])
def test_values_dtypes_and_shapes_match_torch(case, inputs):
    results = _run(case, inputs, grad=False)
    _compare(results[convlab][1], results[torch][1])


# the ops are written once against backend.xp: the same programs on each backend
@pytest.mark.parametrize("case,inputs", [pytest.param(c, i, id=n) for n, c, i in CASES])
def test_values_on_each_backend(backend, case, inputs):
    results = _run(case, inputs, grad=False, device=backend.name)
    _compare(results[convlab][1], results[torch][1])


@pytest.mark.parametrize("case,inputs", [pytest.param(c, i, id=n) for n, c, i in CASES])
def test_float32_values_match_torch(case, inputs):
    inputs = tuple(a.astype(np.float32) if a.dtype == np.float64 else a for a in inputs)
    results = _run(case, inputs, grad=False)
    _compare(results[convlab][1], results[torch][1], rtol=2e-5, atol=2e-5)


def _differentiable(out):
    return [
        t for t in _flatten(out) if isinstance(t, torch.Tensor) and t.requires_grad and t.numel()
    ]


# PyTorch defines no derivative for these (its backward raises): see the tests further down
NO_TORCH_DERIVATIVE = {
    "scatter_reduce_add",
    "unique_method",
    "floor_divide",
    "bincount",
}


@pytest.mark.parametrize(
    "case,inputs",
    [pytest.param(c, i, id=n) for n, c, i in CASES if n not in NO_TORCH_DERIVATIVE],
)
def test_gradients_match_torch(case, inputs):
    results = _run(case, inputs, grad=True)
    (ours_in, ours), (theirs_in, theirs) = results[convlab], results[torch]
    theirs_leaves = _differentiable(theirs)
    if not theirs_leaves:
        # PyTorch records no gradient here (comparisons, indices, integer results): neither may we
        assert not [t for t in _flatten(ours) if isinstance(t, convlab.Tensor) and t.requires_grad]
        return
    flat_ours = [t for t in _flatten(ours)]
    flat_theirs = _flatten(theirs)
    loss_ours, loss_theirs = 0, 0
    for a, b in zip(flat_ours, flat_theirs):
        if isinstance(b, torch.Tensor) and b.requires_grad and b.numel():
            w = RNG.standard_normal(tuple(b.shape))
            loss_theirs = loss_theirs + (b * torch.tensor(w)).sum()
            loss_ours = loss_ours + (a * convlab.tensor(w)).sum()
    loss_theirs.backward()
    loss_ours.backward()
    for a, b in zip(ours_in, theirs_in):
        if b.grad is None:
            assert a.grad is None or not np.any(a.grad.numpy())
            continue
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-6, atol=1e-9)


def test_results_without_a_derivative_record_no_graph():
    x = convlab.tensor(M, requires_grad=True)
    counts = convlab.tensor([0, 2, 2]).bincount(x[0, :3])
    for out in (x.unique(), x // 0.7, x > 0, counts):
        assert not out.requires_grad and out.grad_fn is None
    assert not x.int().requires_grad and not x.byte().requires_grad and not x.bool().requires_grad
    assert not x.type(convlab.int64).requires_grad and not x.type_as(x.int()).requires_grad


def test_scatter_reduce_add_gradient_is_scatter_adds():
    # PyTorch has no derivative for scatter(reduce="add"); it is scatter_add's, checked there
    x = convlab.tensor(M, requires_grad=True)
    t = torch.tensor(M, requires_grad=True)
    w = RNG.standard_normal(M.shape)
    (
        x.scatter(0, convlab.tensor(IDX), x[:2] * 2, reduce="add") * convlab.tensor(w)
    ).sum().backward()
    (t.scatter_add(0, torch.tensor(IDX), t[:2] * 2) * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12)


def test_einsum_gradient_by_central_differences():
    # an independent check beside torch: d/dx of sum(w * einsum("bij,jk->bik", x, y))
    x, y = B.copy(), M.T.copy()[:4, :2]
    w = RNG.standard_normal((2, 3, 2))
    xt = convlab.tensor(x, requires_grad=True)
    (convlab.einsum("bij,jk->bik", xt, convlab.tensor(y)) * convlab.tensor(w)).sum().backward()
    numeric = np.zeros_like(x)
    for pos in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[pos] = 1e-6
        up = (np.einsum("bij,jk->bik", x + step, y) * w).sum()
        down = (np.einsum("bij,jk->bik", x - step, y) * w).sum()
        numeric[pos] = (up - down) / 2e-6
    np.testing.assert_allclose(xt.grad.numpy(), numeric, rtol=1e-6, atol=1e-8)


def test_sort_returns_named_values_and_indices():
    out = convlab.tensor([3.0, 1.0, 2.0]).sort(descending=True)
    assert out.values.tolist() == [3.0, 2.0, 1.0]
    assert out.indices.tolist() == [0, 2, 1]
    values, indices = convlab.tensor([[1.0, 5.0]]).topk(1)
    assert values.tolist() == [[5.0]] and indices.tolist() == [[1]]


def test_format_follows_torch():
    for spec in (".4f", ".2e", "", "8.3f"):
        assert format(convlab.tensor(3.14159265), spec) == format(torch.tensor(3.14159265), spec)
    assert f"{convlab.tensor(7)}" == f"{torch.tensor(7)}"
    loss = convlab.tensor([0.5, 1.5]).mean()
    assert f"{loss:.5f}" == "1.00000"
    # more than zero dimensions: only the empty spec, a TypeError otherwise (PyTorch's rule)
    assert format(convlab.tensor([1.0, 2.0]), "") == str(convlab.tensor([1.0, 2.0]))
    for lib in (convlab, torch):
        with pytest.raises(TypeError):
            format(lib.tensor([1.0, 2.0]), ".2f")


def test_comparing_with_none_is_plain_python_equality():
    for lib in (convlab, torch):
        x = lib.tensor([1.0, 2.0])
        assert (x == None) is False  # noqa: E711 - the point of the test
        assert (x != None) is True  # noqa: E711


def test_hash_contains_and_dict_keys():
    a, b = convlab.tensor([1.0, 2.0]), convlab.tensor([1.0, 2.0])
    table = {a: "a", b: "b"}
    assert table[a] == "a" and table[b] == "b" and len({a, b, a}) == 2
    assert 2.0 in a and 3 not in a and convlab.tensor(1.0) in a
    with pytest.raises(RuntimeError):
        _ = "x" in a
    with pytest.raises(RuntimeError):
        _ = "x" in torch.tensor([1.0])


def test_memory_layout_queries_match_torch():
    x, t = convlab.tensor(B), torch.tensor(B)
    assert x.stride() == t.stride() and x.stride(1) == t.stride(1)
    assert x.transpose(0, 2).stride() == t.transpose(0, 2).stride()
    assert x.is_contiguous() and not x.transpose(0, 2).is_contiguous()
    assert x[1].storage_offset() == t[1].storage_offset() == 12
    assert x[:, 1].storage_offset() == t[:, 1].storage_offset()
    assert x.storage_offset() == 0
    assert x[1].data_ptr() == x.data_ptr() + 12 * 8
    assert (
        not x.is_complex() and x.is_signed() and not convlab.tensor([1], dtype="uint8").is_signed()
    )


def test_type_names_and_casts():
    x = convlab.tensor([1.5, -2.5])
    assert x.type() == "torch.FloatTensor" == torch.tensor([1.5, -2.5]).type()
    assert x.long().type() == "torch.LongTensor"
    assert x.type(convlab.int64).tolist() == [1, -2]
    assert x.type("torch.DoubleTensor").dtype == convlab.float64
    with pytest.raises(ValueError):
        x.type("torch.NoSuchTensor")


ERRORS = [
    ("gather_bad_dim", lambda lib, x, i: x.gather(2, i)),
    ("gather_out_of_range", lambda lib, x, i: x.gather(0, i + 5)),
    ("gather_float_index", lambda lib, x, i: x.gather(0, i.double())),
    ("scatter_too_big_index", lambda lib, x, i: x[:1].scatter(0, i, x[:1])),
    ("index_select_2d_index", lambda lib, x, i: x.index_select(0, i)),
    ("masked_fill_float_mask", lambda lib, x, i: x.masked_fill(x, 1.0)),
    ("masked_fill_bad_shape", lambda lib, x, i: x.masked_fill(x[:2, :2] > 0, 1.0)),
    ("topk_k_too_big", lambda lib, x, i: x.topk(9)),
    ("sort_bad_dim", lambda lib, x, i: x.sort(dim=3)),
    ("kthvalue_bad_k", lambda lib, x, i: x.kthvalue(0)),
    ("mm_shapes", lambda lib, x, i: x.mm(x)),
    ("mm_1d", lambda lib, x, i: lib.mm(x[0], x)),
    ("bmm_2d", lambda lib, x, i: lib.bmm(x, x)),
    ("dot_sizes", lambda lib, x, i: x[0].dot(x[0, :2])),
    ("repeat_too_few", lambda lib, x, i: x.repeat(2)),
    ("chunk_zero", lambda lib, x, i: x.chunk(0)),
    ("narrow_past_end", lambda lib, x, i: x.narrow(1, 3, 2)),
    ("roll_mismatch", lambda lib, x, i: x.roll((1, 2), 0)),
    ("tril_1d", lambda lib, x, i: x[0].tril()),
    ("cumsum_bad_dim", lambda lib, x, i: x.cumsum(5)),
    ("std_bad_dim", lambda lib, x, i: x.std(dim=-3)),
    ("randint_bounds", lambda lib, x, i: lib.randint(5, 2, (3,))),
    ("randperm_negative", lambda lib, x, i: lib.randperm(-1)),
    ("multinomial_too_many", lambda lib, x, i: lib.multinomial(x[0].abs(), 9)),
    ("bitwise_float", lambda lib, x, i: x & x),
    ("max_of_empty", lambda lib, x, i: x[:0].max()),
    ("index_select_0d_many", lambda lib, x, i: x[0, 0].index_select(0, i[0])),
    ("unfold_too_big", lambda lib, x, i: x.unfold(1, 5, 1)),
    ("sum_to_size_bad", lambda lib, x, i: x.sum_to_size(2, 4)),
    ("std_of_ints", lambda lib, x, i: i.std()),
    ("eq_none_function", lambda lib, x, i: lib.eq(x, None)),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=n) for n, c in ERRORS])
def test_errors_have_torch_exception_types(case):
    raised = {}
    for lib in (convlab, torch):
        x = _lib_tensor(lib, M, False)
        i = _lib_tensor(lib, IDX, False)
        with pytest.raises(Exception) as info:
            case(lib, x, i)
        raised[lib] = info.type
    assert issubclass(raised[convlab], raised[torch]) or issubclass(
        raised[torch], raised[convlab]
    ), (raised[convlab], raised[torch])


def test_creation_functions_match_torch():
    for lib_out, torch_out in [
        (convlab.linspace(-1, 2, 7), torch.linspace(-1, 2, 7)),
        (
            convlab.linspace(0, 10, 4, dtype=convlab.int64),
            torch.linspace(0, 10, 4, dtype=torch.int64),
        ),
        (convlab.logspace(0, 3, 4, base=2), torch.logspace(0, 3, 4, base=2)),
        (convlab.eye(3), torch.eye(3)),
        (convlab.eye(2, 4, dtype=convlab.float64), torch.eye(2, 4, dtype=torch.float64)),
        (convlab.full_like(convlab.tensor(INTS), 7), torch.full_like(torch.tensor(INTS), 7)),
        (
            convlab.zeros_like(convlab.tensor(M), dtype=convlab.int32),
            torch.zeros_like(torch.tensor(M), dtype=torch.int32),
        ),
        (
            convlab.empty_like(convlab.tensor(M)).shape,
            tuple(torch.empty_like(torch.tensor(M)).shape),
        ),
    ]:
        if isinstance(torch_out, tuple):
            assert lib_out == torch_out
        else:
            _compare(lib_out, torch_out)
    ones = convlab.ones_like(convlab.tensor(M), requires_grad=True)
    assert ones.requires_grad and ones.dtype == convlab.float64


def test_dtype_aliases_and_defaults():
    assert convlab.float == convlab.float32 and convlab.double == convlab.float64
    assert convlab.half == convlab.float16 and convlab.long == convlab.int64
    assert convlab.int == convlab.int32 and convlab.short == convlab.int16
    assert convlab.bool == convlab.bool_
    assert str(convlab.get_default_dtype()) == "float32"
    convlab.set_default_dtype(convlab.float64)
    try:
        assert convlab.tensor([1.5]).dtype == convlab.float64
        assert convlab.zeros(2).dtype == convlab.float64
        assert convlab.get_default_dtype() == convlab.float64
    finally:
        convlab.set_default_dtype(convlab.float32)
    assert convlab.tensor([1.5]).dtype == convlab.float32
    with pytest.raises(TypeError):
        convlab.set_default_dtype(convlab.int64)
    for ours, theirs in [(convlab.float32, torch.float32), (convlab.float16, torch.float16)]:
        mine, ref = convlab.finfo(ours), torch.finfo(theirs)
        assert (mine.eps, mine.max, mine.tiny, mine.bits) == (ref.eps, ref.max, ref.tiny, ref.bits)
    assert convlab.finfo().eps == torch.finfo().eps
    assert convlab.iinfo(convlab.int32).max == torch.iinfo(torch.int32).max
    assert convlab.iinfo(convlab.uint8).min == 0
    with pytest.raises(TypeError):
        convlab.iinfo(convlab.float32)
