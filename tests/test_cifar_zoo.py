"""The CIFAR model zoo (kuangliu/pytorch-cifar) with only ``import torch`` changed (issue 29).

``real_programs/cifar_zoo/models`` is the zoo's ``models/`` package with its imports pointed at
convlab, ``real_programs/cifar_zoo/torch_models`` the same files verbatim, run by PyTorch as the
oracle. For every model: it builds with the same parameter names and shapes as PyTorch's, the
eval-mode output with PyTorch's weights (and perturbed running statistics) equals PyTorch's, and
one train-mode step (cross-entropy, backward) gives PyTorch's loss, input gradient, parameter
gradients and updated running statistics; both on the CPU and, where a GPU backend is usable
(``CONVLAB_CUDA_EMULATOR=1 ... -k gpu``), on the GPU. ``real_programs/cifar_zoo/main.py`` (the
zoo's training script, imports changed) runs a few batches on a tiny local CIFAR-10.
"""

from __future__ import annotations

import hashlib
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

ZOO = Path(__file__).parent / "real_programs" / "cifar_zoo"

#: model -> (constructor arguments, batch). The arguments are those of the constructor calls in
#: the zoo's main.py; batch 2 keeps train-mode batch norm defined (PyTorch refuses one value per
#: channel) and the whole zoo within about a minute on two cores.
MODELS: dict[str, tuple[tuple, int]] = {
    "VGG": (("VGG19",), 2),
    "ResNet18": ((), 2),
    "PreActResNet18": ((), 2),
    "GoogLeNet": ((), 1),
    "DenseNet121": ((), 1),
    "ResNeXt29_2x64d": ((), 2),
    "MobileNet": ((), 1),
    "MobileNetV2": ((), 1),
    "DPN92": ((), 1),
    "SENet18": ((), 1),
    "ShuffleNetV2": ((1,), 2),
    "EfficientNetB0": ((), 2),
    "RegNetX_200MF": ((), 1),
    "SimpleDLA": ((), 1),
    "DLA": ((), 1),
    "LeNet": ((), 2),
    "PNASNetB": ((), 1),
}


#: The backend under test (conftest parametrizes ``backend``: the GPU runs where one is usable,
#: e.g. on the CUDA emulator) -> the device name a PyTorch program passes to ``.to``.
DEVICES = {"cpu": "cpu", "gpu": "cuda"}


def _load_package(name: str, folder: Path) -> types.ModuleType:
    """Import ``folder`` as the package ``name`` (the zoo's ``from .vgg import *`` needs one)."""
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
def zoo() -> types.ModuleType:
    return _load_package("cifar_zoo_convlab_models", ZOO / "models")


@pytest.fixture(scope="module")
def torch_zoo() -> types.ModuleType:
    return _load_package("cifar_zoo_torch_models", ZOO / "torch_models")


def _torch_net(torch_zoo, name: str):
    """The PyTorch model with every parameter and buffer drawn at random (seeded), so that the
    eval-mode comparison exercises the running statistics and affine parameters too."""
    args, _ = MODELS[name]
    torch.manual_seed(0)
    net = getattr(torch_zoo, name)(*args)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for key, value in net.state_dict().items():
            if key.endswith("running_var"):
                value.copy_(0.5 + torch.rand(value.shape, generator=gen))
            elif key.endswith("running_mean"):
                value.copy_(0.1 * torch.randn(value.shape, generator=gen))
            elif key.endswith("bn.weight") or (value.dim() == 1 and "bn" in key):
                value.add_(0.1 * torch.randn(value.shape, generator=gen))
    return net


def _convlab_copy(zoo, torch_net, name: str):
    """The convlab model built by the zoo's own constructor with PyTorch's state_dict."""
    args, _ = MODELS[name]
    net = getattr(zoo, name)(*args)
    state = {k: convlab.tensor(v.detach().numpy()) for k, v in torch_net.state_dict().items()}
    net.load_state_dict(state)
    return net


