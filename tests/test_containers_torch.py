"""Containers against PyTorch's: ``Sequential`` / ``ModuleList`` editing (insert, extend,
item assignment, deletion with renumbering, slicing, ``+``), ``ModuleDict``, ``ParameterList``
and ``ParameterDict``: the same names, order, registered parameters, state-dict keys and
reprs, built the same way on both sides."""

from __future__ import annotations

import numpy as np
import pytest

import convlab
from conftest import needs_torch, torch


def _names(module):
    return [n for n, _ in module.named_parameters()]


def _edit_sequential(L):
    seq = L.nn.Sequential(L.nn.Linear(2, 3), L.nn.ReLU(), L.nn.Linear(3, 4))
    seq.append(L.nn.Tanh())
    seq.insert(1, L.nn.Linear(3, 3))
    seq.extend([L.nn.Linear(4, 5), L.nn.Sigmoid()])
    seq[0] = L.nn.Linear(2, 3, bias=False)
    del seq[2]
    seq.insert(-1, L.nn.Identity())
    popped = seq.pop(0)
    return seq, popped


def _edit_module_list(L):
    ml = L.nn.ModuleList([L.nn.Linear(1, 2), L.nn.Linear(2, 3)])
    ml += [L.nn.ReLU(), L.nn.Linear(3, 4)]
    ml.insert(1, L.nn.Linear(2, 2))
    ml[-1] = L.nn.Linear(3, 5)
    del ml[0:2]
    ml.append(L.nn.Linear(5, 6))
    ml.pop(1)
    return ml + L.nn.ModuleList([L.nn.Tanh()])


def _edit_module_dict(L):
    md = L.nn.ModuleDict({"conv": L.nn.Conv2d(1, 2, 3), "act": L.nn.ReLU()})
    md["fc"] = L.nn.Linear(2, 3)
    md.update([("act", L.nn.Tanh()), ("out", L.nn.Linear(3, 1))])
    del md["conv"]
    md.pop("out")
    return md


def _parameter_list(L):
    pl = L.nn.ParameterList([L.nn.Parameter(L.ones(2)), L.zeros(3, 2)])
    pl.append(L.nn.Parameter(L.ones(4)))
    pl.extend([L.zeros(1)])
    pl[0] = L.nn.Parameter(L.zeros(5))
    return pl


def _parameter_dict(L):
    pd = L.nn.ParameterDict({"a": L.nn.Parameter(L.ones(2)), "b": L.zeros(3)})
    pd["c"] = L.nn.Parameter(L.ones(1, 2))
    pd.update({"a": L.zeros(4)})
    del pd["b"]
    return pd


BUILDERS = {
    "sequential": lambda L: _edit_sequential(L)[0],
    "sequential_popped": lambda L: _edit_sequential(L)[1],
    "sequential_slice": lambda L: _edit_sequential(L)[0][1:4],
    "sequential_add": lambda L: _edit_sequential(L)[0] + L.nn.Sequential(L.nn.ReLU()),
    "module_list": _edit_module_list,
    "module_list_slice": lambda L: _edit_module_list(L)[::2],
    "module_dict": _edit_module_dict,
    "parameter_list": _parameter_list,
    "parameter_dict": _parameter_dict,
}


@needs_torch
@pytest.mark.parametrize("name", list(BUILDERS))
def test_containers_match_torch(name):
    ours, theirs = BUILDERS[name](convlab), BUILDERS[name](torch)
    if name.startswith("parameter"):
        # PyTorch names dtypes torch.float32 / torch.FloatTensor there; convlab float32
        spell = {"torch.float32": "float32", "torch.FloatTensor": "float32"}
        expected = repr(theirs)
        for k, v in spell.items():
            expected = expected.replace(k, v)
        assert repr(ours) == expected
    else:
        assert repr(ours) == repr(theirs)
    assert _names(ours) == _names(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [tuple(p.shape) for p in ours.parameters()] == [
        tuple(p.shape) for p in theirs.parameters()
    ]
    assert len(ours) == len(theirs) if hasattr(theirs, "__len__") else True


@needs_torch
def test_module_dict_mapping_methods_match_torch():
    ours, theirs = _edit_module_dict(convlab), _edit_module_dict(torch)
    assert list(ours) == list(theirs) == list(ours.keys())
    assert [k for k, _ in ours.items()] == [k for k, _ in theirs.items()]
    assert [type(v).__name__ for v in ours.values()] == [type(v).__name__ for v in theirs.values()]
    assert ("fc" in ours) and ("conv" not in ours)
    ours.clear()
    assert len(ours) == 0 and _names(ours) == []


@needs_torch
def test_parameter_containers_wrap_tensors_and_train():
    pl = _parameter_list(convlab)
    assert all(isinstance(p, convlab.nn.Parameter) for p in pl)
    assert [p.requires_grad for p in pl] == [True] * 4
    pd = _parameter_dict(convlab)
    assert isinstance(pd["a"], convlab.nn.Parameter) and pd["a"].shape == (4,)
    assert pd.get("missing", 7) == 7 and "c" in pd and "b" not in pd
    # a container's parameters get gradients and an optimizer step like any module's
    x = convlab.tensor(np.arange(5.0, dtype=np.float32))
    (pl[0] * x).sum().backward()
    np.testing.assert_array_equal(pl[0].grad.numpy(), x.numpy())
    convlab.optim.SGD(pl.parameters(), lr=0.5).step()
    np.testing.assert_array_equal(pl[0].detach().numpy(), -0.5 * x.numpy())
    assert pd.pop("c").shape == (1, 2) and list(pd) == ["a"]


def test_container_errors():
    with pytest.raises(IndexError, match="out of range"):
        convlab.nn.Sequential(convlab.nn.ReLU())[3]
    with pytest.raises(IndexError, match="out of range"):
        convlab.nn.Sequential(convlab.nn.ReLU()).insert(5, convlab.nn.ReLU())
    with pytest.raises(TypeError, match="expected a Module"):
        convlab.nn.ModuleList()[0:0].append(3)
    with pytest.raises(TypeError, match="expected a Module"):
        convlab.nn.ModuleDict({"a": 3})
    with pytest.raises(ValueError, match="only objects of Sequential"):
        convlab.nn.Sequential() + convlab.nn.ModuleList()
    with pytest.raises(ValueError, match="length 3"):
        convlab.nn.ModuleDict([("a", convlab.nn.ReLU(), 1)])
    with pytest.raises(KeyError):
        convlab.nn.ModuleDict()["missing"]
