"""A video session's view, frame after frame, as an animated image: the token map or the clusters over every
frame, exactly as on screen (QWidget.grab), so the clip shows what the researcher looked at."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QWidget

from massivelens.engine.video_files import save_animation

from .selection import Selection
from .session_data import SessionData

CLIP_VIEWS = ("token_map", "cluster_overlay")  # the views drawn over the video's frames
CLIP_FILTER = "Animated GIF (*.gif);;Animated WebP, lossless (*.webp)"


def export_clip(widget: QWidget, selection: Selection, data: SessionData, path: Path) -> Path:
    """Every frame of the video through `widget`, as a GIF or WebP (by the suffix); the selected frame is put back."""
    start = selection.frame
    shots = []
    try:
        for frame in range(data.frame_count):
            selection.set(frame=frame)
            shots.append(rgb(widget.grab().toImage()))
    finally:
        selection.set(frame=start)
    return save_animation(np.stack(shots), Path(path))


def rgb(image: QImage) -> np.ndarray:
    """(H, W, 3) uint8 copy of a QImage (its buffer dies with it)."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    rows = np.frombuffer(image.constBits(), np.uint8, image.sizeInBytes()).reshape(image.height(), image.bytesPerLine())
    return rows[:, : image.width() * 3].reshape(image.height(), image.width(), 3).copy()
