"""A recording is watched, not waited for: the session appears at its first step and the views grow with it."""
from __future__ import annotations

import numpy as np

from massivelens.gui.main_window import MainWindow
from massivelens.sessions.reader import open_session
from tests.gui.fakes import slow_job


def test_views_follow_the_session_as_each_step_is_written(qtbot, settings):
    window = MainWindow(settings, job=slow_job(steps=24, blocks=4, delay=0.025))  # 2.4 s: long enough to be watched
    qtbot.addWidget(window)
    window.show()
    window.record_panel.prompt.setText("a red circle")
    seen: list[int] = []
    window.runner.progress.connect(lambda p: window.live.data and seen.append(window.live.data.steps_done))
    with qtbot.waitSignal(window.runner.finished, timeout=20_000) as done:
        window.record_panel.record.click()
        qtbot.waitUntil(lambda: window.live.data is not None and window.live.data.steps_done >= 3, timeout=15_000)
        live = window.live.data
        assert window.current() is live and not live.complete and "incomplete" in window.session_list.list.item(0).text()
        steps = live.steps_done
        assert window.view.step.maximum() == steps - 1 and window.selection.step == steps - 1  # follows the newest
        with open_session(live.path) as s:  # a second reader of the file being written
            np.testing.assert_array_equal(window.view.heatmap.image.image, s.mean_abs("image", steps - 1))
        assert window.view.step_heatmap.values.shape == (4, steps)
    assert seen == sorted(seen) and len(set(seen)) >= 3  # shown as it grew, at several steps
    final = window.current()
    assert final.path == done.args[0] and final.complete and final.steps_done == 24
    assert window.session_list.list.count() == 1  # the live entry became the finished session
    assert not live.session._file.id.valid


def test_the_session_being_recorded_is_never_saved_over_and_can_be_closed(qtbot, settings, tmp_path):
    window = MainWindow(settings, job=slow_job(steps=30, blocks=4, delay=0.02))
    qtbot.addWidget(window)
    window.record_panel.prompt.setText("a red circle")
    with qtbot.waitSignal(window.runner.finished, timeout=30_000) as done:
        window.record_panel.record.click()
        qtbot.waitUntil(lambda: window.live.data is not None, timeout=20_000)
        live = window.live.data
        assert window.save_as(tmp_path / "copy.h5") is None and "still being recorded" in window.error_box.text()
        assert not (tmp_path / "copy.h5").exists()
        window.close_session(live)
        assert window.live.data is None and window.current() is None and not live.session._file.id.valid
    final = window.current()
    assert final.path == done.args[0] and final.complete  # the recording went on and opened when done
