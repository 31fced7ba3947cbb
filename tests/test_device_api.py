"""``convlab.device``, ``Tensor.device``, ``convlab.cuda`` / ``accelerator`` / ``backends`` and the
legacy constructors, against PyTorch's behaviour (its CPU build: no GPU here either)."""

import copy
import subprocess
import sys

import numpy as np
import pytest

import convlab

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("spec", ["cpu", "cuda", "cuda:0", "CUDA:0", "cpu:0"])
def test_device_objects_match_torch(spec):
    ours, theirs = convlab.device(spec), torch.device(spec.lower())
    assert ours.type == theirs.type and ours.index == theirs.index
    assert str(ours) == str(theirs) and repr(ours) == repr(theirs)


def test_device_with_index_argument_and_errors():
    assert convlab.device("cuda", 0) == torch.device("cuda", 0).__str__()
    cpu = convlab.device("cpu")
    assert convlab.device(cpu) is cpu
    for bad in ("tpu", "cuda:x", "cuda:0:1"):
        with pytest.raises(RuntimeError):
            torch.device(bad)
        with pytest.raises(RuntimeError, match="device"):
            convlab.device(bad)
    with pytest.raises(RuntimeError, match="twice"):
        convlab.device("cuda:0", 0)


def test_gpu_is_an_alias_of_cuda():
    assert convlab.device("gpu") == convlab.device("cuda") == "cuda:0" == convlab.device("gpu:0")
    assert convlab.device("cuda") != "cpu"
    assert {convlab.device("cuda"): 1}[convlab.device("cuda:0")] == 1


def test_tensor_device_attributes_cpu():
    t = convlab.zeros(2)
    tt = torch.zeros(2)
    assert t.device == "cpu" and t.device == convlab.device("cpu") and t.device.type == "cpu"
    assert str(t.device) == str(tt.device)
    assert t.is_cuda is tt.is_cuda is False
    assert t.get_device() == tt.get_device() == -1
    assert t.to(t.device) is t and t.to(convlab.device("cpu")) is t
    assert t.to("cpu", copy=True) is not t
    assert t.to(torch.float64 if False else convlab.float64, non_blocking=True).dtype == np.float64
    assert t.cpu() is t


def test_models_and_tensors_accept_device_objects():
    dev = convlab.device("cpu")
    model = convlab.nn.Linear(2, 1).to(dev)
    x = convlab.ones(3, 2, device=dev)
    assert model(x).device == dev
    assert convlab.zeros(2, device=convlab.device("cpu")).device == "cpu"


def test_cuda_queries_answer_for_the_gpu_backend():
    convlab.cuda.manual_seed(0)
    convlab.cuda.manual_seed_all(0)
    convlab.cuda.synchronize()
    convlab.cuda.empty_cache()
    if not convlab.get_backend("gpu").is_available():
        # as PyTorch's CPU build answers
        assert convlab.cuda.is_available() is torch.cuda.is_available() is False
        assert convlab.cuda.device_count() == torch.cuda.device_count() == 0
        with pytest.raises(convlab.BackendUnavailableError, match="GPU"):
            convlab.cuda.current_device()
        assert convlab.accelerator.is_available() is False
        assert convlab.accelerator.current_accelerator(check_available=True) is None
        assert convlab.accelerator.device_count() == 0
        return
    # a GPU (or the CUDA emulator): one device, index 0, and tensors go there
    assert convlab.cuda.is_available() and convlab.cuda.device_count() == 1
    assert convlab.cuda.current_device() == 0 and convlab.accelerator.is_available()
    device = convlab.accelerator.current_accelerator()
    assert device == "cuda" and device.type == "cuda"
    x = convlab.ones(2).to(device)
    assert x.is_cuda and x.device == "cuda:0" and x.get_device() == 0
    assert convlab.ones(2).cuda().device == device
    with pytest.raises(ValueError, match="one GPU"):
        convlab.cuda.set_device(1)


def test_cuda_manual_seed_seeds_the_default_generator():
    convlab.cuda.manual_seed(7)
    a = convlab.randn(4)
    convlab.manual_seed(7)
    np.testing.assert_array_equal(a.numpy(), convlab.randn(4).numpy())


