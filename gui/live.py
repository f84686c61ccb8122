"""Watching a recording: the session file it writes, opened once it exists and re-read as steps arrive.

The worker's progress carries the step; at a new step (and no more often than the pacing below) the follower
opens the file, which the recording thread creates at its first transformer call, or catches up with it
(`SessionData.refresh`; h5py in one process reads a file another thread is writing, and sees each step once
its `steps_done` attribute advances). A run shorter than START_MS (the embedded model takes ~0.4 s) is simply
opened when done; a longer one is redrawn at most every INTERVAL_MS, each redraw reading the file and drawing
every view.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QElapsedTimer, QObject, Signal

from massivelens.sessions.reader import SessionError

from .session_data import READ_ERRORS, SessionData

START_MS, INTERVAL_MS = 1000, 300


class LiveSession(QObject):
    """`opened(data)` when the file first opens, `grew(data)` when new steps were read; `data` until `stop`."""

    opened = Signal(object)
    grew = Signal(object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.path: Path | None = None
        self.data: SessionData | None = None
        self._step = -1
        self._clock = QElapsedTimer()

    def start(self, path: Path) -> None:
        self.path, self.data, self._step = Path(path), None, -1
        self._clock.invalidate()

    def forget(self, data: SessionData) -> None:
        """The user closed the session being recorded: stop showing it (the recording goes on and opens when done)."""
        if data is self.data:
            self.path = self.data = None

    def stop(self) -> SessionData | None:
        """The recording ended; returns the session that was shown (the caller replaces or re-reads it)."""
        data, self.path, self.data = self.data, None, None
        return data

    def progress(self, progress) -> None:
        """A worker report (engine.progress.Progress)."""
        if self.path is None:
            return
        if not self._clock.isValid():
            self._clock.start()
        wait = INTERVAL_MS if self.data is not None else START_MS
        if progress.step == self._step or self._clock.elapsed() < wait:
            return
        self._step = progress.step
        self._clock.start()
        if self.data is None:
            self._open()
            return
        try:
            grew = self.data.refresh()
        except READ_ERRORS:
            self.data = None  # caught mid-write, or its entry was replaced: open the file afresh at the next step
            return
        if grew:
            self.grew.emit(self.data)

    def _open(self) -> None:
        if not self.path.is_file():
            return
        try:
            self.data = SessionData.open(self.path)
        except SessionError:
            return  # the header is not complete yet: the next step tries again
        self.opened.emit(self.data)
