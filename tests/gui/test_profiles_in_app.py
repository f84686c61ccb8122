"""Recording profiles in the app: the record form's choice reaches the job, and a lean session's views say
which steps hold statistics and maps instead of drawing empty panels or calling the file damaged."""
from __future__ import annotations

from massivelens.gui.main_window import MainWindow
from tests.gui.fakes import slow_job
from tests.session_factory import PLANTED, write_synthetic_session


def make_window(qtbot, settings) -> MainWindow:
    window = MainWindow(settings, job=slow_job())
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def test_the_record_form_passes_the_chosen_profile(qtbot, settings, tmp_path):
    window = make_window(qtbot, settings)
    panel = window.record_panel
    assert panel.profile.currentText() == "default"
    panel.profile.setCurrentText("lean")
    assert panel.params(tmp_path / "x.h5").profile == "lean"


def test_a_lean_session_names_the_steps_it_keeps(qtbot, settings, tmp_path):
    path = write_synthetic_session(tmp_path / "lean.h5", steps=4, profile="lean", kept_steps=(1, 3))
    window = make_window(qtbot, settings)
    data = window.open_path(path)
    assert data.problems == [] and data.stat_steps == (1, 3)
    view = window.view
    window.selection.set(step=0, block=1, channel=PLANTED[0])
    message = "at step 0: this lean session keeps them at steps 1, 3"
    assert message in view.heatmap.title.full
    assert message in view.token_map.title.full and view.token_map.current_map() is None
    assert message in view.clusters.title.full and view.clusters.shown is None
    window.selection.set(step=3)
    assert view.token_map.current_map() is not None and view.clusters.shown is not None
    assert "step 3" in view.heatmap.title.full and "keeps" not in view.heatmap.title.full
    assert "steps 1, 3 only" in view.step.toolTip()
