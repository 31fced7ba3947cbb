"""Price-trend CNN programs (Jiang, Kelly & Xiu's chart CNNs) run with only the import changed.

``real_programs/price_trend/<program>/`` holds a training program written for PyTorch; the
tests run it as it is and, rewritten by ``PORT_RULES`` (its ``torch`` imports pointed at
convlab, nothing else changed), on convlab. The two replications they follow have no licence,
so the programs are our own re-implementations of their structure (README.md there). Each
program runs end to end under both libraries on synthetic chart images, and its own training
functions, given PyTorch's weights, produce PyTorch's losses, accuracies and trained weights.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import convlab
from conftest import needs_torch, torch
from data_files import price_trend_charts

pytestmark = needs_torch
pd = pytest.importorskip("pandas")
pytest.importorskip("tqdm")

PROGRAMS = Path(__file__).parent / "real_programs" / "price_trend"
STOCK_CNN = PROGRAMS / "stock_cnn"
IMAGING = PROGRAMS / "imaging_trading"

# How a program's import lines become convlab's; nothing else in a program changes.
PORT_RULES = [
    (r"^import torch$", "import convlab as torch"),
    (r"^import torch\.(\S+)", r"import convlab.\1"),
    (r"^from torch import ", "from convlab import "),
    (r"^from torch\.(\S+) import ", r"from convlab.\1 import "),
]

#: The ports' whole diff, written out by hand: PyTorch line -> convlab line.
IMPORT_CHANGES = {
    "import torch": "import convlab as torch",
    "import torch.nn as nn": "import convlab.nn as nn",
    "import torch.optim as optim": "import convlab.optim as optim",
    "from torch.utils.data import Dataset": "from convlab.utils.data import Dataset",
    "from torch.utils.data import DataLoader": "from convlab.utils.data import DataLoader",
    "from torch.utils.data import random_split": "from convlab.utils.data import random_split",
    "from torch.utils.data import DataLoader, TensorDataset": (
        "from convlab.utils.data import DataLoader, TensorDataset"
    ),
}


def _port(source: str) -> str:
    lines = source.split("\n")
    for i, line in enumerate(lines):
        for pattern, replacement in PORT_RULES:
            lines[i], count = re.subn(pattern, replacement, line)
            if count:
                break
    return "\n".join(lines)


@pytest.fixture(scope="module")
def ported(tmp_path_factory) -> Path:
    """A folder holding each program's convlab version (``<program>/<file>.py``)."""
    root = tmp_path_factory.mktemp("price_trend_ported")
    for program in (STOCK_CNN, IMAGING):
        (root / program.name).mkdir()
        for source in program.glob("*.py"):
            (root / program.name / source.name).write_text(_port(source.read_text()))
    return root


def test_ports_change_only_the_imports(ported):
    pairs = [
        (folder / name, ported / folder.name / name)
        for folder, names in (
            (STOCK_CNN, ("baseline.py", "train.py")),
            (IMAGING, ("model.py", "train.py")),
        )
        for name in names
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
    assert changed == 1 + 5 + 2 + 4
    for _, path in pairs:
        assert not re.search(r"^\s*(import|from)\s+torch\b", path.read_text(), re.M), path


def _load(path: Path, name: str, deps: dict[str, types.ModuleType] | None = None):
    """Import the program file ``path`` as ``name``; ``deps`` stand in for its sibling imports
    (``import baseline``) while it runs, so the two versions never see each other's."""
    deps = deps or {}
    saved = {key: sys.modules.get(key) for key in deps}
    sys.modules.update(deps)
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for key, value in saved.items():
            if value is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = value
    return module


def _close(ours, theirs, what: str, rtol: float = 1e-4, scale_tol: float = 1e-4) -> None:
    theirs = np.asarray(theirs, dtype=np.float64)
    ours = np.asarray(ours, dtype=np.float64)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != {theirs.shape}"
    atol = scale_tol * float(np.abs(theirs).max(initial=0.0))
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, err_msg=what)


