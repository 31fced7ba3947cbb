"""Train a word-level language model (``convlab train ptb``) and sample from it
(``convlab generate``).

The job follows pytorch/examples' ``word_language_model`` and needle hw4: the training text
is laid out in ``batch_size`` columns (:func:`convlab.data.batchify`), cut into chunks of
``bptt`` rows (:func:`convlab.data.get_batch`), and the recurrent state is carried from chunk
to chunk but detached, so gradients flow back ``bptt`` steps at most (truncated
back-propagation through time). Gradients are clipped to norm ``clip``. The learning rate is
divided by 4 after every epoch whose validation loss is no better than the best so far, as in
the example. The default optimizer is Adam at 1e-2: in short runs on the bundled corpus it
reaches a lower validation perplexity than the example's SGD at 20 (112 against 162 after
six epochs of the default 2 x 200 LSTM); ``optimizer="sgd"`` is the example's recipe.

A run lives in one folder:

* ``config.json``: the settings; ``vocab.json``: the words, in id order (what ``generate``
  needs, with no data);
* ``state.npz``: the resume checkpoint (model, optimizer, random states, epoch, history),
  rewritten atomically after every epoch by the shared training loop
  (:class:`~convlab.training.loop.TrainLoop`);
* ``model.npz``: the weights with the lowest validation loss so far (``convlab.load`` +
  ``load_state_dict``);
* ``metrics.json`` (per-epoch train / validation / test loss and perplexity, words/s, the
  learning rate) and ``learning_curves.png``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import convlab
from convlab import nn
from convlab.data import Corpus, batchify, default_text_corpus, get_batch
from convlab.data.text import EOS
from convlab.models.language_model import LanguageModel, detach_hidden
from convlab.training.fields import (
    MAX_SEED,
    UserError,
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_str,
    shown,
)
from convlab.training.loop import Step, TrainLoop
from convlab.training.runs import (
    Interrupted,
    check_new_run_folder,
    claim_run_folder,
    config_from_file,
    load_checkpoint,
    load_model_state,
    log,
    read_run_config,
    read_run_state,
    write_json,
)

__all__ = [
    "PTBTrainConfig",
    "ptb_config",
    "OPTIONS",
    "train_ptb",
    "generate",
    "evaluate",
    "load_run",
    "MODELS",
]

#: ``--model`` choices.
MODELS = ("lstm", "gru", "rnn")
#: ``--optimizer`` choices.
OPTIMIZERS = ("sgd", "adam")
#: Sequences in a validation / test batch (pytorch/examples' ``eval_batch_size``).
EVAL_BATCH = 10
#: What SGD's learning rate is divided by after an epoch without a better validation loss.
ANNEAL = 4.0
_KIND = "ptb"


@dataclass
class PTBTrainConfig:
    """Settings of one run (the ``convlab train ptb`` options)."""

    data: str = "default"
    model: str = "lstm"
    embedding: int = 200
    hidden: int = 200
    layers: int = 2
    bptt: int = 35
    batch_size: int = 20
    epochs: int = 6
    optimizer: str = "adam"
    lr: float | None = None  # None: 1e-2 for Adam, 20 for SGD
    clip: float = 0.25
    dropout: float = 0.2
    tied: bool = False
    device: str = "cpu"
    seed: int = 0
    max_lines: int | None = None  # read only the first N lines of each file (quick runs)

    @property
    def learning_rate(self) -> float:
        """``lr``, or the optimizer's default when it is None."""
        if self.lr is not None:
            return self.lr
        return 20.0 if self.optimizer == "sgd" else 1e-2

    def check(self, where: str | None = None) -> None:
        """Raise :class:`UserError` for a setting of the wrong type or range.

        Args:
            where: Where the settings were read from: errors name ``"<where>: <field>"``;
                by default the field's option (``--batch-size``).
        """

        def name(field: str) -> str:
            return f"{where}: {field}" if where else f"--{field.replace('_', '-')}"

        check_str(self.data, name("data"))
        check_choice(self.model, name("model"), MODELS)
        for field in ("embedding", "hidden", "layers", "bptt", "batch_size", "epochs"):
            check_int(getattr(self, field), name(field), 1)
        check_choice(self.optimizer, name("optimizer"), OPTIMIZERS)
        if self.lr is not None:
            check_number(self.lr, name("lr"), 0, above=True)
        check_number(self.clip, name("clip"), 0)
        check_number(self.dropout, name("dropout"), 0)
        if self.dropout >= 1:
            raise UserError(
                f"{name('dropout')}: expected a probability below 1, got {self.dropout}"
            )
        check_bool(self.tied, name("tied"))
        if self.tied and self.embedding != self.hidden:
            raise UserError(
                f"{name('tied')}: tied weights need --embedding equal to --hidden, got "
                f"{self.embedding} and {self.hidden}"
            )
        check_choice(self.device, name("device"), ("cpu", "gpu"))
        check_int(self.seed, name("seed"), 0, MAX_SEED)
        if self.max_lines is not None:
            check_int(self.max_lines, name("max_lines"), 1)
        if self.device == "gpu" and not convlab.get_backend("gpu").is_available():
            raise UserError(f"--device gpu: {convlab.get_backend('gpu').describe()}")


