"""Ready-made inputs: the bundled default OHLCV series and the authors' released image files."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Optional

import numpy as np

from convlab.data.chartset import ChartSet
from convlab.data.charts import GEOMETRY

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
        raise ImportError("the bundled default data needs the 'arch' package: "
                          "pip install 'convlab[data]'") from None
    import pandas as pd

    from convlab.data.ohlcv import load_ohlcv
    frames = [load_ohlcv(module.load(), ticker=name)
              for name, module in (("SP500", sp500), ("NASDAQ", nasdaq))]
    return pd.concat(frames, ignore_index=True)


def read_jkx_images(images_path: Any, labels_path: Optional[Any] = None,
                    window: Optional[int] = None, horizon: Optional[int] = None) -> ChartSet:
    """Read the authors' released files (``*_images.dat`` + ``*_labels_w_delay.feather``).

    Args:
        images_path: Raw uint8 images (N, H, W), 0 or 255, e.g.
            ``20d_month_has_vb_[20]_ma_1993_images.dat``.
        labels_path: The matching feather file (needs pyarrow); without it labels are unknown.
        window: 5, 20 or 60; read from the file name (``20d_...``) when not given.
        horizon: Which ``Ret_{h}d`` column makes the label (default: ``window``).

    Raises:
        ValueError: If the window cannot be determined, the file size is not a whole number of
            images, or the labels do not match the images.
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
        raise ValueError(f"{images_path}: {raw.size} bytes is not a whole number of {h}x{w} "
                         f"images")
    images = raw.reshape(-1, h * w)
    packed = np.packbits(images > 0, axis=1)
    n = len(packed)
    labels = np.full(n, -1, np.int8)
    returns = np.full(n, np.nan)
    codes = np.zeros(n, np.int32)
    tickers = ["?"]
    dates = np.full(n, np.datetime64("NaT"), "datetime64[D]")
    if labels_path is not None:
        import pandas as pd
        table = pd.read_feather(labels_path)
        if len(table) != n:
            raise ValueError(f"{labels_path}: {len(table)} label rows for {n} images")
        column = f"Ret_{horizon or window}d"
        if column not in table.columns:
            raise ValueError(f"{labels_path}: no column {column!r}; found {list(table.columns)}")
        returns = table[column].to_numpy(dtype=np.float64)
        labels = np.where(np.isnan(returns), -1, returns > 0).astype(np.int8)
        stock = table["StockID"].astype(str) if "StockID" in table.columns else \
            pd.Series(["?"] * n)
        tickers, codes = np.unique(stock.to_numpy(), return_inverse=True)
        tickers = list(tickers)
        if "Date" in table.columns:
            dates = pd.to_datetime(table["Date"]).to_numpy().astype("datetime64[D]")
    return ChartSet(packed, window, labels, returns, codes.astype(np.int32), tickers, dates,
                    None, {"source": str(images_path)})
