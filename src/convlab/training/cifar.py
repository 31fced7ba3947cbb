"""Train ResNet9 on CIFAR-10 (``convlab train cifar10``).

A run lives in one folder:

* ``config.json``: the settings (what ``--resume`` continues with);
* ``state.npz``: model, optimizer and random-generator states, epoch and history, rewritten
  atomically after every epoch (the resume checkpoint; ``--resume`` before the first epoch
  finished starts the run over);
* ``model.npz``: the weights after the last finished epoch (``convlab.load`` +
  ``load_state_dict``);
* ``metrics.json`` (per-epoch train / test loss and accuracy, images/s) and
  ``learning_curves.png``.

CIFAR-10 has no validation split, so the test set is only reported, never used to choose.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import convlab
from convlab import nn
from convlab.data import CIFAR10, DataLoader, Dataset, Subset, transforms
from convlab.data.vision import DatasetDownloadError, DatasetFormatError, DatasetNotFoundError
from convlab.models import ResNet9
from convlab.training import plots
from convlab.training.fields import (
    MAX_SEED,
    UserError,
    check_bool,
    check_choice,
    check_history,
    check_int,
    check_number,
    check_str,
)
from convlab.training.loop import TrainLoop, supervised_step
from convlab.training.runs import (
    Interrupted,
    check_new_run_folder,
    claim_run_folder,
    config_from_file,
    log,
    read_run_config,
    read_run_state,
    write_json,
)

__all__ = ["CifarTrainConfig", "train_cifar10", "MODELS"]

# per-channel mean and std of the CIFAR-10 training images
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
MODELS = {"resnet9": "hw4", "resnet9-standard": "standard"}


@dataclass
class CifarTrainConfig:
    """Settings of one run (the ``convlab train cifar10`` options)."""

    data: str
    model: str = "resnet9"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 5e-4
    augment: bool = True
    device: str = "cpu"
    seed: int = 0
    limit: int | None = None  # first N training (and N // 5 test) images

    def check(self, where: str | None = None) -> None:
        """Raise :class:`UserError` for a setting of the wrong type or range.

        Args:
            where: Where the settings were read from: errors name ``"<where>: <field>"``;
                by default the field's option (``--batch-size``).
        """

        def name(field: str) -> str:
            return f"{where}: {field}" if where else f"--{field.replace('_', '-')}"

        check_str(self.data, name("data"))
        check_choice(self.model, name("model"), tuple(MODELS))
        for field in ("epochs", "batch_size"):
            check_int(getattr(self, field), name(field), 1)
        check_number(self.lr, name("lr"), 0, above=True)
        check_number(self.weight_decay, name("weight_decay"), 0)
        check_bool(self.augment, name("augment"))
        check_choice(self.device, name("device"), ("cpu", "gpu"))
        check_int(self.seed, name("seed"), 0, MAX_SEED)
        if self.limit is not None:
            check_int(self.limit, name("limit"), 1)
        if self.device == "gpu" and not convlab.get_backend("gpu").is_available():
            raise UserError(f"--device gpu: {convlab.get_backend('gpu').describe()}")


def _datasets(config: CifarTrainConfig, download: bool = False) -> tuple[Dataset, Dataset]:
    normalize = transforms.Normalize(CIFAR_MEAN, CIFAR_STD)
    steps: list[Any] = [transforms.ToTensor()]
    if config.augment:
        steps += [transforms.RandomCrop(32, padding=4), transforms.RandomFlipHorizontal()]
    train: Dataset
    test: Dataset
    try:
        train = CIFAR10(
            config.data,
            train=True,
            transform=transforms.Compose(steps + [normalize]),
            download=download,
        )
        test = CIFAR10(
            config.data,
            train=False,
            transform=transforms.Compose([transforms.ToTensor(), normalize]),
        )
    except (DatasetNotFoundError, DatasetFormatError, DatasetDownloadError) as err:
        # the command's switch, where the library's message names the Python argument
        message = str(err).replace("pass download=True", "run with --download")
        raise UserError(f"--data: {message}") from None
    if config.limit is not None:
        train = Subset(train, np.arange(min(config.limit, len(train))))
        test = Subset(test, np.arange(min(max(config.limit // 5, 1), len(test))))
    return train, test


def _evaluate(model: nn.Module, loader: DataLoader, device: str) -> dict:
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    with convlab.no_grad():
        for x, y in loader:
            logits = model(x.to(device))
            y = y.to(device)
            loss_sum += float(nn.functional.cross_entropy(logits, y, reduction="sum").item())
            correct += int((logits.cpu().numpy().argmax(1) == y.cpu().numpy()).sum())
            count += len(y)
    return {"loss": loss_sum / max(count, 1), "accuracy": correct / max(count, 1)}


_STATE_KEYS = ("epoch", "history", "model", "optimizer", "rng", "order_rng")


def _read_resume(folder: Path, config: CifarTrainConfig) -> dict | None:
    """The resume checkpoint of the run in ``folder``, its plain fields checked (None when no
    epoch had finished: the run starts over).

    The command line gives the settings again; those that decide the batches must be the run's.
    """
    saved, path = read_run_config(folder, "cifar10")
    # checked like the command line's (the device is this session's to choose)
    run = config_from_file(CifarTrainConfig, saved, f"--resume: {path}", device=config.device)
    for key in ("model", "batch_size", "augment", "seed", "limit"):
        if getattr(run, key) != getattr(config, key):
            raise UserError(
                f"--resume: {path}: the run used {key}={getattr(run, key)!r}, not "
                f"{getattr(config, key)!r}"
            )
    state_path = folder / "state.npz"
    if not state_path.exists():
        return None
    state = read_run_state(state_path, _STATE_KEYS, "cifar10")
    epoch = check_int(state["epoch"], f"--resume: {state_path}: epoch", 0)
    check_history(state["history"], f"--resume: {state_path}: history", epoch)
    return state


def train_cifar10(
    config: CifarTrainConfig,
    out: Any,
    resume: bool = False,
    quiet: bool = False,
    threads: int | None = None,
    download: bool = False,
) -> dict:
    """Train, evaluate after every epoch, checkpoint; returns the metrics dict.

    ``out`` must be absent or an empty folder for a new run; with ``resume`` it is a run
    folder, continued from its last finished epoch (or started over if none had finished).
    ``download`` fetches CIFAR-10 into ``config.data`` first when it is not there
    (:class:`convlab.data.CIFAR10`'s ``download=True``).

    Raises:
        UserError: For bad settings, missing or corrupted data, an ``out`` folder that holds a
            run (without ``resume``) or anything else, a checkpoint that does not fit, or a
            loss that diverged.
        Interrupted: On Ctrl-C, saying which epoch ``state.npz`` holds.
    """
    config.check()
    folder = Path(out)
    if resume:
        state = _read_resume(folder, config)
    else:
        state = None
        check_new_run_folder(folder)
    if threads is not None:
        convlab.set_num_threads(threads)
    # what Ctrl-C reports: the epoch state.npz holds, and whether the folder is a run yet
    progress: dict[str, Any] = {
        "saved": f"epoch {state['epoch']}" if state is not None else None,
        "started": resume,
    }
    try:
        # a diverging loss is caught and reported as such (`diverged`); NumPy's overflow
        # warnings on the way there would only bury that one line
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return _train(config, folder, state, resume, quiet, progress, download)
    except KeyboardInterrupt:
        raise Interrupted(progress["saved"], progress["started"]) from None


def _train(
    config: CifarTrainConfig,
    folder: Path,
    state: dict | None,
    resume: bool,
    quiet: bool,
    progress: dict,
    download: bool = False,
) -> dict:
    train_set, test_set = _datasets(config, download)
    if not resume:
        claim_run_folder(folder, asdict(config))
        progress["started"] = True

    convlab.manual_seed(config.seed)
    model = ResNet9(MODELS[config.model]).to(config.device)
    optimizer = convlab.optim.Adam(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    order = np.random.default_rng(config.seed)
    train_loader = DataLoader(train_set, config.batch_size, shuffle=True, generator=order)
    test_loader = DataLoader(test_set, 2 * config.batch_size)

    def on_device(batch: Any) -> tuple:
        x, y = batch
        return x.to(config.device), y.to(config.device)

    def correct(logits: Any, y: Any) -> dict:
        return {"correct": int((logits.cpu().numpy().argmax(1) == y.cpu().numpy()).sum())}

    def epoch_done(epoch: int) -> None:
        convlab.save(model.state_dict(), folder / "model.npz")
        write_json(folder / "metrics.json", _metrics(config, loop.history))
        plots.learning_curves(
            [loop.history],
            folder / "learning_curves.png",
            held_out="test",
            title=f"{config.model} on CIFAR-10",
        )

    def describe(epoch: int, r: dict, improved: bool) -> str:
        return (
            f"epoch {epoch + 1}/{config.epochs}: train loss {r['train_loss']:.4f} acc "
            f"{r['train_accuracy']:.3f} | test loss {r['val_loss']:.4f} acc "
            f"{r['val_accuracy']:.3f} | {r['images_per_second']:.0f} img/s"
        )

    def on_saved(epoch: int) -> None:
        progress["saved"] = loop.saved
        epoch_done(epoch)

    loop = TrainLoop(
        epochs=config.epochs,
        batches=lambda epoch: map(on_device, train_loader),
        step=supervised_step(model, nn.CrossEntropyLoss(), optimizer, metrics=correct),
        samples=len(train_set),
        validate=lambda epoch: _evaluate(model, test_loader, config.device),
        train_metrics=lambda sums, n: {"accuracy": sums.get("correct", 0) / max(n, 1)},
        on_epoch_end=on_saved,
        model=model,
        optimizer=optimizer,
        generators={"order_rng": order},
        checkpoint=folder / "state.npz",
        describe=describe,
        where=lambda epoch: f"epoch {epoch + 1}",
        desc=lambda epoch: f"epoch {epoch + 1}/{config.epochs}",
        lr=config.lr,
        quiet=quiet,
    )
    # the columns (and their order) of a run's history, also before its first epoch
    loop.history = {
        "train_loss": [],
        "train_accuracy": [],
        "val_loss": [],
        "val_accuracy": [],
        "images_per_second": [],
    }
    if state is not None:  # epoch and history were checked by _read_resume
        loop.load_state_dict(state, f"--resume: {folder / 'state.npz'}", checked=True)
        log(f"resuming at epoch {loop.epoch + 1}", quiet)
    log(
        f"{config.model} ({sum(p.numel() for p in model.parameters()):,} parameters) on "
        f"{len(train_set):,} training / {len(test_set):,} test images, {config.epochs} "
        f"epochs, batch {config.batch_size}, {config.device}",
        quiet,
    )
    return _metrics(config, loop.run())


def _metrics(config: CifarTrainConfig, history: dict) -> dict:
    """What ``metrics.json`` holds (and ``train_cifar10`` returns)."""
    return {
        "config": asdict(config),
        "epochs_done": len(history["train_loss"]),
        "train_loss": history["train_loss"],
        "train_accuracy": history["train_accuracy"],
        "test_loss": history["val_loss"],
        "test_accuracy": history["val_accuracy"],
        "images_per_second": history["images_per_second"],
    }
