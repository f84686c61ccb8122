"""Two sessions side by side under one Selection: click a cell on one side and both sides follow."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMainWindow, QSplitter, QWidget

from .selection import Selection
from .session_data import SessionData
from .session_view import SessionView


class CompareWindow(QMainWindow):
    """Sessions of different sizes are fine: each side clamps the shared selection to what it recorded."""

    def __init__(self, first: SessionData, second: SessionData, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Compare · {first.path.name} | {second.path.name}")
        self.selection = Selection()
        self.sides = (SessionView(self.selection, compact=True), SessionView(self.selection, compact=True))
        splitter = QSplitter(Qt.Orientation.Horizontal)
        for side, data in zip(self.sides, (first, second)):
            side.set_data(data)
            splitter.addWidget(side)
        self.setCentralWidget(splitter)
        self.resize(1600, 900)
