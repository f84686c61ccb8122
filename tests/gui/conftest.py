"""GUI tests run headless: the platform must be chosen before anything imports Qt."""
from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402

from tests.session_factory import write_synthetic_session  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Recent files and folders go to a temporary INI folder, never to the user's settings."""
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path_factory.mktemp("settings")))


@pytest.fixture(scope="session")
def session_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small complete session with planted massive channels (shared: tests only read it)."""
    return write_synthetic_session(tmp_path_factory.mktemp("sessions") / "synthetic.h5", blocks=4, channels=32, steps=3)


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    s = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    s.setValue("sessions_dir", str(tmp_path / "recorded"))
    return s
