"""Ready-made inputs: the bundled default OHLCV series and the authors' released image files."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from convlab.data.charts import GEOMETRY
from convlab.data.chartset import ChartSet, ChartSetError

__all__ = ["load_default_ohlcv", "read_jkx_images"]


def load_default_ohlcv() -> Any:
    """Daily S&P 500 and NASDAQ composite OHLCV (1999-2018) shipped inside the ``arch`` package.

    The main job trains on these when no data is given (tickers ``SP500`` and ``NASDAQ``).

    Raises:
        ImportError: If ``arch`` is not installed (``pip install "convlab[data]"``).
    """
    try:
        from arch.data import nasdaq, sp500
    except ImportError:
        raise ImportError(
            "the bundled default data needs the 'arch' package: pip install 'convlab[data]'"
        ) from None
    import pandas as pd

    from convlab.data.ohlcv import load_ohlcv

    frames = [
        load_ohlcv(module.load(), ticker=name)
        for name, module in (("SP500", sp500), ("NASDAQ", nasdaq))
    ]
    return pd.concat(frames, ignore_index=True)


def read_jkx_images(
    images_path: Any,
    labels_path: Any | None = None,
    window: int | None = None,
    horizon: int | None = None,
) -> ChartSet:
    """Read the authors' released files (``*_images.dat`` + ``*_labels_w_delay.feather``).

    Args:
        images_path: Raw uint8 images (N, H, W), 0 or 255, e.g.
            ``20d_month_has_vb_[20]_ma_1993_images.dat``.
        labels_path: The matching feather file (needs pyarrow); without it labels are unknown.
        window: 5, 20 or 60; read from the file name (``20d_...``) when not given.
        horizon: Which ``Ret_{h}d`` column makes the label (default: ``window``).

    Raises:
        ValueError: If the window cannot be determined (or is not 5, 20 or 60).
        ChartSetError: If the file size is not a whole number of images, a pixel is neither 0
            nor 255, or the labels file cannot be read, lacks the return column, has another
            number of rows, text returns, rows without a ``StockID`` or dates that are not
            dates.
    """
    images_path = Path(os.fspath(images_path))
    if window is None:
        match = re.match(r"(\d+)d_", images_path.name)
        if not match:
            raise ValueError(f"window: cannot read it from {images_path.name!r}; pass window=")
        window = int(match.group(1))
    if window not in GEOMETRY:
        raise ValueError(f"window: expected 5, 20 or 60, got {window}")
    h, w = GEOMETRY[window]
    raw = np.fromfile(images_path, dtype=np.uint8)
    if raw.size % (h * w):
        raise ChartSetError(
            f"{images_path}: {raw.size} bytes is not a whole number of {h}x{w} images"
        )
    stray = np.flatnonzero((raw != 0) & (raw != 255))
    if stray.size:  # the released images are black and white: anything else is another file
        raise ChartSetError(
            f"{images_path}: pixels must be 0 or 255, byte {int(stray[0])} is "
            f"{int(raw[stray[0]])} ({stray.size} such bytes)"
        )
    packed = np.packbits(raw.reshape(-1, h * w) > 0, axis=1)
    n = len(packed)
    labels = np.full(n, -1, np.int8)
    returns = np.full(n, np.nan)
    codes = np.zeros(n, np.int32)
    tickers = ["?"]
    dates = np.full(n, np.datetime64("NaT"), "datetime64[D]")
    if labels_path is not None:
        returns, tickers, codes, dates = _read_jkx_labels(
            Path(os.fspath(labels_path)), n, f"Ret_{horizon or window}d"
        )
        labels = np.where(np.isnan(returns), -1, returns > 0).astype(np.int8)
    try:
        return ChartSet(
            packed,
            window,
            labels,
            returns,
            codes.astype(np.int32),
            tickers,
            dates,
            None,
            {"source": str(images_path)},
        )
    except ValueError as err:
        raise ChartSetError(f"{labels_path or images_path}: {err}") from None


def _read_jkx_labels(
    path: Path, n: int, column: str
) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """``(returns, tickers, codes, dates)`` from the authors' feather file of ``n`` rows."""
    import pandas as pd

    try:
        table = pd.read_feather(path)
    except (ImportError, FileNotFoundError):
        raise
    except Exception as err:  # noqa: BLE001 - pyarrow raises many types for broken files
        raise ChartSetError(
            f"{path}: cannot be read as a feather table ({type(err).__name__}: {err})"
        ) from None
    if len(table) != n:
        raise ChartSetError(f"{path}: {len(table)} label rows for {n} images")
    if column not in table.columns:
        raise ChartSetError(f"{path}: no column {column!r}; found {list(table.columns)}")
    try:
        returns = table[column].to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as err:
        raise ChartSetError(
            f"{path}: column {column!r} holds values that are not numbers ({err})"
        ) from None
    if "StockID" in table.columns:
        stock = table["StockID"]
        missing = np.flatnonzero(stock.isna().to_numpy())
        if missing.size:
            raise ChartSetError(
                f"{path}: column 'StockID' is empty in {missing.size} row(s), "
                f"first in row {int(missing[0])}"
            )
        stock = stock.astype(str).to_numpy()
    else:
        stock = np.array(["?"] * n)
    tickers, codes = np.unique(stock, return_inverse=True)
    dates = np.full(n, np.datetime64("NaT"), "datetime64[D]")
    if "Date" in table.columns:
        try:
            dates = pd.to_datetime(table["Date"]).to_numpy().astype("datetime64[D]")
        except (ValueError, TypeError, OverflowError) as err:
            raise ChartSetError(
                f"{path}: column 'Date' holds values that are not dates ({err})"
            ) from None
    return returns, [str(t) for t in tickers], codes, dates