#: The settings ``convlab train ptb`` takes from its options (the config's fields).
OPTIONS = tuple(PTBTrainConfig.__dataclass_fields__)
#: What ``--resume`` may change: the rest must be the run's.
RESUME_MAY_CHANGE = ("epochs", "device")


def ptb_config(given: dict, out: Any, resume: bool) -> PTBTrainConfig:
    """The settings of a run from the options given on the command line: for a new run the
    defaults fill in the rest; with ``resume`` the run's own settings do, and only
    ``epochs`` (to train longer) and ``device`` may differ from them.

    Raises:
        UserError: For a bad setting, or one that contradicts the run being resumed.
    """
    if not resume:
        return PTBTrainConfig(**given)
    folder = Path(out)
    saved, path = read_run_config(folder, _KIND)
    device = given.get("device", "cpu")
    run = config_from_file(PTBTrainConfig, saved, f"--resume: {path}", device=device)
    for key, value in given.items():
        if key in RESUME_MAY_CHANGE:
            setattr(run, key, value)
        elif getattr(run, key) != value:
            option = "--" + key.replace("_", "-")
            raise UserError(
                f"{option}: the run in {folder} used {key}={getattr(run, key)!r}, not "
                f"{value!r} (leave it out to continue the run)"
            )
    return run


def _corpus(data: str, max_lines: int | None = None) -> Corpus:
    """The corpus ``--data`` names: ``default`` (the bundled one) or a PTB-format folder."""
    try:
        folder = default_text_corpus() if data == "default" else Path(data)
        return Corpus(folder, max_lines)
    except (FileNotFoundError, ValueError) as err:
        raise UserError(f"--data: {err}") from None


def _model(config: PTBTrainConfig, vocabulary: int) -> LanguageModel:
    return LanguageModel(
        config.embedding,
        vocabulary,
        config.hidden,
        config.layers,
        seq_model=config.model,
        dropout=config.dropout,
        tied=config.tied,
    ).to(config.device)


def _optimizer(config: PTBTrainConfig, model: nn.Module) -> Any:
    if config.optimizer == "adam":
        return convlab.optim.Adam(model.parameters(), lr=config.learning_rate)
    return convlab.optim.SGD(model.parameters(), lr=config.learning_rate)


def evaluate(model: LanguageModel, batches: np.ndarray, bptt: int, device: Any = None) -> float:
    """Mean cross-entropy per token (nats) of ``model`` over a :func:`batchify` array, the
    state carried through it from zeros (the perplexity is ``exp`` of it).

    Args:
        model: The language model (put in evaluation mode).
        batches: ``(nbatch, batch)`` token ids.
        bptt: Rows per forward pass.
        device: Where the batches go.
    """
    model.eval()
    total, tokens = 0.0, 0
    hidden = model.init_hidden(batches.shape[1])
    with convlab.no_grad():
        for i in range(0, len(batches) - 1, bptt):
            data, targets = get_batch(batches, i, bptt, device=device)
            logits, hidden = model(data, hidden)
            loss = nn.functional.cross_entropy(logits, targets, reduction="sum")
            total += float(loss.item())
            tokens += int(targets.numel())
    return total / max(tokens, 1)


