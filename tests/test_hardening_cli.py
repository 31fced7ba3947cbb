"""The command line under hostile input (a fuzzing campaign's findings and their siblings).

House rules checked here: a user error is one line on stderr and exit status 2 (never a
traceback), nothing we did not write is deleted or overwritten, a diverging run says so, Ctrl-C
tells the truth about what was saved, and run files get the user's umask like any other tool's.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("PIL")

import convlab  # noqa: E402
from data_files import CIFAR_NAMES, cifar_batch, write_cifar_bin  # noqa: E402
from test_charts import random_walks  # noqa: E402

# -- helpers -------------------------------------------------------------------------------


def _subprocess(*args, timeout=300, umask=None):
    """``python -m convlab.cli ARGS`` in a child process (for crashes no except can catch)."""
    return subprocess.run(
        [sys.executable, "-m", "convlab.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=None if umask is None else (lambda: os.umask(umask)),
    )


def _main(capsys, *argv):
    """``cli.main(argv)`` in this process: ``(exit status, stdout, stderr)``."""
    from convlab.cli import main

    threads = convlab.get_num_threads()
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as stop:  # argparse's exits
        code = stop.code
    finally:
        convlab.set_num_threads(threads)
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code, err, *needles):
    """A user error: exit status 2, one line on stderr naming what was wrong."""
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _snapshot(folder):
    """Every file under ``folder`` with its bytes (to prove nothing was touched)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _read_npz(path):
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(arrays.pop("__convlab__").tobytes().decode())
    return meta, arrays


def _write_npz(path, meta, arrays, meta_text=None):
    """A checkpoint written byte by byte as a crafted file would be."""
    text = meta_text if meta_text is not None else json.dumps(meta)
    arrays = {**arrays, "__convlab__": np.frombuffer(text.encode(), np.uint8)}
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def _edit_state(folder, change):
    state = convlab.load(folder / "state.npz")
    change(state)
    convlab.save(state, folder / "state.npz")


def _edit_config(folder, change):
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))


def _train_args(data, out, *extra):
    return [
        "chart",
        "train",
        "--data",
        data,
        "--window",
        5,
        "--epochs",
        1,
        "--ensemble",
        1,
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


# -- shared data: a price file and a run interrupted after epoch 1 of 2 ---------------------


@pytest.fixture(scope="module")
def prices(tmp_path_factory):
    path = tmp_path_factory.mktemp("prices") / "prices.csv"
    random_walks(1, 300, 0).drop(columns="ticker").to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory, prices):
    """A chart run whose state is what Ctrl-C after epoch 1 of 2 leaves behind."""
    from convlab.training import chart

    folder = tmp_path_factory.mktemp("runs") / "interrupted"
    threads = convlab.get_num_threads()
    try:
        chart.train(
            chart.ChartTrainConfig(
                data=str(prices), window=5, horizon=5, epochs=1, ensemble=1, batch_size=32, lr=1e-3
            ),
            folder,
            quiet=True,
            threads=1,
        )
    finally:
        convlab.set_num_threads(threads)
    _edit_config(folder, lambda c: c.update(epochs=2))
    _edit_state(folder, lambda s: s.update(finished=False))
    for name in ("metrics.json", "learning_curves.png", "samples.png", "test_predictions.csv"):
        (folder / name).unlink()
    return folder


@pytest.fixture
def run(tmp_path, interrupted_run):
    """A private copy of the interrupted run."""
    return shutil.copytree(interrupted_run, tmp_path / "run")


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    rng = np.random.default_rng(0)
    write_cifar_bin(root, {name: cifar_batch(rng, 8) for name in CIFAR_NAMES})
    return root


# -- item 1: nothing we did not write is deleted or overwritten ----------------------------


