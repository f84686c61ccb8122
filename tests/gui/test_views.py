"""The linked views of one session: a click anywhere selects everywhere, and each view shows the file's data."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from massivelens.gui.app import settle
from massivelens.gui.selection import Selection
from massivelens.gui.session_data import SessionData
from massivelens.gui.session_view import SessionView
from massivelens.gui.views.token_map import BESIDE, OVER
from massivelens.sessions.reader import open_session
from tests.gui.helpers import assert_not_blank, click_cell, grab_pixels
from tests.session_factory import PLANTED


@pytest.fixture
def view(qtbot, session_path):
    selection = Selection()
    widget = SessionView(selection)
    qtbot.addWidget(widget)
    widget.resize(1200, 800)
    data = SessionData.open(session_path)
    widget.set_data(data)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    data.close()


def test_selection_emits_once_with_the_changed_fields(qtbot):
    selection = Selection()
    with qtbot.waitSignal(selection.changed) as signal:
        selection.set(block=2, channel=7, step=0)
    assert signal.args == [frozenset({"block", "channel"})]
    with qtbot.assertNotEmitted(selection.changed):
        selection.set(block=2)
    with pytest.raises(TypeError):
        selection.set(colour="red")


def test_clicking_a_heatmap_cell_selects_block_and_channel_everywhere(qtbot, view, session_path):
    view.selection.set(step=1)
    click_cell(qtbot, view.heatmap, row=2, col=7)
    assert (view.selection.block, view.selection.channel) == (2, 7)
    with open_session(session_path) as s:
        expected = s.token_map(1, 2, 7)
    np.testing.assert_array_equal(view.token_map.current_map(), expected)
    assert (view.block.value(), view.channel.value()) == (2, 7)
    assert view.heatmap.marked == (2, 7)
    assert view.step_heatmap.marked == (2, 1)
    assert view.ranking.table.selectionModel().selectedRows()[0].row() == 2
    assert "[7]" in view.ranking.model_.rows[2][1]
    steps_by_block = view.step_heatmap.image.image
    with open_session(session_path) as s:
        np.testing.assert_array_equal(steps_by_block, s.mean_abs("image")[:, :, 7].T)


def test_step_slider_redraws_the_step_dependent_views(qtbot, view, session_path):
    view.selection.set(block=1, channel=PLANTED[0])
    view.step.setValue(2)
    assert view.selection.step == 2
    with open_session(session_path) as s:
        np.testing.assert_array_equal(view.heatmap.image.image, s.mean_abs("image", 2))
        np.testing.assert_array_equal(view.token_map.current_map(), s.token_map(2, 1, PLANTED[0]))
        top = s.top_channels(2)
    assert view.ranking.model_.rows[0][1].startswith(f"[{top[0][0]}], {top[0][1]}")
    assert "step 2" in view.ranking.title.text()
    assert view.heatmap.sun.data.size > 0  # the planted channel passes Sun et al.'s rule


def test_log_scale_and_fixed_levels(qtbot, view, session_path):
    view.log.setChecked(True)
    with open_session(session_path) as s:
        np.testing.assert_allclose(view.heatmap.image.image, np.log10(np.maximum(s.mean_abs("image", 0), 1e-6)))
    levels = tuple(view.heatmap.image.levels)
    view.step.setValue(2)
    assert tuple(view.heatmap.image.levels) == levels  # one colour scale for every step


def test_step_heatmap_click_selects_block_and_step(qtbot, view):
    click_cell(qtbot, view.step_heatmap, row=3, col=2)
    assert (view.selection.block, view.selection.step) == (3, 2)
    assert view.step.value() == 2


def test_ranking_row_click_selects_the_blocks_top_channel(qtbot, view, session_path):
    view.selection.set(step=1, channel=0)
    table = view.ranking.table
    rect = table.visualRect(view.ranking.model_.index(3, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    with open_session(session_path) as s:
        top = int(s.top_channels(1)[3][0])
    assert (view.selection.block, view.selection.channel) == (3, top) and top == PLANTED[0]
    assert view.heatmap.marked == (3, top)


def test_token_map_modes_and_missing_maps(qtbot, view, session_path):
    view.selection.set(block=0, channel=PLANTED[0])
    view.map_mode.setCurrentIndex(view.map_mode.findData(BESIDE))
    assert view.token_map.mode == BESIDE and view.token_map.right.scene() is not None
    view.opacity.setValue(30)
    assert view.token_map.overlay.opacity() == pytest.approx(0.3)
    view.map_mode.setCurrentIndex(view.map_mode.findData(OVER))
    assert view.token_map.overlay.isVisible()
    with open_session(session_path) as s:
        unrecorded = min(set(range(32)) - set(s.top_channels(view.selection.step)[0]))
    assert view.token_map.bar.isVisible()
    view.selection.set(channel=unrecorded)  # not among the top-k: no map in the file
    assert view.token_map.current_map() is None and not view.token_map.bar.isVisible()
    assert "not in top-4" in view.token_map.title.full
    view.selection.set(stream="text")
    assert "image stream only" in view.token_map.title.full
    assert view.heatmap.title.full.startswith("mean |x| · text")


def test_views_render_non_blank(qtbot, view):
    view.selection.set(block=1, channel=PLANTED[0])
    for widget in view.figures().values():
        assert_not_blank(grab_pixels(widget))


def test_without_a_session_the_views_say_so_instead_of_drawing_empty_axes(qtbot, session_path):
    widget = SessionView(Selection())
    qtbot.addWidget(widget)
    for heatmap in (widget.heatmap, widget.step_heatmap):
        assert heatmap.title.full == "no session" and not heatmap.plot.isVisible()
    assert widget.token_map.title.full == "no session" and not widget.token_map.bar.isVisible()
    data = SessionData.open(session_path)
    widget.set_data(data)
    assert widget.heatmap.plot.isVisible() and widget.step_heatmap.plot.isVisible()
    widget.set_data(None)
    assert widget.heatmap.title.full == "no session" and not widget.heatmap.plot.isVisible()
    data.close()


def cell_centre(plot, row: int, col: int):
    settle()
    return plot.mapFromScene(plot.plot.getViewBox().mapViewToScene(QPointF(col, row)))


def test_the_selected_cell_stays_visible_under_its_outline(qtbot, view):
    """The marker goes around the selected cell: its centre shows the colour map's colour of its own value."""
    view.selection.set(step=1, block=2, channel=PLANTED[0])
    heat = view.heatmap
    centre = cell_centre(heat, 2, PLANTED[0])
    shown = grab_pixels(heat)[centre.y(), centre.x()].astype(int)
    lo, hi = heat.bar.levels()
    expected = heat.bar.colorMap().map((heat.values[2, PLANTED[0]] - lo) / (hi - lo), mode="byte")[:3]
    assert np.abs(shown - np.asarray(expected, int)).max() <= 3, (shown, expected)
    assert heat.marked == (2, PLANTED[0]) and heat.outline.rect().contains(QPointF(PLANTED[0], 2))