def _copy_state(torch_net, convlab_net) -> None:
    convlab_net.load_state_dict(
        {k: convlab.tensor(v.detach().numpy()) for k, v in torch_net.state_dict().items()}
    )


def _same_state(convlab_net, torch_net, what: str, noise_only: str, max_move: float) -> None:
    """The state after training with Adam equals PyTorch's. Adam divides each gradient by its
    own running size, so an element whose gradient is near zero (a conv tap that mostly sees
    the charts' black background) takes full steps set by rounding noise: such elements may
    differ by up to twice the most Adam moves a weight (``max_move``, learning rate x steps),
    all others (at least 99.9% of each tensor) agree to 1e-3 of the tensor's scale. The conv
    biases feeding a batch norm (``noise_only``) have a zero gradient in exact arithmetic, so
    only the bound holds for them. Running statistics are not optimised: all agree."""
    theirs = torch_net.state_dict()
    ours = convlab_net.state_dict()
    assert list(ours) == list(theirs)
    for key, value in ours.items():
        got, expected = value.numpy().astype(np.float64), theirs[key].numpy().astype(np.float64)
        if "running_var" in key or "num_batches" in key:
            _close(got, expected, f"{what}: {key}")
            continue
        diff = np.abs(got - expected)
        # a running mean includes the conv bias before it, whose steps are noise (see above)
        bound = 2 * max_move * (1 + 1e-3) + 1e-4 * np.abs(expected).max()
        assert diff.max() <= bound, f"{what}: {key} differs by {diff.max()}"
        if "running_mean" not in key and not re.fullmatch(noise_only, key):
            tight = diff <= 1e-3 * (np.abs(expected) + np.abs(expected).max())
            assert tight.mean() >= 0.999, f"{what}: {key}: {tight.mean():.2%} agree"