def test_render_refuses_a_foreign_folder_and_replaces_a_chart_set_only_when_told(
    tmp_path, prices, capsys
):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("years of work")
    code, _, err = _main(
        capsys, "chart", "render", "--data", prices, "--window", 5, "--out", foreign
    )
    _one_line_error(code, err, str(foreign))
    assert _snapshot(foreign) == {"thesis.txt": b"years of work"}
    charts = tmp_path / "charts"
    assert (
        _main(capsys, "chart", "render", "--data", prices, "--window", 5, "--out", charts)[0] == 0
    )
    before = _snapshot(charts)
    code, _, err = _main(
        capsys, "chart", "render", "--data", prices, "--window", 20, "--out", charts
    )
    _one_line_error(code, err, "--overwrite")
    assert _snapshot(charts) == before
    assert (
        _main(
            capsys,
            "chart",
            "render",
            "--data",
            prices,
            "--window",
            20,
            "--out",
            charts,
            "--overwrite",
        )[0]
        == 0
    )
    assert convlab.data.ChartSet.load(charts).window == 20


@pytest.mark.parametrize("command", ["chart", "cifar10"])
def test_training_refuses_an_out_folder_with_foreign_files(
    tmp_path, prices, cifar, capsys, command
):
    out = tmp_path / "home"
    out.mkdir()
    (out / "metrics.json").write_text("my own metrics")
    args = (
        _train_args(prices, out)
        if command == "chart"
        else [
            "train",
            "cifar10",
            "--data",
            cifar,
            "--epochs",
            1,
            "--limit",
            8,
            "--batch-size",
            4,
            "--out",
            out,
            "--quiet",
            "--threads",
            1,
        ]
    )
    code, _, err = _main(capsys, *args)
    _one_line_error(code, err, "--out", str(out))
    assert _snapshot(out) == {"metrics.json": b"my own metrics"}
    # a file where the folder should be is refused too, and left alone
    (tmp_path / "file").write_text("x")
    args[args.index(out)] = tmp_path / "file"
    _one_line_error(*_main(capsys, *args)[::2], "--out")
    assert (tmp_path / "file").read_text() == "x"


def test_training_into_an_existing_empty_folder_is_fine(tmp_path, prices, capsys):
    out = tmp_path / "empty"
    out.mkdir()
    code, _, err = _main(capsys, *_train_args(prices, out))
    assert code == 0, err
    assert (out / "metrics.json").exists()


def test_predict_and_show_never_overwrite_a_file_unless_told(
    tmp_path, prices, interrupted_run, capsys
):
    run = shutil.copytree(interrupted_run, tmp_path / "run")
    mine = tmp_path / "mine.csv"
    mine.write_text("ticker,date,my_own_column\n")
    code, _, err = _main(
        capsys, "chart", "predict", "--model", run, "--data", prices, "--out", mine
    )
    _one_line_error(code, err, "--out", "--overwrite")
    assert mine.read_text() == "ticker,date,my_own_column\n"
    assert (
        _main(
            capsys,
            "chart",
            "predict",
            "--model",
            run,
            "--data",
            prices,
            "--out",
            mine,
            "--overwrite",
        )[0]
        == 0
    )
    assert mine.read_text().startswith("ticker,date,p_up")
    charts = tmp_path / "charts"
    assert (
        _main(capsys, "chart", "render", "--data", prices, "--window", 5, "--out", charts)[0] == 0
    )
    picture = tmp_path / "holiday.png"
    picture.write_bytes(b"my photo")
    code, _, err = _main(capsys, "chart", "show", "--charts", charts, "--out", picture)
    _one_line_error(code, err, "--out", "--overwrite")
    assert picture.read_bytes() == b"my photo"
    assert (
        _main(
            capsys,
            "chart",
            "show",
            "--charts",
            charts,
            "--out",
            picture,
            "--overwrite",
            "--count",
            2,
        )[0]
        == 0
    )
    assert picture.read_bytes().startswith(b"\x89PNG")


