"""Train, evaluate and apply the price-trend chart CNN (``convlab chart train|predict``).

A run lives in one folder:

* ``config.json``: the settings (what ``--resume`` continues with);
* ``state.npz``: the resume checkpoint, rewritten atomically after every epoch: model and
  optimizer state, random-generator states, epoch, best validation loss, history;
* ``model_<k>.npz``: the best (lowest validation loss) weights of ensemble member k;
* ``metrics.json``, ``learning_curves.png``, ``samples.png``, ``test_predictions.csv``.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

import convlab
from convlab import nn
from convlab._atomic import atomic_open
from convlab.data.chartset import ChartSet
from convlab.finance.sampling import default_every, label_horizon
from convlab.models import ChartCNN
from convlab.training import evaluate
from convlab.training import report as run_report
from convlab.training.fields import (
    HISTORY_KEYS,
    MAX_INT,
    MAX_SEED,
    UserError,
    check_bool,
    check_choice,
    check_date,
    check_history,
    check_int,
    check_number,
    check_str,
    check_str_list,
)
from convlab.training.loop import Step, TrainLoop, supervised_step
from convlab.training.progress import Progress
from convlab.training.ranks import (
    Ranks,
    data_parallel,
    sample_offset,
    shard,
    shard_offset,
)
from convlab.training.ranks import start as start_ranks
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

__all__ = ["ChartTrainConfig", "UserError", "load_charts", "train", "predict"]

# The bundled default data has ~10k overlapping 20-day images: the paper's 50 epochs x 5
# models would take hours on 2 cores, so unless told otherwise the run is cut to this.
SMALL_DATA_IMAGES = 50_000
SMALL_DATA_EPOCHS = 3
SMALL_DATA_ENSEMBLE = 2
#: ``--precision`` choices, and the ``convlab.set_float32_matmul_precision`` setting of each
PRECISIONS = ("fp32", "bf16")
_MATMUL_PRECISION = {"fp32": "highest", "bf16": "medium"}


@dataclass
class ChartTrainConfig:
    """Settings of one training run (the ``convlab chart train`` options)."""

    data: str = "default"
    window: int = 20
    horizon: int = 20
    epochs: int | None = None  # None: 50, or fewer on small data
    batch_size: int = 128
    lr: float = 1e-5
    ensemble: int | None = None  # None: 5, or fewer on small data
    device: str = "cpu"
    seed: int = 0
    patience: int = 2
    train_end: str | None = None  # None: the date that leaves ~60 % for training
    val_fraction: float = 0.3
    stride: int = 1
    precision: str = "fp32"
    every: str | None = None  # None: the paper's period ends on cross-sectional data
    label: str = "days"  # "days": horizon trading days; "period": the next calendar period
    notes: list = field(default_factory=list)

    # the fields set by a `convlab chart train` option (reported by the option's name)
    _OPTIONS = (
        "data",
        "window",
        "horizon",
        "epochs",
        "batch_size",
        "lr",
        "ensemble",
        "device",
        "seed",
        "train_end",
        "precision",
        "every",
        "label",
    )

    def check(self, where: str | None = None) -> None:
        """Raise :class:`UserError` for a setting of the wrong type or range.

        Args:
            where: Where the settings were read from (e.g. ``"--resume: run/config.json"``):
                errors name ``"<where>: <field>"``; by default the field's option.
        """

        def name(field: str) -> str:
            if where:
                return f"{where}: {field}"
            return f"--{field.replace('_', '-')}" if field in self._OPTIONS else field

        check_str(self.data, name("data"))
        check_choice(self.window, name("window"), (5, 20, 60))
        for key in ("horizon", "batch_size", "stride", "patience"):
            check_int(getattr(self, key), name(key), 1)
        for key in ("epochs", "ensemble"):
            if getattr(self, key) is not None:
                check_int(getattr(self, key), name(key), 1)
        check_number(self.lr, name("lr"), 0, above=True)
        check_choice(self.device, name("device"), ("cpu", "gpu"))
        check_choice(self.precision, name("precision"), PRECISIONS)
        if self.every is not None:
            check_choice(self.every, name("every"), ("day", "week", "month", "quarter"))
        check_choice(self.label, name("label"), ("days", "period"))
        check_int(self.seed, name("seed"), 0, MAX_SEED)
        if self.train_end is not None:
            self.train_end = check_date(self.train_end, name("train_end"))
        check_number(self.val_fraction, name("val_fraction"), 0, 1, below=True)
        check_str_list(self.notes, name("notes"))


# -- data ----------------------------------------------------------------------------------


def _concat(sets: list) -> ChartSet:
    if len(sets) == 1:
        return sets[0]
    tickers = sorted({t for s in sets for t in s.tickers})
    code = {t: i for i, t in enumerate(tickers)}
    remap = [np.asarray([code[t] for t in s.tickers], np.int32) for s in sets]
    return ChartSet(
        np.concatenate([np.asarray(s.packed) for s in sets]),
        sets[0].window,
        np.concatenate([s.labels for s in sets]),
        np.concatenate([s.returns for s in sets]),
        np.concatenate([m[s.ticker_codes] for m, s in zip(remap, sets)]),
        tickers,
        np.concatenate([s.end_dates for s in sets]),
        np.concatenate([s.label_dates for s in sets]),
        sets[0].info,
        sets[0].shape,
    )


def load_charts(
    data: str,
    window: int,
    horizon: int,
    stride: int = 1,
    labelled_only: bool = False,
    every: str | None = None,
    label: str = "days",
) -> ChartSet:
    """Chart images from a data source.

    Args:
        data: ``default`` (S&P 500 and NASDAQ, 1999-2018, from the ``arch`` package),
            ``sp500``, ``nasdaq``, ``jkx:DIR`` (the authors' released image files),
            ``crsp:FILE`` (a WRDS CRSP daily export, :mod:`convlab.finance.crsp`) or the path
            of an OHLCV CSV / Parquet file or folder.
        every: Image end dates (``"day"``, ``"week"``, ``"month"``, ``"quarter"``); None: the
            paper's period ends for 5 / 20 / 60-day horizons on data with at least ten
            instruments, every day otherwise (:func:`convlab.finance.sampling.default_every`);
            ``charts.info["every"]`` says which.
        label: ``"days"``: the label's return over ``horizon`` trading days; ``"period"``:
            over the calendar period after the image's (``every`` week / month / quarter).

    Raises:
        UserError: For a missing path, a file that cannot be read, or data without a single
            complete window.
    """
    from convlab import data as chart_data

    if data.startswith("jkx:"):
        folder = Path(data[4:])
        if not folder.is_dir():
            raise UserError(
                f"--data: {folder} is not a folder (expected the authors' "
                f"*_images.dat and *_labels_w_delay.feather files)"
            )
        files = sorted(folder.glob(f"{window}d_*_images.dat"))
        if not files:
            raise UserError(f"--data: no {window}d_*_images.dat files in {folder}")
        sets = []
        for f in files:
            labels = f.with_name(f.name.replace("_images.dat", "_labels_w_delay.feather"))
            sets.append(
                chart_data.read_jkx_images(
                    f, labels if labels.exists() else None, window=window, horizon=horizon
                )
            )
        charts = _concat(sets)
    else:
        frame = evaluate.daily_frame(data)
        if every is None:
            every = default_every(horizon, int(frame["ticker"].nunique()))
        try:
            target = label_horizon(horizon, every, label)
        except ValueError as err:
            raise UserError(f"--label: {err}") from None
        charts = chart_data.render_charts(frame, window, horizon=target, stride=stride, every=every)
    if len(charts) == 0:
        raise UserError(
            f"--data: {data} has no complete {window}-day window (each instrument "
            f"needs at least {window} trading days with prices)"
        )
    return charts


def _default_train_end(charts: ChartSet) -> str:
    realised = np.sort(charts.label_dates[~np.isnat(charts.label_dates)])
    if len(realised) == 0:
        raise UserError("--data: no image has a realised label (the data ends too early)")
    return str(realised[int(0.6 * (len(realised) - 1))])


def _pixel_stats(charts: ChartSet) -> tuple:
    """Mean and std of the pixels (0/1) of a chart set, from the packed bits."""
    ones = int(np.unpackbits(np.asarray(charts.packed)).sum()) if len(charts) else 0
    total = max(len(charts) * charts.shape[0] * charts.shape[1], 1)
    mean = ones / total
    return mean, max(math.sqrt(mean * (1 - mean)), 1e-6)


# -- training ------------------------------------------------------------------------------


def _batches(n: int, size: int, order: np.ndarray | None = None):
    order = np.arange(n) if order is None else order
    for start in range(0, n, size):
        yield np.sort(order[start : start + size])


def _device_images(charts: ChartSet, rows: np.ndarray, device: str) -> convlab.Tensor:
    images = convlab.from_numpy(np.ascontiguousarray(charts.images(rows)))
    return images.to(device) if device != "cpu" else images


def _predict_set(
    model: ChartCNN,
    charts: ChartSet,
    batch_size: int,
    device: str,
    quiet: bool = True,
    desc: str = "predict",
) -> np.ndarray:
    """Up-probabilities of every image of ``charts``."""
    model.eval()
    out = np.empty(len(charts), np.float64)
    bar = Progress(len(charts), desc, enabled=not quiet)
    with convlab.no_grad():
        for rows in _batches(len(charts), batch_size * 2):
            logits = model(_device_images(charts, rows, device))
            p = convlab.functional.softmax(logits, dim=1).numpy()[:, 1]
            out[rows] = p
            bar.update(len(rows))
    bar.close()
    return out


def _labelled(charts: ChartSet) -> ChartSet:
    return charts.subset(np.flatnonzero(charts.labels >= 0))


_STATE_KEYS = (
    "member",
    "epoch",
    "best",
    "bad",
    "history",
    "model",
    "optimizer",
    "rng",
    "shuffle_rng",
    "finished",
    "histories",
)


class _Run:
    """One training run's folder: config, resume state and best models, written atomically.

    Attributes:
        saved: The last finished epoch its ``state.npz`` holds (``"model 2 epoch 3"``), None
            before one has; what Ctrl-C reports.
        started: Whether the folder is a run (``config.json`` written or read).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.config_path, self.state_path = folder / "config.json", folder / "state.npz"
        self.saved: str | None = None
        self.started = False

    def model_path(self, k: int) -> Path:
        return self.folder / f"model_{k}.npz"

    def member_state_path(self, k: int) -> Path:
        """Member ``k``'s resume checkpoint when members train concurrently on rank groups
        (``state.npz`` holds the one member in training when they train one after another)."""
        return self.folder / f"state_{k}.npz"

    def write_json(self, name: str, obj: Any) -> None:
        write_json(self.folder / name, obj)

    def read_config(self, option: str, device: str) -> ChartTrainConfig:
        """The run's settings, every field checked; ``device`` replaces the saved one."""
        saved, path = read_run_config(self.folder, "chart", option)
        # runs from before --precision existed trained in float32
        saved.setdefault("precision", "fp32")
        # runs from before --every / --label drew daily images labelled over trading days
        saved.setdefault("every", "day")
        saved.setdefault("label", "days")
        self.started = True
        return config_from_file(ChartTrainConfig, saved, f"{option}: {path}", device=device)

    def read_state(self, config: ChartTrainConfig, member: int | None = None) -> dict | None:
        """A resume checkpoint with its plain fields checked against ``config`` (the model,
        optimizer and generator states are checked as they are restored), or None.

        Args:
            member: None: ``state.npz``; k: member k's own ``state_<k>.npz`` (concurrent
                members), whose ``member`` must be k and ``histories`` empty.
        """
        path = self.state_path if member is None else self.member_state_path(member)
        if not path.exists():
            return None
        state = read_run_state(path, _STATE_KEYS, "chart training")
        where = f"--resume: {path}"
        # config.json holds the ensemble size and epochs once a run has started; None
        # (a hand-made file) leaves them to the data, so no bound is known yet
        k = check_int(
            state["member"],
            f"{where}: member",
            0 if member is None else member,
            (MAX_INT if config.ensemble is None else config.ensemble - 1)
            if member is None
            else member,
        )
        epoch = check_int(
            state["epoch"],
            f"{where}: epoch",
            0,
            MAX_INT if config.epochs is None else config.epochs,
        )
        check_bool(state["finished"], f"{where}: finished")
        check_number(state["best"], f"{where}: best", finite=False)
        check_int(state["bad"], f"{where}: bad", 0, config.patience)
        check_history(state["history"], f"{where}: history", epoch)
        histories = state["histories"]
        done = k if member is None else 0
        if not isinstance(histories, list) or len(histories) != done:
            raise UserError(
                f"{where}: histories: expected a list of the {done} finished "
                f"models' histories, got {type(histories).__name__}"
                f"{f' of {len(histories)}' if isinstance(histories, list) else ''}"
            )
        for i, history in enumerate(histories):
            check_history(history, f"{where}: histories[{i}]")
        if member is None:
            self.saved = f"model {k + 1} epoch {epoch}"
        return state

    def progress(self, config: ChartTrainConfig) -> list[dict]:
        """Where each ensemble member stands: ``{"history": ...}`` when it finished,
        ``{"state": ...}`` when it has a checkpoint, ``{}`` when it has not started.

        The members' checkpoints come from ``state.npz`` (members trained one after another:
        those before its ``member`` finished) and from ``state_<k>.npz`` (members trained
        concurrently); of two, the further one counts.
        """
        ensemble = cast(int, config.ensemble)
        out: list[dict] = [{} for _ in range(ensemble)]
        serial = self.read_state(config)
        if serial is not None:
            for k, history in enumerate(serial["histories"]):
                out[k] = {"history": history}
            m = serial["member"]
            out[m] = {"history": serial["history"]} if serial["finished"] else {"state": serial}
        for k in range(ensemble):
            own = self.read_state(config, k)
            if own is None or "history" in out[k]:
                continue
            if own["finished"]:
                out[k] = {"history": own["history"]}
            elif "state" not in out[k] or own["epoch"] > out[k]["state"]["epoch"]:
                out[k] = {"state": own}
        return out


def _train_member(
    k: int,
    config: ChartTrainConfig,
    train_set: ChartSet,
    val_set: ChartSet,
    norm: tuple,
    run: _Run,
    state: dict | None,
    done: list | None,
    quiet: bool,
    ranks: Ranks,
) -> dict:
    """Train ensemble member ``k`` with early stopping on this rank's group; returns its
    history.

    Every rank of the group takes its contiguous share of each batch; BatchNorm statistics
    and the averaged gradients are those of the whole batch, so the group trains the model
    one process would. ``done``: the finished members' histories, kept in ``state.npz`` when
    members train one after another; None when they train concurrently (each member then
    has its own ``state_<k>.npz``).
    """
    device, bs = config.device, config.batch_size
    epochs = cast(int, config.epochs)  # _train has replaced a None by its default
    size, me, leader = ranks.group_size, ranks.group_rank, ranks.group_rank == 0
    convlab.manual_seed(config.seed * 1000 + k)
    model = ChartCNN(config.window, input_mean=norm[0], input_std=norm[1]).to(device)
    trained: Any = model
    if ranks.distributed and size > 1:
        model, trained = data_parallel(model, ranks.group)
    optimizer = convlab.optim.Adam(model.parameters(), lr=config.lr)
    shuffle = np.random.default_rng(config.seed * 1000 + k)
    train_labels = train_set.labels.astype(np.int64)

    def batches(epoch: int) -> Iterable[tuple]:
        for rows in _batches(len(train_set), bs, shuffle.permutation(len(train_set))):
            mine = shard(rows, size, me)
            y = convlab.from_numpy(train_labels[mine])
            yield (
                _device_images(train_set, mine, device),
                y.to(device) if device != "cpu" else y,
                # the gradients are averaged over the group: a share counts by its size
                size * len(mine) / len(rows),
                # where the share starts in the batch (dropout masks follow the sample)
                shard_offset(len(rows), size, me),
            )

    inner = supervised_step(
        trained,
        nn.CrossEntropyLoss(),
        optimizer,
        metrics=lambda logits, y: {"correct": int((logits.numpy().argmax(1) == y.numpy()).sum())},
        loss_scale=lambda batch: batch[2],
    )

    def step(batch: tuple) -> Step:
        with sample_offset(batch[3]):
            return inner(batch)

    def validate(epoch: int) -> dict:
        mine = shard(np.arange(len(val_set)), size, me)
        local = _predict_set(model, val_set.subset(mine), bs, device)
        p_val = ranks.gather_rows(local, len(val_set))
        if not np.isfinite(p_val).all():  # the loop reports the divergence
            return {"loss": math.nan, "accuracy": math.nan}
        val = evaluate.classification_metrics(p_val, val_set.labels)
        return {"loss": val["loss"], "accuracy": val["accuracy"]}

    def describe(epoch: int, r: dict, improved: bool) -> str:
        return (
            f"model {k + 1}/{config.ensemble} epoch {epoch + 1}/{epochs}: "
            f"train loss {r['train_loss']:.4f} acc {r['train_accuracy']:.3f} | "
            f"val loss {r['val_loss']:.4f} acc {r['val_accuracy']:.3f}"
            f"{' (best)' if improved else ''} | {r['images_per_second']:.0f} img/s"
        )

    def on_improved(epoch: int) -> None:
        if leader:
            convlab.save(model.state_dict(), run.model_path(k))

    def on_saved(epoch: int) -> None:
        if leader:  # what Ctrl-C reports
            run.saved = loop.saved

    def extra() -> dict:
        # `finished`: this member stops here, so a resume moves on to the next one
        return {
            "member": k,
            "finished": loop.finished,
            "histories": done if done is not None else [],
        }

    loop = TrainLoop(
        epochs=epochs,
        batches=batches,
        step=step,
        samples=len(train_set),
        validate=validate,
        train_metrics=lambda sums, n: {"accuracy": sums.get("correct", 0) / max(n, 1)},
        patience=config.patience,
        on_improved=on_improved,
        on_epoch_end=on_saved,
        model=model,
        optimizer=optimizer,
        generators={"shuffle_rng": shuffle},
        extra=extra,
        checkpoint=run.state_path if done is not None else run.member_state_path(k),
        write=leader,
        reduce=ranks.sum if ranks.distributed and size > 1 else None,
        desc=lambda epoch: f"model {k + 1}/{config.ensemble} epoch {epoch + 1}",
        describe=describe,
        where=lambda epoch: f"model {k + 1} epoch {epoch + 1}",
        lr=config.lr,
        # one progress bar on the terminal: rank 0's (other groups' leaders only write)
        quiet=quiet or not ranks.writes,
    )
    loop.history = {key: [] for key in HISTORY_KEYS}
    if state is not None:  # its plain fields were checked by _Run.read_state
        where = run.state_path if done is not None else run.member_state_path(k)
        loop.load_state_dict(state, f"--resume: {where}", checked=True)
        log(f"model {k + 1}: resuming at epoch {loop.epoch + 1}", quiet or not ranks.writes)
    history = loop.run()
    if loop.stopped:
        log(
            f"model {k + 1}: early stop, no validation improvement in {config.patience} epochs",
            quiet or not ranks.writes,
        )
    return history


def _load_member(path: Path, window: int, device: str) -> ChartCNN:
    state = load_checkpoint(path, "checkpoint")
    model = ChartCNN(window)
    load_model_state(model, state, f"checkpoint {path} ({window}-day ChartCNN)")
    return model.to(device)


def _ensemble_predict(
    models: list,
    charts: ChartSet,
    config: ChartTrainConfig,
    quiet: bool,
    desc: str,
    ranks: Ranks | None = None,
) -> np.ndarray:
    """The members' mean up-probability of every chart; in a job of several ranks each
    predicts its contiguous share of the charts and every rank receives all of them."""
    if len(charts) == 0:
        return np.empty(0)
    ranks = ranks or Ranks()
    mine = charts.subset(shard(np.arange(len(charts)), ranks.world, ranks.rank))
    local = np.mean(
        [
            _predict_set(
                m,
                mine,
                config.batch_size,
                config.device,
                quiet or not ranks.writes,
                f"{desc} {i + 1}/{len(models)}",
            )
            for i, m in enumerate(models)
        ],
        axis=0,
    )
    return ranks.gather_rows(local, len(charts), world=True)


def train(
    config: ChartTrainConfig,
    out: Any,
    resume: bool = False,
    quiet: bool = False,
    threads: int | None = None,
    window_given: bool = True,
    distributed: bool | None = None,
) -> dict:
    """Train the chart-CNN ensemble into the folder ``out`` and write its report.

    ``out`` must be absent or an empty folder for a new run; with ``resume`` it is a run
    folder whose ``config.json`` gives the settings (``config`` only contributes its device,
    and its window when ``window_given``). A run resumes on any number of ranks.

    Under ``mpiexec -n N`` the ranks train data-parallel: each takes its share of every batch
    of ``config.batch_size`` (the global batch), so the model is the one-process model up to
    float summation order; ensemble members train concurrently on groups of ranks. Rank 0
    writes the run folder and prints (with members on several groups, each group's first
    rank writes its members' ``model_<k>.npz`` and ``state_<k>.npz``). An exception on any
    rank ends the whole job.

    Args:
        distributed: True: join a process group even on one rank; False: never; None: when
            ``mpiexec`` (or ``srun``) started several ranks.

    Returns:
        The metrics written to ``metrics.json``.

    Raises:
        UserError: For bad settings, data or checkpoints, an ``out`` that holds a run (without
            ``resume``) or anything else, or a loss that diverged.
        Interrupted: On Ctrl-C, saying which epoch ``state.npz`` holds.
    """
    ranks = start_ranks(distributed, config.device)
    with ranks.fail_together("convlab chart train"):
        # rank 0's folder: a default name made from the time may differ by a second
        out = ranks.rank0_text(str(out))
        return _start(config, out, resume, quiet, threads, window_given, ranks)


def _start(
    config: ChartTrainConfig,
    out: Any,
    resume: bool,
    quiet: bool,
    threads: int | None,
    window_given: bool,
    ranks: Ranks,
) -> dict:
    run = _Run(Path(out))
    state = None
    if resume:
        requested = config
        config = run.read_config("--resume", requested.device)
        if window_given and config.window != requested.window:
            raise UserError(
                f"--resume: {out} was trained with --window {config.window}, not {requested.window}"
            )
        state = run.read_state(config)
    else:
        config.check()
        if ranks.writes:  # the other ranks would see the folder rank 0 is claiming
            check_new_run_folder(run.folder)
    if threads is not None:
        convlab.set_num_threads(threads)
    elif ranks.world > 1:  # ranks sharing a machine share its cores
        convlab.set_num_threads(max(1, (os.cpu_count() or 1) // _ranks_per_node(ranks.world)))
    convlab.set_float32_matmul_precision(_MATMUL_PRECISION[config.precision])
    if config.device == "gpu" and not convlab.get_backend("gpu").is_available():
        raise UserError(f"--device gpu: {convlab.get_backend('gpu').describe()}")
    try:
        # a diverging loss is caught and reported as such (`diverged`); NumPy's overflow
        # warnings on the way there would only bury that one line
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return _train(config, run, state, resume, quiet, ranks)
    except KeyboardInterrupt:
        raise Interrupted(run.saved, run.started) from None


def _ranks_per_node(world: int) -> int:
    for name in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return world


def _train(
    config: ChartTrainConfig,
    run: _Run,
    state: dict | None,
    resume: bool,
    quiet: bool,
    ranks: Ranks,
) -> dict:
    t0 = time.perf_counter()
    talk = quiet or not ranks.writes  # rank 0 alone prints
    charts = load_charts(
        config.data,
        config.window,
        config.horizon,
        config.stride,
        every=config.every,
        label=config.label,
    )
    config.every = str(charts.info.get("every", "day"))
    if config.train_end is None:
        config.train_end = _default_train_end(charts)
    train_all, val_set, test_all = charts.split(
        "date", config.train_end, config.val_fraction, seed=config.seed
    )
    train_set, test_set = _labelled(train_all), _labelled(test_all)
    if len(train_set) < config.batch_size or len(val_set) == 0:
        raise UserError(
            f"--data: only {len(train_set)} training and {len(val_set)} validation "
            f"images up to {config.train_end}; need at least one batch "
            f"({config.batch_size}) of each"
        )
    if config.epochs is None or config.ensemble is None:
        small = len(train_set) < SMALL_DATA_IMAGES
        if config.epochs is None:
            config.epochs = SMALL_DATA_EPOCHS if small else 50
        if config.ensemble is None:
            config.ensemble = SMALL_DATA_ENSEMBLE if small else 5
        if small:
            config.notes.append(
                f"small data ({len(train_set)} training images): {config.epochs} epochs x "
                f"{config.ensemble} models instead of the paper's 50 x 5 (set --epochs and "
                f"--ensemble to change)"
            )
    norm = _pixel_stats(train_set)
    if not resume:
        if ranks.writes:
            claim_run_folder(run.folder, asdict(config))
        run.started = True
    for note in config.notes:
        log(f"note: {note}", talk)
    log(
        f"data: {len(charts)} images {charts.shape[0]}x{charts.shape[1]} of "
        f"{len(charts.tickers)} instruments; train {len(train_set)} / val {len(val_set)} "
        f"(labels realised by {config.train_end}), test {len(test_set)}; "
        f"{time.perf_counter() - t0:.1f} s",
        talk,
    )
    ranks.split(config.ensemble)
    log(
        f"pixel mean {norm[0]:.4f} std {norm[1]:.4f}; {convlab.get_num_threads()} threads; "
        f"device {config.device}"
        + (
            f"; {ranks.world} ranks, {len(ranks.groups)} group(s) of "
            f"{'/'.join(str(len(g)) for g in ranks.groups)} training the members"
            if ranks.distributed
            else ""
        ),
        talk,
    )
    # where each member stands (a resumed run may have been trained on another number of
    # ranks); the members before a started one have finished
    status = run.progress(config) if resume else [{} for _ in range(config.ensemble)]
    concurrent = len(ranks.groups) > 1
    histories: list = [s.get("history") for s in status]
    for k in ranks.members(config.ensemble):
        if histories[k] is not None:
            continue
        histories[k] = _train_member(
            k,
            config,
            train_set,
            val_set,
            norm,
            run,
            status[k].get("state"),
            None if concurrent else list(histories[:k]),
            quiet,
            ranks,
        )
    if concurrent:  # the other groups' members: from their checkpoints, once all are done
        ranks.barrier()
        histories = [s.get("history") for s in run.progress(config)]
    else:
        ranks.barrier()  # rank 0's model files are complete before every rank reads them

    models = [
        _load_member(run.model_path(k), config.window, config.device)
        for k in range(config.ensemble)
    ]
    sets = {"train": train_set, "validation": val_set, "test": test_set}
    p = {
        name: _ensemble_predict(models, s, config, quiet, f"evaluate {name}", ranks)
        for name, s in sets.items()
    }
    if not ranks.writes:
        return {}
    report = _report(p, config, train_set, val_set, test_set, histories, run, quiet)
    report["seconds"] = time.perf_counter() - t0
    run.write_json("metrics.json", evaluate.json_safe(report))
    run_report.write_report(run.folder)
    return report


def _report(
    p: dict,
    config: ChartTrainConfig,
    train_set: ChartSet,
    val_set: ChartSet,
    test_set: ChartSet,
    histories: list,
    run: _Run,
    quiet: bool,
) -> dict:
    """The metrics, plots and test predictions of the ensemble's up-probabilities ``p``
    (``{"train" | "validation" | "test": one per image}``), written to the run folder."""
    sets = {"train": train_set, "validation": val_set, "test": test_set}
    report: dict = {"config": asdict(config), "ensemble": len(histories)}
    for name, s in sets.items():
        report[name] = {
            **evaluate.classification_metrics(p[name], s.labels),
            "up_fraction": float(np.mean(s.labels == 1)) if len(s) else math.nan,
        }
    report["test"].update(evaluate.correlations(p["test"], test_set.returns))
    tickers = (
        np.asarray(test_set.tickers, dtype=object)[test_set.ticker_codes]
        if len(test_set)
        else np.empty(0, object)
    )
    evaluation, sorts = evaluate.portfolio_evaluation(
        p["test"],
        test_set,
        evaluate.daily_frame(config.data),
        label_horizon(config.horizon, config.every or "day", config.label),
        run.folder,
    )
    report.update(evaluation)
    report["histories"] = histories
    samples = None
    if len(test_set):
        pick = np.random.default_rng(config.seed).choice(
            len(test_set), min(16, len(test_set)), replace=False
        )
        pick.sort()
        samples = (test_set.images(pick), p["test"][pick], test_set.labels[pick])
    # the figures (and the numbers behind them, e.g. the calibration table) of report.html;
    # `portfolios`: the CNN's decile sorts first, then the benchmarks' (None: no cross-section)
    report.update(
        run_report.run_figures(
            run.folder,
            histories,
            config.window,
            p["test"],
            test_set.labels,
            samples,
            portfolios=sorts or None,
        )
    )
    _write_predictions(run.folder / "test_predictions.csv", tickers, test_set.end_dates, p["test"])
    if not quiet:
        _print_report(report)
    return report


def _write_predictions(
    path: Path, tickers: Any, dates: Any, p_up: np.ndarray, overwrite: bool = True
) -> None:
    try:
        with atomic_open(path, "w", overwrite=overwrite, newline="") as handle:
            writer = csv.writer(handle)
            # each date's decile of p_up (0: fewer than ten instruments that date), for users
            # who merge the signal into their own backtests
            deciles = evaluate.prediction_deciles(tickers, dates, p_up)
            writer.writerow(["ticker", "date", "p_up", "decile"])
            for t, d, p, k in zip(tickers, dates, p_up, deciles):
                writer.writerow([t, str(d), f"{p:.6f}", int(k)])
    except FileExistsError:
        raise UserError(f"--out: {path} already exists; pass --overwrite to replace it") from None


def _print_report(report: dict) -> None:
    print("\n             loss    accuracy  images  up-share")
    for name in ("train", "validation", "test"):
        r = report[name]
        print(
            f"{name:<11} {r['loss']:.4f}   {r['accuracy']:.4f}   {r['n']:>6}  "
            f"{r['up_fraction']:.3f}"
        )
    t = report["test"]
    print(
        f"test correlation of p_up with the realised return: Pearson {t['pearson']:.4f}, "
        f"Spearman {t['spearman']:.4f}"
    )
    portfolios = report["portfolios"]
    if "reason" in portfolios:
        print(portfolios["reason"])
    else:
        print(f"H-L decile portfolios of p_up ({portfolios['periods']} test periods):")
        for name, row in report["comparison"].items():
            print(
                f"  {name:<6} EW Sharpe {row['EW SR']:6.2f} turnover {row['EW Turnover']:.2f}"
                f" | VW Sharpe {row['VW SR']:6.2f} turnover {row['VW Turnover']:.2f}"
            )
    print(
        "(the paper reports test accuracy ~0.52-0.54 on US stocks; with two index series "
        "the test sample is small and overlapping windows are correlated, so expect noise)"
    )


def predict(
    model_dir: Any,
    data: str,
    out: Any,
    device: str = "cpu",
    batch_size: int = 256,
    quiet: bool = False,
    overwrite: bool = False,
    distributed: bool | None = None,
) -> Path:
    """Write ``(ticker, date, p_up)`` for every chart of ``data`` with a trained ensemble.

    Under ``mpiexec -n N`` each rank predicts its share of the charts and rank 0 writes them.

    Args:
        overwrite: Replace an existing ``out`` file (by default it is left alone).
        distributed: As :func:`train`'s.

    Raises:
        UserError: For a folder without a finished run, unreadable data, or an existing
            ``out`` without ``overwrite``.
    """
    ranks = start_ranks(distributed, device)
    with ranks.fail_together("convlab chart predict"):
        return _predict(model_dir, data, out, device, batch_size, quiet, overwrite, ranks)


def _predict(
    model_dir: Any,
    data: str,
    out: Any,
    device: str,
    batch_size: int,
    quiet: bool,
    overwrite: bool,
    ranks: Ranks,
) -> Path:
    run = _Run(Path(model_dir))
    if not Path(model_dir).is_dir():
        raise UserError(f"--model: {model_dir} is not a run folder")
    if device == "gpu" and not convlab.get_backend("gpu").is_available():
        raise UserError(f"--device gpu: {convlab.get_backend('gpu').describe()}")
    path = Path(out)
    if path.is_dir():
        raise UserError(f"--out: {path} is a folder (expected a CSV file name)")
    if not overwrite and path.exists():  # fail before the work; the write checks again
        raise UserError(f"--out: {path} already exists; pass --overwrite to replace it")
    config = run.read_config("--model", device)
    count = config.ensemble or 0
    paths = (
        [run.model_path(k) for k in range(count)]
        if count
        else sorted(run.folder.glob("model_*.npz"))
    )
    paths = [p for p in paths if p.exists()]
    if not paths:
        raise UserError(f"--model: {model_dir} holds no trained model (model_*.npz)")
    models = [_load_member(p, config.window, device) for p in paths]
    charts = load_charts(
        data, config.window, config.horizon, every=config.every, label=config.label
    )
    config = ChartTrainConfig(window=config.window, batch_size=batch_size, device=device)
    p_up = _ensemble_predict(models, charts, config, quiet, "predict", ranks)
    if ranks.writes:
        tickers = np.asarray(charts.tickers, dtype=object)[charts.ticker_codes]
        _write_predictions(path, tickers, charts.end_dates, p_up, overwrite)
    return path
