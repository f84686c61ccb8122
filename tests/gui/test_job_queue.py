"""One job at a time: record, probe and transport share one queue, so they never hook the one cached pipeline at once."""
from __future__ import annotations

from massivelens.gui.main_window import MainWindow
from massivelens.gui.worker import engine_job
from massivelens.sessions.reader import open_session
from massivelens.sessions.schema import RANDOM_DRAWS
from tests.tiny_pipelines import tiny_call_kwargs


def test_transport_started_during_a_recording_waits_and_both_finish(qtbot, settings, tiny_pipelines, tmp_path):
    """The issue's crash: with both jobs on the worker at once, the recording failed (meta tensor / KeyError)."""
    folder = str(tiny_pipelines("flux"))
    size = tiny_call_kwargs("flux")
    window = MainWindow(settings, job=engine_job)
    qtbot.addWidget(window)
    panel = window.record_panel
    panel.model.setEditText(folder)
    panel.generation.steps.setValue(12)
    panel.generation.width_.setValue(size["width"])
    panel.generation.height_.setValue(size["height"])
    panel.prompt.setText("a red circle")
    editor = window.show_transport_editor()
    editor.model.setEditText(folder)
    editor.source_prompt.setText("a blue square")
    editor.target_prompt.setText("a red circle")
    editor.generation.steps.setValue(2)
    editor.generation.width_.setValue(size["width"])
    editor.generation.height_.setValue(size["height"])
    editor.alphas.setText("0 1")
    failures: list[str] = []
    window.runner.failed.connect(failures.append)
    editor.runner.failed.connect(failures.append)
    with qtbot.waitSignals([window.runner.finished, editor.runner.finished], timeout=120_000):
        panel.record.click()
        editor.run_button.click()
        assert "queued" in editor.status.text() and editor.cancel_button.isEnabled()
    assert failures == []
    with open_session(window.current().path) as s:
        assert s.complete and s.steps_done == 12
    assert editor.report is not None and len(editor.report["results"]) == 2


def test_a_queued_probe_can_be_withdrawn_and_a_later_one_runs_after_the_recording(qtbot, settings, tmp_path):
    from functools import partial

    from massivelens.gui.probe_panel import probe_job
    from tests.gui.fakes import fake_probe, slow_job

    window = MainWindow(settings, job=slow_job(steps=30, delay=0.01), probe=partial(probe_job, run=fake_probe()))
    qtbot.addWidget(window)
    window.record_panel.prompt.setText("a red circle")
    probe = window.show_probe_panel()
    probe.ks.setText("1")
    window.record_panel.record.click()
    qtbot.waitUntil(lambda: window.runner.running() and not window.runner.waiting())
    probe.run_button.click()
    assert probe.runner.waiting() and "queued (1 in line) behind the recording" in probe.status.text()
    with qtbot.waitSignal(probe.runner.cancelled):
        probe.cancel_button.click()
    assert not probe.runner.running() and probe.run_button.isEnabled() and probe.status.text() == "cancelled"
    probe.run_button.click()
    started = []
    probe.runner.started.connect(lambda: started.append(window.runner.running()))
    with qtbot.waitSignals([window.runner.finished, probe.runner.finished], timeout=30_000, order="strict"):
        pass
    assert started == [False]  # the probe began only once the recording had ended
    assert len(probe.results.report.rows) == 2 + RANDOM_DRAWS  # top, bottom and the random draws at k = 1
