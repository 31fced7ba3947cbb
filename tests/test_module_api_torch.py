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


def test_data_parallel_wraps_like_torch():
    theirs = torch.nn.DataParallel(torch.nn.Linear(2, 3))
    ours = convlab.nn.DataParallel(convlab.nn.Linear(2, 3))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.arange(4.0, dtype=np.float32).reshape(2, 2)
    np.testing.assert_allclose(
        ours(convlab.tensor(x)).detach().numpy(),
        theirs(torch.tensor(x)).detach().numpy(),
        rtol=1e-6,
    )
    out = convlab.nn.parallel.data_parallel(ours.module, convlab.tensor(x), range(1))
    assert out.shape == (2, 3)
    with pytest.raises(ValueError, match="one GPU"):
        convlab.nn.DataParallel(convlab.nn.Linear(2, 3), device_ids=[0, 1])


def test_tensors_and_models_pickle_within_a_process_as_torch():
    import pickle

    x = convlab.randn(3)
    x.requires_grad_()
    back = pickle.loads(pickle.dumps(x))
    assert back.requires_grad and back.device == "cpu"
    np.testing.assert_array_equal((back + x).detach().numpy(), 2 * x.detach().numpy())
    model = convlab.nn.Sequential(convlab.nn.Linear(2, 3), convlab.nn.BatchNorm1d(3))
    clone = pickle.loads(pickle.dumps(model))
    assert isinstance(clone[0].weight, convlab.nn.Parameter)
    batch = convlab.randn(4, 2)
    np.testing.assert_allclose(clone(batch).detach().numpy(), model(batch).detach().numpy())
    with pytest.raises(RuntimeError, match="leaves"):
        pickle.dumps(x * 2)
