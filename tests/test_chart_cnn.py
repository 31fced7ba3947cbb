"""The chart CNN (sizes pinned to the paper), its training job and its report."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import convlab
from conftest import needs_gpu, needs_torch, torch
from convlab.models import ChartCNN
from convlab.training import evaluate

pd = pytest.importorskip("pandas")
pytest.importorskip("PIL")


@pytest.mark.parametrize(
    "window,params,fc_in", [(5, 155_138, 15_360), (20, 708_866, 46_080), (60, 2_952_962, 184_320)]
)
def test_paper_sizes_cpu(window, params, fc_in):
    model = ChartCNN(window)
    assert sum(p.numel() for p in model.parameters()) == params
    assert model.fc_in == fc_in == model.fc.in_features


def test_binary_and_float_input_agree_and_variants_build_cpu():
    from convlab.data import render_charts
    from test_charts import random_walks

    charts = render_charts(random_walks(1, 100, 7), 20)
    images = charts.images()[:6]
    convlab.manual_seed(0)
    model = ChartCNN(20, input_mean=0.12, input_std=0.33).eval()
    a = model(convlab.tensor(images)).numpy()
    b = model(convlab.tensor(images.astype(np.float32))).numpy()
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    for kwargs in (
        {"activation": "relu"},
        {"kernel_size": 3},
        {"pool": 2},
        {"batch_norm": False},
        {"channels": [8, 16]},
        {"dropout": 0.0},
        {"ceil_mode": False},
    ):
        out = ChartCNN(20, **kwargs)(convlab.tensor(images))
        assert out.shape == (6, 2)
    with pytest.raises(ValueError, match="window"):
        ChartCNN(7)
    with pytest.raises(ValueError, match="activation"):
        ChartCNN(5, activation="gelu")


@needs_torch
def test_matches_the_same_model_in_pytorch(backend):
    """Forward (eval and train-mode BN) and parameter gradients against torch.nn layers; on
    the GPU the binary first layer is its RawKernel."""
    convlab.manual_seed(1)
    model = ChartCNN(20, input_mean=0.1, input_std=0.3, dropout=0.0)
    tn = torch.nn

    def block(ci, co, stride, dilation):
        return [
            tn.Conv2d(ci, co, (5, 3), stride, (2, 1), dilation),
            tn.BatchNorm2d(co),
            tn.LeakyReLU(0.01),
            tn.MaxPool2d((2, 1), ceil_mode=True),
        ]

    reference = tn.Sequential(
        *block(1, 64, (3, 1), (2, 1)),
        *block(64, 128, 1, 1),
        *block(128, 256, 1, 1),
        tn.Flatten(),
        tn.Linear(46_080, 2),
    )
    ours = [p for p in model.parameters()]
    theirs = [p for p in reference.parameters()]
    assert [tuple(p.shape) for p in ours] == [tuple(p.shape) for p in theirs]
    with torch.no_grad():
        for a, b in zip(ours, theirs):
            b.copy_(torch.tensor(a.numpy()))
    model.to(backend.name)
    ours = [p for p in model.parameters()]
    rng = np.random.default_rng(0)
    images = (rng.random((4, 1, 64, 60)) < 0.12).astype(np.uint8)
    labels = np.array([0, 1, 1, 0])
    loss = convlab.nn.functional.cross_entropy(
        model(convlab.tensor(images, device=backend.name)),
        convlab.tensor(labels, device=backend.name),
    )
    loss.backward()
    tloss = torch.nn.functional.cross_entropy(
        reference((torch.tensor(images, dtype=torch.float32) - 0.1) / 0.3), torch.tensor(labels)
    )
    tloss.backward()
    assert abs(loss.item() - tloss.item()) < 1e-4
    for a, b in zip(ours, theirs):
        # conv biases before BN have a zero gradient: both sides are rounding noise (~1e-7)
        np.testing.assert_allclose(
            a.grad.cpu().numpy(),
            b.grad.numpy(),
            rtol=2e-3,
            atol=max(2e-4 * float(b.grad.abs().max()), 1e-5),
        )


# -- report functions --------------------------------------------------------------------


def test_metrics_against_independent_formulas_cpu():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    p = rng.random(200)
    r = 0.1 * p + rng.normal(0, 0.1, 200)
    r[::7] = np.round(r[::7], 1)  # ties
    c = evaluate.correlations(p, r)
    assert c["pearson"] == pytest.approx(scipy_stats.pearsonr(p, r)[0], abs=1e-12)
    assert c["spearman"] == pytest.approx(scipy_stats.spearmanr(p, r)[0], abs=1e-12)
    m = evaluate.classification_metrics(np.array([0.9, 0.2, 0.6]), np.array([1, 0, 0]))
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["loss"] == pytest.approx(-(np.log(0.9) + np.log(0.8) + np.log(0.4)) / 3)


# -- the command line -----------------------------------------------------------------------


def _csv(tmp_path, days=420, seed=0):
    from test_charts import random_walks

    path = tmp_path / "prices.csv"
    random_walks(1, days, seed).drop(columns="ticker").to_csv(path, index=False)
    return path


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "convlab.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def _train_args(data, out, *extra):
    return [
        "chart",
        "train",
        "--data",
        data,
        "--window",
        5,
        "--epochs",
        2,
        "--ensemble",
        2,
        "--batch-size",
        32,
        "--lr",
        1e-3,
        "--out",
        out,
        "--quiet",
        "--threads",
        1,
        *extra,
    ]


def test_train_report_predict_cpu(tmp_path):
    data = _csv(tmp_path)
    out = tmp_path / "run"
    done = _cli(*_train_args(data, out))
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    for name in ("train", "validation", "test"):
        assert metrics[name]["n"] > 0 and 0 <= metrics[name]["accuracy"] <= 1
    assert metrics["ensemble"] == 2 and len(metrics["histories"]) == 2
    assert set(metrics["test"]) >= {"pearson", "spearman", "loss"}
    # one instrument: no cross-section to sort, and the metrics say so
    assert "at most 1 instrument(s) per date" in metrics["portfolios"]["reason"]
    for name in (
        "learning_curves.png",
        "samples.png",
        "test_predictions.csv",
        "model_0.npz",
        "model_1.npz",
        "state.npz",
    ):
        assert (out / name).stat().st_size > 0
    # the ensemble's test predictions are the mean of its members' (recomputed here)
    test = pd.read_csv(out / "test_predictions.csv")
    assert len(test) == metrics["test"]["n"] and test["p_up"].between(0, 1).all()
    predictions = tmp_path / "p.csv"
    done = _cli("chart", "predict", "--model", out, "--data", data, "--out", predictions)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(predictions)
    assert list(table.columns) == ["ticker", "date", "p_up", "decile"] and len(table) > len(test)
    assert (table["decile"] == 0).all()  # one instrument per date: no deciles
    merged = test.merge(table, on=["ticker", "date"], suffixes=("", "_again"))
    assert len(merged) == len(test)
    np.testing.assert_allclose(merged["p_up"], merged["p_up_again"], atol=2e-6)


@needs_gpu
def test_train_and_predict_on_the_gpu(tmp_path, capsys):
    """``--device gpu`` runs the same job (in this process, so that the CUDA emulator serves
    where there is no device)."""
    from convlab.cli import main

    data = _csv(tmp_path, days=200)
    out = tmp_path / "run"
    # later options win: one member, one epoch
    args = _train_args(data, out, "--device", "gpu", "--ensemble", 1, "--epochs", 1)
    assert main([str(a) for a in args]) == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    for name in ("train", "validation", "test"):
        assert metrics[name]["n"] > 0 and np.isfinite(metrics[name]["loss"])
    predictions = tmp_path / "p.csv"
    assert (
        main(
            [
                "chart",
                "predict",
                "--model",
                str(out),
                "--data",
                str(data),
                "--out",
                str(predictions),
                "--device",
                "gpu",
            ]
        )
        == 0
    ), capsys.readouterr().err
    test = pd.read_csv(out / "test_predictions.csv")
    merged = test.merge(pd.read_csv(predictions), on=["ticker", "date"], suffixes=("", "_again"))
    assert len(merged) == len(test)
    np.testing.assert_allclose(merged["p_up"], merged["p_up_again"], atol=2e-6)


def test_resume_after_interruption_is_exact_cpu(tmp_path, monkeypatch):
    from convlab.training import chart
    from convlab.training.progress import Progress

    data = str(_csv(tmp_path, seed=1))

    def config():
        return chart.ChartTrainConfig(
            data=data, window=5, horizon=5, epochs=3, ensemble=2, batch_size=32, lr=1e-3
        )

    chart.train(config(), tmp_path / "straight", quiet=True, threads=1)
    # interrupt in the middle of model 2's second epoch, then resume
    calls = {"n": 0}
    original = Progress.update

    def interrupting(self, images, loss=None):
        if loss is not None and self.desc.startswith("model 2/2 epoch 2"):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
        return original(self, images, loss)

    monkeypatch.setattr(Progress, "update", interrupting)
    with pytest.raises(KeyboardInterrupt):
        chart.train(config(), tmp_path / "resumed", quiet=True, threads=1)
    monkeypatch.setattr(Progress, "update", original)
    report = chart.train(config(), tmp_path / "resumed", resume=True, quiet=True, threads=1)
    straight = json.loads((tmp_path / "straight" / "metrics.json").read_text())

    def without_timing(histories):
        return [{k: v for k, v in h.items() if k != "images_per_second"} for h in histories]

    assert without_timing(report["histories"]) == without_timing(straight["histories"])
    for k in range(2):
        a = convlab.load(tmp_path / "straight" / f"model_{k}.npz")
        b = convlab.load(tmp_path / "resumed" / f"model_{k}.npz")
        for key in a:
            np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())


@pytest.mark.parametrize(
    "case", ["missing", "window", "short", "corrupt", "other-window", "exists"]
)
def test_user_errors_are_one_line_with_exit_status_2_cpu(tmp_path, case):
    data = _csv(tmp_path, days=300)
    out = tmp_path / "run"
    if case in ("corrupt", "other-window", "exists"):
        assert _cli(*_train_args(data, out), "--epochs", 1, "--ensemble", 1).returncode == 0
    args = {
        "missing": _train_args(tmp_path / "nope.csv", out),
        "window": ["chart", "train", "--data", data, "--window", 7, "--out", out],
        "short": _train_args(_csv(tmp_path, days=4), out),
        "corrupt": ["chart", "train", "--out", out, "--resume", "--quiet"],
        "other-window": ["chart", "train", "--out", out, "--resume", "--window", 20],
        "exists": _train_args(data, out),
    }[case]
    if case == "corrupt":
        state = out / "state.npz"
        state.write_bytes(state.read_bytes()[:300])
    before = {p.name: p.read_bytes() for p in out.glob("*.npz")} if out.exists() else {}
    done = _cli(*args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    expected = {
        "missing": "does not exist",
        "window": "--window",
        "short": "window",
        "corrupt": "corrupted",
        "other-window": "--window 5",
        "exists": "--resume",
    }
    assert expected[case] in lines[0]
    if case != "corrupt":  # nothing already saved is touched
        assert {p.name: p.read_bytes() for p in out.glob("*.npz")} == before


@pytest.mark.parametrize(
    "variant", [{}, {"activation": "relu", "pool": (2, 2)}], ids=["paper", "relu-2x2"]
)
def test_pooling_before_the_activation_changes_nothing_cpu(variant):
    """The model pools before its activation (they commute); running each block's layers in
    the paper's order must give the same logits and gradients."""
    convlab.manual_seed(3)
    model = ChartCNN(20, input_mean=0.1, input_std=0.3, dropout=0.0, **variant)
    rng = np.random.default_rng(5)
    images = convlab.tensor((rng.random((3, 1, 64, 60)) < 0.12).astype(np.float32))
    labels = convlab.tensor(np.array([0, 1, 1]))

    def in_paper_order(x):
        out = (x - 0.1) / 0.3
        for block in model.features:
            for layer in block:  # conv, BN, activation, pool
                out = layer(out)
        return model.fc(out.flatten(1))

    grads = []
    for run in (model, in_paper_order):
        model.zero_grad()
        logits = run(images)
        convlab.nn.functional.cross_entropy(logits, labels).backward()
        grads.append((logits.numpy(), [p.grad.numpy().copy() for p in model.parameters()]))
    np.testing.assert_array_equal(grads[0][0], grads[1][0])
    for a, b in zip(grads[0][1], grads[1][1]):
        np.testing.assert_array_equal(a, b)
