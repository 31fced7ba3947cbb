"""Our CIFAR-10 model zoo (``real_programs/own_zoo``), run by PyTorch and by convlab from the
same source files (issue 29).

The zoo is written against PyTorch (``import torch``, ``import torch.nn as nn`` ...). PyTorch
imports it as it is; convlab imports a copy whose import lines alone are rewritten at test time
(``PORT_RULES``: ``torch`` -> ``convlab``, ``torchvision`` -> ``convlab.vision``). For every model:
it builds with PyTorch's parameter names and shapes; with PyTorch's weights (and perturbed
running statistics) the eval-mode output equals PyTorch's; one train-mode forward and backward
in float64 gives PyTorch's loss, input gradient, parameter gradients and running statistics. On
the CPU and, where a GPU backend is usable (``CONVLAB_CUDA_EMULATOR=1 ... -k gpu``), the GPU.
``train.py`` trains a few batches on a tiny local CIFAR-10 under both libraries and resumes from
its checkpoint.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import convlab
from conftest import needs_torch, torch

pytestmark = needs_torch

ZOO = Path(__file__).parent / "real_programs" / "own_zoo"


@pytest.fixture(scope="module", autouse=True)
def _torch_single_thread():
    """PyTorch, the reference, on one thread: these networks are too small to gain from two,
    and its spinning worker threads slow everything down on a shared two-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


#: The whole port: an import line matching the pattern becomes the replacement; every other
#: line stays as it is.
PORT_RULES = [
    (r"import torch", "import convlab as torch"),
    (r"import torch\.(\S+) as (\w+)", r"import convlab.\1 as \2"),
    (r"from torch(\.\S+)? import (.+)", r"from convlab\1 import \2"),
    (r"import torchvision", "import convlab.vision as torchvision"),
    (r"import torchvision\.(\S+) as (\w+)", r"import convlab.vision.\1 as \2"),
    (r"from torchvision(\.\S+)? import (.+)", r"from convlab.vision\1 import \2"),
]


def port_line(line: str) -> str:
    """``line`` with its import of torch or torchvision pointed at convlab."""
    for pattern, replacement in PORT_RULES:
        if re.fullmatch(pattern, line):
            return re.sub(pattern, replacement, line)
    return line


def port_tree(source: Path, target: Path) -> None:
    """Copy the zoo's Python files from ``source`` into ``target``, imports rewritten."""
    for path in sorted(source.rglob("*.py")):
        relative = path.relative_to(source)
        if relative.parts[0] == "torchvision_shim":
            continue  # the PyTorch run's stand-in for torchvision; convlab has convlab.vision
        lines = path.read_text().split("\n")
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        (target / relative).write_text("\n".join(port_line(line) for line in lines))


def _load_package(name: str, folder: Path) -> types.ModuleType:
    """Import ``folder`` as the package ``name`` (its modules import each other relatively)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ported(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("own_zoo_convlab")
    port_tree(ZOO, target)
    return target


@pytest.fixture(scope="module")
def zoo(ported) -> types.ModuleType:
    """The zoo's models package imported by convlab (the ported copy)."""
    package = _load_package("own_zoo_convlab_models", ported / "models")
    for module in package.__dict__.values():
        if isinstance(module, types.ModuleType) and module.__name__.startswith(package.__name__):
            assert module.nn is convlab.nn, module.__name__
    return package


@pytest.fixture(scope="module")
def torch_zoo() -> types.ModuleType:
    """The zoo's models package imported by PyTorch, as written."""
    return _load_package("own_zoo_torch_models", ZOO / "models")


