"""``Module`` lookups, casts and moves against PyTorch's."""

import numpy as np
import pytest

import convlab

torch = pytest.importorskip("torch")


def build(lib):
    nn = lib.nn
    return nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.BatchNorm1d(3), nn.ReLU()))


def test_lookups_by_dotted_name_match_torch():
    ours, theirs = build(convlab), build(torch)
    assert type(ours.get_submodule("1.0")).__name__ == type(theirs.get_submodule("1.0")).__name__
    assert ours.get_submodule("") is ours
    assert ours.get_parameter("0.weight").shape == tuple(theirs.get_parameter("0.weight").shape)
    assert ours.get_buffer("1.0.running_var").shape == tuple(
        theirs.get_buffer("1.0.running_var").shape
    )
    for lib_model in (ours, theirs):
        with pytest.raises(AttributeError):
            lib_model.get_submodule("1.5")
        with pytest.raises(AttributeError):
            lib_model.get_parameter("0.nothing")
        with pytest.raises(AttributeError):
            lib_model.get_buffer("0.weight")


def test_register_module_and_casts():
    m = convlab.nn.Module()
    m.register_module("fc", convlab.nn.Linear(2, 2))
    assert [n for n, _ in m.named_parameters()] == ["fc.weight", "fc.bias"]
    assert m.half().fc.weight.dtype == np.float16
    assert m.type(convlab.float64).fc.weight.dtype == np.float64
    assert m.float().fc.weight.dtype == np.float32
    assert m.share_memory() is m
    assert m.to("cpu", non_blocking=True) is m
    assert m.to(convlab.device("cpu")) is m