def _eval_batches(tokens: np.ndarray) -> np.ndarray:
    """Validation / test text in :data:`EVAL_BATCH` columns -- fewer for a text too short to
    give each column two rows (one input and its target)."""
    return batchify(tokens, max(1, min(EVAL_BATCH, len(tokens) // 2)))


def _perplexity(loss: float) -> float:
    # exp of a large loss overflows: an untrained model on a big vocabulary is finite, but a
    # diverged one is reported as inf, not as an OverflowError
    return math.exp(loss) if loss < 700 else math.inf


# -- the run folder ------------------------------------------------------------------------


def _read_vocab(path: Path, option: str) -> list[str]:
    try:
        words = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise UserError(f"{option}: {path} is missing") from None
    except (OSError, ValueError, RecursionError) as err:
        raise UserError(f"{option}: {path} is unreadable ({err})") from None
    if (
        not isinstance(words, list)
        or not words
        or not all(isinstance(w, str) and w for w in words)
        or len(set(words)) != len(words)
    ):
        raise UserError(f"{option}: {path} is not a vocabulary (expected a list of distinct words)")
    return words


def _check_float_list(value: Any, name: str, length: int) -> list[float]:
    if (
        not isinstance(value, list)
        or len(value) != length
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise UserError(f"{name}: expected {length} numbers (one per epoch), got {shown(value)}")
    return [float(v) for v in value]


def _read_resume(folder: Path, config: PTBTrainConfig) -> tuple[dict | None, list[str]]:
    """The resume checkpoint of the run in ``folder`` (None when no epoch had finished) and
    its vocabulary; the settings that decide the model and the batches must be the run's."""
    saved, path = read_run_config(folder, "ptb")
    run = config_from_file(PTBTrainConfig, saved, f"--resume: {path}", device=config.device)
    for key in (
        "data",
        "model",
        "embedding",
        "hidden",
        "layers",
        "bptt",
        "batch_size",
        "optimizer",
        "lr",
        "clip",
        "dropout",
        "tied",
        "seed",
        "max_lines",
    ):
        if getattr(run, key) != getattr(config, key):
            raise UserError(
                f"--resume: {path}: the run used {key}={getattr(run, key)!r}, not "
                f"{getattr(config, key)!r}"
            )
    vocab = _read_vocab(folder / "vocab.json", "--resume")
    state_path = folder / "state.npz"
    if not state_path.exists():
        return None, vocab
    state = read_run_state(state_path, ("epoch", "history", "test_loss", "lr", "best"), _KIND)
    epoch = check_int(state["epoch"], f"--resume: {state_path}: epoch", 0)
    _check_float_list(state["test_loss"], f"--resume: {state_path}: test_loss", epoch)
    _check_float_list(state["lr"], f"--resume: {state_path}: lr", epoch)
    best = state["best"]
    if not isinstance(best, (int, float)) or isinstance(best, bool) or best != best:
        raise UserError(f"--resume: {state_path}: best: expected a number, got {shown(best)}")
    return state, vocab


def train_ptb(
    config: PTBTrainConfig,
    out: Any,
    resume: bool = False,
    quiet: bool = False,
    threads: int | None = None,
) -> dict:
    """Train, evaluate on validation and test after every epoch, checkpoint; returns the
    metrics dict (what ``metrics.json`` holds).

    ``out`` must be absent or an empty folder for a new run; with ``resume`` it is a run
    folder, continued from its last finished epoch (or started over if none had finished).
    ``config.epochs`` may be raised on resume to train longer.

    Raises:
        UserError: For bad settings, a missing or empty corpus file, an ``out`` folder that
            holds a run (without ``resume``) or anything else, a checkpoint that does not fit,
            or a loss that diverged.
        Interrupted: On Ctrl-C, saying which epoch ``state.npz`` holds.
    """
    config.check()
    folder = Path(out)
    vocab: list[str] | None = None
    state: dict | None = None
    if resume:
        state, vocab = _read_resume(folder, config)
    else:
        check_new_run_folder(folder)
    if threads is not None:
        convlab.set_num_threads(threads)
    progress: dict[str, Any] = {
        "saved": f"epoch {state['epoch']}" if state is not None else None,
        "started": resume,
    }
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return _train(config, folder, state, vocab, quiet, progress, resume)
    except KeyboardInterrupt:
        loop = progress.get("loop")
        saved = loop.saved if loop is not None else progress["saved"]
        raise Interrupted(saved, progress["started"]) from None


def _train(
    config: PTBTrainConfig,
    folder: Path,
    state: dict | None,
    vocab: list[str] | None,
    quiet: bool,
    progress: dict,
    resume: bool,
) -> dict:
    corpus = _corpus(config.data, config.max_lines)
    words = corpus.dictionary.idx2word
    if vocab is not None and vocab != words:
        raise UserError(
            f"--resume: the corpus in --data {config.data} is not the one the run was trained "
            f"on (its vocabulary differs from {folder / 'vocab.json'})"
        )
    if not resume:
        claim_run_folder(folder, asdict(config))
        write_json(folder / "vocab.json", words)
        progress["started"] = True
    try:
        train_data = batchify(corpus.train, config.batch_size)
        val_data, test_data = _eval_batches(corpus.valid), _eval_batches(corpus.test)
    except ValueError as err:
        raise UserError(f"--data: {err}") from None
    if len(train_data) < 2:
        raise UserError(
            f"--batch-size: {config.batch_size} columns leave fewer than 2 rows of the "
            f"{len(corpus.train)} training tokens"
        )

    convlab.manual_seed(config.seed)
    model = _model(config, len(words))
    optimizer = _optimizer(config, model)
    loss_fn = nn.CrossEntropyLoss()
    carried: dict[str, Any] = {"hidden": None}
    anneal = {"best": math.inf}
    test_losses: list[float] = []
    lrs: list[float] = []  # the learning rate of each epoch

    def batches(epoch: int) -> Iterator[tuple[Any, Any]]:
        # every epoch starts from a zero state, as in pytorch/examples
        carried["hidden"] = model.init_hidden(config.batch_size)
        for i in range(0, len(train_data) - 1, config.bptt):
            yield get_batch(train_data, i, config.bptt, device=config.device)

    def step(batch: tuple[Any, Any]) -> Step:
        data, targets = batch
        # truncated BPTT: the state carries over, its history does not
        hidden = detach_hidden(carried["hidden"])
        optimizer.zero_grad()
        logits, carried["hidden"] = model(data, hidden)
        loss = loss_fn(logits, targets)
        loss.backward()
        if config.clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        optimizer.step()
        return Step(float(loss.item()), int(targets.numel()))

    def validate(epoch: int) -> dict[str, float]:
        val = evaluate(model, val_data, config.bptt, config.device)
        test = evaluate(model, test_data, config.bptt, config.device)
        test_losses.append(test)
        lrs.append(float(optimizer.param_groups[0]["lr"]))
        if val < anneal["best"]:
            anneal["best"] = val
            convlab.save(model.state_dict(), folder / "model.npz")
        else:
            # the example's annealing, before the checkpoint: a resumed run continues with
            # the rate the next epoch would have had
            for group in optimizer.param_groups:
                group["lr"] /= ANNEAL
        return {"loss": val, "perplexity": _perplexity(val)}

    def on_epoch_end(epoch: int) -> None:
        write_json(folder / "metrics.json", _metrics(config, loop.history, test_losses, lrs))
        _plot(loop.history, test_losses, folder / "learning_curves.png", config)

    def describe(epoch: int, record: dict, improved: bool) -> str:
        return (
            f"epoch {epoch + 1}/{config.epochs}: train ppl "
            f"{_perplexity(record['train_loss']):.2f} | valid ppl "
            f"{_perplexity(record['val_loss']):.2f} | test ppl {_perplexity(test_losses[-1]):.2f}"
            f" | {record['words_per_second']:.0f} words/s | lr {lrs[-1]:g}"
        )

    loop = TrainLoop(
        epochs=config.epochs,
        batches=batches,
        step=step,
        samples=(len(train_data) - 1) * config.batch_size,
        validate=validate,
        on_epoch_end=on_epoch_end,
        model=model,
        optimizer=optimizer,
        extra=lambda: {"test_loss": list(test_losses), "lr": lrs, "best": anneal["best"]},
        checkpoint=folder / "state.npz",
        describe=describe,
        lr=config.learning_rate,
        quiet=quiet,
        unit="word",
        rate_key="words_per_second",
    )
    progress["loop"] = loop
    if state is not None:
        where = f"--resume: {folder / 'state.npz'}"
        loop.load_state_dict(state, where)
        test_losses.extend(state["test_loss"])
        lrs.extend(_check_float_list(state["lr"], f"{where}: lr", loop.epoch))
        anneal["best"] = float(state["best"])
        log(f"resuming at epoch {loop.epoch + 1}", quiet)
    log(
        f"{config.model} language model ({sum(p.numel() for p in model.parameters()):,} "
        f"parameters, vocabulary {len(words):,}) on {len(corpus.train):,} training / "
        f"{len(corpus.valid):,} validation / {len(corpus.test):,} test tokens, "
        f"{config.epochs} epochs, batch {config.batch_size} x bptt {config.bptt}, "
        f"{config.optimizer} lr {config.learning_rate:g}, {config.device}",
        quiet,
    )
    loop.run()
    return _metrics(config, loop.history, test_losses, lrs)


def _metrics(
    config: PTBTrainConfig, history: dict, test_losses: list[float], lrs: list[float]
) -> dict:
    """What ``metrics.json`` holds (and ``train_ptb`` returns)."""
    train = history.get("train_loss", [])
    val = history.get("val_loss", [])
    return {
        "config": asdict(config),
        "epochs_done": len(train),
        "train_loss": train,
        "valid_loss": val,
        "test_loss": test_losses,
        "train_perplexity": [_perplexity(v) for v in train],
        "valid_perplexity": [_perplexity(v) for v in val],
        "test_perplexity": [_perplexity(v) for v in test_losses],
        "lr": lrs,
        "words_per_second": history.get("words_per_second", []),
    }


def _plot(history: dict, test_losses: list[float], path: Path, config: PTBTrainConfig) -> None:
    """Loss and perplexity per epoch (train dashed, validation and test solid) as a PNG."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from convlab._atomic import atomic_open

    figure = Figure(figsize=(9.6, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    corpus = "the bundled corpus" if config.data == "default" else config.data
    figure.suptitle(f"{config.model.upper()} language model on {corpus}")
    series = (
        ("train", history.get("train_loss", []), "--"),
        ("validation", history.get("val_loss", []), "-"),
        ("test", test_losses, "-"),
    )
    for axes, (name, label, transform) in zip(
        figure.subplots(1, 2),
        (("Loss", "cross-entropy per word (nats)", None), ("Perplexity", "perplexity", "exp")),
    ):
        for what, values, style in series:
            y = np.asarray(values, dtype=np.float64)
            if transform == "exp":
                y = np.exp(np.minimum(y, 700))
            axes.plot(np.arange(1, y.size + 1), y, style, marker="o", markersize=3, label=what)
        if transform == "exp":
            axes.set_yscale("log")
        axes.set_title(name)
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    with atomic_open(path, "wb") as handle:
        handle.write(buffer.getvalue())


# -- generation ----------------------------------------------------------------------------


def load_run(run: Any, device: str = "cpu") -> tuple[LanguageModel, list[str]]:
    """The trained model (its best weights, ``model.npz``) and vocabulary of a run folder.

    Raises:
        UserError: If the folder is not a finished-epoch ``train ptb`` run or a file in it is
            damaged.
    """
    folder = Path(run)
    saved, path = read_run_config(folder, "ptb", option="--model")
    config = config_from_file(PTBTrainConfig, saved, f"--model: {path}", device=device)
    words = _read_vocab(folder / "vocab.json", "--model")
    weights = folder / "model.npz"
    if not weights.exists():
        raise UserError(f"--model: {folder} has no model.npz yet (no epoch has finished)")
    model = _model(config, len(words))
    load_model_state(model, load_checkpoint(weights, "--model:"), f"--model: {weights}")
    model.eval()
    return model, words


def generate(
    run: Any,
    words: int = 100,
    temperature: float = 1.0,
    seed: int = 0,
    device: str = "cpu",
    stream: Any = None,
) -> str:
    """Sample ``words`` words from a trained run, one at a time, each fed back as the next
    input; ``<eos>`` becomes a line break.

    Args:
        run: A ``convlab train ptb`` run folder.
        words: How many words.
        temperature: Divides the scores before the softmax: below 1 picks likely words more
            often, above 1 less.
        seed: Seeds the sampling (the first word too).
        device: Where the model runs.
        stream: Where each word is written as it comes (e.g. ``sys.stdout``); None: nowhere.

    Returns:
        The text.

    Raises:
        UserError: For a folder that is not a trained run, or a bad ``words`` /
            ``temperature``.
    """
    check_int(words, "--words", 1)
    check_number(temperature, "--temperature", 0, above=True)
    model, vocab = load_run(run, device)
    rng = np.random.default_rng(seed)
    hidden = model.init_hidden(1)
    token = int(rng.integers(len(vocab)))
    pieces: list[str] = []
    with convlab.no_grad():
        for _ in range(words):
            x = convlab.tensor([[token]], dtype=convlab.int64, device=device)
            logits, hidden = model(x, hidden)
            scores = logits.cpu().numpy().astype(np.float64).reshape(-1) / temperature
            p = np.exp(scores - scores.max())
            token = int(rng.choice(len(vocab), p=p / p.sum()))
            word = vocab[token]
            piece = "\n" if word == EOS else (word + " ")
            pieces.append(piece)
            if stream is not None:
                stream.write(piece)
                stream.flush()
    text = "".join(pieces)
    if stream is not None and not text.endswith("\n"):
        stream.write("\n")
    return text if text.endswith("\n") else text + "\n"
