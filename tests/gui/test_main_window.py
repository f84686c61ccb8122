"""The main window: record through a fake job, open, save, recent files, errors that never crash."""
from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMessageBox

from massivelens.engine.errors import ModelLoadError
from massivelens.gui.app import settle
from massivelens.gui.main_window import MainWindow
from massivelens.sessions.reader import SessionError, open_session
from tests.gui.fakes import failing_job, slow_job
from tests.gui.helpers import click_cell
from tests.session_factory import write_synthetic_session


def make_window(qtbot, settings, job=None) -> MainWindow:
    window = MainWindow(settings, job=job or slow_job())
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def record(qtbot, window: MainWindow, prompt: str = "a green square", timeout: int = 60_000):
    window.record_panel.prompt.setText(prompt)
    with qtbot.waitSignal(window.runner.finished, timeout=timeout) as done:
        window.record_panel.record.click()
    return done.args[0]


def test_record_through_the_gui_opens_the_new_session(qtbot, settings):
    window = make_window(qtbot, settings)
    progress = []
    window.runner.progress.connect(progress.append)
    path = record(qtbot, window)
    assert path.parent == window.sessions_dir() and path.is_file()
    assert progress[-1].step == 2 and progress[-1].block == 3
    assert window.record_panel.record.isEnabled() and not window.record_panel.cancel.isEnabled()
    data = window.current()
    assert data is not None and data.path == path and data.complete
    assert data.info["prompt"] == "a green square"
    assert window.recent_files()[0] == str(path.resolve())
    assert "a green square" in window.session_list.list.item(0).text()


def test_event_loop_stays_responsive_while_recording(qtbot, settings):
    """A slow job that even spins in Python (holding the GIL between switches) must not stall the GUI."""
    window = make_window(qtbot, settings, slow_job(steps=4, blocks=6, delay=0.03, busy=True))
    record(qtbot, window, "a warm-up run")  # first-time costs (opening and drawing a session) are not what this measures
    settle()
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(10)
    record(qtbot, window)
    timer.stop()
    gaps = np.diff(ticks)
    assert len(ticks) > 30, "the job finished too fast to measure anything"
    assert gaps.max() < 0.100, f"event loop stalled {gaps.max() * 1000:.0f} ms"


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (ModelLoadError("no such model folder: /nope"), "Recording failed: no such model folder: /nope"),
        (MemoryError(), "Recording failed: out of memory"),
        (
            ValueError("height must be a multiple of 16\ntraceback noise"),
            "Recording failed: unexpected ValueError: height must be a multiple of 16",
        ),
    ],
)
def test_worker_errors_show_a_message_and_the_app_keeps_running(qtbot, settings, error, message):
    window = make_window(qtbot, settings, failing_job(error))
    window.record_panel.prompt.setText("x")
    with qtbot.waitSignal(window.runner.failed):
        window.record_panel.record.click()
    assert isinstance(window.error_box, QMessageBox) and window.error_box.isVisible()
    assert window.error_box.text().startswith(message) and "\n" not in window.error_box.text()
    qtbot.waitUntil(lambda: not window.runner.running())
    window.runner.job = slow_job()
    assert record(qtbot, window).is_file()  # still works after the failure


def test_empty_prompt_is_refused_in_the_form(qtbot, settings):
    window = make_window(qtbot, settings)
    window.record_panel.prompt.clear()
    window.record_panel.record.click()
    assert not window.runner.running()
    assert "prompt" in window.record_panel.status.text()


def test_cancel_keeps_the_finished_steps(qtbot, settings):
    window = make_window(qtbot, settings, slow_job(steps=50, delay=0.005))
    window.record_panel.prompt.setText("cancel me")
    with qtbot.waitSignal(window.runner.cancelled, timeout=10_000) as cancelled:
        window.record_panel.record.click()
        qtbot.waitUntil(lambda: window.record_panel.progress.value() > 10)
        window.record_panel.cancel.click()
    path = cancelled.args[0]
    data = window.current()
    assert data is not None and data.path == path
    assert not data.complete and 1 <= data.steps_done < 50
    assert window.record_panel.record.isEnabled()


def test_closing_mid_run_cancels_cleanly_and_loses_no_session(qtbot, settings):
    window = make_window(qtbot, settings, slow_job(steps=200, delay=0.005))
    finished = record(qtbot, window, "first")
    window.runner.job = slow_job(steps=200, delay=0.005)
    window.record_panel.prompt.setText("second")
    window.record_panel.record.click()
    qtbot.waitUntil(lambda: window.record_panel.progress.value() > 10)
    window.close()
    assert not window.runner.running()
    recent = window.recent_files()
    assert recent[1] == str(finished.resolve())
    with open_session(recent[0]) as partial:
        assert "second" in partial.info["prompt"] and not partial.complete and partial.steps_done >= 1
    with open_session(finished) as first:
        assert first.complete