def test_atomic_writes_follow_the_umask_and_can_refuse_to_replace(tmp_path):
    from convlab._atomic import atomic_open

    for mask in (0o022, 0o077, 0o002):
        old = os.umask(mask)
        try:
            with atomic_open(tmp_path / f"f{mask:o}", "w") as handle:
                handle.write("x")
        finally:
            os.umask(old)
        assert stat.S_IMODE((tmp_path / f"f{mask:o}").stat().st_mode) == 0o666 & ~mask
    target = tmp_path / "f22"
    with pytest.raises(FileExistsError, match="f22"):
        with atomic_open(target, "w", overwrite=False) as handle:
            handle.write("new")
    assert target.read_text() == "x"
    with atomic_open(tmp_path / "fresh", "w", overwrite=False) as handle:
        handle.write("y")
    assert (tmp_path / "fresh").read_text() == "y"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".convlab-")]


def test_run_files_and_chart_sets_get_the_users_umask(tmp_path, prices):
    out = tmp_path / "run"
    done = _subprocess(*_train_args(prices, out), umask=0o022)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name
    charts = tmp_path / "charts"
    done = _subprocess(
        "chart", "render", "--data", prices, "--window", 5, "--out", charts, umask=0o022
    )
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(charts.stat().st_mode) == 0o755
    for path in charts.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name


@pytest.mark.parametrize("case", ["parent-is-a-file", "dangling-link", "name-too-long"])
def test_an_unusable_out_folder_is_named(tmp_path, prices, capsys, case):
    out = {
        "parent-is-a-file": prices / "run",
        "dangling-link": tmp_path / "link",
        "name-too-long": tmp_path / ("x" * 300),
    }[case]
    if case == "dangling-link":
        out.symlink_to(tmp_path / "nowhere")
    _one_line_error(*_main(capsys, *_train_args(prices, out))[::2], "--out")
    assert not (tmp_path / "nowhere").exists()


# -- item 2: every bad input is one line and exit status 2 ---------------------------------


@pytest.mark.parametrize("command", ["render", "train"])
def test_duplicate_ohlcv_columns(tmp_path, prices, capsys, command):
    frame = pd.read_csv(prices)
    frame["Open"] = frame["open"]
    path = tmp_path / "dup.csv"
    frame.to_csv(path, index=False)
    args = (
        ["chart", "render", "--data", path, "--window", 5, "--out", tmp_path / "c"]
        if command == "render"
        else _train_args(path, tmp_path / "run")
    )
    _one_line_error(*_main(capsys, *args)[::2], "--data", "dup.csv")
    assert not (tmp_path / "c").exists() and not (tmp_path / "run").exists()


@pytest.mark.parametrize("value", ["2147483648", "99999", "0", "-1", "two"])
def test_threads_out_of_range(tmp_path, prices, capsys, value):
    args = _train_args(prices, tmp_path / "run")
    args[args.index("--threads") + 1] = value
    _one_line_error(*_main(capsys, *args)[::2], "--threads")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["chart", "show", "--charts", "C", "--count", "-1"], "--count"),
        (["chart", "show", "--charts", "C", "--count", "0"], "--count"),
        (["chart", "show", "--charts", "C", "--seed", "-1"], "--seed"),
        (
            ["chart", "render", "--data", "D", "--out", "X", "--horizon", "1" + "0" * 30],
            "--horizon",
        ),
        (["chart", "render", "--data", "D", "--out", "X", "--stride", "0"], "--stride"),
        (["chart", "render", "--window", "7", "--out", "X"], "--window"),
        (["chart", "train", "--data", "D", "--lr", "nan", "--out", "X"], "--lr"),
        (["chart", "train", "--data", "D", "--lr", "inf", "--out", "X"], "--lr"),
        (["chart", "train", "--data", "D", "--batch-size", "0", "--out", "X"], "--batch-size"),
        (["chart", "train", "--data", "D", "--seed", "-1", "--out", "X"], "--seed"),
        (["chart", "train", "--data", "D", "--train-end", "20200601", "--out", "X"], "--train-end"),
        (
            ["chart", "train", "--data", "D", "--train-end", "2020-13-45", "--out", "X"],
            "--train-end",
        ),
        (
            ["train", "cifar10", "--data", "D", "--weight-decay", "inf", "--out", "X"],
            "--weight-decay",
        ),
        (["train", "cifar10", "--data", "D", "--limit", "0", "--out", "X"], "--limit"),
    ],
    ids=lambda v: "-".join(v) if isinstance(v, list) else v,
)
def test_bad_option_values(tmp_path, capsys, argv, needle):
    argv = [str(tmp_path / a) if a in ("C", "D", "X") else a for a in argv]
    _one_line_error(*_main(capsys, *argv)[::2], needle)
    assert not (tmp_path / "X").exists()