def test_backends_switches_are_plain_settings():
    convlab.backends.cudnn.benchmark = True
    convlab.backends.cudnn.deterministic = True
    assert convlab.backends.cudnn.benchmark is True
    convlab.backends.cudnn.benchmark = False
    assert convlab.backends.mps.is_available() is torch.backends.mps.is_available() is False


def test_matmul_allow_tf32_is_the_matmul_precision():
    """As PyTorch documents (its CUDA notes: ``allow_tf32 = True`` is
    ``set_float32_matmul_precision("high")``), ``backends.cuda.matmul.allow_tf32`` reads and
    writes the float32 matmul precision. (PyTorch 2.13 itself refuses to read the precision
    once both spellings were used, so it cannot be the oracle here.)"""
    lib = convlab
    before = lib.get_float32_matmul_precision()
    try:
        lib.backends.cuda.matmul.allow_tf32 = True
        assert lib.get_float32_matmul_precision() == "high"
        lib.set_float32_matmul_precision("medium")
        assert lib.backends.cuda.matmul.allow_tf32 is True
        lib.backends.cuda.matmul.allow_tf32 = False
        assert lib.get_float32_matmul_precision() == "highest"
        assert lib.backends.cuda.matmul.allow_tf32 is False
    finally:
        lib.set_float32_matmul_precision(before)


def test_the_typical_device_selection_lines_run():
    use_cuda = convlab.cuda.is_available()
    device = convlab.device("cuda" if use_cuda else "cpu")
    accel = (
        convlab.accelerator.current_accelerator()
        if convlab.accelerator.is_available()
        else (convlab.device("cpu"))
    )
    x = convlab.randn(2, 3).to(device)
    expected = "cuda:0" if convlab.get_backend("gpu").is_available() else "cpu"
    assert x.device == accel == expected


def test_import_does_not_import_cupy():
    code = "import sys, convlab; convlab.device('cuda'); print('cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_device_json_and_deepcopy():
    d = convlab.device("cuda:0")
    assert copy.deepcopy(d) == d and str(copy.deepcopy(d)) == "cuda:0"
    with pytest.raises(AttributeError):
        d.index = 1


LEGACY = [
    ("Tensor", lambda m: m.Tensor(np.array([1, 2], dtype=np.uint8))),
    ("Tensor_list", lambda m: m.Tensor([[1, 2], [3, 4]])),
    ("Tensor_sizes", lambda m: m.Tensor(2, 3).zero_()),
    ("Tensor_empty", lambda m: m.Tensor()),
    ("FloatTensor", lambda m: m.FloatTensor([1, 2])),
    ("FloatTensor_size", lambda m: m.FloatTensor(3).zero_()),
    ("DoubleTensor", lambda m: m.DoubleTensor([1.5])),
    ("LongTensor", lambda m: m.LongTensor([1, 2, 3])),
    ("IntTensor", lambda m: m.IntTensor([1])),
    ("ByteTensor", lambda m: m.ByteTensor([1, 255])),
    ("BoolTensor", lambda m: m.BoolTensor([True, False])),
]


@pytest.mark.parametrize("name, make", LEGACY, ids=[c[0] for c in LEGACY])
def test_legacy_constructors_match_torch(name, make):
    ours, theirs = make(convlab), make(torch)
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_legacy_isinstance_checks_the_dtype():
    assert isinstance(convlab.LongTensor([1]), convlab.LongTensor)
    assert not isinstance(convlab.zeros(1), convlab.LongTensor)
    assert isinstance(convlab.zeros(1), convlab.FloatTensor)
    assert isinstance(convlab.LongTensor([1]), convlab.Tensor)
    assert not isinstance(convlab.zeros(1), convlab.cuda.FloatTensor)


def test_legacy_constructor_errors():
    with pytest.raises(TypeError, match="sizes"):
        convlab.Tensor([1], 2)
    with pytest.raises(RuntimeError, match="non-negative"):
        convlab.Tensor(2, -1)


def test_absent_device_and_layout_flags_are_false_as_on_torch_cpu():
    ours, theirs = convlab.zeros(2), torch.zeros(2)
    for flag in ("is_xpu", "is_mps", "is_meta", "is_sparse", "is_quantized", "is_mkldnn"):
        assert getattr(ours, flag) is False and getattr(theirs, flag) is False, flag
