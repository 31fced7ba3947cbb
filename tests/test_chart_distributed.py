"""``convlab chart train`` over MPI: ``mpiexec -n 2`` trains the one-process model (each rank
a share of every batch), writes one run folder, resumes on another number of ranks, ends the
whole job when one rank fails, and trains ensemble members concurrently on groups of ranks
as the serial ensemble would.

The ranks are processes ``mpiexec`` starts (skipped, with the reason, where mpi4py or
``mpiexec`` are missing); everything else runs in the normal suite.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pandas")

import convlab  # noqa: E402
from convlab.training import chart, ranks  # noqa: E402
from test_charts import random_walks  # noqa: E402

_MPIEXEC = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}")
_MPIEXEC = _MPIEXEC or shutil.which("mpiexec")
needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or _MPIEXEC is None,
    reason="mpi4py and mpiexec are needed (pip install mpi4py mpich)",
)
TIMEOUT = 240


def _args(data, out, *extra, epochs=3, ensemble=1):
    return [
        "chart",
        "train",
        "--data",
        data,
        "--window",
        5,
        "--epochs",
        epochs,
        "--ensemble",
        ensemble,
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


def _run(args, ranks=1, script=None, timeout=TIMEOUT, cwd=None):
    """``convlab`` on ``ranks`` MPI ranks (1: a plain process); ``script`` replaces
    ``-m convlab.cli`` (a test's wrapper)."""
    program = [sys.executable, *([str(script)] if script else ["-m", "convlab.cli"])]
    command = program if ranks == 1 else [_MPIEXEC, "-n", str(ranks), *program]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_"))}
    return subprocess.run(
        [*command, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )


def _weights(path):
    return {k: v.numpy() for k, v in convlab.load(path).items()}


def _assert_same_model(b, a, lr=1e-3):
    """Weights equal up to what float rounding does to Adam: a step moves a weight by up to
    ``lr`` whatever its gradient's size, so a rounding difference in a gradient near zero
    can change a weight by an ``lr`` -- a few elements do; the bulk agrees far closer."""
    for key in ("features.0.0.weight", "features.1.0.weight", "fc.weight"):
        diff = np.abs(b[key] - a[key])
        assert diff.max() <= lr, (key, diff.max())
        assert diff.mean() <= 1e-3 * np.abs(a[key]).mean(), (key, diff.mean())


def _without_timing(histories):
    return [{k: v for k, v in h.items() if k != "images_per_second"} for h in histories]


@pytest.fixture(scope="module")
def prices(tmp_path_factory):
    path = tmp_path_factory.mktemp("prices") / "prices.csv"
    random_walks(1, 420, 1).drop(columns="ticker").to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def one_rank(tmp_path_factory, prices):
    """The reference: 3 epochs on one process."""
    out = tmp_path_factory.mktemp("one") / "run"
    done = _run(_args(prices, out))
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def serial_pair(tmp_path_factory, prices):
    """The reference ensemble: 2 members, 3 epochs each, one process."""
    out = tmp_path_factory.mktemp("pair") / "run"
    done = _run(_args(prices, out, ensemble=2))
    assert done.returncode == 0, done.stderr
    return out


# -- in one process ------------------------------------------------------------------------


def test_mpiexec_is_detected_from_its_launchers_environment(monkeypatch):
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"):
        monkeypatch.delenv(name, raising=False)
    assert not ranks.launched_by_mpi()
    monkeypatch.setenv("PMI_SIZE", "1")  # mpiexec -n 1: one process, no process group needed
    assert not ranks.launched_by_mpi()
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    assert ranks.launched_by_mpi()
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "many")
    assert not ranks.launched_by_mpi()
    # not launched, not asked for: one process, no MPI
    assert ranks.start(None) == ranks.Ranks()


@pytest.mark.parametrize("total, size", [(32, 2), (33, 2), (7, 3), (2, 4), (1, 1)])
def test_shards_are_contiguous_in_rank_order_and_cover_the_batch(total, size):
    rows = np.arange(100, 100 + total)
    shares = [ranks.shard(rows, size, r) for r in range(size)]
    np.testing.assert_array_equal(np.concatenate(shares), rows)
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    offsets = [ranks.shard_offset(total, size, r) for r in range(size)]
    assert offsets == [sum(len(s) for s in shares[:r]) for r in range(size)]


@pytest.mark.parametrize(
    "world, members, groups",
    [
        (1, 5, [[0]]),
        (2, 1, [[0, 1]]),
        (2, 2, [[0], [1]]),
        (2, 3, [[0], [1]]),
        (4, 2, [[0, 1], [2, 3]]),
        (5, 2, [[0, 1, 2], [3, 4]]),
        (6, 3, [[0, 1], [2, 3], [4, 5]]),
    ],
)
def test_member_groups(world, members, groups):
    assert ranks.member_groups(world, members) == groups
    # every member is trained by exactly one group, in turn
    layout = [
        ranks.Ranks(rank=g[0], world=world, group_ranks=g, groups=groups).members(members)
        for g in groups
    ]
    assert sorted(k for ks in layout for k in ks) == list(range(members))
    assert all(ks == list(range(i, members, len(groups))) for i, ks in enumerate(layout))


def test_precision_is_set_and_recorded(tmp_path, prices, monkeypatch):
    seen = []
    monkeypatch.setattr(convlab, "set_float32_matmul_precision", seen.append)
    config = chart.ChartTrainConfig(
        data=str(prices), window=5, horizon=5, epochs=1, ensemble=1, batch_size=32, lr=1e-3
    )
    config.precision = "bf16"
    chart.train(config, tmp_path / "bf16", quiet=True, threads=1)
    assert seen == ["medium"]
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["precision"] == "bf16"
    # a resumed run keeps its precision; a run from before --precision trained in float32
    config_path = tmp_path / "bf16" / "config.json"
    saved = json.loads(config_path.read_text())
    del saved["precision"]
    config_path.write_text(json.dumps(saved))
    chart.train(
        chart.ChartTrainConfig(window=5), tmp_path / "bf16", resume=True, quiet=True, threads=1
    )
    assert seen == ["medium", "highest"]


def test_precision_is_checked(tmp_path, prices):
    done = _run(_args(prices, tmp_path / "run", "--precision", "fp8"))
    assert done.returncode == 2 and "--precision" in done.stderr and "fp8" in done.stderr


# -- under mpiexec -------------------------------------------------------------------------


@needs_mpi
def test_two_ranks_train_the_one_rank_model_into_one_folder(tmp_path, prices, one_rank):
    # the default run folder (runs/i5-<time>): one, named by rank 0
    args = _args(prices, "unused")
    del args[args.index("--out") : args.index("--out") + 2]
    done = _run(args, ranks=2, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (out,) = (tmp_path / "runs").iterdir()
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in one_rank.iterdir())
    assert done.stdout.count("report, plots and predictions in runs/i5-") == 1
    a = json.loads((one_rank / "metrics.json").read_text())
    b = json.loads((out / "metrics.json").read_text())
    (ha,), (hb,) = a["histories"], b["histories"]
    # the training loss (train mode: the batch statistics of the whole batch, the same
    # dropout masks) agrees to float rounding as Adam amplifies it (see _assert_same_model):
    # ~1e-7 after one epoch, ~1e-4 after three; a wrong share, BatchNorm statistics or
    # dropout mask would be off by percents
    np.testing.assert_allclose(hb["train_loss"], ha["train_loss"], rtol=1e-3)
    assert hb["train_loss"][0] == pytest.approx(ha["train_loss"][0], rel=1e-5)
    np.testing.assert_allclose(hb["train_accuracy"], ha["train_accuracy"], atol=2 / 173)
    # evaluation uses the running statistics, which follow the conv biases that precede
    # BatchNorm: their gradient is zero in exact arithmetic, so Adam turns rounding noise
    # into steps of size lr there, and the runs drift apart a little more than rounding
    np.testing.assert_allclose(hb["val_loss"], ha["val_loss"], rtol=5e-3)
    for name in ("train", "validation", "test"):
        assert b[name]["n"] == a[name]["n"]
        assert b[name]["loss"] == pytest.approx(a[name]["loss"], rel=5e-3)
    _assert_same_model(_weights(out / "model_0.npz"), _weights(one_rank / "model_0.npz"))
    assert json.loads((out / "config.json").read_text()) == json.loads(
        (one_rank / "config.json").read_text()
    )


_FAIL_ON_RANK_1 = """
    import os, sys
    from convlab.training import loop
    from convlab.cli import main

    if os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK")) == "1":
        # fail in the 2nd batch of epoch 3: rank 0 has then checkpointed epoch 2 (it joined
        # the 1st batch's sum after writing it)
        train_epoch, total = loop.TrainLoop._train_epoch, loop.TrainLoop._sum_across_ranks
        seen = {"epoch": 0, "batches": 0}

        def counting(self, epoch):
            seen["epoch"], seen["batches"] = epoch, 0
            return train_epoch(self, epoch)

        def failing(self, values):
            seen["batches"] += 1
            if seen["epoch"] == 2 and seen["batches"] == 2:
                raise RuntimeError("rank 1 lost its disk")
            return total(self, values)

        loop.TrainLoop._train_epoch, loop.TrainLoop._sum_across_ranks = counting, failing
    sys.exit(main(sys.argv[1:]))
"""


@needs_mpi
def test_a_failing_rank_ends_the_job_and_the_run_resumes_on_one_rank(tmp_path, prices, one_rank):
    script = tmp_path / "fail.py"
    script.write_text(textwrap.dedent(_FAIL_ON_RANK_1))
    out = tmp_path / "run"
    began = time.monotonic()
    done = _run(_args(prices, out), ranks=2, script=script, timeout=120)
    assert time.monotonic() - began < 120
    assert done.returncode != 0
    assert "rank 1/2" in done.stderr and "rank 1 lost its disk" in done.stderr, done.stderr
    # the last good checkpoint: epoch 2, loadable, no report yet
    state = convlab.load(out / "state.npz")
    assert (state["member"], state["epoch"], state["finished"]) == (0, 2, False)
    assert not (out / "metrics.json").exists()
    # resumed on one rank: the uninterrupted one-rank run's model
    done = _run(["chart", "train", "--out", out, "--resume", "--quiet", "--threads", 1])
    assert done.returncode == 0, done.stderr
    a = json.loads((one_rank / "metrics.json").read_text())
    b = json.loads((out / "metrics.json").read_text())
    (ha,), (hb,) = a["histories"], b["histories"]
    np.testing.assert_allclose(hb["train_loss"], ha["train_loss"], rtol=1e-3)
    np.testing.assert_allclose(hb["val_loss"], ha["val_loss"], rtol=5e-3)
    np.testing.assert_allclose(hb["train_accuracy"], ha["train_accuracy"], atol=2 / 173)
    final_a, final_b = convlab.load(one_rank / "state.npz"), convlab.load(out / "state.npz")
    assert final_b["epoch"] == final_a["epoch"] == 3
    _assert_same_model(
        {k: v.numpy() for k, v in final_b["model"].items()},
        {k: v.numpy() for k, v in final_a["model"].items()},
    )


@needs_mpi
def test_predict_on_two_ranks_writes_every_chart_once(tmp_path, prices, one_rank):
    import pandas as pd

    out = tmp_path / "p.csv"
    done = _run(["chart", "predict", "--model", one_rank, "--data", prices, "--out", out], 2)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("wrote") == 1
    table = pd.read_csv(out)
    assert not table.duplicated(["ticker", "date"]).any()
    # the run's own test predictions (one process) are among them, equal to rounding
    test = pd.read_csv(one_rank / "test_predictions.csv")
    merged = test.merge(table, on=["ticker", "date"], suffixes=("", "_again"))
    assert len(merged) == len(test) and len(table) > len(test)
    np.testing.assert_allclose(merged["p_up"], merged["p_up_again"], atol=2e-6)


@needs_mpi
def test_a_user_error_on_every_rank_ends_the_job_with_status_2(tmp_path, prices):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "thesis.txt").write_text("mine")
    done = _run(_args(prices, out), ranks=2, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "--out" in done.stderr and "Traceback" not in done.stderr
    assert [p.name for p in out.iterdir()] == ["thesis.txt"]


@needs_mpi
def test_ensemble_members_on_rank_groups_are_the_serial_members(tmp_path, prices):
    """3 members on 2 ranks: rank 0 trains members 1 and 3, rank 1 member 2, concurrently;
    each member is then the serial ensemble's (same seeds, same batches: bit for bit)."""
    serial, spread = tmp_path / "serial", tmp_path / "spread"
    done = _run(_args(prices, serial, epochs=2, ensemble=3))
    assert done.returncode == 0, done.stderr
    done = _run(_args(prices, spread, epochs=2, ensemble=3), ranks=2)
    assert done.returncode == 0, done.stderr
    for k in range(3):
        a, b = _weights(serial / f"model_{k}.npz"), _weights(spread / f"model_{k}.npz")
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(b[key], a[key], err_msg=f"model {k} {key}")
        # concurrent members keep their own resume checkpoints
        assert convlab.load(spread / f"state_{k}.npz")["finished"] is True
    a = json.loads((serial / "metrics.json").read_text())
    b = json.loads((spread / "metrics.json").read_text())
    assert _without_timing(b["histories"]) == _without_timing(a["histories"])
    for name in ("train", "validation", "test"):
        assert b[name]["loss"] == pytest.approx(a[name]["loss"], rel=1e-6)
    # and the serial job resumes the spread run (nothing left to train: the report again)
    (spread / "metrics.json").unlink()
    done = _run(["chart", "train", "--out", spread, "--resume", "--quiet", "--threads", 1])
    assert done.returncode == 0, done.stderr
    c = json.loads((spread / "metrics.json").read_text())
    assert _without_timing(c["histories"]) == _without_timing(a["histories"])


@needs_mpi
def test_concurrent_members_interrupted_resume_on_one_rank_as_the_serial_ensemble(
    tmp_path, prices, serial_pair
):
    """2 members on 2 ranks, rank 1 failing in member 2's third epoch: each member's own
    checkpoint lets one process finish both, bit for bit the serial ensemble."""
    script = tmp_path / "fail.py"
    script.write_text(textwrap.dedent(_FAIL_ON_RANK_1))
    serial, spread = serial_pair, tmp_path / "spread"
    done = _run(_args(prices, spread, ensemble=2), ranks=2, script=script, timeout=120)
    assert done.returncode != 0 and "rank 1 lost its disk" in done.stderr, done.stderr
    assert convlab.load(spread / "state_1.npz")["epoch"] == 2
    done = _run(["chart", "train", "--out", spread, "--resume", "--quiet", "--threads", 1])
    assert done.returncode == 0, done.stderr
    for k in range(2):
        a, b = _weights(serial / f"model_{k}.npz"), _weights(spread / f"model_{k}.npz")
        for key in a:
            np.testing.assert_array_equal(b[key], a[key], err_msg=f"model {k} {key}")
    a = json.loads((serial / "metrics.json").read_text())
    b = json.loads((spread / "metrics.json").read_text())
    assert _without_timing(b["histories"]) == _without_timing(a["histories"])


@needs_mpi
def test_members_on_groups_of_two_ranks(tmp_path, prices, serial_pair):
    """4 ranks, 2 members: two groups of two ranks, each a data-parallel member (its own
    sub-communicator for the gradients and the BatchNorm statistics)."""
    serial, spread = serial_pair, tmp_path / "spread"
    done = _run(_args(prices, spread, ensemble=2), ranks=4)
    assert done.returncode == 0, done.stderr
    a = json.loads((serial / "metrics.json").read_text())
    b = json.loads((spread / "metrics.json").read_text())
    for ha, hb in zip(a["histories"], b["histories"]):
        np.testing.assert_allclose(hb["train_loss"], ha["train_loss"], rtol=1e-3)
        np.testing.assert_allclose(hb["train_accuracy"], ha["train_accuracy"], atol=2 / 173)
        np.testing.assert_allclose(hb["val_loss"], ha["val_loss"], rtol=5e-3)
    for k in range(2):
        _assert_same_model(_weights(spread / f"model_{k}.npz"), _weights(serial / f"model_{k}.npz"))