def _batch(name: str) -> tuple[np.ndarray, np.ndarray]:
    _, batch = MODELS[name]
    rng = np.random.default_rng(2)
    x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    return x, rng.integers(0, 10, batch)


def _close(
    ours, theirs, what: str, rtol: float = 1e-4, scale_tol: float = 1e-4, floor: float = 0.0
) -> None:
    """Elementwise within rtol, plus an absolute slack relative to the reference's scale (a
    deep network's outputs differ by summation order only) and an absolute floor."""
    theirs = np.asarray(theirs)
    ours = np.asarray(ours)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != {theirs.shape}"
    atol = max(scale_tol * float(np.abs(theirs).max(initial=0.0)), floor)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, err_msg=what)


#: The port's whole diff: original line -> ported line (README.md lists them per file).
IMPORT_CHANGES = {
    "import torch": "import convlab as torch",
    "import torch.nn as nn": "import convlab.nn as nn",
    "import torch.nn.functional as F": "import convlab.nn.functional as F",
    "import torch.optim as optim": "import convlab.optim as optim",
    "import torch.backends.cudnn as cudnn": "import convlab.backends.cudnn as cudnn",
    "import torch.nn.init as init": "import convlab.nn.init as init",
    "import torchvision": "import convlab.vision as torchvision",
    "import torchvision.transforms as transforms": "import convlab.vision.transforms as transforms",
}


#: Git blob ids of the originals at the upstream commit (README.md): the copies are verbatim.
UPSTREAM_BLOBS = {
    "original/main.py": "05ca1eb9076ba7c4fa405001a4aebc834f2c27a2",
    "torch_models/__init__.py": "66dab207116f0012fb3b0ccca42ee2c1d703dac8",
    "torch_models/densenet.py": "47ebbbe08e40503d6785711acd8bd7dd2cdba768",
    "torch_models/dla.py": "269b7ffe23204b04162c96f0c75a7918c8c168f9",
    "torch_models/dla_simple.py": "3acaba68014993ed6235f6ce40272a226b32610a",
    "torch_models/dpn.py": "d334367fcc9876b104a94b7ae333362ea0a64469",
    "torch_models/efficientnet.py": "53d8c7b0567e48725f3c68ea6299bd8e4eabf3b5",
    "torch_models/googlenet.py": "de036d87d323ee4f9c5a2f7944068a9322b0630d",
    "torch_models/lenet.py": "d657b7482a75a3058e5795f367dfbb32e948b9d5",
    "torch_models/mobilenet.py": "497ef1e867d2a597b9b444ebc7a6f30cd5219777",
    "torch_models/mobilenetv2.py": "17e5823ef4426ceceae462782a267f89b1ecbc76",
    "torch_models/pnasnet.py": "de8c4d51f2667f84eab86f29be9a00ea7d0ad1c3",
    "torch_models/preact_resnet.py": "abb1bc313c011d2ee650c353c515e2cd404503f3",
    "torch_models/regnet.py": "5d59c1ab007b1b19b39b166f92c39ee70099b059",
    "torch_models/resnet.py": "b77694cefbf49fd6ca07fd25c6ce8f9f266642c2",
    "torch_models/resnext.py": "7a08f3e7d9fdf3b65aad5b773d4d113c6b796423",
    "torch_models/senet.py": "98bfa0ca51dcd07b586432c9f9460be8d1f0b745",
    "torch_models/shufflenet.py": "acff6f78266c55bb93f5b12a6306a5647ebb0769",
    "torch_models/shufflenetv2.py": "eefcda32059f0b8575148098c78ff5d84effd388",
    "torch_models/vgg.py": "08347ffa999c0cf71418f36a50fa649bd4dabea7",
    "original/utils.py": "4c9b3f90c932571cc7da1643ef9514d495e9afe3",
}


def _port_pairs() -> list[tuple[Path, Path]]:
    pairs = [(ZOO / "torch_models" / p.name, p) for p in sorted((ZOO / "models").glob("*.py"))]
    return pairs + [(ZOO / "original" / n, ZOO / n) for n in ("main.py", "utils.py")]


