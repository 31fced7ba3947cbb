"""Our own PyTorch programs (``tests/real_programs/own_programs``) run on convlab with only
their import lines changed.

Each program is an ordinary PyTorch user script (command line, device selection,
torchvision datasets and transforms, DataLoader, nn.Module models, training and test loops,
schedulers, checkpoints). It is run twice on the same tiny local data: as written, against
PyTorch (with the test-only torchvision stand-in ``real_programs/torchvision_shim``; all
programs in one child process, which imports PyTorch once), and after ``PORT_RULES``
rewrite its imports to convlab (a child process each). Both runs must finish, print the same
lines (numbers aside) and finite losses, and the first losses of the untrained networks must
agree to within what different initial weights give. The numbers proper are checked by the
one-step tests below: they copy PyTorch's weights into the convlab model and run the
program's own training functions in both libraries.

Programs that fail here because convlab lacks a feature are the acceptance tests for it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import convlab
from conftest import needs_gpu, needs_torch, torch
from data_files import CIFAR_NAMES, cifar_batch, write_cifar_bin, write_tiny_mnist

HERE = Path(__file__).parent
PROGRAMS = HERE / "real_programs" / "own_programs"
SHIM = HERE / "real_programs" / "torchvision_shim"

# Command lines: tiny models, one epoch or a few batches each, so a run takes seconds.
ARGS = {
    "mnist_cnn": [
        *("--dry-run", "--epochs", "2", "--batch-size", "32", "--test-batch-size", "50"),
        *("--workers", "1", "--save-model"),
    ],
    "regression": [],
    "dcgan": [
        *("--iterations", "2", "--epochs", "1", "--batch-size", "8", "--workers", "0"),
        *("--ngf", "8", "--ndf", "8", "--nz", "16", "--seed", "1", "--outf", "out"),
    ],
    "vae": ["--epochs", "1", "--batch-size", "32", "--log-interval", "2"],
    "siamese": [
        *("--dry-run", "--epochs", "1", "--batch-size", "16", "--test-batch-size", "50"),
        "--save-model",
    ],
    "forward_forward": [
        *("--epochs", "6", "--train-size", "64", "--test-size", "50", "--log-interval", "5"),
        *("--hidden", "32"),
    ],
    "conv_autoencoder": ["--epochs", "1", "--batch-size", "32", "--log-interval", "2"],
    "cifar10_classifier": [
        *("--layout", "tiny", "--epochs", "2", "--batch-size", "16", "--lr", "0.05"),
        *("--workers", "0", "--log-interval", "2"),
    ],
    "word_language_model": [
        *("--model", "LSTM", "--tied", "--emsize", "16", "--nhid", "16", "--nlayers", "2"),
        *("--epochs", "2", "--batch_size", "4", "--bptt", "8", "--log-interval", "1"),
        *("--words", "30"),
    ],
    "sequence_classifier": [
        *("--epochs", "2", "--batch-size", "16", "--train-size", "64", "--test-size", "32"),
        *("--max-len", "10", "--hidden", "8", "--log-interval", "2"),
    ],
    "time_series_lstm": [
        *("--steps", "3", "--waves", "8", "--length", "40", "--hidden", "8", "--future", "10"),
    ],
}

# Programs that choose a device (``--no-accel`` keeps them on the CPU).
ON_DEVICE = sorted(set(ARGS) - {"regression"})

# How a program's import lines become convlab's: torch -> convlab, torchvision ->
# convlab.vision. Nothing else in a program changes.
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
TORCH_IMPORT = re.compile(r"^\s*(import|from)\s+torch(vision)?\b", re.MULTILINE)

LOSS = re.compile(r"\b(?:Loss(?:_[DG])?|loss):\s+([^\s,]+)")
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?|\bnan\b|\binf\b")


def _port_line(line: str) -> str:
    for pattern, replacement in PORT_RULES:
        new, count = re.subn(pattern, replacement, line)
        if count:
            return new
    return line


def _port(source: str) -> str:
    return "\n".join(_port_line(line) for line in source.split("\n"))


@cache
def _ported(name: str, root: Path) -> Path:
    """The convlab version of program ``name``, written below ``root``."""
    path = root / "ported" / f"{name}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_port((PROGRAMS / f"{name}.py").read_text()))
    return path


def _write_data(base: Path) -> None:
    """Tiny MNIST and FashionMNIST where the programs look: ``../data`` in torchvision's
    ``<Name>/raw`` layout and ``./data`` flat (forward_forward's habit); a tiny CIFAR-10
    (16 images a training batch, 40 test images) in ``../data/cifar-10-batches-bin``."""
    for folder, seed in (("MNIST/raw", 3), ("FashionMNIST/raw", 4)):
        write_tiny_mnist(base / "data" / folder, n_train=128, n_test=50, seed=seed)
    write_tiny_mnist(base / "work" / "data", n_train=128, n_test=50, seed=3)
    rng = np.random.default_rng(5)
    batches = {name: cifar_batch(rng, 40 if name == "test_batch" else 16) for name in CIFAR_NAMES}
    write_cifar_bin(base / "data", batches)
    _write_text(base / "data" / "text", rng)


# The word language model's vocabulary: 24 made-up words (no digits: the output is compared
# with every number masked).
WORDS = [a + b for a in ("ka", "lo", "mi", "su") for b in ("ra", "ne", "to", "vi", "pu", "de")]


def _write_text(folder: Path, rng: np.random.Generator) -> None:
    """A tiny text corpus in the word language model's layout: ``train.txt`` (80 lines),
    ``valid.txt`` and ``test.txt`` (20 each) of 3 to 10 words."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, lines in (("train", 80), ("valid", 20), ("test", 20)):
        text = "".join(
            " ".join(rng.choice(WORDS, rng.integers(3, 11))) + "\n" for _ in range(lines)
        )
        (folder / f"{split}.txt").write_text(text)


def _workdir(name: str, library: str, root: Path) -> Path:
    return root / f"{name}-{library}" / "work"


# Runs a script with the CUDA emulator installed first (conftest.py's switch, in a child).
EMULATED = (
    "import runpy, sys; sys.path.insert(0, sys.argv[1]); import cuda_emulator; "
    "cuda_emulator.install(); sys.argv = sys.argv[2:]; runpy.run_path(sys.argv[0], "
    "run_name='__main__')"
)


# Runs the programs of a JSON list [[name, folder, script, *argv], ...] one after another in
# one process as ``__main__`` (each in its folder, with its argv), writing each one's exit
# status, stdout and stderr to a JSON file: PyTorch is imported once instead of once a program
# (seconds each on this machine).
ONE_PROCESS = """
import contextlib, io, json, os, runpy, sys, traceback
jobs, report, results = json.loads(sys.argv[1]), sys.argv[2], {}
for name, folder, script, *argv in jobs:
    os.chdir(folder)
    sys.argv = [script, *argv]
    out, err, status = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as stop:
            status = stop.code if isinstance(stop.code, int) else 1
        except BaseException:
            traceback.print_exc()
            status = 1
    results[name] = [status, out.getvalue(), err.getvalue()]
with open(report, "w") as f:
    json.dump(results, f)
"""


def _command(name: str, library: str, root: Path) -> list[str]:
    """Program ``name``'s script and arguments for ``library``, its data written."""
    _write_data(_workdir(name, library, root).parent)
    script = PROGRAMS / f"{name}.py" if library == "torch" else _ported(name, root)
    command = [str(script), *ARGS[name]]
    if library != "convlab-gpu" and name in ON_DEVICE:
        command.append("--no-accel")
    return command


def _environment(library: str) -> dict[str, str]:
    # One OpenMP thread each: the machine's cores are shared with the rest of the suite.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if library == "torch":
        env["PYTHONPATH"] = str(SHIM)  # the torchvision stand-in; torch itself is installed
    # convlab runs use the installed convlab (a source tree has no compiled kernels unless it
    # was installed in editable mode)
    return env


@cache
def _torch_runs(root: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every program as written, on PyTorch, one after another in one child process."""
    jobs = [
        [name, str(_workdir(name, "torch", root)), *_command(name, "torch", root)] for name in ARGS
    ]
    report = root / "torch-runs.json"
    child = subprocess.run(
        [sys.executable, "-c", ONE_PROCESS, json.dumps(jobs), str(report)],
        env=_environment("torch"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if not report.exists():  # the child itself failed: every program's test says so
        return {name: subprocess.CompletedProcess(name, 1, "", child.stderr) for name in ARGS}
    return {
        name: subprocess.CompletedProcess(name, status, out, err)
        for name, (status, out, err) in json.loads(report.read_text()).items()
    }


@cache
def _run(name: str, library: str, root: Path) -> subprocess.CompletedProcess[str]:
    """Run program ``name`` on ``library`` in a fresh folder below ``root``: "torch" (as
    written), "convlab" (ported, on the CPU) or "convlab-gpu" (ported, on the accelerator
    it finds: a GPU or, with ``CONVLAB_CUDA_EMULATOR=1``, the emulator). The convlab runs
    are a process each, as a user starts them."""
    if library == "torch":
        return _torch_runs(root)[name]
    command = [sys.executable, *_command(name, library, root)]
    if library == "convlab-gpu" and os.environ.get("CONVLAB_CUDA_EMULATOR") == "1":
        command[1:1] = ["-c", EMULATED, str(HERE)]
    return subprocess.run(
        command,
        cwd=_workdir(name, library, root),
        env=_environment(library),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def programs_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("programs")


@pytest.fixture(scope="module")
def runs(programs_root):
    """``runs(name, library)``: the program's finished run (each runs once per module)."""
    return lambda name, library: _run(name, library, programs_root)


def _check_ran(result: subprocess.CompletedProcess[str]) -> list[float]:
    """The run's printed losses, after checking that it finished cleanly."""
    assert result.returncode == 0, result.stderr[-3000:]
    # A DataLoader worker can fail while the program goes on.
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    losses = [float(v) for v in LOSS.findall(result.stdout)]
    assert losses, result.stdout[-2000:]
    assert all(math.isfinite(v) for v in losses), losses
    return losses


def _skeleton(output: str) -> list[str]:
    """The printed lines with every number replaced by ``#``."""
    return [NUMBER.sub("#", line) for line in output.splitlines()]


@pytest.mark.parametrize("name", sorted(ARGS))
def test_program_is_plain_pytorch_and_ports_by_imports_alone(name, tmp_path):
    source = (PROGRAMS / f"{name}.py").read_text()
    assert "convlab" not in source  # written against PyTorch only
    ported = _ported(name, tmp_path).read_text()
    changed = [
        (a, b) for a, b in zip(source.split("\n"), ported.split("\n"), strict=True) if a != b
    ]
    assert changed and all(a.startswith(("import torch", "from torch")) for a, _ in changed)
    assert all(b.startswith(("import convlab", "from convlab")) for _, b in changed)
    assert not TORCH_IMPORT.search(ported)  # every torch / torchvision import was rewritten


def test_torchvision_shim_is_independent_of_convlab():
    imports = re.compile(r"^\s*(?:import|from)\s+(\w+)", re.MULTILINE)
    modules = {m for path in SHIM.rglob("*.py") for m in imports.findall(path.read_text())}
    assert modules and "convlab" not in modules and "torch" in modules


@pytest.mark.parametrize("name", sorted(ARGS))
def test_program_runs_on_convlab(name, runs):
    _check_ran(runs(name, "convlab"))


@needs_gpu
@pytest.mark.parametrize("name", ON_DEVICE)
def test_program_runs_on_convlab_gpu(name, runs):
    """The program finds the accelerator itself (``torch.accelerator`` / ``torch.cuda``)
    and prints what it prints on the CPU."""
    on_gpu, on_cpu = runs(name, "convlab-gpu"), runs(name, "convlab")
    _check_ran(on_gpu)
    printed = on_gpu.stdout
    if name == "cifar10_classifier":  # the one that says where it runs
        assert "Using device: cuda\n" in printed and "Using device: cpu\n" in on_cpu.stdout
        printed = printed.replace("Using device: cuda\n", "Using device: cpu\n")
    assert _skeleton(printed) == _skeleton(on_cpu.stdout)


@needs_torch
@pytest.mark.parametrize("name", sorted(ARGS))
def test_program_runs_on_torch(name, runs):
    _check_ran(runs(name, "torch"))


@needs_torch
@pytest.mark.parametrize("name", sorted(ARGS))
def test_convlab_prints_what_torch_prints(name, runs, programs_root):
    ours_run, theirs_run = runs(name, "convlab"), runs(name, "torch")
    ours, theirs = _check_ran(ours_run), _check_ran(theirs_run)
    assert _skeleton(ours_run.stdout) == _skeleton(theirs_run.stdout)
    if name == "regression":  # trained to the stop criterion: the fit is the proof
        assert ours[-1] < 1e-3
        learned, actual = (
            [float(v) for v in re.findall(r"([+-]\d+\.\d+)", line)]
            for line in ours_run.stdout.splitlines()[-2:]
        )
        assert len(learned) == len(actual) == 5
        np.testing.assert_allclose(learned, actual, atol=0.1)
        return
    # Untrained networks on the same data: the first losses agree to within what different
    # initial weights give (mnist_cnn: ~ln 10; vae: ~784 ln 2 per image; dcgan: Loss_D
    # ~2 ln 2 and Loss_G ~ln 2; siamese: ln 2 give or take; forward_forward: softplus of
    # +-threshold; conv_autoencoder: the squared error of sigmoid(~0) against uniform pixels).
    tolerance = {
        "mnist_cnn": 0.3,
        "dcgan": 1.0,
        "vae": 0.03 * theirs[0],
        "siamese": 0.7,
        "forward_forward": 0.2,
        "conv_autoencoder": 0.05,
        "cifar10_classifier": 0.3,  # ~ln 10: the last layer starts near zero
        "word_language_model": 0.3,  # ~ln 25 (24 words and <eos>): small uniform weights
        "sequence_classifier": 0.3,  # ~ln 3
        "time_series_lstm": 0.2,  # ~1/2, the mean square of a sine, give or take the bias
    }[name]
    first = 2 if name == "dcgan" else 1  # dcgan prints Loss_D and Loss_G on one line
    for a, b in zip(ours[:first], theirs[:first], strict=True):
        assert abs(a - b) < tolerance, (ours, theirs)
    # Files the programs save: checkpoints and image grids.
    saved = {
        "mnist_cnn": ["mnist_cnn.pt"],
        "dcgan": ["out/fake_epoch_000.png", "out/net_g_epoch_0.pth", "out/real_samples.png"],
        "vae": ["results/reconstruction_1.png", "results/sample_1.png"],
        "siamese": ["siamese.pt"],
        "conv_autoencoder": ["autoencoder_out/best.pt", "autoencoder_out/reconstructions.png"],
        "cifar10_classifier": ["checkpoint/cifar10.pth"],
        "word_language_model": ["model.pt", "generated.txt"],
        "sequence_classifier": ["gru_classifier.pt"],
        "time_series_lstm": ["sine_lstm.pt"],
    }.get(name, [])
    work = _workdir(name, "convlab", programs_root)
    for file in saved:
        assert (work / file).stat().st_size > 0, file


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
def program_modules(monkeypatch, tmp_path):
    """``load(name)``: the program as written (on torch, with the torchvision stand-in) and
    ported (on convlab), imported as modules; only their definitions run (``__main__``
    guard)."""
    monkeypatch.syspath_prepend(str(SHIM))
    for key in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
        monkeypatch.delitem(sys.modules, key)

    def load(name: str) -> tuple[ModuleType, ModuleType]:
        theirs = _load(PROGRAMS / f"{name}.py", f"_own_programs_{name}_torch")
        return theirs, _load(_ported(name, tmp_path), f"_own_programs_{name}_convlab")

    return load


def _copy_weights(theirs, ours) -> None:
    state = theirs.state_dict()
    assert list(ours.state_dict()) == list(state)
    ours.load_state_dict(convlab.utils.from_torch_state_dict(state))


def _loader(lib, *arrays, batch_size):
    """The library's DataLoader over its TensorDataset of ``arrays``, in order."""
    data = lib.utils.data.TensorDataset(*(lib.tensor(a) for a in arrays))
    return lib.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)


@needs_torch
def test_mnist_cnn_training_matches_torch(program_modules):
    """The program's ``train`` (DigitNet, Adadelta(lr=1.0), nll_loss) for two batches from
    PyTorch's weights, then its ``evaluate``. Dropout is turned off (p = 0): its masks come
    from each library's generator."""
    theirs_mod, ours_mod = program_modules("mnist_cnn")
    torch.manual_seed(0)
    theirs, ours = theirs_mod.DigitNet(), ours_mod.DigitNet()
    _copy_weights(theirs, ours)
    for model in (theirs, ours):
        for module in model.modules():
            if type(module).__name__ == "Dropout":
                module.p = 0.0
    rng = np.random.default_rng(0)
    x = ((rng.random((12, 1, 28, 28)) - 0.1307) / 0.3081).astype(np.float32)
    y = rng.integers(0, 10, 12)
    args = argparse.Namespace(log_interval=1, dry_run=False)
    losses, correct = [], []
    for mod, model, lib in ((theirs_mod, theirs, torch), (ours_mod, ours, convlab)):
        opt = lib.optim.Adadelta(model.parameters(), lr=1.0)
        cpu = lib.device("cpu")
        losses.append(mod.train(args, model, cpu, _loader(lib, x, y, batch_size=6), opt, 1))
        correct.append(mod.evaluate(model, cpu, _loader(lib, x, y, batch_size=12)))
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
    assert correct[1] == correct[0]
    for (name, a), (_, b) in zip(theirs.named_parameters(), ours.named_parameters(), strict=True):
        np.testing.assert_allclose(_numpy(b), _numpy(a), rtol=1e-5, atol=1e-5, err_msg=name)


@needs_torch
def test_siamese_training_matches_torch(program_modules):
    """The program's ``train`` (SiameseNet over its small ResNet, BCELoss, Adadelta(lr=1.0),
    BatchNorm in training mode) for two batches from PyTorch's weights, then the model's
    outputs in eval mode. In float64, so that the comparison can be tight."""
    theirs_mod, ours_mod = program_modules("siamese")
    torch.manual_seed(0)
    theirs, ours = theirs_mod.SiameseNet().double(), ours_mod.SiameseNet().to(convlab.float64)
    _copy_weights(theirs, ours)
    rng = np.random.default_rng(2)
    left, right = rng.standard_normal((2, 8, 1, 16, 16))
    match = np.array([1.0, 0.0] * 4)
    args = argparse.Namespace(log_interval=1, dry_run=False)
    losses, outputs = [], []
    for mod, model, lib in ((theirs_mod, theirs, torch), (ours_mod, ours, convlab)):
        opt = lib.optim.Adadelta(model.parameters(), lr=1.0)
        loader = _loader(lib, left, right, match, batch_size=4)
        losses.append(mod.train(args, model, lib.device("cpu"), loader, opt, 1))
        model.eval()
        with lib.no_grad():
            outputs.append(_numpy(model(lib.tensor(left), lib.tensor(right))))
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-9)
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-9, atol=1e-12)
    for (name, t), (_, c) in zip(
        theirs.state_dict().items(), ours.state_dict().items(), strict=True
    ):
        expected = _numpy(t)
        scale = max(np.abs(expected).max(), 1.0)  # weights, running stats, step counts
        np.testing.assert_allclose(_numpy(c), expected, atol=1e-9 * scale, err_msg=name)