def _run(script: Path, args: list[str], cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


# --- lich99/Stock_CNN's structure: baseline.Net and the train notebook as train.py ----------


def _write_stock_cnn_data(folder: Path, years=(2001, 2002), per_year: int = 24) -> None:
    """The notebook's files: a uint8 memmap of 64x60 images and a label table per year."""
    images, returns = price_trend_charts(per_year * len(years), window=20, seed=5)
    for i, year in enumerate(years):
        part = slice(i * per_year, (i + 1) * per_year)
        np.ascontiguousarray(images[part]).tofile(
            folder / f"20d_month_has_vb_[20]_ma_{year}_images.dat"
        )
        pd.DataFrame({"Ret_20d": returns[part]}).to_csv(
            folder / f"20d_month_has_vb_[20]_ma_{year}_labels_w_delay.csv", index=False
        )


@pytest.mark.parametrize("version", ["convlab", "torch"])
def test_stock_cnn_program_runs(tmp_path, ported, version):
    """train.py end to end (two epochs): per-epoch losses, a state_dict checkpoint per epoch
    that loads back into the model, the early-stopping summary."""
    _write_stock_cnn_data(tmp_path)
    folder = ported / STOCK_CNN.name if version == "convlab" else STOCK_CNN
    args = ["--data", str(tmp_path), "--years", "2001", "2002", "--out", str(tmp_path / "pt")]
    out = _run(folder / "train.py", [*args, "--epochs", "2", "--batch-size", "16"], folder)
    assert "(48, 64, 60)" in out and "total_parameters : 708866" in out, out
    losses = [(float(a), float(b)) for a, b in re.findall(r"train_loss (\S+) val_loss (\S+)", out)]
    assert len(losses) == 2 and np.isfinite(losses).all(), out
    assert "Done!" in out
    (run_dir,) = (tmp_path / "pt").iterdir()
    checkpoints = sorted(run_dir.iterdir())
    assert [p.name.split("_train_")[0] for p in checkpoints] == [
        "baseline_epoch_0",
        "baseline_epoch_1",
    ]
    lib = convlab if version == "convlab" else torch
    net = _load(folder / "baseline.py", f"stock_cnn_baseline_{version}").Net()
    net.load_state_dict(lib.load(checkpoints[-1]))


def test_stock_cnn_training_matches_torch(tmp_path, ported):
    """The program's own pieces (MyDataset, the 70/30 split, Net, init_weights, train_loop,
    val_loop) with PyTorch's initial weights: two epochs of Adam give PyTorch's running
    losses and trained weights (in train mode: batch statistics, running statistics)."""
    _write_stock_cnn_data(tmp_path)
    ours = ported / STOCK_CNN.name
    t_base = _load(STOCK_CNN / "baseline.py", "stock_cnn_torch_baseline")
    c_base = _load(ours / "baseline.py", "stock_cnn_convlab_baseline")
    t_prog = _load(STOCK_CNN / "train.py", "stock_cnn_torch", {"baseline": t_base})
    c_prog = _load(ours / "train.py", "stock_cnn_convlab", {"baseline": c_base})

    images, labels = t_prog.load_years(str(tmp_path), [2001, 2002])
    torch.manual_seed(42)
    t_net = t_base.Net()
    t_net.apply(t_prog.init_weights)
    c_net = c_base.Net()
    c_net.apply(c_prog.init_weights)  # runs, then PyTorch's draw replaces it
    _copy_state(t_net, c_net)
    # the head's Dropout(0.5) draws masks from each library's own generator; both run without
    t_net.fc1[0].p = 0.0
    c_net.fc1[0].p = 0.0

    results = {}
    for lib, prog, net in ((torch, t_prog, t_net), (convlab, c_prog, c_net)):
        train_set, val_set = prog.make_datasets(images, labels, False)
        assert (len(train_set), len(val_set)) == (33, 15)
        train_loader = lib.utils.data.DataLoader(train_set, batch_size=16, shuffle=False)
        val_loader = lib.utils.data.DataLoader(val_set, batch_size=32, shuffle=False)
        loss_fn = lib.nn.CrossEntropyLoss()
        optimizer = lib.optim.Adam(net.parameters(), lr=1e-4)
        results[lib.__name__] = [
            (
                prog.train_loop(train_loader, net, loss_fn, optimizer, "cpu"),
                prog.val_loop(val_loader, net, loss_fn, "cpu"),
            )
            for _ in range(2)
        ]
    _close(results["convlab"], results["torch"], "running losses per epoch")
    _same_state(c_net, t_net, "after two epochs", r"layer\d\.0\.bias", 1e-4 * 3 * 2)


# --- nhlben/Algorithmic-Trading-Based-on-Imaging-Price-Trends' structure: model.py, train.py --


def _write_npz(path: Path, window: int, n: int = 40) -> None:
    images, returns = price_trend_charts(n, window=window, seed=6)
    np.savez(path, images=images, labels=(returns > 0).astype(np.uint8))


@pytest.mark.parametrize("version", ["convlab", "torch"])
@pytest.mark.parametrize("model", ["I5", "I20"])
def test_imaging_trading_program_runs(tmp_path, ported, version, model):
    """train.py end to end (two epochs, Adam with weight decay): loss and accuracy per epoch,
    the best model saved and loadable, the history CSV."""
    data = tmp_path / "charts.npz"
    _write_npz(data, window=int(model[1:]))
    folder = ported / IMAGING.name if version == "convlab" else IMAGING
    save = tmp_path / "models"
    args = ["--model", model, "--data_path", str(data), "--save_path", str(save)]
    args += ["--num_epoch", "2", "--batch_size", "8", "--learning_rate", "1e-3"]
    out = _run(folder / "train.py", args, folder)
    assert "Number of images: 40" in out and "training size:28, validation size:12" in out, out
    assert len(re.findall(r"Epoch \d: train loss \S+ acc \S+ \| val loss", out)) == 2, out
    history = pd.read_csv(save / "training_history.csv")
    assert list(history.columns) == ["train_loss", "train_acc", "val_loss", "val_acc"]
    assert len(history) == 2 and np.isfinite(history.to_numpy()).all()
    lib = convlab if version == "convlab" else torch
    module = _load(folder / "model.py", f"imaging_model_{version}")
    getattr(module, f"CNN_{model}")(2).load_state_dict(lib.load(save / "model.pt"))
    if version == "convlab":  # --model_path resumes from the saved weights
        resumed = [*args, "--num_epoch", "1", "--model_path", str(save)]
        assert "Epoch 0: train loss" in _run(folder / "train.py", resumed, folder)


@pytest.mark.parametrize("model,window", [("CNN_I5", 5), ("CNN_I20", 20)])
def test_imaging_trading_training_matches_torch(tmp_path, ported, model, window):
    """The program's train() (Adam, weight decay 0.1, early stopper, best-model saving) with
    PyTorch's initial weights and the same batches gives PyTorch's per-epoch losses and
    accuracies, saved model and trained weights."""
    t_model = _load(IMAGING / "model.py", "imaging_torch_model")
    c_model = _load(ported / IMAGING.name / "model.py", "imaging_convlab_model")
    t_prog = _load(IMAGING / "train.py", "imaging_torch", {"model": t_model})
    c_prog = _load(ported / IMAGING.name / "train.py", "imaging_convlab", {"model": c_model})
    data = tmp_path / "charts.npz"
    _write_npz(data, window)
    with np.load(data) as arrays:
        images, labels = arrays["images"], arrays["labels"].astype(np.int64)

    torch.manual_seed(0)
    t_net = getattr(t_model, model)(2)
    c_net = getattr(c_model, model)(2)
    _copy_state(t_net, c_net)
    # Dropout(0.5) draws masks from each library's own generator; both run without
    t_net.dropout.p = 0.0
    c_net.dropout.p = 0.0

    results = {}
    for lib, prog, net in ((torch, t_prog, t_net), (convlab, c_prog, c_net)):
        x = lib.from_numpy(images).unsqueeze(1).float() / 255.0
        dataset = lib.utils.data.TensorDataset(x, lib.from_numpy(labels))
        train_set = lib.utils.data.Subset(dataset, range(28))
        val_set = lib.utils.data.Subset(dataset, range(28, 40))
        loader = lib.utils.data.DataLoader(train_set, batch_size=8, shuffle=False)
        val_loader = lib.utils.data.DataLoader(val_set, batch_size=8, shuffle=False)
        optimizer = lib.optim.Adam(net.parameters(), lr=1e-5, weight_decay=0.1)
        stopper = prog.EarlyStopper(patience=5, min_delta=5e-4)
        save = tmp_path / lib.__name__
        save.mkdir()
        history = prog.train(
            net, 3, lib.nn.CrossEntropyLoss(), optimizer, loader, val_loader, stopper, str(save)
        )
        results[lib.__name__] = (history, lib.load(save / "model.pt"))
    (t_hist, t_saved), (c_hist, c_saved) = results["torch"], results["convlab"]
    assert c_hist[4] == t_hist[4] == 2  # the last epoch's index
    _close(c_hist[0], t_hist[0], "train losses per epoch", rtol=1e-3)
    _close(c_hist[2], t_hist[2], "validation losses per epoch", rtol=1e-3)
    assert (c_hist[1], c_hist[3]) == (t_hist[1], t_hist[3])  # accuracies
    _same_state(
        c_net, t_net, "after three epochs", r"(blocks|all_layers)\.\d\.0\.bias", 1e-5 * 4 * 3
    )
    assert list(c_saved) == list(t_saved)
    saved_net = getattr(c_model, model)(2)
    saved_net.load_state_dict(c_saved)
    t_net.load_state_dict(t_saved)
    _same_state(saved_net, t_net, "saved", r"(blocks|all_layers)\.\d\.0\.bias", 1e-5 * 4 * 3)