#: test id -> (module, constructor, keyword arguments, batch). Widths are cut down where the
#: architecture has a width parameter, so that the zoo runs within about a minute on two cores;
#: batch 2 keeps train-mode batch norm defined on the 1x1 maps at the end of most networks.
MODELS: dict[str, tuple[str, str, dict, int]] = {
    "vgg11": ("vgg", "vgg11", {"width": 8}, 2),
    "vgg13": ("vgg", "vgg13", {"width": 8}, 2),
    "vgg16": ("vgg", "vgg16", {"width": 4}, 2),
    "vgg19": ("vgg", "vgg19", {"width": 4}, 2),
    "resnet18": ("resnet", "resnet18", {"width": 8}, 2),
    "resnet34": ("resnet", "resnet34", {"width": 4}, 2),
    "resnet50": ("resnet", "resnet50", {"width": 4}, 2),
    "preact_resnet18": ("preact_resnet", "preact_resnet18", {"width": 8}, 2),
    "googlenet": ("googlenet", "GoogLeNet", {"shrink": 8}, 2),
    "densenet121": ("densenet", "densenet121", {"growth_rate": 4}, 2),
    "resnext29": ("resnext", "ResNeXt29", {"cardinality": 4, "group_width": 4}, 2),
    "mobilenet": ("mobilenet", "MobileNet", {"width_mult": 0.25}, 2),
    "mobilenetv2": ("mobilenetv2", "MobileNetV2", {"width_mult": 0.25, "dropout": 0.0}, 2),
    "dpn26": ("dpn", "dpn26", {"shrink": 8}, 2),
    "shufflenet_g2": (
        "shufflenet",
        "ShuffleNet",
        {"groups": 2, "stage_channels": (40, 80, 160)},
        2,
    ),
    "shufflenet_g3": (
        "shufflenet",
        "ShuffleNet",
        {"groups": 3, "stage_channels": (48, 96, 192)},
        2,
    ),
    "shufflenetv2": ("shufflenetv2", "ShuffleNetV2", {"width_mult": 0.5, "depths": (2, 2, 2)}, 2),
    "senet18": ("senet", "senet18", {"width": 8}, 2),
    "efficientnet_b0": (
        "efficientnet",
        "EfficientNet",
        {"width_mult": 0.25, "dropout_rate": 0.0, "drop_connect_rate": 0.0},
        2,
    ),
    "regnetx_200mf": (
        "regnet",
        "RegNetX",
        {"depths": (1, 1, 4, 7), "widths": (12, 28, 76, 184), "group_width": 4},
        2,
    ),
    "dla": ("dla", "DLA", {"width": 4}, 2),
    "simple_dla": ("dla", "simple_dla", {"width": 4}, 2),
    "pnasnet": ("pnasnet", "PNASNet", {"width": 8, "cells_per_stage": 2}, 2),
    "lenet": ("lenet", "LeNet", {}, 2),
}


#: The backend under test (conftest parametrizes ``backend``) -> the device a program passes.
DEVICES = {"cpu": "cpu", "gpu": "cuda"}


def _build(package: types.ModuleType, name: str):
    module, constructor, kwargs, _ = MODELS[name]
    return getattr(getattr(package, module), constructor)(**kwargs)


def _torch_net(torch_zoo, name: str):
    """PyTorch's model with its batch norm statistics and affine parameters drawn at random
    (seeded), so that eval mode exercises the running statistics and activations reach the
    ranges where ReLU6 and the sigmoids are not linear."""
    torch.manual_seed(0)
    net = _build(torch_zoo, name)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                shape = module.running_var.shape
                module.running_var.copy_(0.5 + torch.rand(shape, generator=gen))
                module.running_mean.copy_(0.1 * torch.randn(shape, generator=gen))
                # gains up to 3.5 and unit biases push some activations past ReLU6's clip
                module.weight.copy_(0.5 + 3 * torch.rand(shape, generator=gen))
                module.bias.copy_(torch.randn(shape, generator=gen))
    return net


def _convlab_copy(zoo, torch_net, name: str):
    """convlab's model, built by the same constructor, with PyTorch's state_dict."""
    net = _build(zoo, name)
    state = {k: convlab.tensor(v.detach().numpy()) for k, v in torch_net.state_dict().items()}
    net.load_state_dict(state)
    return net


def _batch(name: str) -> tuple[np.ndarray, np.ndarray]:
    batch = MODELS[name][3]
    rng = np.random.default_rng(2)
    x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    return x, rng.integers(0, 10, batch)


def _close(ours, theirs, what: str, rtol=1e-4, scale_tol=1e-4, floor=0.0) -> None:
    """Elementwise within ``rtol``, plus an absolute slack of ``scale_tol`` times the
    reference's largest magnitude (deep networks differ by summation order) and a floor."""
    theirs = np.asarray(theirs)
    ours = np.asarray(ours)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != {theirs.shape}"
    atol = max(scale_tol * float(np.abs(theirs).max(initial=0.0)), floor)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, err_msg=what)


def test_port_rewrites_only_the_import_lines(ported):
    """The zoo is plain PyTorch code, and the convlab copy differs from it in import lines
    only, each one rewritten by PORT_RULES into an import of convlab."""
    originals = sorted(p for p in ZOO.rglob("*.py") if "torchvision_shim" not in p.parts)
    assert len(originals) == 19  # 17 model modules, models/__init__.py and train.py
    rewritten = 0
    for original in originals:
        before = original.read_text().split("\n")
        after = (ported / original.relative_to(ZOO)).read_text().split("\n")
        assert len(before) == len(after), original
        assert any(re.fullmatch(r"import torch\.nn as nn", line) for line in before) or (
            original.name == "__init__.py"
        ), f"{original} is not written against torch.nn"
        for old, new in zip(before, after):
            if old != new:
                assert re.fullmatch(r"(import|from) torch(vision)?\b.*", old), old
                assert re.fullmatch(r"(import|from) convlab\b.*", new), new
                rewritten += 1
            else:
                assert not re.match(r"\s*(import|from) torch", old), f"{original}: {old!r}"
    assert rewritten >= 17 * 2 + 8


