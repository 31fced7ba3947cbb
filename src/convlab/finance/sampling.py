"""The paper's sampling: which end dates get an image and what return labels it.

Jiang, Kelly & Xiu draw one image per stock on the last trading day of each week, month or
quarter for the 5-, 20- and 60-day holding periods (so consecutive samples of a stock do not
overlap in their labels), and label it by the sign of the return over the holding period. The
holding period is either the number of trading days (``label="days"``) or the calendar period
that follows the image's end date (``label="period"``): the sources leave this open, so both are
offered and the choice is recorded with the run.

A single instrument or a couple of index series (the bundled data) have no cross-section to
sort and few images at period ends, so below :data:`MIN_CROSS_SECTION` instruments the default
stays one image per trading day.
"""

from __future__ import annotations

__all__ = ["PAPER_EVERY", "MIN_CROSS_SECTION", "LABELS", "default_every", "label_horizon"]

#: Holding period (trading days) -> the calendar period whose last trading day gets an image.
PAPER_EVERY = {5: "week", 20: "month", 60: "quarter"}
#: Instruments needed for the paper's period-end sampling by default (one per decile).
MIN_CROSS_SECTION = 10
#: How a label's holding period is measured.
LABELS = ("days", "period")
_EVERY = ("day", "week", "month", "quarter")


def default_every(horizon: int, instruments: int) -> str:
    """The paper's sampling for a horizon: ``"week"`` / ``"month"`` / ``"quarter"`` for 5 / 20 /
    60 days when there are at least :data:`MIN_CROSS_SECTION` instruments, else ``"day"``
    (also for a horizon the paper does not use)."""
    if instruments < MIN_CROSS_SECTION:
        return "day"
    return PAPER_EVERY.get(int(horizon), "day")


def label_horizon(horizon: int, every: str, label: str) -> int | str:
    """What :func:`convlab.data.render_charts` takes as ``horizon``: the number of trading days,
    or with ``label="period"`` the sampling period's name (the next week / month / quarter).

    Raises:
        ValueError: For an unknown ``label`` or ``every``, or ``label="period"`` with daily
            sampling (a calendar holding period needs period-end images).
    """
    if label not in LABELS:
        raise ValueError(f"label: expected 'days' or 'period', got {label!r}")
    if every not in _EVERY:
        raise ValueError(f"every: expected one of {_EVERY}, got {every!r}")
    if label == "days":
        return int(horizon)
    if every == "day":
        raise ValueError(
            "label: 'period' labels by the calendar week / month / quarter after the image, "
            "which needs --every week, month or quarter (not day)"
        )
    return every
