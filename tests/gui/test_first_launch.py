"""A new user's first minutes: the example session on screen, a prompt that records, help at hand, and the
window, form and view options as they were left."""
from __future__ import annotations

from PySide6.QtCore import QSettings

from massivelens.engine.shapes.world import parse_caption
from massivelens.gui.app import run_app
from massivelens.gui.help import about_html, architectures_html, shortcuts_html, views_html
from massivelens.gui.main_window import MainWindow
from massivelens.resources import EXAMPLE_SESSION
from massivelens.sessions.reader import open_session
from tests.gui.fakes import slow_job


def test_the_example_session_ships_small_and_complete():
    assert EXAMPLE_SESSION.is_file() and EXAMPLE_SESSION.stat().st_size < 1_500_000
    with open_session(EXAMPLE_SESSION) as s:
        assert s.complete and s.channel_sets == ("top", "bottom", "random")
        assert parse_caption(s.info["prompt"]).shape == "circle"
        assert s.info["transformer_class"] == "Flux2Transformer2DModel"  # recorded from the default embedded model


def test_first_launch_opens_the_example_and_later_launches_do_not(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings)
    qtbot.addWidget(window)
    data = window.open_first_launch()
    assert data is not None and data.path == EXAMPLE_SESSION and window.current() is data
    assert window.view.heatmap.values is not None and window.view.clusters.iou is not None  # the world reader's mask
    again = MainWindow(settings)
    qtbot.addWidget(again)
    assert again.open_first_launch() is None and again.current() is None
    assert run_app(None, tmp_path / "shot.png") == 0  # the screenshot path takes the same first-launch route


def test_the_prompt_box_holds_a_caption_that_records(qtbot, settings):
    window = MainWindow(settings, job=slow_job())
    qtbot.addWidget(window)
    prompt = window.record_panel.prompt.text()
    parse_caption(prompt)  # a caption of the embedded model's world
    with qtbot.waitSignal(window.runner.finished, timeout=10_000) as done:
        window.record_panel.record.click()
    with open_session(done.args[0]) as s:
        assert s.info["prompt"] == prompt


def test_help_menu_names_shortcuts_views_paper_and_versions(qtbot, settings):
    window = MainWindow(settings)
    qtbot.addWidget(window)
    menus = {a.text(): a.menu() for a in window.menuBar().actions()}
    assert [a.text() for a in menus["&Help"].actions()] == [
        "&Keyboard Shortcuts", "&What Each View Shows", "&Supported Architectures", "The &Paper (arXiv)",
        "Open the &Example Session", "&About MassiveLens"]
    assert "Home" in shortcuts_html() and "Token clusters" in views_html() and "PySide6" in about_html()
    assert "FluxTransformer2DModel" in architectures_html() and "inferred" in architectures_html()
    menus["&Help"].actions()[4].trigger()
    assert window.current().path == EXAMPLE_SESSION


def test_window_form_and_view_options_are_remembered(qtbot, settings, tmp_path):
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    window.resize(1111, 700)
    window.record_panel.model.setEditText("/models/flux-dev")
    window.record_panel.prompt.setText("a large green square on a black background at center")
    window.view.log.setChecked(True)
    window.view.opacity.setValue(25)
    window.side.setSizes([200, 500])
    side = window.side.sizes()
    window.close()
    again = MainWindow(settings)
    qtbot.addWidget(again)
    again.show()
    assert again.side.sizes() == side  # (the offscreen screen is 800 x 600: a restored size is clamped to it)
    assert again.saveGeometry() != MainWindow(QSettings(str(tmp_path / "fresh.ini"), QSettings.Format.IniFormat)).saveGeometry()
    assert again.record_panel.model.currentText() == "/models/flux-dev"
    assert again.record_panel.prompt.text() == "a large green square on a black background at center"
    assert again.view.log.isChecked() and again.view.opacity.value() == 25