@needs_torch
def test_regression_steps_match_torch(program_modules):
    """The program's ``poly_features`` and ``gradient_step`` (smooth_l1_loss, backward,
    ``param.data.add_``) for five steps from the same weights and batches, and its
    ``describe`` of the result."""
    theirs_mod, ours_mod = program_modules("regression")
    theirs = torch.nn.Linear(4, 1)
    ours = convlab.nn.Linear(4, 1)
    _copy_weights(theirs, ours)
    rng = np.random.default_rng(1)
    coefficients = rng.standard_normal((4, 1)).astype(np.float32)
    for _ in range(5):
        x = rng.standard_normal(32).astype(np.float32)
        losses = []
        for mod, model, lib in ((theirs_mod, theirs, torch), (ours_mod, ours, convlab)):
            features = mod.poly_features(lib.tensor(x), 4)
            np.testing.assert_allclose(_numpy(features), x[:, None] ** np.arange(1, 5))
            targets = features.mm(lib.tensor(coefficients))
            losses.append(mod.gradient_step(model, features, targets, lr=0.1))
        np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
        for key in ("weight", "bias"):
            np.testing.assert_allclose(
                _numpy(getattr(ours, key)), _numpy(getattr(theirs, key)), rtol=1e-5, atol=1e-6
            )
    assert ours_mod.describe(ours.weight, ours.bias) == theirs_mod.describe(
        theirs.weight, theirs.bias
    )


