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
