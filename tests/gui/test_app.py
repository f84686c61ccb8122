"""`python main.py [SESSION] --screenshot OUT.png`: the window with the session, saved and non-blank."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtGui import QImage

from massivelens.gui.app import run_app
from tests.gui.helpers import assert_not_blank, pixels

REPO = Path(__file__).resolve().parents[2]


def test_run_app_screenshot_shows_the_session(qtbot, session_path, tmp_path):
    out = tmp_path / "shot.png"
    assert run_app(session_path, out) == 0
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1400, 900)
    assert_not_blank(pixels(image))


def test_run_app_screenshot_without_session(qtbot, tmp_path):
    out = tmp_path / "empty.png"
    assert run_app(None, out) == 0
    assert QImage(str(out)).width() == 1400


def test_run_app_bad_session_still_renders_and_reports(qtbot, tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    bad.write_text("nope")
    out = tmp_path / "bad.png"
    assert run_app(bad, out) == 1
    assert out.is_file()
    err = capsys.readouterr().err
    assert "not a readable HDF5 file" in err and "Traceback" not in err


def test_main_py_screenshot_subprocess(session_path, tmp_path):
    out = tmp_path / "main.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    result = subprocess.run(
        [sys.executable, "main.py", str(session_path), "--screenshot", str(out), "--size", "1024x640"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1024, 640)
    assert_not_blank(pixels(image))



def test_a_bad_size_is_one_line(capsys, tmp_path):
    from massivelens.cli.main import main

    assert main(["--screenshot", str(tmp_path / "x.png"), "--size", "big"]) == 1
    assert capsys.readouterr().err.strip() == "error: --size looks like WIDTHxHEIGHT, e.g. 1024x640; got 'big'"