@needs_torch
def test_dcgan_step_matches_torch(program_modules):
    """The program's Generator and Discriminator after its ``init_weights``, copied from
    PyTorch: one discriminator and one generator step (BCELoss, Adam) on the same real images
    and noise, as its training loop takes them."""
    theirs_mod, ours_mod = program_modules("dcgan")
    torch.manual_seed(0)
    rng = np.random.default_rng(5)
    real = (rng.random((4, 1, 28, 28)) * 2 - 1).astype(np.float32)
    noise = rng.standard_normal((4, 16, 1, 1)).astype(np.float32)
    models = {}
    for mod in (theirs_mod, ours_mod):
        models[mod] = mod.Generator(16, 8), mod.Discriminator(8)
    for net in models[theirs_mod]:
        net.apply(theirs_mod.init_weights)
    for net_t, net_c in zip(models[theirs_mod], models[ours_mod], strict=True):
        _copy_weights(net_t, net_c)
    results = []
    for mod, lib in ((theirs_mod, torch), (ours_mod, convlab)):
        net_g, net_d = models[mod]
        criterion = lib.nn.BCELoss()
        opt_d = lib.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_g = lib.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        net_d.zero_grad()
        label = lib.full((4,), mod.REAL)
        err_real = criterion(net_d(lib.tensor(real)), label)
        err_real.backward()
        fake = net_g(lib.tensor(noise))
        label.fill_(mod.FAKE)
        err_fake = criterion(net_d(fake.detach()), label)
        err_fake.backward()
        opt_d.step()
        net_g.zero_grad()
        label.fill_(mod.REAL)
        err_g = criterion(net_d(fake), label)
        err_g.backward()
        opt_g.step()
        results.append(
            [err_real.item(), err_fake.item(), err_g.item()]
            + [_numpy(v) for v in (*net_g.state_dict().values(), *net_d.state_dict().values())]
        )
    theirs, ours = results
    np.testing.assert_allclose(ours[:3], theirs[:3], rtol=1e-5)
    for k, (a, b) in enumerate(zip(theirs[3:], ours[3:], strict=True)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, err_msg=str(k))


