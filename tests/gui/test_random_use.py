"""What random use found: damaged files, Save As onto open files, colliding names, sessions that cannot be
closed, a selection that sticks, windows never released. Each is driven the way a person would."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from massivelens.gui.main_window import MainWindow
from massivelens.gui.naming import fresh_path
from tests.gui.fakes import slow_job
from tests.gui.helpers import qt_warnings
from tests.session_factory import PLANTED, write_synthetic_session


@pytest.fixture
def window(qtbot, settings):
    w = MainWindow(settings, job=slow_job())
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def drive_every_view(window: MainWindow) -> None:
    """Every stream, block and step of the current session, as clicks and slider moves would."""
    data = window.current()
    for stream in data.streams:
        for block in range(len(data.blocks(stream))):
            for step in range(data.steps_done):
                window.selection.set(stream=stream, block=block, step=step, channel=(block * 7 + step) % 32)


@pytest.mark.parametrize("seed", range(6))
def test_a_session_with_garbled_bytes_opens_with_one_line_per_damaged_part_or_not_at_all(
        window, session_path, tmp_path, qtlog, seed):
    """Random bytes over a random part of the file; nothing may raise (pytest-qt fails the test on an exception in a
    Qt slot), every message is one line per part, and no NaN reaches KMeans (it raises on NaN)."""
    rng = np.random.default_rng(seed)
    damaged = shutil.copyfile(session_path, tmp_path / f"garbled-{seed}.h5")
    raw = bytearray(damaged.read_bytes())
    start = int(rng.integers(2048, len(raw) - 4096))
    raw[start:start + 4096] = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    damaged.write_bytes(bytes(raw))
    data = window.open_path(damaged)
    if data is None:
        assert "\n" not in window.error_box.text() and str(damaged) in window.error_box.text()
        return
    drive_every_view(window)
    for line in data.problems:
        assert "\n" not in line and len(line) < 300
    if data.problems:
        assert window.error_box.text().splitlines()[1:] == data.problems
    assert qt_warnings(qtlog) == []


def test_nan_statistics_are_gaps_and_named(window, session_path, tmp_path):
    import h5py

    path = shutil.copyfile(session_path, tmp_path / "nan.h5")
    with h5py.File(path, "r+") as f:
        f["image/mean_abs"][1, :, :] = np.nan
        f["image/top_maps_scale"][1] = np.inf  # 16-bit maps: a damaged scale decodes to inf
    data = window.open_path(path)
    assert data.problems == ["image mean |x|: 128 non-finite values (damaged?) shown as gaps"]
    assert window.error_box.text().splitlines() == ["nan.h5 is damaged; what could be read is shown:", *data.problems]
    window.selection.set(step=1, block=0, channel=PLANTED[0])
    assert window.view.clusters.shown is None and "not clustered" in window.view.clusters.title.full
    assert window.view.token_map.current_map() is not None  # inf maps are drawn, not computed on
    drive_every_view(window)


def test_save_as_never_targets_a_file_another_open_session_reads(window, session_path, tmp_path):
    other = write_synthetic_session(tmp_path / "other.h5", seed=3)
    window.open_path(session_path)
    window.open_path(other)
    before = session_path.read_bytes()
    assert window.save_as(session_path) is None
    assert "open in MassiveLens" in window.error_box.text() and "\n" not in window.error_box.text()
    assert session_path.read_bytes() == before and window.current().path == other
    drive_every_view(window)
    window.close_session(window.session_list.find(session_path))
    copied = window.save_as(session_path.parent / "copy-of-other.h5")
    assert copied is not None and copied.path.name == "copy-of-other.h5"


def test_recording_names_never_collide(tmp_path):
    names = []
    for _ in range(3):  # within one millisecond, as fast as a loop goes
        names.append(fresh_path(tmp_path, "a-red-circle", ".h5"))
        names[-1].touch()
    assert len(set(names)) == 3
    taken = fresh_path(tmp_path, "x", ".h5")
    taken.touch()
    assert fresh_path(tmp_path, "x", ".h5") != taken


def test_two_recordings_of_one_prompt_in_a_row_both_open(qtbot, window):
    window.record_panel.prompt.setText("a red circle")
    paths = []
    for _ in range(2):
        with qtbot.waitSignal(window.runner.finished, timeout=10_000) as done:
            window.record_panel.record.click()
        paths.append(done.args[0])
    assert paths[0] != paths[1] and all(p.is_file() for p in paths)


def test_sessions_close_and_the_list_selects_what_was_opened_last(qtbot, window, session_path, tmp_path):
    other = write_synthetic_session(tmp_path / "other.h5", seed=3)
    window.open_path(session_path)
    window.open_path(other)
    listed = window.session_list.list
    assert [item.text().splitlines()[-1] for item in listed.selectedItems()] == ["other.h5"]
    listed.selectAll()
    window.open_path(session_path)  # opened again: it alone is selected, not the two from before
    assert [item.text().splitlines()[-1] for item in listed.selectedItems()] == ["synthetic.h5"]
    first = window.current()
    window.session_list.close_button.click()
    assert window.session_list.list.count() == 1 and not first.session._file.id.valid
    assert window.current().path == other and window.view.data is window.current()
    window._close_current()
    assert window.current() is None and window.view.heatmap.title.full == "no session"
