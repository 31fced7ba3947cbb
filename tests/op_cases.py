"""The table of differentiable ops under test, each with an independent NumPy reference.

A case's ``fn(lib, *tensors)`` is written against the PyTorch-style API that convlab and
torch share (``lib`` is the ``convlab`` or ``torch`` module), so the same code runs on both
for the parity check; ``ref(*arrays)`` computes the forward result with plain NumPy.
``torch_fn`` replaces ``fn`` for torch where the spelling differs (needle's ops), or is
``False`` when torch has no equivalent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from reference import avg_pool2d as _avg_pool2d_ref
from reference import conv2d as conv2d_ref
from reference import max_pool2d as max_pool2d_ref


def avg_pool2d_ref(x, kernel, stride, padding, ceil_mode, count_include_pad):
    return _avg_pool2d_ref(x, kernel, stride, padding, ceil_mode, count_include_pad, None)[0]


@dataclasses.dataclass
class Case:
    id: str
    fn: Callable
    inputs: tuple  # shapes, or callables rng -> array
    ref: Callable
    torch_fn: Any = None
    grad: tuple = ()  # indices of inputs to differentiate (default: floats)
    seeded: bool = False  # reseed before each call (dropout)


def positive(shape):
    return lambda rng: rng.uniform(0.5, 2.0, shape)


def away_from_zero(shape):
    return lambda rng: rng.choice([-1, 1], shape) * rng.uniform(0.2, 1.5, shape)


def distinct(shape):
    """Values without ties (max / pooling have a unique winner)."""
    return lambda rng: rng.permutation(int(np.prod(shape))).reshape(shape) / 7.0 - 2.0


def ints(shape, high):
    return lambda rng: rng.integers(0, high, shape)


def F(lib):
    return lib.nn.functional


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x, axis):
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def _ce_ref(x, t, weight=None, ignore=-100, smoothing=0.0):
    logp = _log_softmax(x, 1)
    w = np.ones(x.shape[1]) if weight is None else weight
    num = den = 0.0
    for i in range(x.shape[0]):
        if t[i] == ignore:
            continue
        num += -(1 - smoothing) * w[t[i]] * logp[i, t[i]]
        num += -smoothing * (w * logp[i]).sum() / x.shape[1]
        den += w[t[i]]
    return np.asarray(num / den)


def _bce_ref(x, t, w=None, pw=None):
    sig = 1 / (1 + np.exp(-x))
    pw = 1.0 if pw is None else pw
    loss = -(pw * t * np.log(sig) + (1 - t) * np.log(1 - sig))
    return np.asarray((loss * (1 if w is None else w)).mean())


def _bn_train_ref(x, w, b):
    axes = (0, 2, 3)
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * w.reshape(1, -1, 1, 1) + b.reshape(1, -1, 1, 1)


def _bn_eval_ref(x, w, b):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = _BN_RUNNING
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + 1e-5) * w.reshape(
        shape
    ) + b.reshape(shape)


def _bn_plain_ref(x):
    mean, var = x.mean(axis=0, keepdims=True), x.var(axis=0, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5)


_BN_RUNNING = (np.array([0.3, -0.2]), np.array([1.5, 0.7]))


def _dilate_ref(x, d, axes):
    shape = list(x.shape)
    for a in axes:
        shape[a] *= d + 1
    out = np.zeros(shape)
    idx = tuple(slice(None, None, d + 1) if i in axes else slice(None) for i in range(x.ndim))
    out[idx] = x
    return out


def _same_conv_ref(x, w):
    # PyTorch's 'same' for an even kernel: the extra padding goes after
    kh, kw = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2)))
    return conv2d_ref(xp, w, None, (1, 1), (0, 0), (1, 1))


CASES = [
    # arithmetic and broadcasting
    Case("add_broadcast", lambda L, a, b: a + b, ((3, 4), (4,)), lambda a, b: a + b),
    Case("sub_scalar", lambda L, a: 2.5 - a, ((3, 4),), lambda a: 2.5 - a),
    Case("mul_broadcast", lambda L, a, b: a * b, ((2, 3, 4), (3, 1)), lambda a, b: a * b),
    Case("div", lambda L, a, b: a / b, ((3, 4), positive((3, 4))), lambda a, b: a / b),
    Case("rdiv_scalar", lambda L, a: 1.5 / a, (positive((5,)),), lambda a: 1.5 / a),
    Case("pow_scalar", lambda L, a: a**3, ((3, 4),), lambda a: a**3),
    Case("pow_tensor", lambda L, a, b: a**b, (positive((3, 4)), (3, 4)), lambda a, b: a**b),
    Case("rpow", lambda L, a: 2.0**a, ((6,),), lambda a: 2.0**a),
    Case("neg", lambda L, a: -a, ((3, 4),), lambda a: -a),
    Case("exp", lambda L, a: a.exp(), ((3, 4),), np.exp),
    Case("log", lambda L, a: a.log(), (positive((3, 4)),), np.log),
    Case("sqrt", lambda L, a: a.sqrt(), (positive((3, 4)),), np.sqrt),
    Case("abs", lambda L, a: a.abs(), (away_from_zero((3, 4)),), np.abs),
    Case(
        "clip",
        lambda L, a: a.clip(-0.5, 0.7),
        (away_from_zero((4, 5)),),
        lambda a: np.clip(a, -0.5, 0.7),
    ),
    # matrix products
    Case("matmul_2d", lambda L, a, b: a @ b, ((3, 4), (4, 5)), lambda a, b: a @ b),
    Case(
        "matmul_batched_broadcast", lambda L, a, b: a @ b, ((2, 3, 4), (4, 5)), lambda a, b: a @ b
    ),
    Case("matmul_batch_both", lambda L, a, b: a @ b, ((2, 1, 3, 4), (3, 4, 2)), lambda a, b: a @ b),
    Case("matmul_vec_mat", lambda L, a, b: a @ b, ((4,), (4, 3)), lambda a, b: a @ b),
    Case("matmul_mat_vec", lambda L, a, b: a @ b, ((2, 3, 4), (4,)), lambda a, b: a @ b),
    Case(
        "linear",
        lambda L, x, w, b: F(L).linear(x, w, b),
        ((2, 3, 5), (4, 5), (4,)),
        lambda x, w, b: x @ w.T + b,
    ),
    # reductions
    Case("sum_all", lambda L, a: a.sum(), ((3, 4),), lambda a: np.asarray(a.sum())),
    Case(
        "sum_dim_keep",
        lambda L, a: a.sum(dim=1, keepdim=True),
        ((2, 3, 4),),
        lambda a: a.sum(axis=1, keepdims=True),
    ),
    Case("sum_dims", lambda L, a: a.sum(dim=(0, 2)), ((2, 3, 4),), lambda a: a.sum(axis=(0, 2))),
    Case("mean_dim", lambda L, a: a.mean(dim=-1), ((2, 3, 4),), lambda a: a.mean(axis=-1)),
    Case("max_all", lambda L, a: a.max(), (distinct((3, 4)),), lambda a: np.asarray(a.max())),
    Case(
        "max_dim_values",
        lambda L, a: a.max(dim=1).values,
        (distinct((3, 4, 2)),),
        lambda a: a.max(axis=1),
    ),
    Case(
        "min_dim_keep",
        lambda L, a: a.min(dim=0, keepdim=True).values,
        (distinct((3, 4)),),
        lambda a: a.min(axis=0, keepdims=True),
    ),
    Case(
        "amax_dims",
        lambda L, a: a.amax(dim=(1, 2)),
        (distinct((2, 3, 4)),),
        lambda a: a.max(axis=(1, 2)),
    ),
    # shapes
    Case("reshape", lambda L, a: a.reshape(4, -1), ((2, 3, 4),), lambda a: a.reshape(4, -1)),
    Case("view", lambda L, a: a.view(6, 4), ((2, 3, 4),), lambda a: a.reshape(6, 4)),
    Case("transpose", lambda L, a: a.transpose(0, 2), ((2, 3, 4),), lambda a: a.swapaxes(0, 2)),
    Case("permute", lambda L, a: a.permute(2, 0, 1), ((2, 3, 4),), lambda a: a.transpose(2, 0, 1)),
    Case("flatten", lambda L, a: a.flatten(1), ((2, 3, 4),), lambda a: a.reshape(2, -1)),
    Case("squeeze", lambda L, a: a.squeeze(1), ((3, 1, 4),), lambda a: a[:, 0]),
    Case("unsqueeze", lambda L, a: a.unsqueeze(-1), ((3, 4),), lambda a: a[..., None]),
    Case(
        "expand", lambda L, a: a.expand(2, 3, 4), ((3, 1),), lambda a: np.broadcast_to(a, (2, 3, 4))
    ),
    Case(
        "getitem_basic",
        lambda L, a: a[1:, ::2, None, -1],
        ((3, 5, 4),),
        lambda a: a[1:, ::2, None, -1],
    ),
    Case(
        "getitem_advanced",
        lambda L, a, i: a[i],
        ((5, 3), lambda rng: np.array([0, 2, 2, 4])),
        lambda a, i: a[i],
        grad=(0,),
    ),
    Case(
        "stack",
        lambda L, a, b: L.stack([a, b], dim=1),
        ((3, 4), (3, 4)),
        lambda a, b: np.stack([a, b], axis=1),
    ),
    Case(
        "cat",
        lambda L, a, b: L.cat([a, b], dim=1),
        ((3, 2), (3, 4)),
        lambda a, b: np.concatenate([a, b], axis=1),
    ),
    Case(
        "split",
        lambda L, a: L.stack(list(a.split(2, dim=1))[:2], 0) * 2,
        ((3, 5),),
        lambda a: np.stack([a[:, 0:2], a[:, 2:4]]) * 2,
    ),
    Case(
        "pad",
        lambda L, a: L.pad(a, ((1, 0), (2, 3))),
        ((3, 4),),
        lambda a: np.pad(a, ((1, 0), (2, 3))),
        torch_fn=lambda T, a: T.nn.functional.pad(a, (2, 3, 1, 0)),
    ),
    Case(
        "flip",
        lambda L, a: L.flip(a, (0, 2)),
        ((2, 3, 4),),
        lambda a: a[::-1, :, ::-1],
        torch_fn=lambda T, a: T.flip(a, (0, 2)),
    ),
    Case(
        "dilate",
        lambda L, a: L.dilate(a, 2, (1,)),
        ((2, 3),),
        lambda a: _dilate_ref(a, 2, (1,)),
        torch_fn=False,
    ),
    Case(
        "undilate",
        lambda L, a: L.undilate(a, 1, (0, 1)),
        ((4, 6),),
        lambda a: a[::2, ::2],
        torch_fn=False,
    ),
    # convolution and pooling
    Case(
        "conv2d",
        lambda L, x, w, b: F(L).conv2d(x, w, b, stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
        ((2, 3, 7, 6), (4, 3, 3, 2), (4,)),
        lambda x, w, b: conv2d_ref(x, w, b, (2, 1), (1, 2), (1, 2)),
    ),
    Case(
        "conv2d_same_even_kernel",
        lambda L, x, w: F(L).conv2d(x, w, padding="same"),
        ((1, 2, 5, 5), (3, 2, 2, 4)),
        _same_conv_ref,
    ),
    Case(
        "conv1d",
        lambda L, x, w, b: F(L).conv1d(x, w, b, stride=2, padding=1),
        ((2, 3, 9), (4, 3, 3), (4,)),
        lambda x, w, b: conv2d_ref(x[:, :, None], w[:, :, None], b, (1, 2), (0, 1), (1, 1))[
            :, :, 0
        ],
    ),
    Case(
        "max_pool2d_2x1",
        lambda L, x: F(L).max_pool2d(x, (2, 1)),
        (distinct((2, 3, 6, 4)),),
        lambda x: max_pool2d_ref(x, (2, 1), (2, 1), (0, 0), (1, 1), False)[0],
    ),
    Case(
        "max_pool2d_ceil_pad",
        lambda L, x: F(L).max_pool2d(x, 3, 2, 1, ceil_mode=True),
        (distinct((1, 2, 6, 5)),),
        lambda x: max_pool2d_ref(x, (3, 3), (2, 2), (1, 1), (1, 1), True)[0],
    ),
    Case(
        "avg_pool2d",
        lambda L, x: F(L).avg_pool2d(x, 2, padding=1, count_include_pad=False),
        ((2, 2, 5, 4),),
        lambda x: avg_pool2d_ref(x, (2, 2), (2, 2), (1, 1), False, False),
    ),
    # activations
    Case("relu", lambda L, x: F(L).relu(x), (away_from_zero((3, 4)),), lambda x: np.maximum(x, 0)),
    Case(
        "leaky_relu",
        lambda L, x: F(L).leaky_relu(x, 0.2),
        (away_from_zero((3, 4)),),
        lambda x: np.where(x > 0, x, 0.2 * x),
    ),
    Case(
        "sigmoid", lambda L, x: F(L).sigmoid(x * 10), ((3, 4),), lambda x: 1 / (1 + np.exp(-10 * x))
    ),
    Case("tanh", lambda L, x: F(L).tanh(x), ((3, 4),), np.tanh),
    Case("softmax", lambda L, x: F(L).softmax(x, dim=1), ((3, 4, 2),), lambda x: _softmax(x, 1)),
    Case(
        "log_softmax",
        lambda L, x: F(L).log_softmax(x, dim=-1),
        ((3, 4),),
        lambda x: _log_softmax(x, -1),
    ),
    # normalisation
    Case(
        "batch_norm_train",
        lambda L, x, w, b: F(L).batch_norm(x, None, None, w, b, training=True),
        ((3, 2, 3, 2), (2,), (2,)),
        _bn_train_ref,
    ),
    Case(
        "batch_norm_eval",
        lambda L, x, w, b: F(L).batch_norm(
            x,
            L.tensor(_BN_RUNNING[0], dtype=x.dtype, device=x.device),
            L.tensor(_BN_RUNNING[1], dtype=x.dtype, device=x.device),
            w,
            b,
            training=False,
        ),
        ((3, 2, 3, 2), (2,), (2,)),
        _bn_eval_ref,
    ),
    Case(
        "batch_norm_1d_no_affine",
        lambda L, x: F(L).batch_norm(x, None, None, None, None, training=True),
        ((6, 3),),
        _bn_plain_ref,
    ),
    # losses
    Case(
        "cross_entropy",
        lambda L, x, t: F(L).cross_entropy(x, t),
        ((5, 4), ints((5,), 4)),
        lambda x, t: _ce_ref(x, t),
        grad=(0,),
    ),
    Case(
        "cross_entropy_weight_ignore_smooth",
        lambda L, x, t, w: F(L).cross_entropy(x, t, w, ignore_index=1, label_smoothing=0.1),
        ((6, 3), lambda rng: np.array([0, 1, 2, 2, 1, 0]), positive((3,))),
        lambda x, t, w: _ce_ref(x, t, w, 1, 0.1),
        grad=(0,),
    ),
    Case(
        "cross_entropy_spatial",
        lambda L, x, t: F(L).cross_entropy(x, t, reduction="sum"),
        ((2, 3, 2, 2), ints((2, 2, 2), 3)),
        lambda x, t: np.asarray(-np.take_along_axis(_log_softmax(x, 1), t[:, None], 1).sum()),
        grad=(0,),
    ),
    Case(
        "cross_entropy_probabilities",
        lambda L, x, p: F(L).cross_entropy(x, p),
        ((4, 3), lambda rng: _softmax(rng.normal(size=(4, 3)), 1)),
        lambda x, p: np.asarray(-(p * _log_softmax(x, 1)).sum(1).mean()),
    ),
    Case(
        "bce_with_logits",
        lambda L, x, t: F(L).binary_cross_entropy_with_logits(x, t),
        ((3, 4), lambda rng: rng.uniform(0, 1, (3, 4))),
        lambda x, t: _bce_ref(x, t),
    ),
    Case(
        "bce_with_logits_weights",
        lambda L, x, t, w, pw: F(L).binary_cross_entropy_with_logits(x, t, w, pos_weight=pw),
        ((3, 4), lambda rng: rng.uniform(0, 1, (3, 4)), positive((4,)), positive((4,))),
        lambda x, t, w, pw: _bce_ref(x, t, w, pw),
        grad=(0, 1),
    ),
    Case(
        "mse_loss",
        lambda L, a, b: F(L).mse_loss(a, b),
        ((3, 4), (3, 4)),
        lambda a, b: np.asarray(((a - b) ** 2).mean()),
    ),
]


def make_inputs(case: Case, rng: np.random.Generator) -> list:
    """The case's inputs as float64 (or integer) NumPy arrays."""
    out = []
    for spec in case.inputs:
        out.append(spec(rng) if callable(spec) else rng.normal(size=spec))
    return out


def grad_indices(case: Case, arrays: list) -> tuple:
    """Which inputs get a gradient check."""
    if case.grad:
        return case.grad
    return tuple(i for i, a in enumerate(arrays) if a.dtype.kind == "f")