@needs_torch
def test_cifar10_classifier_training_matches_torch(program_modules):
    """The program's ``train_epoch`` (VGGish, CrossEntropyLoss with label smoothing, SGD with
    Nesterov momentum and weight decay, OneCycleLR stepped per batch, gradient clipping) for
    three batches from PyTorch's weights, then its ``evaluate`` (loss, accuracy, confusion
    matrix). Dropout is turned off (p = 0): its masks come from each library's generator."""
    theirs_mod, ours_mod = program_modules("cifar10_classifier")
    torch.manual_seed(0)
    theirs, ours = theirs_mod.VGGish("tiny"), ours_mod.VGGish("tiny")
    _copy_weights(theirs, ours)
    for model in (theirs, ours):
        model.classifier[2].p = 0.0
    rng = np.random.default_rng(3)
    x = rng.standard_normal((12, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, 12)
    args = argparse.Namespace(clip=0.5, log_interval=1)  # small: the clipping is exercised
    results = []
    for mod, model, lib in ((theirs_mod, theirs, torch), (ours_mod, ours, convlab)):
        criterion = lib.nn.CrossEntropyLoss(label_smoothing=0.1)
        opt = lib.optim.SGD(
            model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4
        )
        sched = lib.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=1, steps_per_epoch=3)
        cpu = lib.device("cpu")
        loader = _loader(lib, x, y, batch_size=4)
        trained = mod.train_epoch(model, loader, criterion, opt, sched, cpu, args, 0)
        loss, acc, confusion = mod.evaluate(model, _loader(lib, x, y, batch_size=5), criterion, cpu)
        results.append((*trained, loss, acc, _numpy(confusion), opt.param_groups[0]["lr"]))
    (t_loss, t_acc, t_eval, t_eacc, t_conf, t_lr), (c_loss, c_acc, c_eval, c_eacc, c_conf, c_lr) = (
        results
    )
    np.testing.assert_allclose([c_loss, c_eval], [t_loss, t_eval], rtol=1e-5)
    assert (c_acc, c_eacc) == (t_acc, t_eacc)
    np.testing.assert_array_equal(c_conf, t_conf)
    np.testing.assert_allclose(c_lr, t_lr, rtol=1e-12)
    for (name, a), (_, b) in zip(
        theirs.state_dict().items(), ours.state_dict().items(), strict=True
    ):
        np.testing.assert_allclose(_numpy(b), _numpy(a), rtol=1e-5, atol=1e-5, err_msg=name)


