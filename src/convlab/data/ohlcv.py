"""Daily OHLCV tables as users hold them (Tiingo, Yahoo, lower-case; CSV, Parquet, folders,
DataFrames) normalised to one tidy frame: ``ticker, date, open, high, low, close, volume``.

Needs pandas (``pip install "convlab[data]"``).

Example:
    >>> import pandas as pd
    >>> from convlab.data import load_ohlcv
    >>> raw = pd.DataFrame({"Date": ["2020-01-02", "2020-01-03"], "Open": [10, 11],
    ...                     "High": [11, 12], "Low": [9, 10], "Close": [10.5, 11.5],
    ...                     "Adj Close": [5.25, 5.75], "Volume": [100, 200]})
    >>> load_ohlcv(raw, ticker="ABC")[["ticker", "open", "close"]].values.tolist()
    [['ABC', 5.0, 5.25], ['ABC', 5.5, 5.75]]
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["load_ohlcv", "OHLCVError", "COLUMNS"]

#: The tidy frame's columns, in order.
COLUMNS = ["ticker", "date", "open", "high", "low", "close", "volume"]

_TIINGO = {
    "adjopen": "open",
    "adjhigh": "high",
    "adjlow": "low",
    "adjclose": "close",
    "adjvolume": "volume",
}
_TICKER_NAMES = ("ticker", "symbol", "permno", "stockid")
_FILE_SUFFIXES = (".csv", ".parquet", ".pq", ".csv.gz")


class OHLCVError(ValueError):
    """An OHLCV table that cannot be used as it is (the message names file, ticker and row)."""


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("convlab.data needs pandas: pip install 'convlab[data]'") from None
    return pandas


def _read_file(path: Path) -> Any:
    pd = _pandas()
    name = path.name.lower()
    if not path.exists():
        raise FileNotFoundError(f"load_ohlcv: no such file {str(path)!r}")
    if path.stat().st_size == 0:
        raise OHLCVError(f"{path}: the file is empty")
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        return _read_csv(path)
    except OHLCVError:
        raise
    except Exception as err:  # noqa: BLE001 - pandas raises many types for broken files
        raise OHLCVError(
            f"{path}: cannot be read as a table ({type(err).__name__}: {err})"
        ) from None


def _read_csv(path: Path) -> Any:
    """A CSV file with its ticker column read as text: pandas would turn the ticker ``NA``
    (and ``NULL``, ``nan``, ...) into a missing value, and the row would be lost.

    A row with more fields than the header is an error: by default pandas would make the
    first column the index (every value moving one column left), and with ``index_col=False``
    it drops the extra fields with only a warning.
    """
    pd = _pandas()
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        frame = pd.read_csv(path, index_col=False)
    names = [c for c in frame.columns if _normal_name(c) in _TICKER_NAMES]
    if names:
        text = pd.read_csv(path, usecols=names, dtype=str, keep_default_na=False, index_col=False)
        if len(text) != len(frame):  # pragma: no cover - one parser, one file
            raise OHLCVError(
                f"{path}: the ticker column reads as {len(text)} rows, the table as {len(frame)}"
            )
        for column in names:
            frame[column] = text[column].to_numpy()
    return frame


def _normal_name(column: Any) -> str:
    """A column name as matched against the known names (case, spaces, underscores ignored)."""
    return str(column).strip().lower().replace(" ", "").replace("_", "")


def _normalise_columns(frame: Any, where: str) -> Any:
    """Map Tiingo / Yahoo / lower-case column names to the tidy names."""
    pd = _pandas()
    frame = frame.copy()
    if frame.index.name is not None and str(frame.index.name).lower() in ("date", "datetime"):
        frame = frame.reset_index()
    lower = {c: _normal_name(c) for c in frame.columns}
    seen: dict[str, Any] = {}  # normal name -> the column that has it
    for column, name in lower.items():
        if name in seen:  # e.g. "close" and "Close": which one is meant cannot be guessed
            raise OHLCVError(
                f"{where}: columns {seen[name]!r} and {column!r} both mean "
                f"{name!r}; keep one of them"
            )
        seen[name] = column
    frame = frame.rename(columns=lower)
    if all(k in frame.columns for k in _TIINGO):
        frame = frame.drop(
            columns=[c for c in ("open", "high", "low", "close", "volume") if c in frame.columns]
        )
        frame = frame.rename(columns=_TIINGO)
    elif "adjclose" in frame.columns:
        # Yahoo: adjust open/high/low by the same factor as the close
        for col in ("open", "high", "low", "close", "adjclose"):
            if col in frame.columns:
                frame[col] = _numeric(frame[col], col, where)
        factor = frame["adjclose"] / frame["close"]
        for col in ("open", "high", "low"):
            if col in frame.columns:
                frame[col] = frame[col] * factor
        frame["close"] = frame["adjclose"]
    if "datetime" in frame.columns and "date" not in frame.columns:
        frame = frame.rename(columns={"datetime": "date"})
    for name in _TICKER_NAMES:
        if name in frame.columns and "ticker" not in frame.columns:
            frame = frame.rename(columns={name: "ticker"})
    missing = [
        c for c in ("date", "open", "high", "low", "close", "volume") if c not in frame.columns
    ]
    if missing:
        raise OHLCVError(
            f"{where}: missing column(s) {missing}; found {list(frame.columns)} "
            f"(expected open/high/low/close/volume and a date column or index, "
            f"Tiingo adj* or Yahoo names)"
        )
    try:
        frame["date"] = pd.to_datetime(frame["date"])
    except (ValueError, TypeError) as err:
        raise OHLCVError(f"{where}: column 'date' has values that are not dates ({err})") from None
    _refuse_missing(frame["date"].isna().to_numpy(), "date", where)
    return frame


def _refuse_missing(missing: np.ndarray, name: str, where: str) -> None:
    """Rows without a date or ticker cannot be placed: an error naming them, never a silent
    drop."""
    if missing.any():
        rows = np.flatnonzero(missing)
        raise OHLCVError(
            f"{where}: column {name!r} is empty in {len(rows)} row(s), first in "
            f"row {int(rows[0])} (every row needs a {name})"
        )


def _numeric(column: Any, name: str, where: str) -> Any:
    pd = _pandas()
    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna() & column.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise OHLCVError(
            f"{where}: column {name!r} row {row} holds {column.iloc[row]!r}, not a number"
        )
    return values.astype(float)


def _tidy(frame: Any, where: str, ticker: str | None, sort: bool) -> Any:
    pd = _pandas()
    # row numbers in messages are positions (0 = the first data row), whatever the index
    frame = _normalise_columns(frame, where).reset_index(drop=True)
    if "ticker" not in frame.columns:
        frame["ticker"] = ticker if ticker is not None else Path(where).stem.upper()
    names = frame["ticker"]
    _refuse_missing(
        (names.isna() | (names.astype(str).str.strip() == "")).to_numpy(), "ticker", where
    )
    frame["ticker"] = names.astype(str)
    for col in ("open", "high", "low", "close", "volume"):
        frame[col] = _numeric(frame[col], col, where)
    frame = frame[COLUMNS]
    out = []
    for name, group in frame.groupby("ticker", sort=True, dropna=False):
        dates = group["date"].to_numpy()
        dup = pd.Series(dates).duplicated().to_numpy()
        if dup.any():
            row = int(group.index[np.flatnonzero(dup)[0]])
            raise OHLCVError(
                f"{where}: ticker {name!r} has a duplicated date "
                f"{pd.Timestamp(dates[np.flatnonzero(dup)[0]]).date()} "
                f"(row {row})"
            )
        if len(dates) > 1 and (np.diff(dates) < np.timedelta64(0)).any():
            if not sort:
                row = int(group.index[np.flatnonzero(np.diff(dates) < np.timedelta64(0))[0] + 1])
                raise OHLCVError(
                    f"{where}: ticker {name!r} has unsorted dates (row {row}); "
                    f"pass sort=True to sort them"
                )
            group = group.sort_values("date")
        out.append(group)
    if not out:
        raise OHLCVError(f"{where}: the table has no rows")
    tidy = pd.concat(out, ignore_index=True)
    # zero, negative or infinite prices and volumes are missing data (an infinite price comes
    # e.g. from a Yahoo row whose close is 0: the adjustment factor is then infinite)
    for col in ("open", "high", "low", "close", "volume"):
        values = tidy[col].to_numpy()
        tidy.loc[~np.isfinite(values) | (values <= 0), col] = np.nan
    return tidy


def load_ohlcv(source: Any, ticker: str | None = None, sort: bool = False) -> Any:
    """Read daily OHLCV data into a tidy frame ``ticker, date, open, high, low, close, volume``.

    Args:
        source: A CSV / Parquet path, a folder of per-ticker files (the file name is the
            ticker), a long table with a ``ticker`` / ``symbol`` column, or a pandas DataFrame.
        ticker: The ticker of a single-instrument table without a ticker column (default: the
            file name).
        sort: Sort unsorted dates instead of raising.

    Yahoo tables use the adjusted close, with open/high/low scaled by ``Adj Close / Close``;
    Tiingo tables use the ``adj*`` columns. Zero, negative or infinite prices and volumes
    become NaN.

    A ticker is taken as written (``NA`` is a ticker, not a missing value); a row without a
    ticker or a date is an error, never dropped.

    Raises:
        OHLCVError: Missing columns, two columns of one meaning (``close`` and ``Close``),
            text in numeric columns, an empty file, rows without a ticker or date, duplicated
            or (without ``sort``) unsorted dates; the message names the file, ticker and row.
        FileNotFoundError: If ``source`` does not exist.
    """
    pd = _pandas()
    if isinstance(source, pd.DataFrame):
        return _tidy(source, "DataFrame" if ticker is None else ticker, ticker, sort)
    path = Path(os.fspath(source))
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.name.lower().endswith(_FILE_SUFFIXES))
        if not files:
            raise OHLCVError(f"{path}: the folder holds no .csv or .parquet files")
        frames = [_tidy(_read_file(f), str(f), f.name.split(".")[0].upper(), sort) for f in files]
        return pd.concat(frames, ignore_index=True)
    return _tidy(_read_file(path), str(path), ticker, sort)
