"""Two sessions side by side, kept on the same block, channel and moment of the run, and their difference.

Each side has its own Selection; a link copies every change across, mapping the step by timestep (nearest
scheduler timestep), so runs with different schedules line up by where they are in the denoising process
rather than by step index; a warning says when the schedules differ. The heatmaps of both sides share one
colour range by default, and an A - B heatmap shows the difference of mean |x| at the linked steps.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from .export import ExportPreferences, export_reporting, save_dialog
from .selection import FIELDS, Selection
from .session_data import SessionData
from .session_view import SessionView
from .views.heatmap_plot import HeatmapPlot


def nearest_steps(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """For each step of `source`, the step of `target` whose timestep is nearest."""
    if target.size == 0:
        return np.zeros(source.size, int)
    return np.abs(source[:, None] - target[None, :]).argmin(axis=1)


def same_schedule(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether the recorded steps of both runs sit at the same timesteps (a shorter, partial run may stop early)."""
    n = min(a.size, b.size)
    return bool(np.allclose(a[:n], b[:n], rtol=1e-4, atol=1e-3))


class StepLink:
    """Keeps two selections on one block, channel and stream, and on the steps nearest in timestep."""

    def __init__(self, a: Selection, b: Selection, a_times: np.ndarray, b_times: np.ndarray):
        self.a, self.b = a, b
        self.a_to_b, self.b_to_a = nearest_steps(a_times, b_times), nearest_steps(b_times, a_times)
        self._busy = False
        a.changed.connect(lambda _: self._copy(a, b, self.a_to_b))
        b.changed.connect(lambda _: self._copy(b, a, self.b_to_a))

    def _copy(self, source: Selection, target: Selection, steps: np.ndarray) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            values = {name: getattr(source, name) for name in FIELDS}
            if steps.size:
                values["step"] = int(steps[min(max(source.step, 0), steps.size - 1)])
            target.set(**values)
        finally:
            self._busy = False


class DifferenceHeatmap(HeatmapPlot):
    """A - B mean |x| over block x channel at the linked steps, on a diverging scale centred on 0."""

    def __init__(self, a: SessionView, b: SessionView):
        super().__init__("channel", "block", "A − B mean |x|", colormap="CET-D1", crosshair="#000000")
        self.a, self.b = a, b
        self.cellClicked.connect(lambda row, col: a.selection.set(block=row, channel=col))
        for side in (a, b):
            side.selection.changed.connect(lambda _: self.redraw())

    def redraw(self) -> None:
        pa = self.a.data.resolve(self.a.selection) if self.a.data else None
        pb = self.b.data.resolve(self.b.selection) if self.b.data else None
        if pa is None or pb is None:
            self.clear_values("A − B: a side has no recorded step")
            return
        stream = pa.stream if pa.stream in self.b.data.streams else "image"
        values_a, values_b = self.a.data.heatmap(stream, pa.step, False), self.b.data.heatmap(stream, pb.step, False)
        if values_a.shape != values_b.shape:
            self.clear_values(f"A − B: the models differ in shape ({values_a.shape} vs {values_b.shape} blocks × channels)")
            return
        difference = values_a - values_b
        finite = np.abs(difference[np.isfinite(difference)])
        peak = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
        first = self.values is None
        self.set_values(difference, (-peak, peak))
        self.set_title(f"A − B mean |x| · {stream} · A {self.a.data.step_label(pa.step)} · B {self.b.data.step_label(pb.step)}")
        if first:
            self.set_row_names(self.a.data.blocks(stream))
            self.fit(*difference.shape)
        self.mark(pa.block, pa.channel)


