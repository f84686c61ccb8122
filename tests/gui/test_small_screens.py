"""The window at 1024 x 640 and 1280 x 720: nothing overlaps, nothing leaves its parent, every plot keeps room,
and titles that do not fit are elided with the whole text as their tooltip."""
from __future__ import annotations

from itertools import combinations

import pytest
from PySide6.QtWidgets import QWidget

from massivelens.gui.app import settle
from massivelens.gui.main_window import MainWindow


def shown_children(parent: QWidget) -> list[QWidget]:
    return [c for c in parent.children() if isinstance(c, QWidget) and c.isVisible() and not c.isWindow()]


@pytest.mark.parametrize("size", [(1024, 640), (1280, 720)])
def test_the_window_fits_small_screens(qtbot, settings, size):
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.resize(*size)
    window.show()
    window.open_example()
    settle()
    assert window.minimumSizeHint().width() <= 1024 and (window.width(), window.height()) == size
    for parent in [window, *window.findChildren(QWidget)]:
        if not parent.isVisible():
            continue
        children = shown_children(parent)
        for child in children:
            assert parent.rect().contains(child.geometry()), f"{child} leaves {parent}"
        for a, b in combinations(children, 2):
            assert not a.geometry().intersects(b.geometry()), f"{a} overlaps {b} in {parent}"
    view = window.view
    for plot in (view.heatmap, view.step_heatmap, view.token_map, view.clusters.figure):
        assert plot.width() >= 150 and plot.height() >= 150, plot
    for title in (view.heatmap.title, view.token_map.title, view.clusters.title):
        assert title.toolTip() == title.full
        shown = title.text
        assert title.full.split("\n")[0][:10] in shown  # the start of each title is on screen
    assert "…" in view.clusters.title.text and "…" not in view.clusters.title.full  # elided on screen, whole in the tooltip
