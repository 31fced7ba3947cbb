"""``convlab train ptb`` and ``convlab generate`` end to end, through the command line: the
language model learns the bundled corpus (validation perplexity well below the unigram
model's, computed here from counts), resume continues exactly, generation writes
in-vocabulary words, and user errors are one line with exit status 2."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import convlab
from conftest import needs_gpu
from convlab.cli import main
from convlab.data import Corpus, default_text_corpus

# small enough for CI (one thread: the time loop's small GEMMs gain nothing from two)
SMALL = ["--embedding", "64", "--hidden", "64", "--layers", "1", "--dropout", "0"]
SMALL += ["--batch-size", "10", "--optimizer", "adam", "--lr", "0.01", "--threads", "1", "--quiet"]
TINY = ["--embedding", "16", "--hidden", "16", "--layers", "2", "--bptt", "8"]
TINY += ["--batch-size", "4", "--max-lines", "60", "--threads", "1", "--quiet"]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    # the bundled corpus is built into a test folder, never the user's cache
    monkeypatch.setenv("CONVLAB_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def _unigram_perplexity() -> float:
    """The perplexity on validation of word frequencies counted in train (every validation
    word occurs in train: the bundled corpus maps the others to <unk>)."""
    corpus = Corpus(default_text_corpus())
    counts = np.bincount(corpus.train, minlength=len(corpus.dictionary))
    p = counts / counts.sum()
    assert (p[corpus.valid] > 0).all()
    return float(np.exp(-np.log(p[corpus.valid]).mean()))


def test_learns_resumes_and_generates(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "ptb", *SMALL, "--epochs", "1", "--out", str(run)]) == 0
    first = _metrics(run)
    assert first["epochs_done"] == 1
    for name in ("config.json", "vocab.json", "state.npz", "model.npz"):
        assert (run / name).is_file(), name
    assert (run / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # resume with only --epochs: the run's own settings come from config.json
    assert (
        main(
            ["train", "ptb", "--epochs", "2", "--threads", "1", "--quiet"]
            + ["--out", str(run), "--resume"]
        )
        == 0
    )
    metrics = _metrics(run)
    assert metrics["epochs_done"] == 2
    assert metrics["valid_loss"][0] == first["valid_loss"][0]
    assert metrics["config"]["hidden"] == 64 and metrics["config"]["optimizer"] == "adam"
    unigram = _unigram_perplexity()
    valid = metrics["valid_perplexity"]
    assert valid[1] < valid[0]
    assert valid[1] < 0.75 * unigram, (valid, unigram)
    assert metrics["test_perplexity"][1] < 0.8 * unigram
    for key in ("train", "valid", "test"):
        np.testing.assert_allclose(
            metrics[f"{key}_perplexity"], np.exp(metrics[f"{key}_loss"]), rtol=1e-12
        )
    capsys.readouterr()

    vocab = set(json.loads((run / "vocab.json").read_text()))
    assert main(["generate", "--model", str(run), "--words", "40", "--seed", "3"]) == 0
    text = capsys.readouterr().out
    words = text.split()
    assert 0 < len(words) <= 40
    # each of the 40 samples is a word or <eos>, which ends a line
    # (plus the line break that ends the output when the last sample was a word)
    assert len(words) + text.count("\n") in (40, 41)
    assert set(words) <= vocab - {"<eos>"}
    assert main(["generate", "--model", str(run), "--words", "40", "--seed", "3"]) == 0
    assert capsys.readouterr().out == text
    assert main(["generate", "--model", str(run), "--words", "40", "--seed", "4"]) == 0
    assert capsys.readouterr().out != text


def test_resume_continues_exactly(tmp_path):
    # SGD at lr 20: the annealing (lr / 4 after an epoch without a better validation loss)
    # and the carried random state must survive the interruption
    straight, split = tmp_path / "a", tmp_path / "b"
    sgd = [*TINY, "--optimizer", "sgd"]
    assert main(["train", "ptb", *sgd, "--epochs", "3", "--out", str(straight)]) == 0
    assert main(["train", "ptb", *sgd, "--epochs", "1", "--out", str(split)]) == 0
    assert main(["train", "ptb", "--epochs", "3", "--quiet", "--out", str(split), "--resume"]) == 0
    a, b = _metrics(straight), _metrics(split)
    for key in ("train_loss", "valid_loss", "test_loss", "lr"):
        assert a[key] == b[key], key
    assert all(math.isfinite(v) for v in a["valid_loss"])
    assert a["lr"] == [20.0, 20.0, 5.0]  # this seed's second epoch did not improve


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_tiny_folder_corpus(tmp_path):
    # a test text of three tokens still gives one column of two rows (inputs and targets)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "train.txt").write_text("the cat sat on the mat\n" * 200)
    (corpus / "valid.txt").write_text("the cat sat on the mat\n" * 30)
    (corpus / "test.txt").write_text("a mat\n")  # 'a' is unseen in train
    run = tmp_path / "run"
    small = ["--embedding", "16", "--hidden", "16", "--layers", "1", "--batch-size", "4"]
    small += ["--bptt", "8", "--lr", "0.05", "--epochs", "2", "--threads", "1", "--quiet"]
    assert main(["train", "ptb", *small, "--data", str(corpus), "--out", str(run)]) == 0
    metrics = _metrics(run)
    # 7 words (uniform: perplexity 7); the repeated sentence is learned
    assert metrics["valid_perplexity"][-1] < 3
    assert all(math.isfinite(v) and v > 1 for v in metrics["valid_perplexity"])
    assert json.loads((run / "vocab.json").read_text())[:3] == ["the", "cat", "sat"]


def test_user_errors(tmp_path, capsys):
    missing = tmp_path / "nothing"
    assert "is not a folder" in _error(capsys, ["train", "ptb", "--data", str(missing), "--quiet"])
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "ptb.train.txt").write_text("a b c\n")
    (corpus / "ptb.valid.txt").write_text("a b\n")
    err = _error(capsys, ["train", "ptb", "--data", str(corpus), "--out", str(tmp_path / "r")])
    assert "--data: base_dir: no test file" in err
    (corpus / "ptb.test.txt").write_text("")
    err = _error(capsys, ["train", "ptb", "--data", str(corpus), "--out", str(tmp_path / "r")])
    assert "ptb.test.txt: the file holds no words" in err
    err = _error(capsys, ["train", "ptb", "--embedding", "8", "--hidden", "9", "--tied"])
    assert "--tied: tied weights need --embedding equal to --hidden, got 8 and 9" in err
    assert "--hidden" in _error(capsys, ["train", "ptb", "--hidden", "0"])
    assert "--dropout" in _error(capsys, ["train", "ptb", "--dropout", "1"])
    err = _error(capsys, ["generate", "--model", str(tmp_path / "none")])
    assert "--model" in err and "does not exist" in err


def test_resume_refuses_other_settings(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "ptb", *TINY, "--epochs", "1", "--out", str(run)]) == 0
    err = _error(capsys, ["train", "ptb", "--hidden", "32", "--out", str(run), "--resume"])
    assert "--hidden: the run in" in err and "used hidden=16, not 32" in err
    err = _error(capsys, ["train", "ptb", *TINY, "--out", str(run)])
    assert "already holds a run" in err
    # a crafted checkpoint is refused field by field, in one line
    good = convlab.load(run / "state.npz")
    for field, value in (("test_loss", ["x"]), ("lr", [1.0, 2.0]), ("best", "low")):
        convlab.save({**good, field: value}, run / "state.npz")
        err = _error(capsys, ["train", "ptb", "--out", str(run), "--resume", "--epochs", "2"])
        assert f"state.npz: {field}" in err, err
    convlab.save(good, run / "state.npz")
    # generation works from any finished epoch; a damaged vocabulary is reported
    assert main(["generate", "--model", str(run), "--words", "5"]) == 0
    (run / "vocab.json").write_text('["a", "a"]')
    assert "not a vocabulary" in _error(capsys, ["generate", "--model", str(run)])


@needs_gpu
def test_gpu_run_matches_cpu(tmp_path, capsys):
    quick = [*TINY, "--max-lines", "20", "--epochs", "1"]
    assert main(["train", "ptb", *quick, "--device", "cpu", "--out", str(tmp_path / "c")]) == 0
    assert main(["train", "ptb", *quick, "--device", "gpu", "--out", str(tmp_path / "g")]) == 0
    cpu, gpu = _metrics(tmp_path / "c"), _metrics(tmp_path / "g")
    for key in ("train_loss", "valid_loss", "test_loss"):
        # float32 on both, summed in different orders over a handful of steps
        np.testing.assert_allclose(gpu[key], cpu[key], rtol=2e-4, err_msg=key)
    capsys.readouterr()
    # a run trained on the GPU samples on the CPU and on the GPU alike
    assert main(["generate", "--model", str(tmp_path / "g"), "--words", "12"]) == 0
    text = capsys.readouterr().out
    assert (
        main(["generate", "--model", str(tmp_path / "g"), "--words", "12", "--device", "gpu"]) == 0
    )
    assert capsys.readouterr().out == text


def _interrupt_at(monkeypatch, desc, batch):
    """Ctrl-C at the ``batch``-th training batch of the epoch whose bar reads ``desc``."""
    from convlab.training.progress import Progress

    original, seen = Progress.update, {"n": 0}

    def update(self, count, loss=None):
        if loss is not None and self.desc == desc:
            seen["n"] += 1
            if seen["n"] == batch:
                raise KeyboardInterrupt
        return original(self, count, loss)

    monkeypatch.setattr(Progress, "update", update)


@pytest.mark.parametrize("epoch", [1, 2])
def test_ctrl_c_then_the_suggested_resume(tmp_path, capsys, monkeypatch, epoch):
    run = tmp_path / "run"
    with monkeypatch.context() as patch:  # (undo() would also drop the cache setting)
        _interrupt_at(patch, f"epoch {epoch}", 2)
        assert main(["train", "ptb", *TINY, "--epochs", "2", "--out", str(run)]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"convlab train ptb --out {run} --resume" in err
    if epoch == 1:
        assert "no epoch had finished" in err and not (run / "state.npz").exists()
    else:
        assert "checkpoint of epoch 1" in err
    assert main(["train", "ptb", "--out", str(run), "--resume", "--quiet"]) == 0
    assert _metrics(run)["epochs_done"] == 2