def test_open_save_as_and_reopen_show_exactly_what_was_recorded(qtbot, settings, session_path, tmp_path):
    window = make_window(qtbot, settings)
    window.open_path(session_path)
    click_cell(qtbot, window.view.heatmap, row=2, col=7)
    copy = window.save_as(tmp_path / "copy.h5")
    assert copy is not None and window.current().path == tmp_path / "copy.h5"
    assert window.session_list.list.count() == 1
    assert window.recent_files()[:2] == [str((tmp_path / "copy.h5").resolve()), str(session_path.resolve())]
    step = window.selection.step
    with open_session(session_path) as original:
        np.testing.assert_array_equal(window.view.heatmap.image.image, original.mean_abs("image", step))
        np.testing.assert_array_equal(window.view.token_map.current_map(), original.token_map(step, 2, 7))
        np.testing.assert_array_equal(window.current().image, original.image)
        assert window.current().info == original.info


def test_recent_files_persist_across_windows(qtbot, settings, session_path):
    make_window(qtbot, settings).open_path(session_path)
    window = make_window(qtbot, settings)
    window._fill_recent()
    actions = [a.text() for a in window.recent_menu.actions()]
    assert actions == [str(session_path.resolve())]
    window.recent_menu.actions()[0].trigger()
    assert window.current().path == session_path


@pytest.mark.parametrize("content", [b"", b"not hdf5 at all", None])
def test_bad_file_shows_one_clear_message(qtbot, settings, session_path, tmp_path, content):
    window = make_window(qtbot, settings)
    window.open_path(session_path)
    bad = tmp_path / "bad.h5"
    if content is not None:
        bad.write_bytes(content)
    assert window.open_path(bad) is None
    with pytest.raises(SessionError) as expected:
        open_session(bad)
    assert window.error_box.text() == str(expected.value)
    assert window.statusBar().currentMessage() == str(expected.value)
    assert window.current().path == session_path and window.session_list.list.count() == 1


def test_incomplete_session_is_listed_as_such(qtbot, settings, tmp_path):
    path = write_synthetic_session(tmp_path / "partial.h5", steps=5, steps_written=2, complete=False)
    window = make_window(qtbot, settings)
    window.open_path(path)
    assert "incomplete (2/5 steps)" in window.session_list.list.item(0).text()
    assert "INCOMPLETE" in window.view.header.text()
    assert window.view.step.maximum() == 1
    assert window.view.token_map.picture.image is None  # no image yet: the map is shown on its own
    assert window.view.token_map.current_map() is not None


def test_transport_editor_opens_from_the_analysis_menu(qtbot, tmp_path):
    from massivelens.gui.main_window import MainWindow
    from massivelens.gui.transport_editor import TransportEditor

    window = MainWindow()
    qtbot.addWidget(window)
    titles = [a.text() for menu in window.menuBar().actions() for a in menu.menu().actions()]
    assert "&Transport Editor…" in titles
    editor = window.show_transport_editor()
    assert isinstance(editor, TransportEditor) and editor.isVisible()
    window.close()
    assert not editor.isVisible()


def test_form_records_controls_and_hidden_blocks_with_the_real_engine(qtbot, settings, tiny_pipelines):
    from massivelens.gui.worker import engine_job

    window = make_window(qtbot, settings, job=engine_job)
    panel = window.record_panel
    panel.model.setEditText(str(tiny_pipelines("flux")))
    panel.device.setCurrentText("cpu")
    panel.generation.steps.setValue(2)
    panel.generation.width_.setValue(96)
    panel.generation.height_.setValue(64)
    panel.k.setValue(3)
    panel.controls["bottom"].setChecked(True)
    panel.hidden_blocks.setText("double.0, single.1")
    path = record(qtbot, window, "a red circle", timeout=60_000)
    with open_session(path) as s:
        assert s.complete and s.info["device"] == "cpu" and s.k == 3
        assert s.channel_sets == ("top", "bottom")
        assert s.hidden_blocks("image") == ["double.0", "single.1"]
        channel = int(s.set_channels("bottom", 0)[0][0])
        assert s.token_map(0, 0, channel).shape == s.grid
