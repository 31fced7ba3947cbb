"""The WRDS CRSP daily stock file (``dsf``) as the price series the paper draws its charts from.

Jiang, Kelly & Xiu build each stock's chart from CRSP daily data with returns, not raw prices,
driving the close, so that splits do not break a chart and dividends count as return:

* **Close**: chained from the holding-period return ``RET`` (dividends included):
  ``close[t] = close[t-1] * (1 + RET[t])``. The chain starts at ``|PRC|`` of the stock's first
  day with a price (any start works: every window is rescaled so its first close is 1; ``|PRC|``
  keeps the level readable).
* **Open, high, low**: ``OPENPRC``, ``ASKHI``, ``BIDLO`` scaled by the day's ratio
  ``close[t] / |PRC[t]|``, so they sit where the day's raw prices sat relative to its close.
* **Negative ``PRC``**: CRSP marks a bid-ask midpoint (no trade that day) with a minus sign; the
  absolute value is the price. Negative ``ASKHI`` / ``BIDLO`` / ``OPENPRC`` likewise. Zero is
  missing.
* **Missing and non-numeric ``RET``**: the codes ``A``..``Z`` (e.g. ``C``: no previous price,
  ``B``: return over more than ten periods), ``.``, an empty field and CRSP's numeric missing
  codes -66, -77, -88, -99 all mean "no return". That day has no close (and so no open, high or
  low: the spec's missing day), and the chain continues from the last known close: CRSP's next
  valid ``RET`` is measured from the last valid price, so it bridges the gap. Where a day has a
  price but no return and the chain cannot bridge (``B``), the next return chains from the last
  chained close (the gap's return is lost, never invented).
* **Volume**: ``VOL`` in shares; zero or negative volume is missing (as in the spec).
* **Market equity**: ``me = |PRC| * SHROUT`` (thousands of dollars, ``SHROUT`` being in
  thousands of shares), kept for value weights; missing where either is.

Column names may be in any case; CSV (also ``.csv.gz``) and Parquet are read. ``PERMNO`` becomes
the ticker (as text). Rows must be unique per (``PERMNO``, ``date``); unsorted rows are sorted
(a WRDS export has no meaningful row order).

Example:
    >>> import pandas as pd
    >>> raw = pd.DataFrame({"PERMNO": [1, 1], "date": ["2020-01-02", "2020-01-03"],
    ...     "OPENPRC": [10.0, 21.0], "ASKHI": [11.0, 22.0], "BIDLO": [9.0, 19.0],
    ...     "PRC": [10.0, -20.0], "VOL": [100, 0], "RET": ["C", "0.05"], "SHROUT": [5, 5]})
    >>> daily = read_crsp(raw)
    >>> daily[["close", "open", "volume", "me"]].round(4).values.tolist()
    [[10.0, 10.0, 100.0, 50.0], [10.5, 11.025, nan, 100.0]]
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["read_crsp", "CRSPError", "CRSP_COLUMNS", "MISSING_RET_CODES"]

#: The CRSP columns the reader needs (any case).
CRSP_COLUMNS = ("PERMNO", "date", "OPENPRC", "ASKHI", "BIDLO", "PRC", "VOL", "RET", "SHROUT")
#: CRSP's numeric missing-value codes of RET (old SAS exports).
MISSING_RET_CODES = (-66.0, -77.0, -88.0, -99.0)
#: The tidy frame's columns, in order: the OHLCV columns the chart renderer reads, then the
#: daily return and market equity.
COLUMNS = ["ticker", "date", "open", "high", "low", "close", "volume", "ret", "me"]
_CODE = re.compile(r"^\s*([A-Za-z]|\.|)\s*$")


class CRSPError(ValueError):
    """A CRSP export that cannot be used as it is (the message names file, column and row)."""


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("convlab.finance needs pandas: pip install 'convlab[data]'") from None
    return pandas


def _read(path: Path) -> Any:
    pd = _pandas()
    if not path.exists():
        raise FileNotFoundError(f"read_crsp: no such file {str(path)!r}")
    if path.is_dir():
        raise CRSPError(f"{path}: is a folder (expected one CRSP CSV or Parquet file)")
    if path.stat().st_size == 0:
        raise CRSPError(f"{path}: the file is empty")
    try:
        if path.name.lower().endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        return _read_csv(path)
    except Exception as err:  # noqa: BLE001 - pandas raises many types for broken files
        raise CRSPError(
            f"{path}: cannot be read as a table ({type(err).__name__}: {err})"
        ) from None


def _read_csv(path: Path) -> Any:
    """The CSV with the price columns parsed as numbers by pandas' C parser (fast on a file of
    tens of millions of rows), and PERMNO, date and RET as text (RET holds letter codes).
    Where a price column holds text (or SAS's ``.``), the whole file is read as text instead,
    so the cell can be named (:func:`_number`)."""
    pd = _pandas()
    header = pd.read_csv(path, nrows=0, index_col=False)
    text = {c: str for c in header.columns if str(c).strip().upper() in ("PERMNO", "DATE", "RET")}
    try:
        return pd.read_csv(
            path,
            dtype=text,
            keep_default_na=False,
            index_col=False,
            na_values={c: [""] for c in header.columns if c not in text},
        )
    except ValueError:
        return pd.read_csv(path, dtype=str, keep_default_na=False, index_col=False)


def _columns(frame: Any, where: str) -> Any:
    found: dict[str, Any] = {}
    for column in frame.columns:
        key = str(column).strip().upper()
        if key in found:
            raise CRSPError(
                f"{where}: columns {found[key]!r} and {column!r} are the same CRSP column "
                f"{key}; keep one of them"
            )
        found[key] = column
    missing = [c for c in CRSP_COLUMNS if c.upper() not in found]
    if missing:
        raise CRSPError(
            f"{where}: missing CRSP column(s) {missing}; found {list(frame.columns)} (export "
            f"PERMNO, date, OPENPRC, ASKHI, BIDLO, PRC, VOL, RET, SHROUT from crsp.dsf)"
        )
    return frame[[found[c.upper()] for c in CRSP_COLUMNS]].set_axis(list(CRSP_COLUMNS), axis=1)


def _text(column: Any) -> Any:
    return column.astype(object).where(column.notna(), "").astype(str).str.strip()


def _number(column: Any, name: str, where: str) -> np.ndarray:
    """A numeric column; empty cells and ``.`` (SAS missing) are NaN, other text an error."""
    pd = _pandas()
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        return column.to_numpy(dtype=np.float64, copy=True, na_value=np.nan)
    text = _text(column)
    values = pd.to_numeric(text.where(~text.isin(["", "."]), None), errors="coerce")
    bad = values.isna() & ~text.isin(["", "."])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise CRSPError(
            f"{where}: column {name} row {row} holds {column.iloc[row]!r}, not a number "
            f"(empty or '.' mean missing)"
        )
    return values.to_numpy(dtype=np.float64, copy=True)


def _returns(column: Any, where: str) -> np.ndarray:
    """RET as floats, NaN for CRSP's missing codes; anything else that is not a number is an
    error naming the row."""
    pd = _pandas()
    text = _text(column)
    values = pd.to_numeric(text, errors="coerce")
    coded = text.str.match(_CODE)
    bad = values.isna() & ~coded
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise CRSPError(
            f"{where}: column RET row {row} holds {column.iloc[row]!r}: neither a return "
            f"nor a CRSP missing code (a letter, '.', empty, -66, -77, -88, -99)"
        )
    out = values.to_numpy(dtype=np.float64, copy=True)
    out[np.isin(out, MISSING_RET_CODES)] = np.nan
    if np.any(out <= -1):  # a return of -100 % or worse would put the close at or below 0
        row = int(np.flatnonzero(out <= -1)[0])
        raise CRSPError(
            f"{where}: column RET row {row} holds {column.iloc[row]!r}: a daily return "
            f"must be above -1"
        )
    return out


def _positive(values: np.ndarray) -> np.ndarray:
    """Absolute value (CRSP's minus sign marks a bid/ask quote), zero and NaN missing."""
    out = np.abs(values)
    out[~(out > 0)] = np.nan
    return out


def _chain(price: np.ndarray, ret: np.ndarray) -> np.ndarray:
    """Closes of one stock chained from its returns (see the module notes).

    From the first day with a price ``s``: ``close[t] = |PRC[s]| * prod(1 + RET[s+1..t])``
    with a missing return counting as no change to the chain, and ``close[t]`` itself missing
    on such a day.
    """
    close = np.full(len(price), np.nan)
    priced = np.flatnonzero(~np.isnan(price))
    if len(priced) == 0:
        return close
    s = int(priced[0])
    growth = np.where(np.isnan(ret[s + 1 :]), 1.0, 1.0 + ret[s + 1 :])
    close[s] = price[s]
    close[s + 1 :] = price[s] * np.cumprod(growth)
    close[s + 1 :][np.isnan(ret[s + 1 :])] = np.nan
    return close


def read_crsp(source: Any) -> Any:
    """Read a CRSP daily export into the paper's price series, one row per stock and day.

    Args:
        source: A CSV (``.csv``, ``.csv.gz``) or Parquet file path, or a pandas DataFrame.

    Returns:
        DataFrame with columns ``ticker`` (PERMNO as text), ``date``, ``open``, ``high``,
        ``low``, ``close`` (chained from ``RET``), ``volume``, ``ret`` (the daily return, NaN
        where CRSP has a missing code) and ``me`` (market equity ``|PRC| * SHROUT``), sorted by
        ticker and date; what :func:`convlab.data.render_charts` draws from. NaN marks missing
        values (module notes).

    Raises:
        CRSPError: For missing columns, a column given twice in different case, text where a
            number belongs, a RET that is neither a number nor a CRSP code, a return of -100 %
            or below, a row without PERMNO or date, a date that does not parse, or a
            (PERMNO, date) pair given twice; the message names the file, column and row
            (0 = the first data row).
        FileNotFoundError: If the file does not exist.
    """
    pd = _pandas()
    if isinstance(source, pd.DataFrame):
        where, raw = "DataFrame", source
    else:
        path = Path(os.fspath(source))
        where, raw = str(path), _read(path)
    raw = _columns(raw, where).reset_index(drop=True)
    if len(raw) == 0:
        raise CRSPError(f"{where}: the table has no rows")
    permno = _text(raw["PERMNO"])
    empty = (permno == "").to_numpy()
    if empty.any():
        raise CRSPError(f"{where}: column PERMNO is empty in row {int(np.flatnonzero(empty)[0])}")
    # PERMNO is an integer code; a CSV read as text and a Parquet int column must agree
    permno = permno.str.replace(r"\.0$", "", regex=True)
    date_text = _text(raw["date"]) if raw["date"].dtype == object else raw["date"]
    dates = pd.to_datetime(date_text, errors="coerce", format="mixed")
    if dates.isna().any():
        row = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise CRSPError(
            f"{where}: column date row {row} holds {raw['date'].iloc[row]!r}, not a date"
        )
    data = pd.DataFrame(
        {
            "ticker": permno.to_numpy(),
            "date": dates.to_numpy(),
            "openprc": _positive(_number(raw["OPENPRC"], "OPENPRC", where)),
            "askhi": _positive(_number(raw["ASKHI"], "ASKHI", where)),
            "bidlo": _positive(_number(raw["BIDLO"], "BIDLO", where)),
            "prc": _positive(_number(raw["PRC"], "PRC", where)),
            "vol": _number(raw["VOL"], "VOL", where),
            "ret": _returns(raw["RET"], where),
            "shrout": _number(raw["SHROUT"], "SHROUT", where),
        }
    )
    dup = data.duplicated(["ticker", "date"], keep="first").to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        raise CRSPError(
            f"{where}: row {row} repeats PERMNO {data['ticker'].iloc[row]} on "
            f"{data['date'].iloc[row].date()}; one row per stock and day"
        )
    data = data.sort_values(["ticker", "date"], kind="mergesort").reset_index(drop=True)
    close = np.empty(len(data))
    for rows in data.groupby("ticker", sort=False).indices.values():
        close[rows] = _chain(data["prc"].to_numpy()[rows], data["ret"].to_numpy()[rows])
    scale = close / data["prc"].to_numpy()  # NaN where either is missing
    volume = data["vol"].to_numpy(copy=True)
    volume[~(volume > 0)] = np.nan
    shrout = data["shrout"].to_numpy()
    me = data["prc"].to_numpy() * np.where(shrout > 0, shrout, np.nan)
    return pd.DataFrame(
        {
            "ticker": data["ticker"].to_numpy(),
            "date": data["date"].to_numpy(),
            "open": data["openprc"].to_numpy() * scale,
            "high": data["askhi"].to_numpy() * scale,
            "low": data["bidlo"].to_numpy() * scale,
            "close": close,
            "volume": volume,
            "ret": data["ret"].to_numpy(),
            "me": me,
        },
        columns=COLUMNS,
    )
