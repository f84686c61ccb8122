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


def parse_size(text: str) -> tuple[int, int]:
    """"WxH" (e.g. 1024x640) -> (1024, 640); ValueError with a one-line message otherwise."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"--size looks like WIDTHxHEIGHT, e.g. 1024x640; got {text!r}")
    return int(parts[0]), int(parts[1])


def run_app(session: Path | str | None = None, screenshot: Path | str | None = None,
            size: tuple[int, int] | None = None) -> int:
    """Open the main window (with `session` loaded, else the example on a first launch) at `size` if given; with
    `screenshot`, save the window to it and return."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP)
    app.setOrganizationName(ORG)
    window = MainWindow()
    if size is not None:
        window.resize(*size)
    window.show()
    opened = window.open_path(Path(session)) if session else window.open_first_launch()
    if screenshot is None:
        return app.exec()
    ok = save_screenshot(window, Path(screenshot))
    if session and opened is None:
        print(f"error: {window.statusBar().currentMessage()}", file=sys.stderr)
    if not ok:
        print(f"error: could not write {screenshot}", file=sys.stderr)
    window.close()
    return 0 if ok and (opened is not None or not session) else 1
