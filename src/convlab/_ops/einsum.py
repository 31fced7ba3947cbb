"""``einsum`` on ``xp.einsum``, with gradients from einsums of the output gradient.

The equation is first written out in full (``...`` replaced by letters, the output spelled
explicitly), so the gradient of operand ``i`` is the einsum of the output gradient and the
other operands into operand ``i``'s subscripts.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

from convlab._tensor import Tensor
from convlab.autograd import Function

__all__ = ["einsum"]


def _explicit(equation: str, ndims: Sequence[int]) -> tuple[list[str], str]:
    """The operands' subscripts and the output's, with ``...`` replaced and ``->`` filled in.

    Raises:
        ValueError: If the equation does not match the operands.
    """
    equation = equation.replace(" ", "")
    lhs, arrow, rhs = equation.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(ndims):
        raise ValueError(
            f"einsum: the equation names {len(inputs)} operands, got {len(ndims)} tensors"
        )
    used = set(equation) - set(".,->")
    spare = [c for c in string.ascii_letters if c not in used]
    broadcast = max(
        (nd - len(sub.replace("...", "")) for sub, nd in zip(inputs, ndims) if "..." in sub),
        default=0,
    )
    ellipsis = "".join(spare[:broadcast])
    spelled = []
    for sub, nd in zip(inputs, ndims):
        if "..." in sub:
            extra = nd - len(sub.replace("...", ""))
            sub = sub.replace("...", ellipsis[broadcast - extra :] if extra else "")
        if len(sub) != nd or not all(c in string.ascii_letters for c in sub):
            raise ValueError(
                f"einsum: subscripts {sub!r} do not match an operand with {nd} dimensions"
            )
        spelled.append(sub)
    if arrow:
        out = rhs.replace("...", ellipsis)
    else:
        counts: dict[str, int] = {}
        for sub in spelled:
            for c in sub:
                counts[c] = counts.get(c, 0) + 1
        out = ellipsis + "".join(
            sorted(c for c, n in counts.items() if n == 1 and c not in ellipsis)
        )
    return spelled, out


class Einsum(Function):
    """``xp.einsum`` of an explicit equation; each operand's gradient is an einsum too."""

    def forward(self, *arrays: Any, subs: tuple = (), out: str = "") -> Any:
        xp = self.backend.xp
        self.arrays, self.subs, self.out = arrays, subs, out
        return xp.asarray(xp.einsum(",".join(subs) + "->" + out, *arrays))

    def backward(self, grad: Any) -> tuple:
        xp = self.backend.xp
        grads: list[Any] = []
        for i, (array, sub) in enumerate(zip(self.arrays, self.subs)):
            if not self.needs[i]:
                grads.append(None)
                continue
            others = [(a, s) for j, (a, s) in enumerate(zip(self.arrays, self.subs)) if j != i]
            available = set(self.out).union(*(set(s) for _, s in others))
            # letters only this operand has were summed over: their gradient is broadcast
            target = "".join(dict.fromkeys(c for c in sub if c in available))
            terms = [self.out] + [s for _, s in others]
            g = xp.einsum(",".join(terms) + "->" + target, grad, *(a for a, _ in others))
            grads.append(_spread(xp, g, target, sub, array.shape))
        return tuple(grads)


def _spread(xp: Any, g: Any, have: str, want: str, shape: tuple) -> Any:
    """``g`` (subscripts ``have``) as an array of subscripts ``want``: missing letters are
    broadcast, a repeated letter puts the values on that diagonal."""
    sizes = dict(zip(want, shape))
    letters = "".join(dict.fromkeys(want))
    full = g
    for c in letters:
        if c not in have:
            full = xp.expand_dims(full, -1)
            have += c
    full = xp.broadcast_to(xp.einsum(have + "->" + letters, full), tuple(sizes[c] for c in letters))
    if letters == want:
        return xp.ascontiguousarray(full)
    # a letter repeated in one operand (a diagonal): zero except where the indices agree
    out = xp.zeros(shape, dtype=g.dtype)
    grids = xp.indices(shape)
    mask = xp.ones(shape, dtype=bool)
    pick = []
    for c in letters:
        axes = [k for k, w in enumerate(want) if w == c]
        for k in axes[1:]:
            mask &= grids[axes[0]] == grids[k]
        pick.append(grids[axes[0]])
    out[mask] = full[tuple(p[mask] for p in pick)]
    return out


def einsum(equation: str, *operands: Any) -> Tensor:
    """Einstein summation (``torch.einsum``): e.g. ``einsum("bij,bjk->bik", a, b)``;
    operands may also be given as one list.

    Raises:
        ValueError: If the subscripts do not match the operands.
        TypeError: If an operand is not a tensor.
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    for t in operands:
        if not isinstance(t, Tensor):
            raise TypeError(f"einsum: expected tensors as operands, got {type(t).__name__}")
    subs, out = _explicit(equation, [t.ndim for t in operands])
    return Einsum.apply(*operands, subs=tuple(subs), out=out)
