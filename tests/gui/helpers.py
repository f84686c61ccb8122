"""Driving and inspecting widgets the way a person would: clicks on cells, pixels of grabs."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QWidget

from massivelens.gui.app import settle
from massivelens.gui.views.heatmap_plot import HeatmapPlot


def click_cell(qtbot, plot: HeatmapPlot, row: int, col: int) -> None:
    """Left-click the centre of a heatmap cell on screen."""
    settle()
    scene = plot.plot.getViewBox().mapViewToScene(QPointF(col, row))  # cells are centred on (col, row)
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=plot.mapFromScene(scene))


def pixels(image: QImage) -> np.ndarray:
    """(H, W, 3) uint8 copy: the QImage's buffer dies with it."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    data = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    rows = data.reshape(image.height(), image.bytesPerLine())[:, : image.width() * 3]
    return rows.reshape(image.height(), image.width(), 3).copy()


def grab_pixels(widget: QWidget) -> np.ndarray:
    settle()
    return pixels(widget.grab().toImage())


def assert_not_blank(rgb: np.ndarray) -> None:
    """A real figure has many colours; a blank or single-colour grab has almost no variance."""
    assert rgb.size > 0
    assert rgb.std() > 20, f"image looks blank (std {rgb.std():.1f})"
    packed = rgb.reshape(-1, 3).astype(np.uint32) @ np.array([1 << 16, 1 << 8, 1], np.uint32)  # 1-D: fast to sort
    assert len(np.unique(packed)) > 50


def qt_warnings(qtlog) -> list[str]:
    """Qt's warnings in a test, less the offscreen platform's notes on what it cannot do (raise a window,
    propagate size hints), which a real display does not print."""
    return [r.message for r in qtlog.records if not r.message.startswith("This plugin does not support")]