def test_port_changes_only_the_imports():
    """The originals are upstream's files byte for byte (git blob ids), and every ported file
    equals its original but for IMPORT_CHANGES, line for line."""
    for name, blob in UPSTREAM_BLOBS.items():
        raw = (ZOO / name).read_bytes()
        assert hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest() == blob, name
    pairs = _port_pairs()
    assert len(pairs) == len(UPSTREAM_BLOBS) == 21  # the zoo's 19 model files, main.py and utils.py
    assert sorted(p.name for p in (ZOO / "torch_models").glob("*.py")) == [
        ported.name for _, ported in pairs[:-2]
    ]
    changed = 0
    for original, ported in pairs:
        before = original.read_text().splitlines()
        after = ported.read_text().splitlines()
        assert len(before) == len(after), ported
        for old, new in zip(before, after):
            if old != new:
                assert IMPORT_CHANGES.get(old) == new, f"{ported}: {old!r} -> {new!r}"
                changed += 1
    assert changed == 16 * 3 + 2 + 2 + 7 + 2  # as README.md lists them


@pytest.mark.parametrize("name", list(MODELS))
def test_builds_with_pytorch_names_and_shapes(zoo, torch_zoo, name):
    args, _ = MODELS[name]
    ours = getattr(zoo, name)(*args)
    theirs = getattr(torch_zoo, name)(*args)
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in theirs.state_dict().items()
    ]
    assert [k for k, _ in ours.named_parameters()] == [k for k, _ in theirs.named_parameters()]
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())


def test_shufflenet_v1_fails_to_build_as_in_pytorch(zoo, torch_zoo):
    """ShuffleNetG2 passes a float channel count (Python 3's ``/``): PyTorch raises TypeError at
    the Conv2d, and so must we."""
    with pytest.raises(TypeError):
        torch_zoo.ShuffleNetG2()
    with pytest.raises(TypeError):
        zoo.ShuffleNetG2()


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
    assert tuple(got.shape) == expected.shape
    _close(got.cpu().numpy(), expected, f"{name} eval output")
    # eval mode must leave the running statistics alone
    for key, value in ours.state_dict().items():
        _close(value.cpu().numpy(), theirs.state_dict()[key].numpy(), f"{name} {key} after eval")


@pytest.mark.parametrize("name", list(MODELS))
def test_train_step_gradients_equal_pytorch(zoo, torch_zoo, name, backend):
    """One train-mode forward and backward, in float64: batch norm on two images normalises
    late layers over 2-8 values per channel, which amplifies float32 rounding so much that
    PyTorch's own float32 gradients differ from its float64 ones by up to 10% of their scale
    (measured on DenseNet121 and SimpleDLA); in float64 both libraries agree to ~1e-13."""
    theirs = _torch_net(torch_zoo, name).train()
    ours = _convlab_copy(zoo, theirs, name).train().double().to(DEVICES[backend.name])
    theirs = theirs.double()
    if name == "EfficientNetB0":
        # its head applies F.dropout in train mode; random masks cannot match across libraries,
        # so both copies run without it (the zoo reads the rate from the instance's cfg)
        theirs.cfg["dropout_rate"] = 0.0
        ours.cfg["dropout_rate"] = 0.0
    x, y = _batch(name)
    x = x.astype(np.float64)

    tx = torch.tensor(x, requires_grad=True)
    t_loss = torch.nn.functional.cross_entropy(theirs(tx), torch.from_numpy(y))
    t_loss.backward()

    cx = convlab.tensor(x, device=DEVICES[backend.name], requires_grad=True)
    c_loss = convlab.nn.functional.cross_entropy(ours(cx), convlab.tensor(y, device=cx.device))
    c_loss.backward()

    # a conv bias followed by batch norm has a zero gradient in exact arithmetic: ~1e-15 here
    tight = {"rtol": 1e-7, "scale_tol": 1e-9, "floor": 1e-12}
    assert cx.grad.dtype == convlab.float64
    _close(c_loss.item(), t_loss.item(), f"{name} loss", **tight)
    _close(cx.grad.cpu().numpy(), tx.grad.numpy(), f"{name} input gradient", **tight)
    t_params = dict(theirs.named_parameters())
    for key, param in ours.named_parameters():
        reference = t_params[key].grad
        assert (param.grad is None) == (reference is None), f"{name} {key}: gradient presence"
        if reference is not None:
            grad = param.grad.cpu().numpy()
            _close(grad, reference.numpy(), f"{name} {key} gradient", **tight)
    # train mode updates batch norm's running statistics and counters as PyTorch does
    t_state = theirs.state_dict()
    for key, value in ours.state_dict().items():
        got = value.cpu().numpy()
        _close(got, t_state[key].numpy(), f"{name} {key} after a train step", **tight)