@pytest.mark.parametrize(
    "argv, needle", [([], "chart"), (["chart"], "render"), (["train"], "cifar10")]
)
def test_a_missing_command_is_a_usage_error_listing_the_choices(capsys, argv, needle):
    _one_line_error(*_main(capsys, *argv)[::2], needle, "usage")


STATE_CASES = {
    "epoch-str": (lambda s: s.update(epoch="1"), "epoch"),
    "epoch-negative": (lambda s: s.update(epoch=-1), "epoch"),
    "epoch-bool": (lambda s: s.update(epoch=True), "epoch"),
    "epoch-beyond-the-run": (lambda s: s.update(epoch=7), "epoch"),
    "member-out-of-range": (lambda s: s.update(member=3), "member"),
    "finished-str": (lambda s: s.update(finished="no"), "finished"),
    "best-str": (lambda s: s.update(best="low"), "best"),
    "best-nan": (lambda s: s.update(best=float("nan")), "best"),
    "bad-negative": (lambda s: s.update(bad=-1), "bad"),
    "history-short": (lambda s: s["history"].update(val_loss=[]), "history"),
    "history-text": (lambda s: s["history"].update(val_loss=["x"]), "history"),
    "history-list": (lambda s: s.update(history=[1.0]), "history"),
    "histories-int": (lambda s: s.update(histories=5), "histories"),
    "model-shape": (
        lambda s: s["model"].update({"features.0.0.weight": convlab.zeros(3)}),
        "features.0.0.weight",
    ),
    "model-missing": (lambda s: s["model"].pop("fc.bias"), "fc.bias"),
    "model-nan": (
        lambda s: s["model"].update({"fc.bias": convlab.tensor(np.array([np.nan, 0], np.float32))}),
        "fc.bias",
    ),
    "model-int": (lambda s: s.update(model=5), "model"),
    "optimizer-garbage": (
        lambda s: s.update(optimizer={"state": 5, "param_groups": []}),
        "optimizer",
    ),
    "rng-garbage": (lambda s: s.update(rng={"bit_generator": "MT19937"}), "rng"),
    "shuffle-rng-garbage": (lambda s: s.update(shuffle_rng="abc"), "shuffle_rng"),
}


@pytest.mark.parametrize("case", list(STATE_CASES))
def test_resume_with_a_bad_state(run, capsys, case):
    change, needle = STATE_CASES[case]
    _edit_state(run, change)
    before = _snapshot(run)
    line = _one_line_error(
        *_main(capsys, "chart", "train", "--out", run, "--resume", "--quiet", "--threads", 1)[::2],
        needle,
    )
    assert "state.npz" in line
    assert _snapshot(run) == before


def _big_endian(meta, arrays):
    return meta, {k: v.astype(v.dtype.newbyteorder(">")) for k, v in arrays.items()}


def _uint16(meta, arrays):
    return meta, {k: v.astype(np.uint16) if v.dtype == np.float32 else v for k, v in arrays.items()}


