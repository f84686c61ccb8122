"""Comparison keeps two sessions on one selection; export writes real PNG, SVG and PDF files."""
from __future__ import annotations

import gc

import numpy as np
from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtGui import QImage

from massivelens.gui.main_window import MainWindow
from massivelens.gui.session_data import SessionData
from massivelens.sessions.reader import open_session
from tests.gui.fakes import slow_job
from tests.gui.helpers import assert_not_blank, click_cell, pixels
from tests.session_factory import PLANTED, write_synthetic_session


def open_compare(qtbot, settings, first, second):
    window = MainWindow(settings, job=slow_job())
    qtbot.addWidget(window)
    window.open_path(first)
    window.open_path(second)
    window.session_list.list.selectAll()
    assert window.session_list.compare.isEnabled()
    with qtbot.waitSignal(window.session_list.compareRequested):
        window.session_list.compare.click()
    compare = window.compare_windows[-1]
    qtbot.waitExposed(compare)
    return window, compare


def test_compare_links_both_sides_and_aligns_steps_by_timestep(qtbot, settings, session_path, tmp_path):
    other = write_synthetic_session(tmp_path / "other.h5", blocks=6, channels=32, steps=2, seed=5)
    window, compare = open_compare(qtbot, settings, session_path, other)
    a, b = compare.sides  # A: the session selected last (other.h5, 6 blocks, t = 1000, 500); B: 3 steps
    assert (a.data.path, b.data.path) == (other, session_path)
    assert compare.warning.isVisible() and "nearest in timestep" in compare.warning.text()
    main = window.selection
    assert (compare.selections[0].block, compare.selections[0].channel) == (main.block, main.channel)  # opens where we were
    click_cell(qtbot, a.heatmap, row=1, col=PLANTED[0])
    assert (compare.selections[1].block, compare.selections[1].channel) == (1, PLANTED[0])
    for side in (a, b):
        step = side.data.resolve(side.selection).step
        with open_session(side.data.path) as s:
            np.testing.assert_array_equal(side.token_map.current_map(), s.token_map(step, 1, PLANTED[0]))
        assert side.heatmap.marked[0] == 1 and side.channel.value() == PLANTED[0]
    b.step.setValue(2)  # B at t = 333: A's nearest is its step 1 (t = 500)
    assert a.step.value() == 1 and compare.selections[0].step == 1
    b.step.setValue(0)
    assert a.step.value() == 0
    click_cell(qtbot, a.heatmap, row=5, col=3)  # block 5 exists only in A
    assert compare.selections[1].block == 5 and b.block.value() == 3


def test_compare_shares_colours_shows_the_difference_exports_and_is_released(qtbot, settings, session_path, tmp_path):
    other = write_synthetic_session(tmp_path / "other.h5", blocks=4, channels=32, steps=3, seed=5)
    window, compare = open_compare(qtbot, settings, session_path, other)
    assert not compare.warning.isVisible()  # one schedule: steps pair by index
    a, b = compare.sides
    compare.selections[0].set(step=2, block=1, channel=PLANTED[0])
    levels = [tuple(side.heatmap.image.levels) for side in (a, b)]
    assert levels[0] == levels[1]
    lo = min(side.data.stats("image").levels[0] for side in (a, b))
    hi = max(side.data.stats("image").levels[1] for side in (a, b))
    assert levels[0] == (lo, hi)
    compare.shared.setChecked(False)
    assert tuple(a.heatmap.image.levels) == a.data.stats("image").levels != tuple(b.heatmap.image.levels)
    with open_session(other) as s, open_session(session_path) as t:
        expected = s.mean_abs("image", 2) - t.mean_abs("image", 2)
    np.testing.assert_allclose(compare.difference.values, expected)
    assert compare.difference.marked == (1, PLANTED[0])
    compare.preferences.png_scale = 1.0
    written = compare.export(tmp_path / "compare.png")
    assert written is not None and QImage(str(written)).width() == compare.figure.width()
    assert_not_blank(pixels(QImage(str(written))))
    files = [d.session for d in compare.sessions()]
    compare.close()
    qtbot.waitUntil(lambda: window.compare_windows == [])
    assert all(not f._file.id.valid for f in files)  # its own handles closed with it
    assert window.current().session._file.id.valid  # the main window's are untouched


def test_a_closed_comparison_leaves_no_python_objects_behind(qtbot, settings, session_path, tmp_path):
    """Its views, plots and menus are freed with it: the soak found every closed comparison kept alive (~5 MB each)."""
    def alive() -> int:
        return sum(type(o).__name__ in ("CompareWindow", "SessionView", "DifferenceHeatmap", "PlotItem") for o in gc.get_objects())

    window, compare = open_compare(qtbot, settings, session_path, write_synthetic_session(tmp_path / "b.h5", seed=5))
    compare.selections[0].set(step=1, block=1)
    opened = alive()
    compare.close()
    del compare
    qtbot.waitUntil(lambda: window.compare_windows == [])
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
    assert alive() < opened and not any(type(o).__name__ in ("CompareWindow", "DifferenceHeatmap") for o in gc.get_objects())


def test_export_writes_every_figure_in_every_format(qtbot, settings, session_path, tmp_path):
    window = MainWindow(settings, job=slow_job())
    qtbot.addWidget(window)
    window.show()
    window.open_path(session_path)
    written = window.export_figures(tmp_path / "figures")
    names = {p.name for p in written}
    for stem in ("channel_heatmap", "step_heatmap", "ranking", "token_map", "cluster_overlay"):
        assert {f"{stem}.png", f"{stem}.svg", f"{stem}.pdf"} <= names
        assert_not_blank(pixels(QImage(str(tmp_path / "figures" / f"{stem}.png"))))
        assert b"<svg" in (tmp_path / "figures" / f"{stem}.svg").read_bytes()[:2000]
        assert (tmp_path / "figures" / f"{stem}.pdf").read_bytes().startswith(b"%PDF")
    with open_session(session_path) as s:
        np.testing.assert_array_equal(pixels(QImage(str(tmp_path / "figures" / "image.png"))), s.image)
    assert "Exported 16 file(s)" in window.statusBar().currentMessage()


def test_single_view_and_image_export_and_their_errors(qtbot, settings, session_path, tmp_path):
    window = MainWindow(settings, job=slow_job())
    qtbot.addWidget(window)
    window.show()
    assert window.export_image(tmp_path / "none.png") == []  # nothing open: a message, not a crash
    window.open_path(session_path)
    (path,) = window.export_view("step_heatmap", tmp_path / "one.svg")
    assert path.stat().st_size > 1000
    assert window.export_view("ranking", tmp_path / "table.bmp") == []
    assert "unknown format" in window.error_box.text()
    (image,) = window.export_image(tmp_path / "image.png")
    assert QImage(str(image)).size().width() == 64


def test_session_data_caches_what_it_reads(session_path):
    data = SessionData.open(session_path)
    first = data.stats("image")
    assert data.stats("image") is first
    maps = data._top_maps(1, 2)
    assert data._top_maps(1, 2) is maps
    data.close()
