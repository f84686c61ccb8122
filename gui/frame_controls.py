"""A video session's frame slider and playback: they write the Selection's frame, as the step slider writes
its step, so the token map and the clusters follow the frame in every view that shares the Selection."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel, QSlider, QToolButton, QWidget

from massivelens.engine.video_files import PREVIEW_FPS

from .selection import Selection
from .session_data import SessionData

PLAY, PAUSE = "▶", "❚❚"


class FrameControls:
    """Frame slider between its caption and its label, and a play/pause button; hidden for image sessions."""

    def __init__(self, selection: Selection):
        self.selection = selection
        self.data: SessionData | None = None
        self.caption = QLabel("frame")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setMinimumWidth(120)
        self.slider.valueChanged.connect(lambda value: self.selection.set(frame=value))
        self.label = QLabel()
        self.label.setFixedWidth(self.label.fontMetrics().horizontalAdvance("frame 999 (latent 99)"))
        self.play = QToolButton()
        self.play.setText(PLAY)
        self.play.setCheckable(True)
        self.play.setToolTip(f"play the video and its maps ({PREVIEW_FPS} frames a second), looping")
        self.play.toggled.connect(self._toggle)
        self.timer = QTimer()
        self.timer.setInterval(round(1000 / PREVIEW_FPS))
        self.timer.timeout.connect(self.advance)
        for widget in self.widgets():
            widget.setVisible(False)  # until a video session is shown

    def widgets(self) -> tuple[QWidget, ...]:
        return self.caption, self.slider, self.label, self.play

    def set_data(self, data: SessionData | None) -> None:
        self.play.setChecked(False)
        self.data = data
        video = data is not None and data.is_video
        for widget in self.widgets():
            widget.setVisible(video)
        self.sync()

    def sync(self) -> None:
        """Follow the Selection (clamped to this session) without writing it back."""
        pick = self.data.resolve(self.selection) if self.data is not None and self.data.is_video else None
        self.slider.blockSignals(True)
        self.slider.setEnabled(pick is not None)
        if pick is not None:
            self.slider.setRange(0, self.data.frame_count - 1)
            self.slider.setValue(pick.frame)
            self.label.setText(f"frame {pick.frame} (latent {self.data.latent_of(pick.frame)})")
        self.slider.blockSignals(False)

    def advance(self) -> None:
        """The next frame, back to the first after the last."""
        if self.data is not None:
            self.selection.set(frame=(self.slider.value() + 1) % self.data.frame_count)

    def _toggle(self, playing: bool) -> None:
        self.play.setText(PAUSE if playing else PLAY)
        if playing:
            self.timer.start()
        else:
            self.timer.stop()
