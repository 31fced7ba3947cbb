"""Checks of single values a training job reads from its command line or run folder.

Each check takes the value and the name to report it under (an option such as
``--batch-size``, or ``<file>: batch_size`` for a value read back from a run folder), and
raises :class:`UserError` -- reported by the command line in one line, exit status 2 -- for a
value of the wrong type or range, before it can reach a kernel, a loop bound or a format
string.
"""

from __future__ import annotations

import datetime
import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "UserError",
    "MAX_INT",
    "MAX_SEED",
    "HISTORY_KEYS",
    "integer_range",
    "check_int",
    "check_number",
    "check_choice",
    "check_str",
    "check_bool",
    "check_date",
    "check_str_list",
    "check_history",
    "shown",
]

#: Upper bound of counts, days and sizes: more is never meant, and the values reach C ints.
MAX_INT = 2**31 - 1
#: Upper bound of seeds.
MAX_SEED = 2**63 - 1
#: The per-epoch series a run's history holds.
HISTORY_KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "images_per_second")


class UserError(ValueError):
    """A mistake in the command's arguments or files (reported in one line, exit status 2)."""


# Each takes the value and the name to report it under (an option such as ``--batch-size``,
# or ``<file>: batch_size`` for a value read back from a run folder).


def shown(value: Any) -> str:
    """``repr(value)``, cut to 60 characters for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def integer_range(minimum: int, maximum: int) -> str:
    """``"a positive integer no larger than 8"`` and the like, for error messages."""
    kind = {0: "a non-negative integer", 1: "a positive integer"}.get(
        minimum, f"an integer >= {minimum}"
    )
    return f"{kind} no larger than {maximum}"


def check_int(value: Any, name: str, minimum: int = 0, maximum: int = MAX_INT) -> int:
    """``value`` as an int in ``[minimum, maximum]`` (bools and floats are refused)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or not (minimum <= int(value) <= maximum)
    ):
        raise UserError(f"{name}: expected {integer_range(minimum, maximum)}, got {shown(value)}")
    return int(value)


def check_number(
    value: Any,
    name: str,
    minimum: float | None = None,
    maximum: float | None = None,
    above: bool = False,
    below: bool = False,
    finite: bool = True,
) -> float:
    """``value`` as a float within the bounds (``above`` / ``below`` make them strict).

    ``finite=False`` admits infinities, never NaN.
    """
    ok = (
        not isinstance(value, bool)
        and isinstance(value, numbers.Real)
        and not math.isnan(value)
        and (math.isfinite(value) or not finite)
    )
    if ok and minimum is not None:
        ok = value > minimum if above else value >= minimum
    if ok and maximum is not None:
        ok = value < maximum if below else value <= maximum
    if not ok:
        limits = []
        if minimum is not None:
            limits.append(f"{'>' if above else '>='} {minimum:g}")
        if maximum is not None:
            limits.append(f"{'<' if below else '<='} {maximum:g}")
        kind = "a finite number" if finite else "a number"
        raise UserError(
            f"{name}: expected {kind}{' ' if limits else ''}{' and '.join(limits)}"
            f", got {shown(value)}"
        )
    return float(value)


def check_choice(value: Any, name: str, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices`` (of the same type: ``"5"`` is not ``5``)."""
    if not any(type(value) is type(c) and value == c for c in choices):
        raise UserError(
            f"{name}: expected one of {', '.join(map(str, choices))}, got {shown(value)}"
        )
    return value


def check_str(value: Any, name: str) -> str:
    """``value`` as a non-empty string."""
    if not isinstance(value, str) or not value:
        raise UserError(f"{name}: expected a non-empty string, got {shown(value)}")
    return value


def check_bool(value: Any, name: str) -> bool:
    """``value`` if it is ``True`` or ``False`` (``1`` and ``"no"`` are refused)."""
    if not isinstance(value, bool):
        raise UserError(f"{name}: expected true or false, got {shown(value)}")
    return value


def check_date(value: Any, name: str) -> str:
    """``value`` as a calendar date, returned as ``YYYY-MM-DD``: what NumPy reads as a day
    (``2015-06-30``, or ``2015-06`` for its first day, as earlier versions accepted), in the
    years 1 to 9999 (``20150630`` would be read as a year)."""
    try:
        if not isinstance(value, str):
            raise ValueError
        text = str(np.datetime64(value, "D"))
        datetime.date.fromisoformat(text)  # NaT and years past 9999 fail here
    except (ValueError, TypeError, OverflowError):
        raise UserError(f"{name}: expected a date YYYY-MM-DD, got {shown(value)}") from None
    return text


def check_str_list(value: Any, name: str) -> list:
    """``value`` as a list of strings."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError(f"{name}: expected a list of strings, got {shown(value)}")
    return value


def check_history(value: Any, name: str, epochs: int | None = None) -> dict:
    """A run's per-epoch history: a dict of :data:`HISTORY_KEYS`, each a list of numbers,
    all ``epochs`` long (or, without ``epochs``, equally long)."""
    if not isinstance(value, dict) or set(value) != set(HISTORY_KEYS):
        raise UserError(f"{name}: expected a dict of {', '.join(HISTORY_KEYS)}, got {shown(value)}")
    for key in HISTORY_KEYS:
        series = value[key]
        if not isinstance(series, list) or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in series
        ):
            raise UserError(f"{name}: {key}: expected a list of numbers, got {shown(series)}")
    lengths = {len(value[key]) for key in HISTORY_KEYS}
    if epochs is not None and lengths != {epochs}:
        raise UserError(
            f"{name}: expected one value per finished epoch ({epochs}) in each "
            f"series, got {sorted(lengths)}"
        )
    if len(lengths) > 1:
        raise UserError(f"{name}: the series have different lengths {sorted(lengths)}")
    return value