@needs_torch
def test_vae_training_matches_torch(program_modules, capsys):
    """The program's ``train`` (VariationalAutoencoder, ``elbo_loss``: summed binary
    cross-entropy plus the KL term, Adam) for two batches from PyTorch's weights, then its
    ``test``. The reparameterisation noise is fixed (each library's ``randn_like`` draws its
    own), the rest is the program's code."""
    theirs_mod, ours_mod = program_modules("vae")
    torch.manual_seed(0)
    theirs, ours = theirs_mod.VariationalAutoencoder(), ours_mod.VariationalAutoencoder()
    _copy_weights(theirs, ours)
    rng = np.random.default_rng(4)
    x = rng.random((8, 1, 28, 28)).astype(np.float32)
    eps = rng.standard_normal((4, 8)).astype(np.float32)
    args = argparse.Namespace(log_interval=1)
    printed = []
    for mod, model, lib in ((theirs_mod, theirs, torch), (ours_mod, ours, convlab)):
        noise = lib.tensor(eps)
        model.sample = lambda mean, logvar, lib=lib, noise=noise: (
            mean + lib.exp(0.5 * logvar) * noise
        )
        opt = lib.optim.Adam(model.parameters(), lr=1e-3)
        cpu = lib.device("cpu")
        mod.train(args, model, cpu, _loader(lib, x, np.zeros(8), batch_size=4), opt, 1)
        printed.append(capsys.readouterr().out)
    for (name, a), (_, b) in zip(theirs.named_parameters(), ours.named_parameters(), strict=True):
        np.testing.assert_allclose(_numpy(b), _numpy(a), rtol=1e-5, atol=1e-6, err_msg=name)
    ours_losses, theirs_losses = (np.array(LOSS.findall(p), dtype=float) for p in printed[::-1])
    np.testing.assert_allclose(ours_losses, theirs_losses, rtol=1e-5)
    assert len(ours_losses) == 3  # two batches and the epoch's average


