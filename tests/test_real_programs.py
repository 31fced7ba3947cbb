"""Real third-party programs (pytorch/examples) run on convlab with only their imports changed.

Each program in ``tests/real_programs/pytorch_examples`` is run twice on the same tiny local
MNIST: the port against convlab and the unmodified original against PyTorch (with a
test-only torchvision stand-in). Both must finish and print finite losses of the same size;
different libraries draw different initial weights, so the numbers proper are checked by the
one-step tests below (mnist, regression, siamese_network), which copy PyTorch's weights into
the ported program's model and compare the loss and the updated weights.

Programs that fail here because convlab lacks a feature are the acceptance tests for it.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
import textwrap
from functools import cache
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import convlab
from conftest import needs_torch, torch
from data_files import write_tiny_mnist

HERE = Path(__file__).parent
PROGRAMS = HERE / "real_programs" / "pytorch_examples"
SHIM = HERE / "real_programs" / "torchvision_shim"
SRC = HERE.parent / "src"

# Command lines: one epoch (or --dry-run) on 64-128 images keeps each run to seconds.
ARGS = {
    "mnist": ["--dry-run", "--epochs", "1", "--batch-size", "64", "--test-batch-size", "50"],
    "mnist_hogwild": [
        *("--dry-run", "--epochs", "1", "--num-processes", "1", "--batch-size", "64"),
        *("--test-batch-size", "50"),
    ],
    "mnist_forward_forward": [
        *("--epochs", "6", "--train_size", "64", "--test_size", "50", "--log-interval", "5"),
    ],
    "regression": [],
    "siamese_network": [
        *("--dry-run", "--epochs", "1", "--batch-size", "16", "--test-batch-size", "50"),
    ],
    "vae": ["--epochs", "1", "--batch-size", "32"],
    "dcgan": [
        *("--dataset", "mnist", "--dataroot", "../data", "--dry-run", "--batchSize", "8"),
        *("--workers", "0", "--ngf", "8", "--ndf", "8", "--nz", "16", "--outf", "out"),
        *("--manualSeed", "1"),
    ],
}

# Programs of several files live in a folder of their name; the others are <name>.py.
MAIN = {"mnist_hogwild": "mnist_hogwild/main.py"}


def _files(name: str) -> list[str]:
    """The program's files, relative to ``PROGRAMS`` (and to ``PROGRAMS / "original"``)."""
    if name not in MAIN:
        return [f"{name}.py"]
    return sorted(str(p.relative_to(PROGRAMS)) for p in (PROGRAMS / name).glob("*.py"))


# How the original's import lines become the port's (README.md lists each program's lines).
PORT_RULES = [
    (r"^import torch$", "import convlab as torch"),
    (r"^import torch\.(\S+)", r"import convlab.\1"),
    (r"^from torch import ", "from convlab import "),
    (r"^from torch\.(\S+) import ", r"from convlab.\1 import "),
    (r"^import torchvision$", "import convlab.vision as torchvision"),
    (r"^import torchvision\.(\S+)", r"import convlab.vision.\1"),
    (r"^from torchvision import ", "from convlab.vision import "),
    (r"^from torchvision\.(\S+) import ", r"from convlab.vision.\1 import "),
]

LOSS = re.compile(r"\b(Loss(?:_[DG])?|loss):\s+(\S+?)(?:,|\s|$)")


def _port_line(line: str) -> str:
    for pattern, replacement in PORT_RULES:
        new, count = re.subn(pattern, replacement, line)
        if count:
            return new
    return line


