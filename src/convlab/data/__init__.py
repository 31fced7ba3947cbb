"""Data: OHLCV tables, stock-chart images and chart sets (needs ``convlab[data]``)."""
from __future__ import annotations

from convlab.data.chartset import ChartDataset, ChartSet
from convlab.data.charts import GEOMETRY, image_geometry, render_charts
from convlab.data.ohlcv import COLUMNS, OHLCVError, load_ohlcv
from convlab.data.sources import load_default_ohlcv, read_jkx_images

__all__ = ["load_ohlcv", "OHLCVError", "COLUMNS", "render_charts", "image_geometry", "GEOMETRY",
           "ChartSet", "ChartDataset", "load_default_ohlcv", "read_jkx_images"]
