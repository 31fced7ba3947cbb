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


def _share_api_navigation(app) -> None:
    """Furo renders the whole navigation tree into every page, so with ~700 generated API pages
    that rendering was ~80 % of the HTML build (quadratic in the page count). The pages of
    ``api/generated/`` share one tree, rendered once as seen from that folder (relative links
    stay right; no page in it is marked current). Where furo or Sphinx lack the internals used
    here, every page renders its own tree, as before."""
    try:
        import furo

        original = furo._compute_navigation_tree
    except (ImportError, AttributeError):
        return
    shared: dict[str, str] = {}

    def navigation_tree(context):
        folder = context.get("pagename", "").rpartition("/")[0]
        builder = app.builder
        if folder != "api/generated" or not hasattr(builder, "_get_local_toctree"):
            return original(context)
        if folder not in shared:
            seen_from = folder + "/__navigation__"  # no such page: nothing marked current

            def toctree(**options):
                return builder._get_local_toctree(seen_from, **options)

            shared[folder] = original(dict(context, toctree=toctree))
        return shared[folder]

    furo._compute_navigation_tree = navigation_tree


def setup(app) -> None:
    app.connect("builder-inited", _chart_figures)
    _share_api_navigation(app)