@needs_torch
def test_forward_forward_training_matches_torch(program_modules, capsys):
    """The program's label ``overlay``, every layer's local ``fit`` (goodness loss, its own
    Adam, outputs detached for the next layer) and ``predict`` from PyTorch's weights. In
    float64: weights whose gradients are rounding noise (inputs a ReLU shuts off) get
    Adam steps of noise / sqrt(noise^2), which float32 makes visible. The layers' Adams were
    made before the conversion, so the models must convert their parameters in place."""
    theirs_mod, ours_mod = program_modules("forward_forward")
    args = argparse.Namespace(lr=0.03, threshold=2.0, epochs=4)
    torch.manual_seed(0)
    theirs = theirs_mod.ForwardForwardNet([784, 24, 24], args).double()
    ours = ours_mod.ForwardForwardNet([784, 24, 24], args).to(convlab.float64)
    _copy_weights(theirs, ours)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((20, 784))
    y = rng.integers(0, 10, 20)
    wrong = (y + rng.integers(1, 10, 20)) % 10
    outputs = []
    for mod, model, lib in ((theirs_mod, theirs, torch), (ours_mod, ours, convlab)):
        images = lib.tensor(x)
        positive = mod.overlay(images, lib.tensor(y))
        model.fit(positive, mod.overlay(images, lib.tensor(wrong)), log_interval=1)
        losses = np.array(LOSS.findall(capsys.readouterr().out), dtype=float)
        outputs.append((_numpy(positive), losses, _numpy(model.predict(images))))
    (pos_t, losses_t, pred_t), (pos_c, losses_c, pred_c) = outputs
    np.testing.assert_array_equal(pos_c, pos_t)
    assert len(losses_c) == 8
    np.testing.assert_allclose(losses_c, losses_t, atol=1.5e-4)  # printed to 4 decimals
    np.testing.assert_array_equal(pred_c, pred_t)
    for (name, a), (_, b) in zip(theirs.named_parameters(), ours.named_parameters(), strict=True):
        np.testing.assert_allclose(_numpy(b), _numpy(a), rtol=1e-9, atol=1e-12, err_msg=name)


