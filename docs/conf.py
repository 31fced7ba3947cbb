"""Sphinx configuration for convlab's documentation."""

from __future__ import annotations

import os

import convlab

project = "convlab"
author = "the convlab developers"
copyright = "2026, the convlab developers"
release = convlab.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.doctest",
    "sphinx.ext.viewcode",
]
autosummary_generate = True
autodoc_mock_imports = ["cupy"]
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# CI builds offline with warnings as errors: links to Python / NumPy docs only when asked for.
intersphinx_mapping = (
    {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable/", None),
    }
    if os.environ.get("CONVLAB_DOCS_ONLINE")
    else {}
)

html_theme = "furo"
html_title = f"convlab {release}"
html_static_path = ["_static"]
templates_path = ["_templates"]
exclude_patterns = ["_build"]


def _chart_figures(app) -> None:
    """Render sample charts from the bundled data for the chart tutorial (at every build, so
    the figure always shows what the current code draws)."""
    from pathlib import Path

    from convlab import data
    from convlab.data.preview import save_grid

    out = Path(app.srcdir) / "_static" / "generated"
    out.mkdir(parents=True, exist_ok=True)
    frame = data.load_default_ohlcv()
    for window in (5, 20, 60):
        charts = data.render_charts(
            frame[frame["ticker"] == frame["ticker"].iloc[0]], window, every="month"
        )
        save_grid(charts, out / f"charts_i{window}.png", count=8, seed=0)


def setup(app) -> None:
    app.connect("builder-inited", _chart_figures)
