"""The batch summary: File > Open takes a batch folder or its summary.h5 and shows the file's frequencies."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from massivelens.gui.main_window import MainWindow
from massivelens.gui.summary_view import SummaryView
from massivelens.sessions.dataset_summary import (
    SessionEntry,
    read_summary,
    summarize_dataset,
    write_summary,
)
from tests.gui.helpers import assert_not_blank, click_cell, grab_pixels
from tests.session_factory import PLANTED, write_synthetic_session


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three synthetic sessions (prompt 0 with seeds 0 and 1, prompt 1 with seed 0) and their summary, laid out
    as `python main.py batch` lays out a batch folder."""
    root = tmp_path_factory.mktemp("batch")
    (root / "sessions").mkdir()
    entries = [SessionEntry(f"sessions/{p}-seed{s}.h5", p, s) for p, s in [(0, 0), (0, 1), (1, 0)]]
    for i, entry in enumerate(entries):
        write_synthetic_session(root / entry.file, blocks=4, channels=32, steps=2, seed=i)
    summary = summarize_dataset(root, entries, ["a red circle", "a blue square"], [], k=4, model="synthetic", settings={})
    write_summary(summary, root)
    return root


def make_window(qtbot, settings) -> MainWindow:
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    return window


def test_heatmap_shows_the_files_frequencies_and_the_planted_channel_at_1(qtbot, settings, batch):
    window = make_window(qtbot, settings)
    view = window.open_path(batch)
    assert isinstance(view, SummaryView) and window.summary_windows == [view]
    qtbot.addWidget(view)
    qtbot.waitExposed(view)
    image = read_summary(batch / "summary.h5").streams["image"]
    expected = image.frequency
    np.testing.assert_array_equal(view.heatmap.values, expected)
    np.testing.assert_array_equal(view.heatmap.image.image, expected)  # 32 channels: one pixel each, no pooling
    np.testing.assert_array_equal(view.heatmap.values[:, PLANTED[0]], 1.0)
    assert "3 sessions of 2 prompts" in view.header.text()
    assert view.table.rowCount() == 4
    assert view.table.item(0, 1).text().startswith(f"{PLANTED[0]} (1.00), {PLANTED[1]} (1.00), {PLANTED[2]} (1.00)")
    assert view.table.item(0, 5).text() == f"{PLANTED[0]} (1.00)"  # only the strongest passes Sun et al.'s rule
    assert view.table.item(0, 2).text() == f"{np.nanmean(image.jaccard_seeds[:, 0]):.2f}"  # prompt 0's two seeds
    assert view.table.item(0, 3).text() == f"{image.jaccard_prompts[0]:.2f}" and view.table.item(0, 4).text() == "100%"
    click_cell(qtbot, view.heatmap, row=2, col=PLANTED[0])
    assert (view.block, view.channel) == (2, PLANTED[0])
    assert view.table.selectionModel().selectedRows()[0].row() == 2
    assert "channel 7: in the top-4 of 100% of sessions" in view.cell.text()
    view.stream.setCurrentText("text")
    np.testing.assert_array_equal(view.heatmap.values, read_summary(batch).streams["text"].frequency)
    assert_not_blank(grab_pixels(view.heatmap))
    assert view.export(batch.parent / "frequency.svg").stat().st_size > 1000
    assert window.recent_files()[0] == str(batch.resolve())


def test_summary_h5_opens_too_and_a_bad_one_gives_one_message(qtbot, settings, batch, tmp_path):
    window = make_window(qtbot, settings)
    view = window.open_path(batch / "summary.h5")
    qtbot.addWidget(view)
    np.testing.assert_array_equal(view.heatmap.values, read_summary(batch).streams["image"].frequency)
    empty = tmp_path / "not-a-batch"
    empty.mkdir()
    assert window.open_path(empty) is None
    assert "summary.h5: no such file" in window.error_box.text() and "\n" not in window.error_box.text()
    assert len(window.summary_windows) == 1



def test_a_closed_summary_window_is_released(qtbot, settings, batch):
    from shiboken6 import isValid

    window = make_window(qtbot, settings)
    view = window.open_path(batch)
    view.close()
    qtbot.waitUntil(lambda: not isValid(view))
    assert window.summary_windows == []