@needs_torch
def test_conv_autoencoder_epoch_matches_torch(program_modules, capsys):
    """The program's ``run_epoch`` (strided convolutions, BatchNorm, ConvTranspose2d,
    Upsample, MSELoss, Adam) training on two batches from PyTorch's weights, then evaluating.
    In float64: the first convolution's bias feeds a BatchNorm, so its gradient is rounding
    noise, which Adam scales up to full steps in float32."""
    theirs_mod, ours_mod = program_modules("conv_autoencoder")
    torch.manual_seed(0)
    theirs = theirs_mod.ConvAutoencoder().double()
    ours = ours_mod.ConvAutoencoder().to(convlab.float64)
    _copy_weights(theirs, ours)
    x = np.random.default_rng(7).random((8, 1, 28, 28))
    losses = []
    for mod, model, lib in ((theirs_mod, theirs, torch), (ours_mod, ours, convlab)):
        opt = lib.optim.Adam(model.parameters(), lr=3e-3)
        cpu = lib.device("cpu")
        loader = _loader(lib, x, np.zeros(8), batch_size=4)
        losses.append((mod.run_epoch(model, loader, cpu, opt), mod.run_epoch(model, loader, cpu)))
    capsys.readouterr()
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-9)
    for (name, a), (_, b) in zip(
        theirs.state_dict().items(), ours.state_dict().items(), strict=True
    ):
        expected = _numpy(a)
        scale = max(np.abs(expected).max(), 1.0)  # weights, running stats, step counts
        np.testing.assert_allclose(_numpy(b), expected, atol=1e-9 * scale, err_msg=name)


@needs_torch
@pytest.mark.parametrize(
    ("rnn_type", "tied"), [("LSTM", True), ("GRU", False), ("RNN_TANH", False)]
)
def test_word_language_model_training_matches_torch(program_modules, rnn_type, tied):
    """The program's ``batchify``, ``train`` (truncated BPTT with ``repackage_hidden``,
    NLLLoss on log-softmax, ``clip_grad_norm_``, the hand-written SGD update) for one epoch
    from PyTorch's weights, then its ``evaluate``. Dropout is off (p = 0): its masks come
    from each library's generator. With ``tied`` the decoder shares the embedding matrix,
    which must stay shared through the update."""
    theirs_mod, ours_mod = program_modules("word_language_model")
    torch.manual_seed(0)
    shape = (rnn_type, 15, 8, 8, 2, 0.0, tied)
    theirs, ours = theirs_mod.RNNModel(*shape), ours_mod.RNNModel(*shape)
    _copy_weights(theirs, ours)
    rng = np.random.default_rng(8)
    stream, held_out = rng.integers(0, 15, 83), rng.integers(0, 15, 41)
    args = argparse.Namespace(batch_size=4, bptt=6, clip=0.25, log_interval=2)
    results = []
    for mod, model, lib in ((theirs_mod, theirs, torch), (ours_mod, ours, convlab)):
        cpu = lib.device("cpu")
        train_data = mod.batchify(lib.tensor(stream), 4, cpu)
        assert tuple(train_data.shape) == (20, 4)
        criterion = lib.nn.NLLLoss()
        loss = mod.train(args, model, train_data, criterion, 2.0, 1)
        val = mod.evaluate(model, mod.batchify(lib.tensor(held_out), 2, cpu), criterion, 2, 6)
        results.append((loss, val))
        assert (model.decoder.weight is model.encoder.weight) == tied
    np.testing.assert_allclose(results[1], results[0], rtol=1e-5)
    for (name, a), (_, b) in zip(
        theirs.state_dict().items(), ours.state_dict().items(), strict=True
    ):
        np.testing.assert_allclose(_numpy(b), _numpy(a), rtol=1e-5, atol=1e-6, err_msg=name)


