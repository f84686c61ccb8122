"""Comparison keeps two sessions on one selection; export writes real PNG, SVG and PDF files."""
from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage

from massivelens.gui.main_window import MainWindow
from massivelens.gui.session_data import SessionData
from massivelens.sessions.reader import open_session
from tests.gui.fakes import slow_job
from tests.gui.helpers import assert_not_blank, click_cell, pixels
from tests.session_factory import PLANTED, write_synthetic_session


def test_compare_synchronises_the_selection(qtbot, settings, session_path, tmp_path):
    other = write_synthetic_session(tmp_path / "other.h5", blocks=6, channels=32, steps=2, seed=5)
    window = MainWindow(settings, job=slow_job())
    qtbot.addWidget(window)
    window.open_path(session_path)
    window.open_path(other)
    window.session_list.list.selectAll()
    assert window.session_list.compare.isEnabled()
    with qtbot.waitSignal(window.session_list.compareRequested):
        window.session_list.compare.click()
    compare = window.compare_windows[-1]
    qtbot.waitExposed(compare)
    left, right = sorted(compare.sides, key=lambda side: len(side.data.blocks("image")))  # right: 6 blocks
    click_cell(qtbot, left.heatmap, row=1, col=PLANTED[0])
    assert (compare.selection.block, compare.selection.channel) == (1, PLANTED[0])
    for side in (left, right):
        step = side.data.resolve(compare.selection).step
        with open_session(side.data.path) as s:
            np.testing.assert_array_equal(side.token_map.current_map(), s.token_map(step, 1, PLANTED[0]))
        assert side.heatmap.marked[0] == 1 and side.channel.value() == PLANTED[0]
    right.step.setValue(1)
    assert left.step.value() == 1 and compare.selection.step == 1
    click_cell(qtbot, right.heatmap, row=5, col=3)  # block 5 exists only on the right
    assert compare.selection.block == 5 and right.block.value() == 5 and left.block.value() == 3


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
        np.testing.assert_array_equal(pixels(QImage(str(tmp_path / "figures" / "image.png"))), s.image())
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
