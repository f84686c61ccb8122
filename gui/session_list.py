"""The open sessions: thumbnail, prompt, model, complete or not. Picking one shows it; two can be compared."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QItemSelectionModel, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QKeySequence, QPainter, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .session_data import SessionData

THUMB = 64


def to_qimage(rgb: np.ndarray) -> QImage:
    """(H, W, 3) uint8 to a QImage that owns its pixels (the numpy buffer may go away)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def thumbnail(data: SessionData) -> QIcon:
    """The generated image, or a grey tile saying why there is none."""
    if data.image is not None:
        pixmap = QPixmap.fromImage(to_qimage(data.image)).scaled(
            THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
        return QIcon(pixmap)
    pixmap = QPixmap(THUMB, THUMB)
    pixmap.fill(QColor(200, 200, 200))
    painter = QPainter(pixmap)
    painter.drawText(pixmap.rect(), Qt.AlignmentFlag.AlignCenter, "no image")
    painter.end()
    return QIcon(pixmap)


class SessionList(QWidget):
    """Holds the SessionData of every open session (their caches live as long as they are listed)."""

    currentChanged = Signal(object)  # SessionData | None
    compareRequested = Signal(object, object)
    openRequested = Signal()
    closeRequested = Signal(object)  # SessionData

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setWordWrap(True)
        self.list.currentItemChanged.connect(lambda item, _: self.currentChanged.emit(self._data(item)))
        self.list.itemSelectionChanged.connect(self._update_buttons)
        open_button = QPushButton("Open…")
        open_button.clicked.connect(self.openRequested)
        self.compare = QPushButton("Compare 2 selected")
        self.compare.setToolTip("select two sessions (Ctrl+click) to view them side by side")
        self.compare.setEnabled(False)
        self.compare.clicked.connect(self._compare)
        self.close_button = QPushButton("Close")
        self.close_button.setToolTip("close the selected sessions (Delete); their files stay on disk")
        self.close_button.setEnabled(False)
        self.close_button.clicked.connect(self._close_selected)
        QShortcut(QKeySequence.StandardKey.Delete, self.list, self._close_selected, Qt.ShortcutContext.WidgetShortcut)
        buttons = QHBoxLayout()
        buttons.addWidget(open_button)
        buttons.addWidget(self.compare)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list)
        layout.addLayout(buttons)

    def sessions(self) -> list[SessionData]:
        return [self._data(self.list.item(i)) for i in range(self.list.count())]

    def find(self, path: Path) -> SessionData | None:
        resolved = Path(path).resolve()
        return next((d for d in self.sessions() if d.path.resolve() == resolved), None)

    def add(self, data: SessionData) -> None:
        """List a session (replacing, and closing, the entry for the same file) and make it the one selected."""
        old = self.find(data.path)
        if old is not None:
            self.remove(old)
        item = QListWidgetItem(thumbnail(data), _caption(data))
        item.setData(Qt.ItemDataRole.UserRole, data)
        item.setToolTip(str(data.path))
        self.list.insertItem(0, item)
        self.list.setCurrentItem(item, QItemSelectionModel.SelectionFlag.ClearAndSelect)

    def refresh(self, data: SessionData) -> None:
        """Redraw a listed session's entry (a live recording's steps grow, its image arrives)."""
        for i in range(self.list.count()):
            item = self.list.item(i)
            if self._data(item) is data:
                item.setText(_caption(data))
                item.setIcon(thumbnail(data))

    def remove(self, data: SessionData) -> None:
        """Unlist a session and close its file (comparison windows hold files of their own)."""
        for i in range(self.list.count()):
            if self._data(self.list.item(i)) is data:
                self.list.takeItem(i)
                data.close()
                return

    def current(self) -> SessionData | None:
        return self._data(self.list.currentItem())

    def _update_buttons(self) -> None:
        self.compare.setEnabled(len(self.list.selectedItems()) == 2)
        self.close_button.setEnabled(bool(self.list.selectedItems()))

    def _close_selected(self) -> None:
        for item in self.list.selectedItems():
            self.closeRequested.emit(self._data(item))

    def _compare(self) -> None:
        first, second = (self._data(item) for item in self.list.selectedItems()[:2])
        self.compareRequested.emit(first, second)

    @staticmethod
    def _data(item: QListWidgetItem | None) -> SessionData | None:
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)


def _caption(data: SessionData) -> str:
    state = "complete" if data.complete else f"incomplete ({data.steps_done}/{data.steps_planned} steps)"
    prompt = str(data.info.get("prompt", ""))
    prompt = prompt if len(prompt) <= 60 else prompt[:57] + "…"
    model = Path(str(data.info.get("model", "?"))).name
    return f"{prompt}\n{model} · seed {data.info.get('seed')} · {state}\n{data.path.name}"
