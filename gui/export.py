"""Figures to files: any view to PNG, SVG or PDF, the generated image to PNG, or everything into a folder.

Views are rendered through QWidget.render, so the same code serves plots and tables, and plot items stay
vectors in SVG and PDF (only images inside them are raster).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QMarginsF, QPoint, QRect, QSizeF
from PySide6.QtGui import QPageLayout, QPageSize, QPainter, QPdfWriter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QLabel, QWidget

from .session_list import to_qimage

FORMATS = ("png", "svg", "pdf")
FILTER = "PNG image (*.png);;SVG vector (*.svg);;PDF document (*.pdf)"


class ExportError(Exception):
    """A figure could not be written; the message names the file."""


def export_widget(widget: QWidget, path: Path) -> Path:
    """Write one view; the format follows the file suffix."""
    path = Path(path)
    writers = {".png": _png, ".svg": _svg, ".pdf": _pdf}
    if path.suffix.lower() not in writers:
        raise ExportError(f"{path.name}: unknown format; use one of {', '.join('.' + f for f in FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    writers[path.suffix.lower()](widget, path)
    if not path.is_file() or path.stat().st_size == 0:
        raise ExportError(f"{path}: could not be written")
    return path


def export_reporting(widget: QWidget, path: Path, status: QLabel) -> Path | None:
    """export_widget for a panel: the outcome, written file or failure, goes to its status line."""
    try:
        written = export_widget(widget, Path(path))
    except (ExportError, OSError) as exc:
        status.setText(f"export failed: {exc}")
        return None
    status.setText(f"exported {written}")
    return written


def export_image(rgb: np.ndarray, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not to_qimage(rgb).save(str(path), "PNG"):
        raise ExportError(f"{path}: could not be written")
    return path


def export_all(figures: dict[str, QWidget], image: np.ndarray | None, folder: Path) -> list[Path]:
    """Every view in every format, plus the generated image: a folder ready for a paper or a report."""
    folder = Path(folder)
    written = [export_widget(widget, folder / f"{name}.{fmt}") for name, widget in figures.items() for fmt in FORMATS]
    if image is not None:
        written.append(export_image(image, folder / "image.png"))
    return written


def _png(widget: QWidget, path: Path) -> None:
    if not widget.grab().save(str(path), "PNG"):
        raise ExportError(f"{path}: could not be written")


def _svg(widget: QWidget, path: Path) -> None:
    generator = QSvgGenerator()
    generator.setFileName(str(path))
    generator.setSize(widget.size())
    generator.setViewBox(QRect(0, 0, widget.width(), widget.height()))
    generator.setTitle(path.stem)
    _render(widget, generator)


def _pdf(widget: QWidget, path: Path) -> None:
    writer = QPdfWriter(str(path))
    writer.setResolution(72)  # one widget pixel per PDF point: the page is the widget's size
    size = QSizeF(max(widget.width(), 1), max(widget.height(), 1))
    page = QPageSize(size, QPageSize.Unit.Point)
    writer.setPageLayout(QPageLayout(page, QPageLayout.Orientation.Portrait, QMarginsF()))
    writer.setTitle(path.stem)
    _render(widget, writer)


def _render(widget: QWidget, device) -> None:
    painter = QPainter(device)
    try:
        QWidget.render(widget, painter, QPoint())  # QWidget's: QGraphicsView.render would draw the scene alone
    finally:
        painter.end()
