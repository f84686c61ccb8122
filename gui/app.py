"""Starting the desktop app, or rendering it once for a screenshot (`python main.py [SESSION] --screenshot OUT`)."""
from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QApplication, QWidget

from .main_window import APP, ORG, MainWindow


def settle(rounds: int = 4) -> None:
    """Let layouts converge: pyqtgraph axes size themselves to their labels after the first paint."""
    for _ in range(rounds):
        QCoreApplication.sendPostedEvents()
        QCoreApplication.processEvents()


def save_screenshot(widget: QWidget, path: Path) -> bool:
    settle()
    path.parent.mkdir(parents=True, exist_ok=True)
    return widget.grab().save(str(path), "PNG")


def run_app(session: Path | str | None = None, screenshot: Path | str | None = None) -> int:
    """Open the main window (with `session` loaded); with `screenshot`, save the window to it and return."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP)
    app.setOrganizationName(ORG)
    window = MainWindow()
    window.show()
    opened = window.open_path(Path(session)) if session else None
    if screenshot is None:
        return app.exec()
    ok = save_screenshot(window, Path(screenshot))
    if session and opened is None:
        print(f"error: {window.statusBar().currentMessage()}", file=sys.stderr)
    if not ok:
        print(f"error: could not write {screenshot}", file=sys.stderr)
    window.close()
    return 0 if ok and (opened is not None or not session) else 1