@pytest.mark.parametrize("case", ["big-endian", "uint16", "deep-json", "deep-structure"])
def test_resume_with_a_crafted_state_file(run, capsys, case):
    path = run / "state.npz"
    meta, arrays = _read_npz(path)
    if case == "deep-json":
        _write_npz(
            path,
            None,
            arrays,
            '{"format": "convlab-checkpoint", "version": 1, '
            '"object": ' + "[" * 100_000 + "]" * 100_000 + "}",
        )
    elif case == "deep-structure":
        _write_npz(path, {**meta, "object": json.loads("[" * 500 + "]" * 500)}, arrays)
    else:
        _write_npz(path, *{"big-endian": _big_endian, "uint16": _uint16}[case](meta, arrays))
    before = _snapshot(run)
    code, _, err = _main(
        capsys, "chart", "train", "--out", run, "--resume", "--quiet", "--threads", 1
    )
    if case == "big-endian" and code == 0:
        return  # reading byte-swapped arrays back faithfully is as good as refusing them
    _one_line_error(code, err, "state.npz")
    assert _snapshot(run) == before


@pytest.mark.parametrize("command", ["predict", "resume"])
@pytest.mark.parametrize("case", ["uint16", "big-endian", "nan", "wrong-shape"])
def test_a_bad_model_file(run, prices, tmp_path, capsys, command, case):
    path = run / "model_0.npz"
    if case in ("uint16", "big-endian"):
        meta, arrays = _read_npz(path)
        _write_npz(path, *{"big-endian": _big_endian, "uint16": _uint16}[case](meta, arrays))
    else:
        model = convlab.load(path)
        model["fc.weight"] = (
            convlab.zeros(2, 3) if case == "wrong-shape" else model["fc.weight"] * float("nan")
        )
        convlab.save(model, path)
    if command == "resume":  # the run is finished: resuming only writes the report
        _edit_state(run, lambda s: s.update(finished=True))
        _edit_config(run, lambda c: c.update(epochs=1))
        argv = ["chart", "train", "--out", run, "--resume", "--quiet", "--threads", 1]
    else:
        argv = ["chart", "predict", "--model", run, "--data", prices, "--out", tmp_path / "p.csv"]
    code, _, err = _main(capsys, *argv)
    if case == "big-endian" and code == 0:
        return
    _one_line_error(code, err, "model_0.npz")
    assert not (tmp_path / "p.csv").exists() and not (run / "metrics.json").exists()


def test_a_run_saved_on_the_gpu_predicts_and_resumes_on_the_cpu(run, prices, tmp_path, capsys):
    """Checkpoints name the device their tensors came from; a machine without a GPU still
    reads them (they are not corrupted)."""

    def on_gpu(node):
        if isinstance(node, dict):
            return {k: "gpu" if k == "device" else on_gpu(v) for k, v in node.items()}
        return [on_gpu(v) for v in node] if isinstance(node, list) else node

    for name in ("model_0.npz", "state.npz"):
        meta, arrays = _read_npz(run / name)
        _write_npz(run / name, on_gpu(meta), arrays)
    code, _, err = _main(
        capsys, "chart", "predict", "--model", run, "--data", prices, "--out", tmp_path / "p.csv"
    )
    assert code == 0, err
    code, _, err = _main(
        capsys, "chart", "train", "--out", run, "--resume", "--quiet", "--threads", 1
    )
    assert code == 0, err


@pytest.mark.skipif(convlab.get_backend("gpu").is_available(), reason="a GPU is here")
def test_predict_on_a_missing_gpu(run, prices, tmp_path, capsys):
    _one_line_error(
        *_main(
            capsys,
            "chart",
            "predict",
            "--model",
            run,
            "--data",
            prices,
            "--device",
            "gpu",
            "--out",
            tmp_path / "p.csv",
        )[::2],
        "--device gpu",
    )
    assert not (tmp_path / "p.csv").exists()


