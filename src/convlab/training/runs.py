"""What every training job's run folder needs: logging, atomic JSON, the rules for an
``--out`` folder, and reading back -- and checking, field by field (``fields``) -- the
configuration and checkpoint that ``--resume`` continues from.

Everything read back from a run folder is treated as untrusted input: a value of the wrong
type or range is reported as a :class:`UserError` naming the file and the field, before it can
reach a kernel, a loop bound or a format string.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

import convlab
from convlab._atomic import atomic_open
from convlab.serialization import CheckpointError
from convlab.training.fields import UserError, shown

__all__ = [
    "Interrupted",
    "log",
    "write_json",
    "one_line",
    "check_new_run_folder",
    "claim_run_folder",
    "read_run_config",
    "config_from_file",
    "load_checkpoint",
    "read_run_state",
    "load_model_state",
    "restore",
    "restore_training",
    "diverged",
]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a training job, with what its run folder holds to resume from.

    Attributes:
        saved: The last finished epoch whose checkpoint is in the folder (e.g. ``"model 2
            epoch 3"``), or None when no epoch has finished.
        started: Whether the run folder exists (``--resume`` can continue or restart it).
    """

    def __init__(self, saved: str | None, started: bool) -> None:
        super().__init__(saved)
        self.saved, self.started = saved, started


def log(message: str, quiet: bool) -> None:
    """Print a progress line unless ``quiet``."""
    if not quiet:
        print(message, flush=True)


def write_json(path: Path, obj: Any, overwrite: bool = True) -> None:
    """Write ``obj`` as indented JSON, atomically (``overwrite=False``: never over a file)."""
    with atomic_open(path, "w", overwrite=overwrite) as handle:
        json.dump(obj, handle, indent=2)


def one_line(err: BaseException) -> str:
    """An exception's message on one line (some span several, e.g. ``load_state_dict``'s)."""
    return " ".join(str(err).split()) or type(err).__name__


# -- the run folder ------------------------------------------------------------------------


def check_new_run_folder(folder: Path) -> None:
    """Refuse an ``--out`` for a new run unless it is absent or an empty folder: a run there is
    continued with ``--resume``, and files that are not ours are never written over.

    Raises:
        UserError: If ``folder`` is a file, holds a run, holds anything else, or cannot be
            looked at.
    """
    try:
        if folder.is_symlink() and not folder.exists():
            raise UserError(f"--out: {folder} is a symbolic link to nothing")
        if folder.exists() and not folder.is_dir():
            raise UserError(f"--out: {folder} is a file, not a folder")
        if (folder / "config.json").exists() or (folder / "state.npz").exists():
            raise UserError(
                f"--out: {folder} already holds a run; pass --resume to continue "
                f"it or choose another folder"
            )
        if folder.is_dir() and any(folder.iterdir()):
            raise UserError(
                f"--out: {folder} is not empty and holds no convlab run; choose a "
                f"new or empty folder (nothing there is written over)"
            )
    except OSError as err:  # a name too long, a parent that is a file, no permission
        raise UserError(f"--out: cannot use {folder} ({err.strerror or err})") from None


def claim_run_folder(folder: Path, config: dict) -> None:
    """Create the run folder and write its ``config.json``, which marks it as ours.

    The folder is checked again (data loading may have taken a while) and ``config.json`` is
    created only if no other process wrote one meanwhile.

    Raises:
        UserError: If the folder became unusable since :func:`check_new_run_folder`.
    """
    check_new_run_folder(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "config.json", config, overwrite=False)
    except FileExistsError:
        raise UserError(
            f"--out: another run started in {folder} meanwhile; choose another folder"
        ) from None
    except OSError as err:
        raise UserError(f"--out: cannot create {folder} ({err.strerror or err})") from None


def read_run_config(folder: Path, kind: str, option: str = "--resume") -> tuple[dict, Path]:
    """The ``config.json`` of the ``kind`` run in ``folder`` and its path (the JSON is not yet
    checked field by field: see :func:`config_from_file`).

    Raises:
        UserError: If it is missing, unreadable or not a JSON object.
    """
    path = folder / "config.json"
    try:
        # bytes: json detects UTF-8/16/32 itself instead of trusting the locale
        config = json.loads(path.read_bytes())
    except FileNotFoundError:
        what = "does not exist" if not folder.exists() else f"has no config.json (not a {kind} run)"
        raise UserError(f"{option}: {folder} {what}") from None
    except (OSError, ValueError, RecursionError) as err:
        # RecursionError: how the json module reports nesting deeper than the stack
        raise UserError(f"{option}: {path} is unreadable ({one_line(err)[:200]})") from None
    if not isinstance(config, dict):
        raise UserError(
            f"{option}: {path} is not a run configuration (expected a JSON object, "
            f"got {type(config).__name__})"
        )
    return config, path


