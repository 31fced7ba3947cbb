"""Train ResNet9 on CIFAR-10 (``convlab train cifar10``).

A run lives in one folder:

* ``config.json``: the settings (what ``--resume`` continues with);
* ``state.npz``: model, optimizer and random-generator states, epoch and history, rewritten
  atomically after every epoch (the resume checkpoint);
* ``model.npz``: the weights after the last finished epoch (``convlab.load`` +
  ``load_state_dict``);
* ``metrics.json`` (per-epoch train / test loss and accuracy, images/s) and
  ``learning_curves.png``.

CIFAR-10 has no validation split, so the test set is only reported, never used to choose.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

import convlab
from convlab import nn
from convlab.data import CIFAR10, DataLoader, Subset, transforms
from convlab.data.vision import DatasetFormatError, DatasetNotFoundError
from convlab.models import ResNet9
from convlab.training import plots
from convlab.training.progress import Progress
from convlab.training.runs import UserError, log, read_run_config, read_run_state, write_json

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
    limit: Optional[int] = None          # first N training (and N // 5 test) images

    def check(self) -> None:
        """Raise :class:`UserError` for impossible settings."""
        if self.model not in MODELS:
            raise UserError(f"--model: expected one of {', '.join(MODELS)}, got {self.model!r}")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"--{name.replace('_', '-')}: expected a positive integer, "
                                f"got {getattr(self, name)}")
        if not self.lr > 0 or not self.weight_decay >= 0:
            raise UserError(f"--lr / --weight-decay: expected lr > 0 and weight decay >= 0, "
                            f"got {self.lr} and {self.weight_decay}")
        if self.limit is not None and self.limit < 1:
            raise UserError(f"--limit: expected a positive integer, got {self.limit}")
        if self.device == "gpu" and not convlab.get_backend("gpu").is_available():
            raise UserError(f"--device gpu: {convlab.get_backend('gpu').describe()}")


def _datasets(config: CifarTrainConfig) -> tuple:
    normalize = transforms.Normalize(CIFAR_MEAN, CIFAR_STD)
    steps = [transforms.ToTensor()]
    if config.augment:
        steps += [transforms.RandomCrop(32, padding=4), transforms.RandomFlipHorizontal()]
    try:
        train = CIFAR10(config.data, train=True,
                        transform=transforms.Compose(steps + [normalize]))
        test = CIFAR10(config.data, train=False,
                       transform=transforms.Compose([transforms.ToTensor(), normalize]))
    except (DatasetNotFoundError, DatasetFormatError) as err:
        raise UserError(f"--data: {err}") from None
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


def _read_resume(folder: Path, config: CifarTrainConfig) -> dict:
    saved = read_run_config(folder, "cifar10")
    for key in ("model", "batch_size", "augment", "seed", "limit"):
        if saved.get(key) != getattr(config, key):
            raise UserError(f"--resume: the run in {folder} used {key}={saved.get(key)!r}, "
                            f"not {getattr(config, key)!r}")
    if not (folder / "state.npz").exists():
        raise UserError(f"--resume: {folder} has no state.npz (no epoch finished)")
    return read_run_state(folder / "state.npz", ("epoch", "model", "optimizer", "history"),
                          "cifar10")


def train_cifar10(config: CifarTrainConfig, out: Any, resume: bool = False,
                  quiet: bool = False, threads: Optional[int] = None) -> dict:
    """Train, evaluate after every epoch, checkpoint; returns the metrics dict.

    Raises:
        UserError: For bad settings, missing or corrupted data, an ``out`` folder that already
            holds a run (without ``resume``) or a checkpoint that does not fit.
    """
    config.check()
    if threads is not None:
        convlab.set_num_threads(threads)
    folder = Path(out)
    state = _read_resume(folder, config) if resume else None
    if not resume and (folder / "config.json").exists():
        raise UserError(f"--out: {folder} already holds a run; use --resume to continue it or "
                        f"another --out")
    train_set, test_set = _datasets(config)
    folder.mkdir(parents=True, exist_ok=True)
    if not resume:
        write_json(folder / "config.json", asdict(config))

    convlab.manual_seed(config.seed)
    model = ResNet9(MODELS[config.model]).to(config.device)
    optimizer = convlab.optim.Adam(model.parameters(), lr=config.lr,
                                   weight_decay=config.weight_decay)
    order = np.random.default_rng(config.seed)
    history = {"train_loss": [], "train_accuracy": [], "val_loss": [], "val_accuracy": [],
               "images_per_second": []}
    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        order.bit_generator.state = state["order_rng"]
        convlab.set_rng_state(state["rng"])
        start, history = int(state["epoch"]), state["history"]
        log(f"resuming at epoch {start + 1}", quiet)
    train_loader = DataLoader(train_set, config.batch_size, shuffle=True, generator=order)
    test_loader = DataLoader(test_set, 2 * config.batch_size)
    loss_fn = nn.CrossEntropyLoss()
    log(f"{config.model} ({sum(p.numel() for p in model.parameters()):,} parameters) on "
         f"{len(train_set):,} training / {len(test_set):,} test images, {config.epochs} "
         f"epochs, batch {config.batch_size}, {config.device}", quiet)
    for epoch in range(start, config.epochs):
        model.train()
        bar = Progress(len(train_set), f"epoch {epoch + 1}/{config.epochs}", enabled=not quiet)
        correct = 0
        for x, y in train_loader:
            x, y = x.to(config.device), y.to(config.device)
            optimizer.zero_grad()
            logits = model(x)
            loss = loss_fn(logits, y)
            loss.backward()
            optimizer.step()
            correct += int((logits.cpu().numpy().argmax(1) == y.cpu().numpy()).sum())
            bar.update(len(y), float(loss.item()))
        bar.close()
        test = _evaluate(model, test_loader, config.device)
        history["train_loss"].append(bar.mean_loss)
        history["train_accuracy"].append(correct / max(len(train_set), 1))
        history["val_loss"].append(test["loss"])
        history["val_accuracy"].append(test["accuracy"])
        history["images_per_second"].append(bar.rate)
        log(f"epoch {epoch + 1}/{config.epochs}: train loss {bar.mean_loss:.4f} acc "
             f"{history['train_accuracy'][-1]:.3f} | test loss {test['loss']:.4f} acc "
             f"{test['accuracy']:.3f} | {bar.rate:.0f} img/s", quiet)
        convlab.save(model.state_dict(), folder / "model.npz")
        convlab.save({"epoch": epoch + 1, "history": history, "model": model.state_dict(),
                      "optimizer": optimizer.state_dict(), "rng": convlab.get_rng_state(),
                      "order_rng": dict(order.bit_generator.state)}, folder / "state.npz")
        metrics = {"config": asdict(config), "epochs_done": epoch + 1,
                   "train_loss": history["train_loss"],
                   "train_accuracy": history["train_accuracy"],
                   "test_loss": history["val_loss"], "test_accuracy": history["val_accuracy"],
                   "images_per_second": history["images_per_second"]}
        write_json(folder / "metrics.json", metrics)
        plots.learning_curves([history], folder / "learning_curves.png",
                              title="loss per epoch: test (solid), train (dotted)")
    return json.loads((folder / "metrics.json").read_text())
