"""The run figures: learning curves drawn with matplotlib, written as PNG."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")
PIL = pytest.importorskip("PIL.Image")

from convlab.training import plots  # noqa: E402

HISTORIES = [
    {
        "train_loss": [0.70, 0.66, 0.61],
        "val_loss": [0.69, 0.68, 0.68],
        "train_accuracy": [0.51, 0.56, 0.60],
        "val_accuracy": [0.52, 0.53, 0.53],
    },
    {
        "train_loss": [0.71, 0.65],
        "val_loss": [0.70, 0.69],
        "train_accuracy": [0.50, 0.58],
        "val_accuracy": [0.51, 0.52],
    },
]


def test_learning_curves_have_titles_labelled_axes_and_legends():
    figure = plots.learning_curves_figure(HISTORIES, held_out="validation", title="I20")
    loss, accuracy = figure.axes
    assert figure.get_suptitle() == "I20"
    assert (loss.get_title(), loss.get_xlabel(), loss.get_ylabel()) == (
        "Loss",
        "epoch",
        "cross-entropy loss",
    )
    assert (accuracy.get_title(), accuracy.get_ylabel()) == ("Accuracy", "accuracy")
    labels = [t.get_text() for t in loss.get_legend().get_texts()]
    assert labels == ["model 1 train", "model 1 validation", "model 2 train", "model 2 validation"]
    # train dashed, held-out solid, one colour per model; every epoch drawn, starting at 1
    lines = loss.get_lines()
    assert [line.get_linestyle() for line in lines] == ["--", "-", "--", "-"]
    assert lines[0].get_color() == lines[1].get_color() != lines[2].get_color()
    np.testing.assert_array_equal(lines[1].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(lines[1].get_ydata(), HISTORIES[0]["val_loss"])


def test_a_single_run_without_accuracy_gets_one_panel_and_plain_labels():
    figure = plots.learning_curves_figure(
        [{"train_loss": [1.0, 0.5], "val_loss": [0.9, 0.7]}], held_out="test"
    )
    (loss,) = figure.axes
    assert [t.get_text() for t in loss.get_legend().get_texts()] == ["train", "test"]


def test_learning_curves_png_is_written(tmp_path):
    path = plots.learning_curves(HISTORIES, tmp_path / "run" / "curves.png", size=(800, 400))
    with PIL.open(path) as image:
        assert image.format == "PNG" and image.size == (800, 400)
    assert sorted(p.name for p in path.parent.iterdir()) == ["curves.png"]  # no temp files


# -- the report's figures --------------------------------------------------------------------

pd = pytest.importorskip("pandas")


def _reference_calibration(p, y, bins):
    """Plain loops: bin k holds k/bins <= p < (k+1)/bins, and p == 1 goes to the last bin."""
    rows = []
    for k in range(bins):
        lo, hi = k / bins, (k + 1) / bins
        inside = [(pi, yi) for pi, yi in zip(p, y) if lo <= pi < hi or (k == bins - 1 and pi == 1)]
        if inside:
            rows.append(
                (
                    len(inside),
                    sum(pi for pi, _ in inside) / len(inside),
                    sum(1 for _, yi in inside if yi == 1) / len(inside),
                )
            )
        else:
            rows.append((0, None, None))
    return rows


def test_calibration_table_matches_a_loop_over_the_bins():
    rng = np.random.default_rng(0)
    p = np.r_[rng.random(200), [0.0, 0.1, 0.5, 1.0]]  # edges: 0.1 -> bin 1, 1.0 -> last bin
    y = (rng.random(len(p)) < p).astype(np.int64)
    table = plots.calibration_table(p, y, bins=10)
    for k, (count, mean_p, up) in enumerate(_reference_calibration(p, y, 10)):
        assert table["count"][k] == count
        if count:
            assert table["mean_p_up"][k] == pytest.approx(mean_p, rel=1e-12)
            assert table["up_fraction"][k] == pytest.approx(up, rel=1e-12)
        else:
            assert np.isnan(table["mean_p_up"][k]) and np.isnan(table["up_fraction"][k])
    assert table["lower"][3] == pytest.approx(0.3) and table["upper"][9] == 1.0


def test_calibration_figure_is_a_reliability_diagram_over_a_histogram():
    p = np.array([0.05, 0.15, 0.15, 0.95])
    y = np.array([0, 1, 0, 1])
    figure = plots.calibration_figure(p, y, bins=10, title="cal")
    top, bottom = figure.axes
    assert figure.get_suptitle() == "cal"
    assert top.get_ylabel() == "observed share of up moves"
    assert bottom.get_xlabel() == "predicted up-probability p_up"
    assert [t.get_text() for t in top.get_legend().get_texts()] == [
        "perfect calibration",
        "model (per bin)",
    ]
    model = top.get_lines()[1]
    finite = np.isfinite(model.get_xdata())
    np.testing.assert_allclose(model.get_xdata()[finite], [0.05, 0.15, 0.95])
    np.testing.assert_allclose(model.get_ydata()[finite], [0.0, 0.5, 1.0])
    heights = [bar.get_height() for bar in bottom.patches]
    assert heights == [1, 2, 0, 0, 0, 0, 0, 0, 0, 1]


def test_decile_bars_show_the_table_per_weighting():
    table = pd.DataFrame(
        {"equal": np.linspace(-0.1, 0.1, 11), "value": np.linspace(0.05, -0.05, 11)},
        index=[str(k) for k in range(1, 11)] + ["H-L"],
    )
    figure = plots.decile_returns_figure(table, title="deciles", ylabel="annualised mean return")
    (axes,) = figure.axes
    assert axes.get_ylabel() == "annualised mean return"
    assert axes.get_xlabel() == "decile of p_up (1 = lowest)"
    assert [t.get_text() for t in axes.get_xticklabels()] == list(table.index)
    heights = [bar.get_height() for bar in axes.patches]
    np.testing.assert_allclose(heights, np.r_[table["equal"], table["value"]])
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["equal", "value"]


def test_cumulative_returns_sum_each_series_in_date_order_with_gaps_as_zero():
    dates = pd.to_datetime(["2020-01-31", "2020-02-29", "2020-03-31", "2020-04-30"])
    cnn = pd.Series([0.02, np.nan, -0.01, 0.03], index=dates)
    mom = pd.Series([0.01, 0.01, 0.01], index=dates[[2, 0, 1]])  # unsorted on purpose
    figure = plots.cumulative_returns_figure({"CNN": cnn, "MOM": mom}, title="H-L")
    (axes,) = figure.axes
    first, second = axes.get_lines()[:2]
    np.testing.assert_allclose(first.get_ydata(), [0.02, 0.02, 0.01, 0.04])
    np.testing.assert_allclose(second.get_ydata(), [0.01, 0.02, 0.03])
    assert first.get_linewidth() > second.get_linewidth()
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["CNN", "MOM"]
    assert axes.get_xlabel() == "date"


def test_gradcam_grid_overlays_each_map_scaled_to_its_peak():
    images = np.zeros((3, 1, 8, 6), np.uint8)
    maps = np.zeros((3, 8, 6))
    maps[0, 2, 3], maps[1, 5, 5] = 4.0, 0.5
    figure = plots.gradcam_grid_figure(images, maps, ["a", "b", "<c>"], columns=2)
    used = [ax for ax in figure.axes if ax.images]
    assert [ax.get_title() for ax in used] == ["a", "b", "<c>"]
    assert len(figure.axes) == 4 and not figure.axes[3].axison  # the spare panel is blank
    overlay = [np.asarray(ax.images[1].get_array()) for ax in used]
    assert overlay[0].max() == overlay[1].max() == 1.0 and overlay[2].max() == 0.0
    assert overlay[0][2, 3] == 1.0


def test_sample_captions_are_green_when_right_and_red_when_wrong():
    images = np.zeros((2, 1, 8, 6), np.uint8)
    figure = plots.sample_predictions_figure(images, np.array([0.7, 0.7]), np.array([1, 0]))
    right, wrong = figure.axes[:2]
    assert right.get_title() == "p_up 0.700, went up"
    assert right.title.get_color() != wrong.title.get_color()


def test_figures_leave_no_pyplot_figure_open(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plots.calibration(np.array([0.2, 0.8]), np.array([0, 1]), tmp_path / "c.png")
    plots.gradcam_grid(np.zeros((1, 4, 4)), np.ones((1, 4, 4)), ["x"], tmp_path / "g.png")
    assert plt.get_fignums() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "g.png"]