@needs_torch
def test_sequence_classifier_training_matches_torch(program_modules, capsys):
    """The program's ``collate`` (``pad_sequence`` batch-first) in a DataLoader, ``train_epoch``
    (Embedding with ``padding_idx``, two-layer bidirectional batch-first GRU, the last
    forward / backward states from ``h_n.view``, CrossEntropyLoss, Adam) for three batches of
    variable-length sequences from PyTorch's weights, then its ``evaluate``. Dropout is off
    (p = 0): its masks come from each library's generator."""
    theirs_mod, ours_mod = program_modules("sequence_classifier")
    torch.manual_seed(0)
    shape = {"vocab": 12, "classes": 3, "embed": 6, "hidden": 5, "num_layers": 2, "dropout": 0.0}
    theirs, ours = theirs_mod.GRUClassifier(**shape), ours_mod.GRUClassifier(**shape)
    _copy_weights(theirs, ours)
    rng = np.random.default_rng(9)
    sequences = [rng.integers(1, 12, rng.integers(2, 9)) for _ in range(12)]
    labels = [int(s[0]) % 3 for s in sequences]
    results = []
    for mod, model, lib in ((theirs_mod, theirs, torch), (ours_mod, ours, convlab)):
        data = [(lib.tensor(s), y) for s, y in zip(sequences, labels, strict=True)]
        tokens, _ = mod.collate(data[:4])
        expected = np.zeros((4, max(len(s) for s in sequences[:4])), dtype=np.int64)
        for row, s in zip(expected, sequences[:4], strict=True):
            row[: len(s)] = s
        np.testing.assert_array_equal(_numpy(tokens), expected)
        loader = lib.utils.data.DataLoader(data, batch_size=4, collate_fn=mod.collate)
        criterion = lib.nn.CrossEntropyLoss()
        opt = lib.optim.Adam(model.parameters(), lr=1e-2)
        cpu = lib.device("cpu")
        trained = mod.train_epoch(model, loader, criterion, opt, cpu, 1, 1)
        results.append((*trained, *mod.evaluate(model, loader, criterion, cpu)))
    capsys.readouterr()
    (t_loss, t_acc, t_eval, t_eacc), (c_loss, c_acc, c_eval, c_eacc) = results
    np.testing.assert_allclose([c_loss, c_eval], [t_loss, t_eval], rtol=1e-5)
    assert (c_acc, c_eacc) == (t_acc, t_eacc)
    for (name, a), (_, b) in zip(
        theirs.state_dict().items(), ours.state_dict().items(), strict=True
    ):
        np.testing.assert_allclose(_numpy(b), _numpy(a), rtol=1e-5, atol=1e-5, err_msg=name)


@needs_torch
def test_time_series_lstm_steps_match_torch(program_modules):
    """The program's ``sine_waves`` shape, ``Sequence`` (two LSTMCells stepped in a Python
    loop, outputs stacked, predictions fed back for ``future`` steps), two ``train_step``s
    (MSELoss, Adam) from PyTorch's weights, then its ``predict`` past the input's end."""
    theirs_mod, ours_mod = program_modules("time_series_lstm")
    torch.manual_seed(0)
    theirs, ours = theirs_mod.Sequence(6), ours_mod.Sequence(6)
    _copy_weights(theirs, ours)
    steps = np.arange(16)[None, :] + np.array([[0], [5], [11]])
    waves = np.sin(steps / 4.0).astype(np.float32)
    results = []
    for mod, model, lib in ((theirs_mod, theirs, torch), (ours_mod, ours, convlab)):
        shape = tuple(mod.sine_waves(3, 16, 4, lib.Generator().manual_seed(0)).shape)
        assert shape == (3, 16)
        x, y = lib.tensor(waves[:, :-1]), lib.tensor(waves[:, 1:])
        criterion = lib.nn.MSELoss()
        opt = lib.optim.Adam(model.parameters(), lr=0.01)
        losses = [mod.train_step(model, opt, criterion, x, y) for _ in range(2)]
        pred, test_loss = mod.predict(model, criterion, x, y, future=4)
        results.append((losses, test_loss, _numpy(pred)))
    (t_losses, t_test, t_pred), (c_losses, c_test, c_pred) = results
    assert c_pred.shape == (3, 19)
    np.testing.assert_allclose([*c_losses, c_test], [*t_losses, t_test], rtol=1e-5)
    np.testing.assert_allclose(c_pred, t_pred, rtol=1e-5, atol=1e-6)
    for (name, a), (_, b) in zip(theirs.named_parameters(), ours.named_parameters(), strict=True):
        np.testing.assert_allclose(_numpy(b), _numpy(a), rtol=1e-5, atol=1e-6, err_msg=name)
