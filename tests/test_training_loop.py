"""The shared training loop (``convlab.training.loop``): the same parameters and per-epoch
history as the same training written out by hand in PyTorch, early stopping, exact resume
after an interruption, divergence, sums across ranks, and checkpoints read back as
untrusted input."""

from __future__ import annotations

import math

import numpy as np
import pytest

import convlab
from conftest import needs_torch, torch
from convlab import nn
from convlab.training.fields import UserError
from convlab.training.loop import Step, TrainLoop, supervised_step

N, FEATURES, CLASSES, BATCH = 40, 6, 3, 8


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, FEATURES)).astype(np.float32)
    y = rng.integers(0, CLASSES, N).astype(np.int64)
    return x, y


def _model(seed=0):
    convlab.manual_seed(seed)
    return nn.Sequential(nn.Linear(FEATURES, 5), nn.Tanh(), nn.Linear(5, CLASSES))


def _job(tmp_path, epochs=3, shuffle_seed=1, step_hook=None, **kw):
    """A small classification job on the loop; returns (loop, model)."""
    x, y = _data()
    model = _model()
    optimizer = convlab.optim.Adam(model.parameters(), lr=0.05)
    shuffle = np.random.default_rng(shuffle_seed)

    def batches(epoch):
        order = shuffle.permutation(N)
        for start in range(0, N, BATCH):
            rows = order[start : start + BATCH]
            yield convlab.from_numpy(x[rows]), convlab.from_numpy(y[rows])

    def correct(out, target):
        return {"correct": int((out.numpy().argmax(1) == target.numpy()).sum())}

    inner = supervised_step(model, nn.CrossEntropyLoss(), optimizer, metrics=correct)

    def step(batch):
        if step_hook is not None:
            step_hook()
        return inner(batch)

    def validate(epoch):
        with convlab.no_grad():
            out = model(convlab.from_numpy(x))
            loss = nn.functional.cross_entropy(out, convlab.from_numpy(y))
        return {"loss": float(loss.item()), "accuracy": float((out.numpy().argmax(1) == y).mean())}

    loop = TrainLoop(
        epochs=epochs,
        batches=batches,
        step=step,
        samples=N,
        validate=validate,
        train_metrics=lambda sums, n: {"accuracy": sums["correct"] / n},
        model=model,
        optimizer=optimizer,
        generators={"shuffle_rng": shuffle},
        checkpoint=tmp_path / "state.npz",
        quiet=True,
        lr=0.05,
        **kw,
    )
    return loop, model


@needs_torch
def test_same_parameters_and_history_as_the_loop_written_out_in_pytorch(tmp_path):
    loop, model = _job(tmp_path, epochs=3)
    initial = [p.detach().numpy().copy() for p in model.parameters()]
    history = loop.run()

    x, y = _data()
    ref = torch.nn.Sequential(
        torch.nn.Linear(FEATURES, 5), torch.nn.Tanh(), torch.nn.Linear(5, CLASSES)
    )
    with torch.no_grad():
        for p, value in zip(ref.parameters(), initial):
            p.copy_(torch.from_numpy(value))
    opt = torch.optim.Adam(ref.parameters(), lr=0.05)
    shuffle = np.random.default_rng(1)
    want = {"train_loss": [], "train_accuracy": [], "val_loss": [], "val_accuracy": []}
    for _ in range(3):
        order = shuffle.permutation(N)
        loss_sum, hits = 0.0, 0
        for start in range(0, N, BATCH):
            rows = order[start : start + BATCH]
            opt.zero_grad()
            out = ref(torch.from_numpy(x[rows]))
            loss = torch.nn.functional.cross_entropy(out, torch.from_numpy(y[rows]))
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(rows)
            hits += int((out.argmax(1).numpy() == y[rows]).sum())
        want["train_loss"].append(loss_sum / N)
        want["train_accuracy"].append(hits / N)
        with torch.no_grad():
            out = ref(torch.from_numpy(x))
            want["val_loss"].append(
                torch.nn.functional.cross_entropy(out, torch.from_numpy(y)).item()
            )
            want["val_accuracy"].append(float((out.argmax(1).numpy() == y).mean()))
    for key, values in want.items():
        np.testing.assert_allclose(history[key], values, rtol=2e-5, err_msg=key)
    assert len(history["images_per_second"]) == 3 and min(history["images_per_second"]) > 0
    for p, q in zip(model.parameters(), ref.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-4, atol=1e-6)
    # the checkpoint holds the last epoch, read back by the library's loader
    state = convlab.load(tmp_path / "state.npz")
    assert state["epoch"] == 3 and state["history"] == history
    assert set(state) == {"epoch", "history", "model", "optimizer", "rng", "shuffle_rng"}