@cache
def _run(name: str, library: str, root: Path) -> subprocess.CompletedProcess[str]:
    """Run program ``name`` (``library`` "convlab": the port, "torch": the original) in its
    own folder below ``root``, with the tiny MNIST in ``../data`` and ``./data`` (the
    programs' two habits)."""
    base = root / f"{name}-{library}"
    work = base / "work"
    for data in (base / "data", work / "data"):
        write_tiny_mnist(data, n_train=128, n_test=50, seed=3)
    (work / "results").mkdir(parents=True)  # vae writes its images there
    main = MAIN.get(name, f"{name}.py")
    script = PROGRAMS / main if library == "convlab" else PROGRAMS / "original" / main
    paths = [str(SHIM) if library == "torch" else str(SRC)]
    # One OpenMP thread each: the machine's cores are shared with the rest of the suite.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(script), *ARGS[name]],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _losses(output: str) -> list[tuple[str, float]]:
    return [(kind, float(value)) for kind, value in LOSS.findall(output)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("programs")
    return lambda name, library: _run(name, library, root)


def _check_ran(result: subprocess.CompletedProcess[str]) -> list[tuple[str, float]]:
    assert result.returncode == 0, result.stderr[-3000:]
    # A worker process can fail while the program exits 0 (mnist_hogwild joins and goes on).
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    losses = _losses(result.stdout)
    assert losses, result.stdout[-2000:]
    assert all(math.isfinite(v) for _, v in losses), losses
    return losses


@pytest.mark.parametrize("name", sorted(ARGS))
def test_port_changes_only_the_imports(name):
    changed = []
    for file in _files(name):
        original = (PROGRAMS / "original" / file).read_text().split("\n")
        port = (PROGRAMS / file).read_text().split("\n")
        assert port == [_port_line(line) for line in original], file
        changed += [(a, b) for a, b in zip(original, port) if a != b]
    assert changed and all(a.startswith(("import ", "from ")) for a, _ in changed)
    readme = (HERE / "real_programs" / "README.md").read_text()
    section = readme.split(f"### {name}\n")[1].split("###")[0]
    for a, b in changed:  # the README lists every changed line
        assert f"`{a}` -> `{b}`" in section


@pytest.mark.parametrize("name", sorted(ARGS))
def test_port_runs_on_convlab(name, runs):
    _check_ran(runs(name, "convlab"))


@needs_torch
@pytest.mark.parametrize("name", sorted(ARGS))
def test_original_runs_on_torch(name, runs):
    _check_ran(runs(name, "torch"))


@needs_torch
@pytest.mark.parametrize("name", sorted(ARGS))
def test_port_prints_what_torch_prints(name, runs):
    ours = _check_ran(runs(name, "convlab"))
    theirs = _check_ran(runs(name, "torch"))
    assert [k for k, _ in ours] == [k for k, _ in theirs]  # the same lines were printed
    if name == "regression":  # trained to the stop criterion: the fit is the proof
        assert ours[-1][1] < 1e-3
        learned, actual = (
            [float(v) for v in re.findall(r"([+-]\d+\.\d+)", line)]
            for line in runs(name, "convlab").stdout.splitlines()[-2:]
        )
        assert len(learned) == len(actual) == 5
        np.testing.assert_allclose(learned, actual, atol=0.1)
        return
    # Untrained networks on the same data: the first losses agree to within what different
    # initial weights give (mnist: ~ln 10, vae: ~784 ln 2 per image, dcgan: ~2 ln 2 / ln 2).
    # (Later losses follow different trajectories.)
    # mnist_forward_forward: ~log1p(exp(threshold)) / 2 + log1p(exp(-threshold)) / 2.
    tolerance = {
        "mnist": 0.3,
        "mnist_forward_forward": 0.2,
        "siamese_network": 0.7,  # BCE of untrained sigmoid outputs: ln 2 give or take
        "vae": 0.03 * theirs[0][1],
        "dcgan": 1.0,
    }[name]
    first = 2 if name == "dcgan" else 1  # dcgan prints Loss_D and Loss_G on one line
    for (_, a), (_, b) in zip(ours[:first], theirs[:first]):
        assert abs(a - b) < tolerance, (ours, theirs)


# ---------------------------------------------------------------- one step, same weights


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _numpy(t):
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


@pytest.fixture
def program_modules(monkeypatch):
    """``load(name)``: the original program (on torch, with the torchvision stand-in) and the
    port (on convlab) imported as modules; only their definitions run (``__main__`` guard)."""
    monkeypatch.syspath_prepend(str(SHIM))
    for key in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
        monkeypatch.delitem(sys.modules, key)

    def load(name: str) -> tuple[ModuleType, ModuleType]:
        original = _load(PROGRAMS / "original" / f"{name}.py", f"_pytorch_examples_{name}_t")
        return original, _load(PROGRAMS / f"{name}.py", f"_pytorch_examples_{name}_c")

    return load


@needs_torch
def test_mnist_net_one_step_matches_torch(program_modules):
    """The program's Net, Adadelta(lr=1.0) and nll_loss: one training step from PyTorch's
    weights. Dropout is off (eval mode): its masks come from each library's generator."""
    original, port = program_modules("mnist")
    torch.manual_seed(0)
    theirs = original.Net().eval()
    ours = port.Net().eval()
    ours.load_state_dict(convlab.utils.from_torch_state_dict(theirs.state_dict()))
    rng = np.random.default_rng(0)
    x = ((rng.random((6, 1, 28, 28)) - 0.1307) / 0.3081).astype(np.float32)
    y = rng.integers(0, 10, 6)
    opt_t = torch.optim.Adadelta(theirs.parameters(), lr=1.0)
    opt_c = convlab.optim.Adadelta(ours.parameters(), lr=1.0)
    for _ in range(2):
        losses = []
        for model, opt, lib, f in (
            (theirs, opt_t, torch, torch.nn.functional),
            (ours, opt_c, convlab, convlab.nn.functional),
        ):
            opt.zero_grad()
            loss = f.nll_loss(model(lib.tensor(x)), lib.tensor(y))
            loss.backward()
            opt.step()
            losses.append(loss.item())
        np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
        for (name, a), (_, b) in zip(theirs.named_parameters(), ours.named_parameters()):
            np.testing.assert_allclose(_numpy(b), _numpy(a), rtol=1e-5, atol=1e-5, err_msg=name)


@needs_torch
def test_siamese_network_step_matches_torch(program_modules):
    """The program's SiameseNetwork (torchvision's resnet18 inside), BCELoss and
    Adadelta(lr=1.0): one training step (BatchNorm in training mode) from PyTorch's weights,
    then the loss after it. In float64: in float32 the first conv's gradients (tiny, through
    twenty layers and BatchNorm over four samples) carry ~1e-3 relative rounding, which
    Adadelta's first step passes on to the weights."""
    original, port = program_modules("siamese_network")
    torch.manual_seed(0)
    theirs = original.SiameseNetwork().double()
    ours = port.SiameseNetwork().to(convlab.float64)
    state = theirs.state_dict()
    assert list(ours.state_dict()) == list(state)
    ours.load_state_dict(convlab.utils.from_torch_state_dict(state))
    rng = np.random.default_rng(2)
    a, b = rng.random((2, 4, 1, 16, 16)) * 255  # any size: resnet18 pools adaptively
    y = np.array([1.0, 0.0, 1.0, 0.0])
    losses: list[list[float]] = [[], []]
    for model, lib in ((theirs, torch), (ours, convlab)):
        opt = lib.optim.Adadelta(model.parameters(), lr=1.0)
        for step in range(2):
            opt.zero_grad()
            loss = lib.nn.BCELoss()(model(lib.tensor(a), lib.tensor(b)).squeeze(), lib.tensor(y))
            losses[step].append(loss.item())
            if step == 0:
                loss.backward()
                opt.step()
    for first, second in losses:
        np.testing.assert_allclose(second, first, rtol=1e-7)
    for (name, t), (_, c) in zip(theirs.state_dict().items(), ours.state_dict().items()):
        expected = _numpy(t)
        scale = max(np.abs(expected).max(), 1.0)  # weights, running stats, step counts
        np.testing.assert_allclose(_numpy(c), expected, atol=1e-9 * scale, err_msg=name)


def _regression_namespace(library: str) -> tuple[dict, str]:
    """The program's definitions (run up to its model) and its training-loop body."""
    path = PROGRAMS / ("regression.py" if library == "convlab" else "original/regression.py")
    source = path.read_text()
    head, rest = source.split("# Define model\n")
    body = rest.split("for batch_idx in count(1):\n")[1].split("    # Stop criterion")[0]
    namespace: dict = {"__name__": f"_regression_{library}"}
    exec(compile(head, str(path), "exec"), namespace)
    return namespace, textwrap.dedent(body)


@needs_torch
def test_regression_steps_match_torch():
    """The program's own loop body (smooth_l1_loss, backward, ``param.data.add_``) for five
    steps from the same weights and batches in both libraries."""
    theirs, body_t = _regression_namespace("torch")
    ours, body_c = _regression_namespace("convlab")
    assert body_c == body_t
    ours["W_target"] = convlab.tensor(_numpy(theirs["W_target"]))
    ours["b_target"] = convlab.tensor(_numpy(theirs["b_target"]))
    theirs["fc"] = torch.nn.Linear(4, 1)
    ours["fc"] = convlab.nn.Linear(4, 1)
    ours["fc"].load_state_dict(convlab.utils.from_torch_state_dict(theirs["fc"].state_dict()))
    rng = np.random.default_rng(1)
    for _ in range(5):
        x = rng.standard_normal(32).astype(np.float32)
        for ns, lib in ((theirs, torch), (ours, convlab)):
            features = ns["make_features"](lib.tensor(x))
            batch = (features, ns["f"](features))
            ns["get_batch"] = lambda batch=batch: batch
            exec(body_t, ns)
        np.testing.assert_allclose(ours["loss"], theirs["loss"], rtol=1e-5)
        for key in ("weight", "bias"):
            np.testing.assert_allclose(
                _numpy(getattr(ours["fc"], key)),
                _numpy(getattr(theirs["fc"], key)),
                rtol=1e-5,
                atol=1e-6,
            )