CONFIG_CASES = {
    "batch-size-float": (lambda c: c.update(batch_size=64.5), "batch_size"),
    "notes-int": (lambda c: c.update(notes=5), "notes"),
    "notes-of-ints": (lambda c: c.update(notes=[5]), "notes"),
    "window-str": (lambda c: c.update(window="5"), "window"),
    "lr-str": (lambda c: c.update(lr="fast"), "lr"),
    "lr-negative": (lambda c: c.update(lr=-1), "lr"),
    "epochs-zero": (lambda c: c.update(epochs=0), "epochs"),
    "ensemble-bool": (lambda c: c.update(ensemble=True), "ensemble"),
    "train-end-garbage": (lambda c: c.update(train_end="20200601"), "train_end"),
    "seed-negative": (lambda c: c.update(seed=-1), "seed"),
    "val-fraction": (lambda c: c.update(val_fraction=1.5), "val_fraction"),
    "data-int": (lambda c: c.update(data=5), "data"),
    "data-missing": (lambda c: c.pop("data"), "data"),
    "horizon-huge": (lambda c: c.update(horizon=10**30), "horizon"),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_resume_with_a_bad_config(run, capsys, case):
    change, needle = CONFIG_CASES[case]
    _edit_config(run, change)
    before = _snapshot(run)
    _one_line_error(
        *_main(capsys, "chart", "train", "--out", run, "--resume", "--quiet", "--threads", 1)[::2],
        needle,
        "config.json",
    )
    assert _snapshot(run) == before


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, "[]", "\xff\xfe", "{"])
def test_resume_with_an_unreadable_config(run, capsys, text):
    (run / "config.json").write_bytes(text.encode("latin-1"))
    _one_line_error(
        *_main(capsys, "chart", "train", "--out", run, "--resume", "--quiet")[::2], "config.json"
    )


def test_predict_with_a_bad_config(run, prices, tmp_path, capsys):
    _edit_config(run, lambda c: c.update(window="5"))
    _one_line_error(
        *_main(
            capsys,
            "chart",
            "predict",
            "--model",
            run,
            "--data",
            prices,
            "--out",
            tmp_path / "p.csv",
        )[::2],
        "window",
        "config.json",
    )


@pytest.mark.parametrize(
    "meta",
    [
        {"count": 296},
        {"count": 296, "tickers": 5},
        {"count": 296, "tickers": ["A"], "window": 5},
        {"count": 296, "tickers": ["A"], "window": 5, "shape": 5},
        [],
        "text",
    ],
)
def test_show_with_a_bad_meta_json(tmp_path, prices, capsys, meta):
    charts = tmp_path / "charts"
    assert (
        _main(capsys, "chart", "render", "--data", prices, "--window", 5, "--out", charts)[0] == 0
    )
    if isinstance(meta, dict):
        meta = {"format": "convlab-chartset", "version": 1, **meta}
    (charts / "meta.json").write_text(json.dumps(meta))
    _one_line_error(
        *_main(capsys, "chart", "show", "--charts", charts, "--out", tmp_path / "g.png")[::2],
        "--charts",
    )
    assert not (tmp_path / "g.png").exists()


def test_cifar_resume_with_a_bad_state_or_config(tmp_path, cifar, capsys):
    out = tmp_path / "run"
    args = [
        "train",
        "cifar10",
        "--data",
        cifar,
        "--epochs",
        2,
        "--limit",
        8,
        "--batch-size",
        4,
        "--out",
        out,
        "--quiet",
        "--threads",
        1,
    ]
    assert _main(capsys, *args[:4], "--epochs", 1, *args[6:])[0] == 0
    pristine = _snapshot(out)
    _edit_state(out, lambda s: s.update(epoch="1"))
    _one_line_error(*_main(capsys, *args, "--resume")[::2], "epoch", "state.npz")
    _edit_state(out, lambda s: s.update(epoch=1, history={"train_loss": 1}))
    _one_line_error(*_main(capsys, *args, "--resume")[::2], "history", "state.npz")
    _edit_state(out, lambda s: s.update(history=convlab.load(out / "model.npz")))
    _one_line_error(*_main(capsys, *args, "--resume")[::2], "history", "state.npz")
    for name, data in pristine.items():
        (out / name).write_bytes(data)
    _edit_config(out, lambda c: c.update(augment=1))
    _one_line_error(*_main(capsys, *args, "--resume")[::2], "augment", "config.json")