def test_port_rules():
    assert port_line("import torch") == "import convlab as torch"
    assert port_line("import torch.nn as nn") == "import convlab.nn as nn"
    assert port_line("import torch.backends.cudnn as cudnn") == (
        "import convlab.backends.cudnn as cudnn"
    )
    assert port_line("from torch.utils.data import DataLoader") == (
        "from convlab.utils.data import DataLoader"
    )
    assert port_line("import torchvision") == "import convlab.vision as torchvision"
    assert port_line("import torchvision.transforms as transforms") == (
        "import convlab.vision.transforms as transforms"
    )
    assert port_line("x = torch.cat([a, b])") == "x = torch.cat([a, b])"
    assert port_line("import torchaudio") == "import torchaudio"


@pytest.mark.parametrize("name", list(MODELS))
def test_builds_with_pytorch_names_and_shapes(zoo, torch_zoo, name):
    ours, theirs = _build(zoo, name), _build(torch_zoo, name)
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in theirs.state_dict().items()
    ]
    assert [k for k, _ in ours.named_parameters()] == [k for k, _ in theirs.named_parameters()]


@pytest.mark.parametrize("name", list(MODELS))
def test_eval_output_equals_pytorch(zoo, torch_zoo, name, backend):
    device = DEVICES[backend.name]
    theirs = _torch_net(torch_zoo, name).eval()
    ours = _convlab_copy(zoo, theirs, name).eval().to(device)
    x, _ = _batch(name)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    with convlab.no_grad():
        got = ours(convlab.tensor(x, device=device))
    _close(got.cpu().numpy(), expected, f"{name} eval output")
    # eval mode leaves the running statistics alone
    for key, value in ours.state_dict().items():
        _close(value.cpu().numpy(), theirs.state_dict()[key].numpy(), f"{name} {key} after eval")


@pytest.mark.parametrize("name", list(MODELS))
def test_train_step_gradients_equal_pytorch(zoo, torch_zoo, name, backend):
    """One train-mode forward and backward in float64 (batch norm over two images amplifies
    float32 rounding in the late layers far beyond any useful tolerance; in float64 the two
    libraries agree to rounding). Dropout and drop connect are off in MODELS' arguments."""
    device = DEVICES[backend.name]
    theirs = _torch_net(torch_zoo, name).train()
    ours = _convlab_copy(zoo, theirs, name).train().double().to(device)
    theirs = theirs.double()
    x, y = _batch(name)
    x = x.astype(np.float64)

    tx = torch.tensor(x, requires_grad=True)
    t_loss = torch.nn.functional.cross_entropy(theirs(tx), torch.from_numpy(y))
    t_loss.backward()

    cx = convlab.tensor(x, device=device, requires_grad=True)
    c_loss = convlab.nn.functional.cross_entropy(ours(cx), convlab.tensor(y, device=device))
    c_loss.backward()

    # a bias followed by batch norm has a zero gradient in exact arithmetic: ~1e-16 here
    tight = {"rtol": 1e-7, "scale_tol": 1e-9, "floor": 1e-12}
    _close(c_loss.item(), t_loss.item(), f"{name} loss", **tight)
    _close(cx.grad.cpu().numpy(), tx.grad.numpy(), f"{name} input gradient", **tight)
    t_params = dict(theirs.named_parameters())
    for key, param in ours.named_parameters():
        reference = t_params[key].grad
        assert (param.grad is None) == (reference is None), f"{name} {key}: gradient presence"
        if reference is not None:
            _close(param.grad.cpu().numpy(), reference.numpy(), f"{name} {key} grad", **tight)
    t_state = theirs.state_dict()
    for key, value in ours.state_dict().items():
        _close(value.cpu().numpy(), t_state[key].numpy(), f"{name} {key} after a step", **tight)


