"""The daily series behind a ``--data`` source, read once per process.

The chart job renders images from the daily series and, after training, evaluates the test
predictions against the same series (market equity for value weights, closes for the benchmark
signals): :func:`load_daily` keeps the last series it read, so a large CRSP file is parsed once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["load_daily", "is_crsp", "CRSP_PREFIX"]

#: ``--data crsp:FILE`` reads FILE as a WRDS CRSP daily export.
CRSP_PREFIX = "crsp:"
_CACHE: dict[tuple, Any] = {}


def is_crsp(data: str) -> bool:
    """Whether a ``--data`` value names a CRSP export (``crsp:FILE``)."""
    return data.startswith(CRSP_PREFIX)


def _key(data: str) -> tuple:
    path = Path(data[len(CRSP_PREFIX) :] if is_crsp(data) else data)
    try:
        stat = os.stat(path)
    except OSError:
        return (data, None)
    return (data, stat.st_mtime_ns, stat.st_size)


def load_daily(data: str) -> Any:
    """The tidy daily frame of a ``--data`` source (``ticker, date, open, high, low, close,
    volume``, plus ``ret`` and ``me`` for CRSP); None for ``jkx:DIR`` (image files: no
    daily prices).

    Args:
        data: ``default`` / ``sp500`` / ``nasdaq`` (the bundled index series), ``crsp:FILE``,
            ``jkx:DIR`` or an OHLCV CSV / Parquet file or folder.

    The result is shared between calls with the same source (and unchanged file): treat it as
    read-only.

    Raises:
        convlab.finance.crsp.CRSPError: For a CRSP file that cannot be used.
        convlab.data.OHLCVError: For an OHLCV table that cannot be used.
        FileNotFoundError: For a path that does not exist.
    """
    if data.startswith("jkx:"):
        return None
    key = _key(data)
    if key in _CACHE:
        return _CACHE[key]
    from convlab import data as chart_data

    if is_crsp(data):
        from convlab.finance.crsp import read_crsp

        frame = read_crsp(data[len(CRSP_PREFIX) :])
    elif data in ("default", "sp500", "nasdaq"):
        frame = chart_data.load_default_ohlcv()
        if data != "default":
            frame = frame[frame["ticker"] == {"sp500": "SP500", "nasdaq": "NASDAQ"}[data]]
    else:
        if not Path(data).exists():
            raise FileNotFoundError(data)
        frame = chart_data.load_ohlcv(data)
    _CACHE.clear()  # one series at a time: a CRSP file can take gigabytes
    _CACHE[key] = frame
    return frame