# -- item 3: divergence, Ctrl-C, usage ------------------------------------------------------


@pytest.mark.parametrize("command", ["chart", "cifar10"])
def test_a_diverging_loss_is_reported_not_saved(tmp_path, prices, cifar, command):
    """In a child process: NumPy's overflow warnings on the way must not bury the line."""
    out = tmp_path / "run"
    args = (
        _train_args(prices, out, "--lr", "1e30", "--epochs", 2)
        if command == "chart"
        else [
            "train",
            "cifar10",
            "--data",
            cifar,
            "--epochs",
            2,
            "--limit",
            8,
            "--batch-size",
            4,
            "--lr",
            "1e30",
            "--out",
            out,
            "--quiet",
            "--threads",
            1,
        ]
    )
    done = _subprocess(*args)
    line = _one_line_error(done.returncode, done.stderr, "diverged", "--lr", "epoch 1")
    assert "missing" not in line
    assert not (out / "state.npz").exists()


def _interrupt_at(monkeypatch, desc, batch):
    from convlab.training.progress import Progress

    original, seen = Progress.update, {"n": 0}

    def update(self, images, loss=None):
        if loss is not None and self.desc.startswith(desc):
            seen["n"] += 1
            if seen["n"] == batch:
                raise KeyboardInterrupt
        return original(self, images, loss)

    monkeypatch.setattr(Progress, "update", update)


def test_ctrl_c_before_any_epoch_finished_says_so(tmp_path, prices, capsys, monkeypatch):
    out = tmp_path / "run"
    _interrupt_at(monkeypatch, "model 1/1 epoch 1", 2)
    code, _, err = _main(capsys, *_train_args(prices, out, "--epochs", 2))
    assert code == 130 and "Traceback" not in err
    assert "no epoch" in err and "is saved" not in err, err
    # and what it suggests works: --resume starts the run over
    monkeypatch.undo()
    code, _, err = _main(
        capsys, "chart", "train", "--out", out, "--resume", "--quiet", "--threads", 1
    )
    assert code == 0, err


def test_ctrl_c_after_an_epoch_points_at_resume(tmp_path, prices, capsys, monkeypatch):
    out = tmp_path / "run"
    _interrupt_at(monkeypatch, "model 1/1 epoch 2", 2)
    code, _, err = _main(capsys, *_train_args(prices, out, "--epochs", 2))
    assert code == 130 and "Traceback" not in err
    assert "epoch 1" in err and "--resume" in err, err


def test_ctrl_c_in_the_cifar_command_before_any_epoch(tmp_path, cifar, capsys, monkeypatch):
    out = tmp_path / "run"
    _interrupt_at(monkeypatch, "epoch 1", 1)
    args = [
        "train",
        "cifar10",
        "--data",
        cifar,
        "--epochs",
        1,
        "--limit",
        8,
        "--batch-size",
        4,
        "--out",
        out,
        "--quiet",
        "--threads",
        1,
    ]
    code, _, err = _main(capsys, *args)
    assert code == 130 and "no epoch" in err, err
    monkeypatch.undo()
    code, _, err = _main(capsys, *args, "--resume")
    assert code == 0, err


# -- item 4: an optimizer state that does not fit its parameter -----------------------------


def test_resume_with_a_zero_dimensional_exp_avg(run):
    _edit_state(
        run, lambda s: s["optimizer"]["state"][0].update(exp_avg=convlab.tensor(np.float32(0.0)))
    )
    done = _subprocess(
        "chart", "train", "--out", run, "--resume", "--quiet", "--threads", 1, timeout=120
    )
    _one_line_error(done.returncode, done.stderr, "state.npz")