def test_interrupted_and_resumed_equals_uninterrupted(tmp_path):
    straight, model = _job(tmp_path / "a", epochs=4)
    (tmp_path / "a").mkdir()
    straight.run()
    want = [p.detach().numpy().copy() for p in model.parameters()]

    calls = {"n": 0}

    def interrupt_in_epoch_3():
        calls["n"] += 1
        if calls["n"] == 2 * (N // BATCH) + 2:  # the 2nd batch of the 3rd epoch
            raise KeyboardInterrupt

    (tmp_path / "b").mkdir()
    first, _ = _job(tmp_path / "b", epochs=4, step_hook=interrupt_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        first.run()
    assert first.saved == "epoch 2" and first.epoch == 2
    state = convlab.load(tmp_path / "b" / "state.npz")
    assert state["epoch"] == 2

    # a fresh process: other initial weights and generator states, all replaced by the file
    convlab.manual_seed(99)
    resumed, model_b = _job(tmp_path / "b", epochs=4, shuffle_seed=7)
    for p in model_b.parameters():
        p.data.mul_(0.0)
    resumed.load_state_dict(state, "state.npz")
    assert resumed.saved == "epoch 2"
    history = resumed.run()
    for p, value in zip(model_b.parameters(), want):
        np.testing.assert_array_equal(p.detach().numpy(), value)
    strip = {k: v for k, v in straight.history.items() if k != "images_per_second"}
    assert {k: v for k, v in history.items() if k != "images_per_second"} == strip


def test_early_stopping_keeps_the_best_and_stops_after_patience_epochs(tmp_path):
    scripted = [0.9, 0.7, 0.8, 0.75, 0.6, 0.5]  # best at epochs 1, 2; then 2 bad ones
    improved, ended = [], []
    loop = TrainLoop(
        epochs=6,
        batches=lambda epoch: [1, 2, 3],
        step=lambda batch: Step(0.1 * batch, 2),
        samples=6,
        validate=lambda epoch: {"loss": scripted[epoch]},
        patience=2,
        on_improved=improved.append,
        on_epoch_end=ended.append,
        checkpoint=tmp_path / "state.npz",
        quiet=True,
    )
    history = loop.run()
    assert improved == [0, 1] and ended == [0, 1, 2, 3]
    assert loop.stopped and loop.finished and loop.best == 0.7 and loop.bad == 2
    assert history["val_loss"] == scripted[:4]
    # train loss: the sample-weighted mean of the steps' losses (0.1, 0.2, 0.3 on 2 each)
    assert history["train_loss"] == pytest.approx([0.2] * 4)
    state = convlab.load(tmp_path / "state.npz")
    assert (state["epoch"], state["best"], state["bad"]) == (4, 0.7, 2)
    # a run resumed from a stopped checkpoint trains nothing more
    again = TrainLoop(
        epochs=6,
        batches=lambda epoch: pytest.fail("trained after an early stop"),
        step=lambda batch: Step(0.0, 1),
        samples=1,
        patience=2,
        quiet=True,
    )
    again.load_state_dict({k: state[k] for k in ("epoch", "history", "best", "bad", "rng")}, "s")
    assert again.finished and again.run() == history


@pytest.mark.parametrize("where", ["train", "validation"])
def test_a_diverging_loss_names_the_batch_and_lr_and_writes_no_checkpoint(tmp_path, where):
    def step(batch):
        bad = where == "train" and batch == 2
        return Step(math.inf if bad else 1.0, 4)

    loop = TrainLoop(
        epochs=2,
        batches=lambda epoch: [1, 2, 3],
        step=step,
        samples=12,
        validate=lambda epoch: {"loss": math.nan if where == "validation" else 1.0},
        checkpoint=tmp_path / "state.npz",
        where=lambda epoch: f"member 1 epoch {epoch + 1}",
        lr=0.5,
        quiet=True,
    )
    with pytest.raises(UserError) as err:
        loop.run()
    message = str(err.value)
    assert "--lr" in message and "0.5" in message and "member 1 epoch 1" in message
    assert ("batch 2" in message) == (where == "train")
    assert not (tmp_path / "state.npz").exists() and loop.saved is None


def test_sums_across_ranks_give_the_global_batch(tmp_path):
    """``reduce`` adds this rank's vector to another rank's: the history is the global one,
    and a divergence on the other rank stops this one too."""
    other = {"loss_sum": [3.0, 9.0], "count": [3, 1], "hits": [1, 0]}
    calls = {"n": 0}

    def reduce(vector):
        i = calls["n"] % 2
        calls["n"] += 1
        return vector + np.array([other["loss_sum"][i], other["count"][i], other["hits"][i]])

    written = []
    loop = TrainLoop(
        epochs=1,
        batches=lambda epoch: [0, 1],
        step=lambda batch: Step([2.0, 4.0][batch], 1, {"hits": 1}),
        samples=6,
        train_metrics=lambda sums, n: {"accuracy": sums["hits"] / n},
        reduce=reduce,
        write=False,
        checkpoint=tmp_path / "state.npz",
        on_epoch_end=written.append,
        quiet=True,
    )
    history = loop.run()
    # (2 + 3) + (4 + 9) over 1 + 3 + 1 + 1 samples; (1 + 1 + 1 + 0) hits
    assert history["train_loss"] == pytest.approx([18 / 6])
    assert history["train_accuracy"] == pytest.approx([3 / 6])
    # write=False: the callbacks run, nothing is written
    assert written == [0] and not (tmp_path / "state.npz").exists()

    def reduce_nan(vector):
        return vector + np.array([math.nan, 1.0])

    loop = TrainLoop(
        epochs=1,
        batches=lambda epoch: [0],
        step=lambda batch: Step(1.0, 1),
        samples=2,
        reduce=reduce_nan,
        quiet=True,
    )
    with pytest.raises(UserError, match="diverged"):
        loop.run()


def test_not_only_images_tokens_with_their_own_rate_key():
    loop = TrainLoop(
        epochs=2,
        batches=lambda epoch: range(3),
        step=lambda batch: Step(4.0, 35),
        samples=105,
        validate=lambda epoch: {"loss": 4.5, "perplexity": math.exp(4.5)},
        unit="tok",
        rate_key="tokens_per_second",
        quiet=True,
    )
    history = loop.run()
    assert set(history) == {"train_loss", "val_loss", "val_perplexity", "tokens_per_second"}
    assert history["val_perplexity"] == pytest.approx([math.exp(4.5)] * 2)


@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda s: s.update(epoch="2"), "epoch"),
        (lambda s: s.update(epoch=-1), "epoch"),
        (lambda s: s.update(history=[1]), "history"),
        (lambda s: s["history"].update(train_loss=[1.0]), "train_loss"),
        (lambda s: s["history"].update(train_loss=["a", "b"]), "train_loss"),
        (lambda s: s.pop("optimizer"), "optimizer"),
        (lambda s: s.update(shuffle_rng="abc"), "shuffle_rng"),
        (lambda s: s["model"].pop("0.bias"), "0.bias"),
    ],
)
def test_a_bad_checkpoint_is_a_user_error_naming_the_field(tmp_path, change, needle):
    loop, _ = _job(tmp_path, epochs=2)
    loop.run()
    state = convlab.load(tmp_path / "state.npz")
    change(state)
    fresh, _ = _job(tmp_path, epochs=2)
    with pytest.raises(UserError, match="ckpt") as err:
        fresh.load_state_dict(state, "ckpt")
    assert needle in str(err.value)


def test_an_empty_share_of_a_short_batch_adds_nothing():
    """A rank whose share of the last batch is empty reports the NaN mean of no samples:
    not a divergence, and not part of the epoch's mean."""
    loop = TrainLoop(
        epochs=1,
        batches=lambda epoch: [4, 0],  # this rank's share: 4 samples, then none
        step=lambda n: Step(1.5 if n else math.nan, n),
        samples=5,
        reduce=lambda vector: vector + np.array([2.5, 1.0]),  # the other rank: 1 sample each
        quiet=True,
    )
    assert loop.run()["train_loss"] == pytest.approx([(4 * 1.5 + 2 * 2.5) / 6])
