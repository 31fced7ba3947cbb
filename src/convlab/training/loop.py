"""The epoch loop every training job shares (chart CNN, CIFAR-10, the language model).

A job describes *what* one batch does and *how* to judge an epoch; :class:`TrainLoop` does the
rest the same way for every job: epochs of batches with a progress bar (running loss and
throughput), a divergence check on every batch, validation after every epoch, early stopping,
a per-epoch history, an atomic resume checkpoint after every epoch, exact resumption from it,
and -- for data-parallel runs -- the sums across ranks that make every rank see the global
batch's loss and metrics.

Nothing here assumes images or classification: a batch is whatever the job's ``batches``
yields, a step returns a :class:`Step` (mean loss, sample count, metric sums), and the
history's columns are the job's own names.

Example (a job with a model, a loss and an optimizer)::

    loop = TrainLoop(
        epochs=10,
        batches=lambda epoch: loader,  # an iterable of (inputs, targets)
        step=supervised_step(model, nn.CrossEntropyLoss(), optimizer, metrics=count_correct),
        samples=len(dataset),
        validate=lambda epoch: evaluate(model, val_loader),  # {"loss": ..., "accuracy": ...}
        train_metrics=lambda sums, n: {"accuracy": sums["correct"] / n},
        model=model,
        optimizer=optimizer,
        checkpoint=Path("run/state.npz"),
    )
    history = loop.run()

What a checkpoint holds: ``epoch``, ``history`` (``best`` and ``bad`` with early stopping),
``model``, ``optimizer``, ``rng`` (convlab's generator), one entry per NumPy generator in
``generators`` (its ``bit_generator.state``) and whatever ``extra()`` adds.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import convlab
from convlab.training.fields import UserError, shown
from convlab.training.progress import Progress
from convlab.training.runs import diverged, log, restore_training

__all__ = ["Step", "TrainLoop", "supervised_step"]


@dataclass
class Step:
    """What one training step reports.

    Attributes:
        loss: The mean loss over the step's samples (this rank's share of the batch in a
            data-parallel run).
        count: The samples it covered (images, tokens, sequences: the job's unit).
        sums: Metric sums over those samples, e.g. ``{"correct": 17}``; the loop adds them up
            over the epoch (and across ranks) and hands them to ``train_metrics``.
    """

    loss: float
    count: int
    sums: dict[str, float] = field(default_factory=dict)


def supervised_step(
    model: Any,
    loss_fn: Callable[[Any, Any], Any],
    optimizer: Any,
    metrics: Callable[[Any, Any], Mapping[str, float]] | None = None,
    loss_scale: Callable[[Any], float] | None = None,
) -> Callable[[Any], Step]:
    """The usual step for batches of ``(inputs, targets)``: zero the gradients, forward,
    ``loss_fn(outputs, targets)``, backward, ``optimizer.step()``.

    Args:
        model: Called on the inputs.
        loss_fn: ``loss_fn(outputs, targets)``, a scalar tensor (a mean over the batch).
        optimizer: Its ``zero_grad`` and ``step`` are called.
        metrics: ``metrics(outputs, targets)`` -> sums over the batch to accumulate (e.g.
            correct predictions), computed without recording gradients.
        loss_scale: ``loss_scale(batch)`` -> a factor the loss is multiplied by before
            ``backward`` only (the reported loss is unscaled): data-parallel jobs use it to
            weigh a rank's share of a batch by its size.

    Returns:
        A function of one batch that returns its :class:`Step`.
    """

    def step(batch: Any) -> Step:
        inputs, targets = batch[0], batch[1]
        optimizer.zero_grad()
        outputs = model(inputs)
        loss = loss_fn(outputs, targets)
        (loss * loss_scale(batch) if loss_scale is not None else loss).backward()
        optimizer.step()
        sums: dict[str, float] = {}
        if metrics is not None:
            with convlab.no_grad():
                sums = dict(metrics(outputs, targets))
        return Step(float(loss.item()), len(targets), sums)

    return step


def _check_number_list(value: Any, name: str, length: int) -> None:
    if not isinstance(value, list) or not all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value
    ):
        raise UserError(f"{name}: expected a list of numbers, got {shown(value)}")
    if len(value) != length:
        raise UserError(
            f"{name}: expected one value per finished epoch ({length}), got {len(value)}"
        )


class TrainLoop:
    """Epochs of training steps with validation, early stopping, checkpoints and resume.

    Args:
        epochs: The last epoch to train (a run resumed at epoch ``k`` trains ``k+1..epochs``).
        batches: ``batches(epoch)`` -> the epoch's batches (0-based epoch; whatever ``step``
            takes). Called once at the start of each epoch, so a job's shuffling generator
            advances exactly as in an uninterrupted run.
        step: ``step(batch)`` -> :class:`Step`: trains on one batch.
        samples: Samples per epoch (all ranks together), the progress bar's total.
        validate: ``validate(epoch)`` -> metrics of the model after the epoch, e.g.
            ``{"loss": 0.69, "accuracy": 0.53}``, stored as ``val_loss``, ``val_accuracy``;
            a non-finite ``monitor`` value there counts as divergence. None: no validation.
        train_metrics: ``train_metrics(sums, count)`` -> the epoch's training metrics from
            the summed :attr:`Step.sums` (e.g. ``{"accuracy": sums["correct"] / count}``),
            stored as ``train_<name>``.
        patience: Stop after this many epochs without a lower ``monitor`` value (early
            stopping; the checkpoint then holds ``best`` and ``bad``). None: never stop early.
        monitor: The ``validate`` metric early stopping watches (lower is better).
        on_improved: ``on_improved(epoch)``, called when ``monitor`` reached a new best (e.g.
            to save the best weights).
        on_epoch_end: ``on_epoch_end(epoch)``, called after the epoch's checkpoint is written
            (e.g. to write metrics and plots, or step a learning-rate schedule).
        model: Put in training mode before every epoch; its ``state_dict`` goes in the
            checkpoint.
        optimizer: Its ``state_dict`` goes in the checkpoint.
        generators: ``{checkpoint key: numpy Generator}`` saved and restored with the run
            (e.g. the shuffling generator).
        extra: ``extra()`` -> more entries for the checkpoint (called when it is written).
        checkpoint: Where the resume checkpoint is written after every epoch (atomically:
            ``convlab.save``). None: not written.
        write: Whether this process writes files and prints (False on all ranks but one in
            a data-parallel run; they still run every callback).
        reduce: ``reduce(vector)`` -> the element-wise sum of ``vector`` over the ranks of a
            data-parallel run (float64 NumPy in and out). None: one process.
        desc: ``desc(epoch)`` -> the progress bar's label.
        describe: ``describe(epoch, record, improved)`` -> the line logged after each epoch;
            ``record`` maps history keys to this epoch's values.
        where: ``where(epoch)`` -> how errors name an epoch (``"model 2 epoch 3"``).
        lr: The learning rate a divergence message names.
        quiet: No progress bar and no log lines.
        unit: The progress bar's unit (``"img"``, ``"tok"``).
        rate_key: The history key of the epoch's throughput (samples per second).
    """

    def __init__(
        self,
        *,
        epochs: int,
        batches: Callable[[int], Iterable[Any]],
        step: Callable[[Any], Step],
        samples: int,
        validate: Callable[[int], Mapping[str, float]] | None = None,
        train_metrics: Callable[[dict, int], Mapping[str, float]] | None = None,
        patience: int | None = None,
        monitor: str = "loss",
        on_improved: Callable[[int], None] | None = None,
        on_epoch_end: Callable[[int], None] | None = None,
        model: Any = None,
        optimizer: Any = None,
        generators: Mapping[str, np.random.Generator] | None = None,
        extra: Callable[[], dict] | None = None,
        checkpoint: Path | str | None = None,
        write: bool = True,
        reduce: Callable[[np.ndarray], np.ndarray] | None = None,
        desc: Callable[[int], str] = lambda epoch: f"epoch {epoch + 1}",
        describe: Callable[[int, dict, bool], str] | None = None,
        where: Callable[[int], str] = lambda epoch: f"epoch {epoch + 1}",
        lr: float = math.nan,
        quiet: bool = False,
        unit: str = "img",
        rate_key: str = "images_per_second",
    ) -> None:
        self.epochs, self.batches, self.step, self.samples = epochs, batches, step, samples
        self.validate, self.train_metrics = validate, train_metrics
        self.patience, self.monitor = patience, monitor
        self.on_improved, self.on_epoch_end = on_improved, on_epoch_end
        self.model, self.optimizer = model, optimizer
        self.generators = dict(generators or {})
        self.extra = extra
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.write, self.reduce = write, reduce
        self.desc, self.describe, self.where = desc, describe, where
        self.lr, self.quiet, self.unit, self.rate_key = lr, quiet, unit, rate_key
        #: Finished epochs.
        self.epoch = 0
        #: Lowest ``monitor`` value so far (early stopping).
        self.best = math.inf
        #: Epochs since ``best`` improved.
        self.bad = 0
        #: ``{key: [one value per finished epoch]}``.
        self.history: dict[str, list[float]] = {}
        #: The last epoch whose checkpoint is on disk (``where(epoch - 1)``), None before one.
        self.saved: str | None = None

    # -- state ---------------------------------------------------------------------------

    @property
    def stopped(self) -> bool:
        """Whether early stopping has ended the run."""
        return self.patience is not None and self.bad >= self.patience

    @property
    def finished(self) -> bool:
        """Whether nothing is left to train (every epoch done, or stopped early)."""
        return self.stopped or self.epoch >= self.epochs

    def state_dict(self) -> dict:
        """The checkpoint: the loop's counters and history, the model, optimizer and
        generator states, and ``extra()``."""
        state: dict[str, Any] = {"epoch": self.epoch, "history": self.history}
        if self.patience is not None:
            state["best"], state["bad"] = self.best, self.bad
        if self.model is not None:
            state["model"] = self.model.state_dict()
        if self.optimizer is not None:
            state["optimizer"] = self.optimizer.state_dict()
        state["rng"] = convlab.get_rng_state()
        for key, generator in self.generators.items():
            state[key] = dict(generator.bit_generator.state)
        if self.extra is not None:
            state.update(self.extra())
        return state

    def load_state_dict(self, state: dict, where: str, checked: bool = False) -> None:
        """Continue from a checkpoint written by :meth:`state_dict`.

        Args:
            state: The checkpoint (read from an untrusted file: every field is checked).
            where: How errors name it (``"--resume: run/state.npz"``).
            checked: The job already checked ``epoch``, ``best``, ``bad`` and ``history``.

        Raises:
            UserError: Naming ``where`` and the field that is missing or does not fit.
        """
        need = ["epoch", "history", "rng", *self.generators]
        need += ["best", "bad"] if self.patience is not None else []
        need += ["model"] if self.model is not None else []
        need += ["optimizer"] if self.optimizer is not None else []
        missing = [k for k in need if k not in state]
        if missing:
            raise UserError(f"{where}: missing {', '.join(missing)}")
        epoch, history = state["epoch"], state["history"]
        if not checked:
            if not isinstance(epoch, int) or isinstance(epoch, bool) or not 0 <= epoch:
                raise UserError(f"{where}: epoch: expected a whole number >= 0, got {shown(epoch)}")
            if not isinstance(history, dict):
                raise UserError(f"{where}: history: expected a dict, got {shown(history)}")
            for key, series in history.items():
                _check_number_list(series, f"{where}: history: {key}", epoch)
            if self.patience is not None:
                best, bad = state["best"], state["bad"]
                if not isinstance(best, numbers.Real) or isinstance(best, bool) or best != best:
                    raise UserError(f"{where}: best: expected a number, got {shown(best)}")
                if not isinstance(bad, int) or isinstance(bad, bool) or bad < 0:
                    raise UserError(f"{where}: bad: expected a whole number >= 0, got {shown(bad)}")
        if self.model is not None and self.optimizer is not None:
            restore_training(state, where, self.model, self.optimizer, self.generators)
        self.epoch, self.history = epoch, {k: list(v) for k, v in history.items()}
        if self.patience is not None:
            self.best, self.bad = float(state["best"]), int(state["bad"])
        self.saved = self.where(epoch - 1) if epoch > 0 else None

    # -- running -------------------------------------------------------------------------

    def _sum_across_ranks(self, values: list[float]) -> np.ndarray:
        vector = np.asarray(values, np.float64)
        return vector if self.reduce is None else np.asarray(self.reduce(vector), np.float64)

    def _train_epoch(self, epoch: int) -> tuple[Progress, dict, int]:
        """One pass over the epoch's batches: the progress bar (mean loss and rate), the
        metric sums and the sample count, all over every rank."""
        if self.model is not None:
            self.model.train()
        bar = Progress(
            self.samples, self.desc(epoch), enabled=self.write and not self.quiet, unit=self.unit
        )
        names: list[str] | None = None
        sums = np.zeros(0)
        count = 0
        for batch_index, batch in enumerate(self.batches(epoch)):
            out = self.step(batch)
            if names is None:
                names = sorted(out.sums)
                sums = np.zeros(len(names))
            # one small sum per batch: every rank then sees the global batch's loss (so all
            # of them stop at the same divergent batch) and the progress bar shows it
            # (a rank whose share of a short last batch is empty reports the NaN mean of no
            # samples: it adds nothing)
            loss_sum = out.loss * out.count if out.count else 0.0
            total = self._sum_across_ranks(
                [loss_sum, out.count, *(out.sums.get(n, 0.0) for n in names)]
            )
            n = int(round(total[1]))
            value = float(total[0] / n) if n else float(out.loss)
            if not math.isfinite(value):
                # stop before a NaN model is checkpointed (it would never be `best`, and a
                # resume would continue from it)
                bar.close()
                raise diverged(self.lr, f"{self.where(epoch)} batch {batch_index + 1}", value)
            sums = sums + total[2:]
            count += n
            bar.update(n, value)
        bar.close()
        return bar, dict(zip(names or [], sums.tolist())), count

    def run(self) -> dict[str, list[float]]:
        """Train from the current epoch to ``epochs`` (or an early stop).

        Returns:
            The history: ``{key: [one value per epoch]}``.

        Raises:
            UserError: When the training loss or the monitored validation value became NaN
                or infinite (naming the epoch and batch, and ``--lr``).
            KeyboardInterrupt: Unchanged; :attr:`saved` says which epoch is on disk.
        """
        for epoch in range(self.epoch, self.epochs):
            if self.stopped:
                break
            bar, sums, count = self._train_epoch(epoch)
            record: dict[str, float] = {"train_loss": bar.mean_loss}
            if self.train_metrics is not None:
                for name, value in self.train_metrics(sums, count).items():
                    record[f"train_{name}"] = float(value)
            improved = False
            if self.validate is not None:
                val = dict(self.validate(epoch))
                watched = float(val.get(self.monitor, math.nan))
                if not math.isfinite(watched):  # the last step broke the weights
                    raise diverged(self.lr, f"{self.where(epoch)} (its last batch)", watched)
                for name, value in val.items():
                    record[f"val_{name}"] = float(value)
                if self.patience is not None:
                    improved = watched < self.best
                    if improved:
                        self.best, self.bad = watched, 0
                    else:
                        self.bad += 1
            record[self.rate_key] = bar.rate
            for key, value in record.items():
                self.history.setdefault(key, []).append(value)
            self.epoch = epoch + 1
            if improved and self.on_improved is not None:
                self.on_improved(epoch)
            if self.describe is not None:
                log(self.describe(epoch, record, improved), self.quiet or not self.write)
            if self.checkpoint is not None and self.write:
                convlab.save(self.state_dict(), self.checkpoint)
            self.saved = self.where(epoch)
            if self.on_epoch_end is not None:
                self.on_epoch_end(epoch)
        return self.history
