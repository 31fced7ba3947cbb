"""What every training job's run folder needs: user errors, logging, atomic JSON, and reading
back the configuration and checkpoint that ``--resume`` continues from."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import convlab
from convlab._atomic import atomic_open
from convlab.serialization import CheckpointError

__all__ = ["UserError", "log", "write_json", "read_run_config", "read_run_state"]


class UserError(ValueError):
    """A mistake in the command's arguments or files (reported in one line, exit status 2)."""


def log(message: str, quiet: bool) -> None:
    """Print a progress line unless ``quiet``."""
    if not quiet:
        print(message, flush=True)


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_open(path, "w") as handle:
        json.dump(obj, handle, indent=2)


def read_run_config(folder: Path, kind: str) -> dict:
    """The ``config.json`` of the ``kind`` run in ``folder`` (for ``--resume``).

    Raises:
        UserError: If it is missing, unreadable or not a JSON object.
    """
    path = folder / "config.json"
    try:
        with open(path) as handle:
            config = json.load(handle)
    except FileNotFoundError:
        raise UserError(f"--resume: {folder} has no config.json (not a {kind} run)") from None
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"--resume: {path} is unreadable ({err})") from None
    if not isinstance(config, dict):
        raise UserError(f"--resume: {path} is not a run configuration")
    return config


def read_run_state(path: Path, keys: Iterable[str], kind: str) -> dict:
    """The resume checkpoint at ``path``, which must hold ``keys``.

    Raises:
        UserError: If it is corrupted or not a ``kind`` checkpoint.
    """
    try:
        state = convlab.load(path)
    except CheckpointError as err:
        raise UserError(f"--resume: checkpoint {path} is corrupted ({err})") from None
    if not isinstance(state, dict) or not set(keys) <= set(state):
        raise UserError(f"--resume: {path} is not a {kind} checkpoint")
    return state
