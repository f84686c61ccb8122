"""A short seeded soak of random use (tests/gui/soak.py; bench/gui_soak.py runs it for minutes on the real engine):
no unhandled exception, no Qt warning, no failed job, no hang."""
from __future__ import annotations

from functools import partial

from massivelens.gui.main_window import MainWindow
from massivelens.gui.probe_panel import probe_job
from tests.gui.fakes import fake_probe, fake_transport, slow_job
from tests.gui.soak import Soak, copy_sessions
from tests.session_factory import write_synthetic_session


def test_random_use_breaks_nothing(qtbot, settings, session_path, tmp_path):
    window = MainWindow(settings, job=slow_job(steps=6, delay=0.004), probe=partial(probe_job, run=fake_probe(delay=0.005)))
    window.transport_editor.runner.job = fake_transport(delay=0.01)
    qtbot.addWidget(window)
    window.show()
    other = write_synthetic_session(tmp_path / "six-blocks.h5", blocks=6, channels=48, steps=4, seed=4,
                                    control_sets=("bottom", "random"))
    files = copy_sessions([session_path, other], tmp_path / "files")
    report = Soak(window, tmp_path, files, seed=16).run(actions=160)
    print(report.summary())
    assert report.exceptions == [] and report.qt_warnings == [] and report.failed_jobs == [] and report.hangs == []
    assert min(report.actions[name] for name in ("record", "probe", "transport", "open bad", "save as", "compare")) > 0
    assert window.session_list.list.count() >= 0 and window.jobs.active is None