class CompareWindow(QMainWindow):
    """Sessions of different sizes are fine: each side clamps its selection to what it recorded.

    The window opens files of its own, so closing a session in the main window never pulls data from under
    it; `closed` fires when it closes, and its files are closed then."""

    closed = Signal()

    def __init__(self, first: SessionData, second: SessionData, start: dict | None = None,
                 preferences: ExportPreferences | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Compare · A {first.path.name} | B {second.path.name}")
        self.preferences = preferences or ExportPreferences()
        # Owned by the window: deleting them with it drops the lambdas their signals hold, which reach back to
        # the window (a cycle through C++ that Python's collector cannot see, so every closed comparison leaked).
        self.selections = (Selection(parent=self), Selection(parent=self))
        self.link = StepLink(*self.selections, first.timesteps, second.timesteps)  # before the views: it runs first
        self.sides = tuple(SessionView(selection) for selection in self.selections)
        for side, data in zip(self.sides, (first, second)):
            side.set_data(data)
        self.difference = DifferenceHeatmap(*self.sides)
        self.shared = QCheckBox("shared colour range")
        self.shared.setToolTip("both sides' heatmaps on one colour scale, so equal colours mean equal values")
        self.shared.toggled.connect(self.share_levels)
        self.shared.setChecked(True)
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("background: #fff3cd; color: #664d03; padding: 4px;")
        self.status = QLabel()
        self._layout()
        self._describe_schedules(first, second)
        self.selections[0].set(**(start or {"stream": "image", **(first.strongest() or {})}))
        self.difference.redraw()
        self.resize(1600, 950)

    @classmethod
    def open(cls, first: Path, second: Path, selection: Selection | None = None,
             preferences: ExportPreferences | None = None) -> "CompareWindow":
        """Raises SessionError (one line) when either file cannot be opened."""
        a = SessionData.open(first)
        try:
            b = SessionData.open(second)
        except Exception:
            a.close()
            raise
        start = {name: getattr(selection, name) for name in FIELDS} if selection is not None else None
        return cls(a, b, start, preferences)

    def _layout(self) -> None:
        sides = QSplitter(Qt.Orientation.Horizontal)
        for label, side in zip("AB", self.sides):
            column = QWidget()
            box = QVBoxLayout(column)
            box.setContentsMargins(0, 0, 0, 0)
            box.addWidget(QLabel(f"<b>{label}</b>"))
            box.addWidget(side, stretch=1)
            sides.addWidget(column)
        panels = QSplitter(Qt.Orientation.Vertical)
        panels.addWidget(sides)
        panels.addWidget(self.difference)
        panels.setSizes([700, 220])
        export = QPushButton("Export…")
        export.setToolTip("the whole comparison as one figure (PNG, SVG or PDF)")
        export.clicked.connect(self._export_dialog)
        bar = QHBoxLayout()
        bar.addWidget(self.shared)
        bar.addWidget(export)
        bar.addWidget(self.status, stretch=1)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(self.warning)
        layout.addLayout(bar)
        layout.addWidget(panels, stretch=1)
        self.figure = panels
        self.setCentralWidget(central)

    def _describe_schedules(self, first: SessionData, second: SessionData) -> None:
        a, b = first.timesteps, second.timesteps
        self.warning.setVisible(not same_schedule(a, b))
        self.warning.setText(
            f"The schedules differ (A: {a.size} steps, t = {_span(a)}; B: {b.size} steps, t = {_span(b)}): "
            "each step of one side is shown with the step of the other nearest in timestep, not the same index.")

    def sessions(self) -> tuple[SessionData, ...]:
        return tuple(side.data for side in self.sides if side.data is not None)

    def share_levels(self, shared: bool) -> None:
        a, b = self.sides
        for mine, theirs in ((a, b), (b, a)):
            for name in ("heatmap", "step_heatmap"):
                getattr(mine, name).partner = getattr(theirs, name) if shared else None
        for side in self.sides:
            side.heatmap._redraw()
            side.step_heatmap._redraw()

    def export(self, path: Path) -> Path | None:
        """Both sides and the difference, as one figure (PNG, SVG or PDF by suffix)."""
        return export_reporting(self.figure, path, self.status, self.preferences.png_scale)

    def _export_dialog(self) -> None:
        path = save_dialog(self, "Export the comparison", self.sides[0].data.path.parent / "compare.png")
        if path:
            self.export(path)

    def closeEvent(self, event: QCloseEvent) -> None:
        for side in self.sides:
            if side.data is not None:
                side.data.close()
            side.set_data(None)
        super().closeEvent(event)
        self.closed.emit()


def _span(times: np.ndarray) -> str:
    return f"{times[0]:.0f} … {times[-1]:.0f}" if times.size else "none"