@pytest.mark.parametrize("version", ["convlab", "torch"])
def test_zoo_main_trains_on_tiny_cifar10(tmp_path, zoo, torch_zoo, version):
    """The zoo's main.py trains and tests SimpleDLA on a tiny CIFAR-10 through two epochs:
    progress lines with finite losses, the same accuracies and a checkpoint that loads back.
    "convlab" runs the port; "torch" runs the original on PyTorch (torchvision_shim/ standing
    in for the uninstalled torchvision), which must print the same kind of lines."""
    from data_files import CIFAR_NAMES, cifar_batch, write_cifar_bin, write_cifar_py

    rng = np.random.default_rng(3)
    batches = {name: cifar_batch(rng, 4) for name in CIFAR_NAMES[:-1]}
    # ten copies of one image labelled 0..9: whatever the network predicts for it, exactly one
    # is right, so the first test accuracy is 10% and main.py saves its checkpoint (acc > 0)
    image, _ = cifar_batch(rng, 1)
    batches["test_batch"] = (np.repeat(image, 10, axis=0), np.arange(10))
    write_cifar_py(tmp_path / "data", batches)  # torchvision's format, read by convlab.vision
    write_cifar_bin(tmp_path / "data", batches)  # the same images, read by the shim
    # utils.py reads the terminal width from `stty size` at import; a test has no terminal
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stty = bin_dir / "stty"
    stty.write_text("#!/bin/sh\necho 24 80\n")
    stty.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    if version == "convlab":
        script = ZOO / "main.py"
    else:  # the original's layout: main.py, utils.py and models/ side by side
        program = tmp_path / "original"
        program.mkdir()
        for name in ("main.py", "utils.py"):
            (program / name).write_bytes((ZOO / "original" / name).read_bytes())
        (program / "models").symlink_to(ZOO / "torch_models")
        script = program / "main.py"
        env["PYTHONPATH"] = str(ZOO / "torchvision_shim")
    process = subprocess.Popen(
        [sys.executable, str(script), "--lr", "0.01"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    assert process.stdout is not None
    try:
        # main.py runs 200 epochs; two show training, testing and checkpointing
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Epoch: 2"):
                break
    finally:
        process.kill()
        process.wait()
    output = "".join(lines)
    assert "Epoch: 2" in output and "Traceback" not in output, output[-4000:]
    progress = re.findall(r"Loss: (\S+) \| Acc: (\S+)% \((\d+)/(\d+)\)", output)
    assert len(progress) == 4, output[-4000:]  # (train, test) x 2 epochs, one batch each
    assert all(np.isfinite(float(loss)) for loss, *_ in progress)
    assert [(float(acc), n) for _, acc, _, n in progress[1::2]] == [(10.0, "10")] * 2
    assert [n for *_, n in progress[::2]] == ["20", "20"]  # 5 training batches of 4
    assert output.count("Saving..") == 1  # the second epoch's 10% is no improvement

    lib, models = (convlab, zoo) if version == "convlab" else (torch, torch_zoo)
    checkpoint = lib.load(tmp_path / "checkpoint" / "ckpt.pth")
    assert checkpoint["acc"] == 10.0 and checkpoint["epoch"] == 0
    models.SimpleDLA().load_state_dict(checkpoint["net"])