def config_from_file(cls: Any, saved: dict, where: str, **override: Any) -> Any:
    """A config dataclass ``cls`` from a run's saved settings, every field present and checked
    (``cls.check(where)``); keys it does not know are ignored, ``override`` replaces fields.

    Raises:
        UserError: Naming ``where`` and the field, for a missing or bad field.
    """
    fields = [f for f in cls.__dataclass_fields__ if f not in override]
    missing = [f for f in fields if f not in saved]
    if missing:
        raise UserError(f"{where}: missing setting(s) {', '.join(missing)}")
    config = cls(**{f: saved[f] for f in fields}, **override)
    config.check(where)
    return config


def load_checkpoint(path: Path, what: str) -> Any:
    """``convlab.load(path)``, with every way a damaged file fails as one :class:`UserError`.

    Raises:
        UserError: ``"<what> <path> is corrupted (...)"``, or ``"... is missing"``.
    """
    try:
        # on the CPU whatever device wrote it: models and optimizers copy the values onto
        # their own device, so a run trained on a GPU resumes or predicts on a machine without
        return convlab.load(path, map_location="cpu")
    except FileNotFoundError:
        raise UserError(f"{what} {path} is missing") from None
    except (CheckpointError, TypeError, RecursionError) as err:
        # load documents CheckpointError; arrays of a dtype no tensor can have (TypeError) and
        # JSON nested past the stack (RecursionError) are the file's fault all the same
        raise UserError(f"{what} {path} is corrupted ({one_line(err)[:300]})") from None


def read_run_state(path: Path, keys: Iterable[str], kind: str) -> dict:
    """The resume checkpoint at ``path``, which must be a dict holding ``keys`` (their values
    are the caller's to check).

    Raises:
        UserError: If it is corrupted or not a ``kind`` checkpoint.
    """
    state = load_checkpoint(path, "--resume: checkpoint")
    if not isinstance(state, dict):
        raise UserError(f"--resume: {path} is not a {kind} checkpoint")
    missing = [k for k in keys if k not in state]
    if missing:
        raise UserError(f"--resume: {path} is not a {kind} checkpoint (no {', '.join(missing)})")
    return state


def load_model_state(model: Any, state: Any, name: str) -> None:
    """``model.load_state_dict(state)`` once every entry is checked against the model: same
    keys, tensors or arrays of the same shape and kind of number (no silent casts of integers
    into weights), and finite weights.

    Raises:
        UserError: Naming ``name`` and the entry.
    """
    if not isinstance(state, dict):
        raise UserError(f"{name}: expected a dict of tensors, got {shown(state)}")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise UserError(
            f"{name}: does not fit a {type(model).__name__} (missing "
            f"{shown(missing)}, unexpected {shown(unexpected)})"
        )
    for key, target in own.items():
        value = state[key]
        if isinstance(value, convlab.Tensor):
            array = value.numpy()
        elif isinstance(value, np.ndarray):
            array = value
        else:
            raise UserError(f"{name}: {key}: expected a tensor, got {type(value).__name__}")
        if tuple(array.shape) != tuple(target.shape):
            raise UserError(
                f"{name}: {key}: expected shape {tuple(target.shape)}, got {tuple(array.shape)}"
            )
        want = "f" if np.dtype(target.dtype).kind == "f" else "iu"
        if array.dtype.kind not in want:
            raise UserError(
                f"{name}: {key}: expected {np.dtype(target.dtype)} values, got {array.dtype}"
            )
        if want == "f" and not np.isfinite(array).all():
            raise UserError(
                f"{name}: {key}: holds NaN or infinite values (a diverged or damaged model)"
            )
    model.load_state_dict(state)


def restore(name: str, apply: Callable[[Any], Any], value: Any) -> None:
    """``apply(value)`` for a value read from a checkpoint (an optimizer or generator state).

    Raises:
        UserError: Naming ``name``, for whatever the value makes ``apply`` refuse.
    """
    try:
        apply(value)
    except (ValueError, TypeError, KeyError) as err:
        # the value comes straight from the file, so what it makes the setter raise -- the
        # documented ValueError, or TypeError / KeyError on a value of the wrong structure --
        # is the file's fault
        raise UserError(f"{name}: does not fit ({one_line(err)[:300]})") from None


def restore_training(state: dict, where: str, model: Any, optimizer: Any, generators: dict) -> None:
    """Put a run's checkpoint back: the model, the optimizer, the NumPy generators
    (``{state key: generator}``) and convlab's own random state.

    Raises:
        UserError: Naming ``where`` and the part that does not fit.
    """
    load_model_state(model, state["model"], f"{where}: model")
    restore(f"{where}: optimizer", optimizer.load_state_dict, state["optimizer"])
    for key, generator in generators.items():

        def set_state(value: Any, generator: Any = generator) -> None:
            generator.bit_generator.state = value

        restore(f"{where}: {key}", set_state, state[key])
    restore(f"{where}: rng", convlab.set_rng_state, state["rng"])


def diverged(lr: float, where: str, value: float) -> UserError:
    """The error for a training loss that became NaN or infinite."""
    return UserError(
        f"--lr: the training loss diverged ({value}) at {where} with learning "
        f"rate {lr:g}; start again with a lower --lr (and a new --out)"
    )
