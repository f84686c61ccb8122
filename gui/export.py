"""Figures to files: any view to PNG, SVG or PDF, the generated image to PNG, or everything into a folder.

Views are rendered through QWidget.render, so the same code serves plots and tables, and plot items stay
vectors in SVG and PDF (only images inside them are raster). pyqtgraph items are switched to their export
mode while they render (scatter symbols become vector shapes instead of fragments of a raster atlas, which
SVG cannot cut out). PNGs are rendered at a device pixel ratio, so text, lines and symbols are redrawn at
the higher resolution rather than magnified; SVGs go through svg_portable so that non-Qt renderers draw them
as Qt does.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PySide6.QtCore import QMarginsF, QPoint, QRect, QSizeF, Qt
from PySide6.QtGui import QActionGroup, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QFileDialog, QGraphicsView, QLabel, QMenu, QWidget

from .session_list import to_qimage
from .svg_portable import portable

FORMATS = ("png", "svg", "pdf")
FILTER = "PNG image (*.png);;SVG vector (*.svg);;PDF document (*.pdf)"
SCREEN_DPI = 96  # one widget pixel is 1/96 inch, as browsers and SVG renderers take it
SCALES = {"1× screen (96 dpi)": 1.0, "2× screen (192 dpi)": 2.0, "300 dpi": 300 / 96, "600 dpi": 600 / 96}
DEFAULT_SCALE = 2.0


class ExportError(Exception):
    """A figure could not be written; the message names the file."""


@dataclass
class ExportPreferences:
    """What the user chose for exports, shared by every window of the app (the main window keeps it in
    QSettings): PNG resolution as a multiple of the screen's."""

    png_scale: float = DEFAULT_SCALE


def with_suffix(path: Path, selected_filter: str = "") -> Path:
    """A file dialog's answer with the chosen file type applied when the name has no known suffix
    ("fig" with the SVG filter -> "fig.svg"); the first pattern of the filter wins, PNG without one."""
    path = Path(path)
    patterns = re.findall(r"\*(\.[A-Za-z0-9]+)", selected_filter)
    known = {f".{f}" for f in FORMATS} | set(patterns)
    if path.suffix.lower() in known:
        return path
    return path.with_name(path.name + (patterns[0] if patterns else ".png"))


def save_dialog(parent: QWidget, title: str, default: Path, file_filter: str = FILTER) -> Path | None:
    """Ask for a file to write; the chosen filter's type is applied to a name typed without one."""
    path, chosen = QFileDialog.getSaveFileName(parent, title, str(default), file_filter)
    return with_suffix(Path(path), chosen) if path else None


def resolution_menu(menu: QMenu, preferences: ExportPreferences, on_change=lambda scale: None) -> QActionGroup:
    """Checkable PNG resolutions; picking one sets `preferences.png_scale` and calls `on_change(scale)`."""
    group = QActionGroup(menu)
    for text, scale in SCALES.items():
        action = menu.addAction(text)
        action.setCheckable(True)
        action.setChecked(abs(scale - preferences.png_scale) < 1e-6)
        action.triggered.connect(lambda _=False, s=scale: (setattr(preferences, "png_scale", s), on_change(s)))
        group.addAction(action)
    return group


def export_widget(widget: QWidget, path: Path, png_scale: float = DEFAULT_SCALE) -> Path:
    """Write one view; the format follows the file suffix."""
    path = Path(path)
    writers = {".png": lambda w, p: _png(w, p, png_scale), ".svg": _svg, ".pdf": _pdf}
    if path.suffix.lower() not in writers:
        raise ExportError(f"{path.name}: unknown format; use one of {', '.join('.' + f for f in FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    writers[path.suffix.lower()](widget, path)
    if not path.is_file() or path.stat().st_size == 0:
        raise ExportError(f"{path}: could not be written")
    return path


def export_reporting(widget: QWidget, path: Path, status: QLabel, png_scale: float = DEFAULT_SCALE) -> Path | None:
    """export_widget for a panel: the outcome, written file or failure, goes to its status line."""
    try:
        written = export_widget(widget, Path(path), png_scale)
    except (ExportError, OSError) as exc:
        status.setText(f"export failed: {exc}")
        return None
    status.setText(f"exported {written}")
    return written


def export_image(rgb: np.ndarray, path: Path) -> Path:
    """The generated image at its own pixels (a PNG of the model's output, not of a view)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not to_qimage(rgb).save(str(path), "PNG"):
        raise ExportError(f"{path}: could not be written")
    return path


def export_all(figures: dict[str, QWidget], image: np.ndarray | None, folder: Path,
               png_scale: float = DEFAULT_SCALE) -> list[Path]:
    """Every view in every format, plus the generated image: a folder ready for a paper or a report."""
    folder = Path(folder)
    written = [export_widget(widget, folder / f"{name}.{fmt}", png_scale)
               for name, widget in figures.items() for fmt in FORMATS]
    if image is not None:
        written.append(export_image(image, folder / "image.png"))
    return written


def _png(widget: QWidget, path: Path, scale: float) -> None:
    image = QImage(round(widget.width() * scale), round(widget.height() * scale), QImage.Format.Format_ARGB32)
    image.setDevicePixelRatio(scale)
    dots_per_meter = round(SCREEN_DPI * scale / 0.0254)
    image.setDotsPerMeterX(dots_per_meter)
    image.setDotsPerMeterY(dots_per_meter)
    image.fill(Qt.GlobalColor.white)
    _render(widget, image)
    if not image.save(str(path), "PNG"):
        raise ExportError(f"{path}: could not be written")


def _svg(widget: QWidget, path: Path) -> None:
    generator = QSvgGenerator()
    generator.setFileName(str(path))
    generator.setResolution(SCREEN_DPI)  # the page is the widget's size in CSS pixels
    generator.setSize(widget.size())
    generator.setViewBox(QRect(0, 0, widget.width(), widget.height()))
    generator.setTitle(path.stem)
    _render(widget, generator)
    path.write_text(portable(path.read_text(encoding="utf-8")), encoding="utf-8")


def _pdf(widget: QWidget, path: Path) -> None:
    writer = QPdfWriter(str(path))
    writer.setResolution(72)  # one widget pixel per PDF point: the page is the widget's size
    size = QSizeF(max(widget.width(), 1), max(widget.height(), 1))
    page = QPageSize(size, QPageSize.Unit.Point)
    writer.setPageLayout(QPageLayout(page, QPageLayout.Orientation.Portrait, QMarginsF()))
    writer.setTitle(path.stem)
    _render(widget, writer)


def _render(widget: QWidget, device) -> None:
    with _export_mode(widget):
        painter = QPainter(device)
        try:
            QWidget.render(widget, painter, QPoint())  # QWidget's: QGraphicsView.render would draw the scene alone
        finally:
            painter.end()


@contextmanager
def _export_mode(widget: QWidget) -> Iterator[None]:
    """pyqtgraph's export mode on every item of every plot inside `widget`, as its own exporters do."""
    views = [widget] if isinstance(widget, QGraphicsView) else []
    views += widget.findChildren(QGraphicsView)
    items = [item for view in views if view.scene() is not None for item in view.scene().items()
             if hasattr(item, "setExportMode")]
    for item in items:
        item.setExportMode(True, {"antialias": True})
    try:
        yield
    finally:
        for item in items:
            item.setExportMode(False)