def test_arrow_keys_hover_and_zoom_reset(qtbot, view):
    view.selection.set(step=1, block=2, channel=5)
    heat = view.heatmap
    heat.setFocus()
    qtbot.keyClick(heat, Qt.Key.Key_Right)
    qtbot.keyClick(heat, Qt.Key.Key_Up)
    assert (view.selection.block, view.selection.channel) == (1, 6) and view.channel.value() == 6
    for _ in range(3):
        qtbot.keyClick(heat, Qt.Key.Key_Up)
    assert view.selection.block == 0  # kept inside the session
    qtbot.keyClick(view.step_heatmap, Qt.Key.Key_Right)
    assert view.selection.step == 2
    qtbot.mouseMove(heat.viewport(), cell_centre(heat, 3, PLANTED[0]))
    qtbot.waitUntil(lambda: heat.hover_text != "")
    assert heat.hover_text == f"double.3 · channel {PLANTED[0]} · step 2 (t=333) · mean |x| {heat.values[3, PLANTED[0]]:,.4g}"
    box = heat.plot.getViewBox()
    full = box.viewRange()
    box.scaleBy((0.25, 0.5))  # what the wheel does
    assert box.viewRange()[0][1] - box.viewRange()[0][0] < (full[0][1] - full[0][0]) / 2
    qtbot.keyClick(heat, Qt.Key.Key_Home)
    np.testing.assert_allclose(box.viewRange(), full)
    box.scaleBy((0.25, 0.5))
    qtbot.mouseDClick(heat.viewport(), Qt.MouseButton.LeftButton, pos=cell_centre(heat, 1, 1))
    np.testing.assert_allclose(box.viewRange(), full)