def test_drop_connect_zeroes_whole_samples_in_training_only(zoo):
    """EfficientNet's drop connect (torch.empty(...).bernoulli_) keeps each sample's residual
    branch with probability 1 - rate, scaled by 1 / (1 - rate), and is the identity in eval."""
    drop_connect = zoo.efficientnet.drop_connect
    convlab.manual_seed(0)
    x = convlab.ones(4000, 2, 1, 1, dtype=convlab.float64)
    out = drop_connect(x, 0.25).numpy()
    per_sample = out[:, :, 0, 0]
    assert np.all(per_sample[:, 0] == per_sample[:, 1])  # one draw per sample
    assert set(np.unique(per_sample).tolist()) == {0.0, 1 / 0.75}
    assert abs((per_sample[:, 0] == 0).mean() - 0.25) < 0.03
    # in an MBConv block: per sample, the branch is dropped or doubled in training ...
    block = zoo.efficientnet.MBConv(8, 8, 6, 3, 1, drop_rate=0.5).double()
    inputs = convlab.tensor(np.random.default_rng(0).standard_normal((16, 8, 4, 4)))
    x = inputs.numpy()
    with convlab.no_grad():
        dropped = block(inputs).numpy() - x
        block.drop_rate = 0.0
        branch = block(inputs).numpy() - x
    kept = np.array([np.allclose(d, 2 * b, atol=1e-12) for d, b in zip(dropped, branch)])
    zeroed = np.array([np.all(d == 0) for d in dropped])
    assert np.all(kept ^ zeroed) and kept.any() and zeroed.any()
    # ... and always kept, unscaled, in eval mode
    block.eval()
    with convlab.no_grad():
        plain = block(inputs).numpy()
        block.drop_rate = 0.5
        np.testing.assert_array_equal(block(inputs).numpy(), plain)


def _tiny_cifar10(root: Path) -> None:
    """Four images per training batch; the test batch is ten copies of one image labelled
    0..9, so that whatever a network predicts, its test accuracy is exactly 10%."""
    from data_files import CIFAR_NAMES, cifar_batch, write_cifar_bin, write_cifar_py

    rng = np.random.default_rng(3)
    batches = {name: cifar_batch(rng, 4) for name in CIFAR_NAMES[:-1]}
    image, _ = cifar_batch(rng, 1)
    batches["test_batch"] = (np.repeat(image, 10, axis=0), np.arange(10))
    write_cifar_py(root, batches)  # torchvision's format, read by convlab.vision
    write_cifar_bin(root, batches)  # the same images, read by the PyTorch run's shim


@pytest.mark.parametrize("library", ["convlab", "torch"])
def test_train_py_trains_and_resumes_on_tiny_cifar10(tmp_path, ported, library):
    """train.py, unchanged but for its imports, trains LeNet for two epochs of two batches,
    saves the best checkpoint, and a second run with --resume continues after it."""
    _tiny_cifar10(tmp_path / "data")
    env = dict(os.environ)
    if library == "convlab":
        script = ported / "train.py"
    else:
        script = ZOO / "train.py"
        env["PYTHONPATH"] = str(ZOO / "torchvision_shim")
        env["OMP_NUM_THREADS"] = "1"  # as _torch_single_thread, for the reference run
    common = [sys.executable, str(script), "--arch", "lenet", "--batch-size", "4"]
    common += ["--workers", "0", "--max-batches", "2", "--data", str(tmp_path / "data")]
    common += ["--checkpoint", str(tmp_path / "ckpt" / "ckpt.pth"), "--seed", "0"]

    def run(*extra: str) -> str:
        done = subprocess.run(
            common + list(extra), cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    first = run("--epochs", "2")
    train = re.findall(r"epoch (\d) train loss (\S+) acc (\S+)% \((\d+)/(\d+)\)", first)
    test = re.findall(r"epoch (\d) test loss (\S+) acc (\S+)% \((\d+)/(\d+)\)", first)
    assert [(e, n) for e, *_, n in train] == [("0", "8"), ("1", "8")], first
    assert all(np.isfinite(float(loss)) for _, loss, *_ in train + test)
    assert [(e, acc, n) for e, _, acc, _, n in test] == [("0", "10.00", "10"), ("1", "10.00", "10")]
    assert first.count("saved checkpoint") == 1, first  # the second 10% is no improvement

    lib = convlab if library == "convlab" else torch
    checkpoint = lib.load(tmp_path / "ckpt" / "ckpt.pth")
    assert checkpoint["acc"] == 10.0 and checkpoint["epoch"] == 0
    assert set(checkpoint["net"]) == {
        f"{layer}.{kind}"
        for layer in ("conv1", "conv2", "fc1", "fc2", "fc3")
        for kind in ("weight", "bias")
    }
    assert len(checkpoint["optimizer"]["state"]) == 10  # a momentum buffer per parameter

    resumed = run("--epochs", "3", "--resume")
    assert "resumed from epoch 0 (best accuracy 10.00%)" in resumed, resumed
    assert re.findall(r"epoch (\d) train", resumed) == ["1", "2"], resumed
