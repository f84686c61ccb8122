"""A clickable heatmap with a colour bar and a crosshair: the common base of the two heatmap views.

When there are more columns than screen pixels (3072 FLUX channels in a 500 px plot), columns are
max-pooled for display: plain resampling would skip most channels, and a massive channel is one column.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal

_MAX_TICKS = 12
NO_SESSION = "no session"


class Title(pg.LabelItem):
    """A title that is clipped at the edges rather than widen its figure: a LabelItem's minimum width is its
    text's, and in a narrow panel (a comparison) that pushes the colour bar out of sight."""

    def __init__(self, text: str = ""):
        super().__init__(text, size="10pt")

    def updateMin(self) -> None:
        super().updateMin()
        height = self._sizeHint[Qt.SizeHint.MinimumSize][1]
        self._sizeHint[Qt.SizeHint.MinimumSize] = (0, height)
        self.setMinimumWidth(0)


class _ClickableImage(pg.ImageItem):
    """An ImageItem that reports which pixel was left-clicked (item coordinates are pixel indices)."""

    sigCellClicked = Signal(int, int)

    def mouseClickEvent(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton or self.image is None:
            return
        pos = ev.pos()
        row, col = int(np.floor(pos.y())), int(np.floor(pos.x()))
        if 0 <= row < self.image.shape[0] and 0 <= col < self.image.shape[1]:
            ev.accept()
            self.sigCellClicked.emit(row, col)


class HeatmapPlot(pg.GraphicsLayoutWidget):
    """Rows top to bottom, columns left to right, cell (row, col) centred on (x=col, y=row) so that axis ticks
    name cells; `cellClicked(row, col)` on a left click (on a pooled pixel: its largest cell)."""

    cellClicked = Signal(int, int)

    def __init__(self, x_label: str, y_label: str, bar_label: str, colormap: str, crosshair: str):
        super().__init__()
        self.title = Title()
        self.ci.addItem(self.title, row=0, col=0)
        self.plot = self.ci.addPlot(row=1, col=0)
        self.plot.invertY(True)
        self.plot.setLabel("bottom", x_label)
        self.plot.setLabel("left", y_label)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.image = _ClickableImage()
        self.plot.addItem(self.image)
        self.values: np.ndarray | None = None
        self.pool = 1  # columns per displayed pixel
        self.bar = pg.ColorBarItem(colorMap=colormap, label=bar_label, interactive=False, colorMapMenu=False)
        self.bar.setImageItem(self.image, insert_in=self.plot)
        self.bar.axis.setWidth(None)  # the bar's fixed 45 px hides tick labels of narrow ranges such as 3.0791
        pen = pg.mkPen(crosshair, width=1.5)  # a colour absent from the colour map, so the selection stands out
        self.row_line = pg.InfiniteLine(angle=0, pen=pen, movable=False)
        self.col_line = pg.InfiniteLine(angle=90, pen=pen, movable=False)
        for line in (self.row_line, self.col_line):
            self.plot.addItem(line, ignoreBounds=True)
        self.image.sigCellClicked.connect(self._clicked)
        self.plot.getViewBox().sigXRangeChanged.connect(self._repool)
        self.plot.getViewBox().sigResized.connect(self._repool)
        self.clear_values(NO_SESSION)

    def set_values(self, values: np.ndarray, levels: tuple[float, float]) -> None:
        """New cell values under a fixed colour range (no autoLevels: colours must mean the same on every step)."""
        self.plot.setVisible(True)
        self.values = values
        self._show(self._pool_factor())
        set_levels(self.bar, levels)

    def _pool_factor(self) -> int:
        view = self.plot.getViewBox()
        (x0, x1), _ = view.viewRange()
        return max(1, int((x1 - x0) / max(view.width(), 1.0)))

    def _show(self, pool: int) -> None:
        self.pool = pool
        shown = self.values if pool == 1 else max_pool(self.values, pool)
        self.image.setImage(shown, autoLevels=False)
        self.image.setRect(QRectF(-0.5, -0.5, shown.shape[1] * pool, shown.shape[0]))

    def _repool(self) -> None:
        """Zooming or resizing changes how many columns share a pixel."""
        pool = self._pool_factor()
        if self.values is not None and pool != self.pool:
            self._show(pool)

    def _clicked(self, row: int, pixel: int) -> None:
        start = pixel * self.pool
        cells = self.values[row, start : start + self.pool]
        offset = int(np.nanargmax(cells)) if np.isfinite(cells).any() else 0
        self.cellClicked.emit(row, start + offset)

    def set_bar_label(self, text: str) -> None:
        self.bar.getAxis("left").setLabel(text)  # where ColorBarItem puts its label on a vertical bar

    def set_title(self, text: str) -> None:
        self.title.setText(text)

    def set_row_names(self, names: list[str]) -> None:
        """Label rows by name; thinned so that long block lists stay readable."""
        self.plot.getAxis("left").setTicks([_thinned(names)])

    def set_column_numbers(self, count: int) -> None:
        """Integer ticks on cell centres, for short axes where automatic ticks would fall between cells."""
        self.plot.getAxis("bottom").setTicks([_thinned([str(i) for i in range(count)])])

    def fit(self, rows: int, cols: int) -> None:
        self.plot.setRange(xRange=(-0.5, cols - 0.5), yRange=(-0.5, rows - 0.5), padding=0)

    def mark(self, row: int, col: int) -> None:
        """Crosshair through the centre of the selected cell."""
        self.row_line.setPos(row)
        self.col_line.setPos(col)

    def clear_values(self, title: str) -> None:
        """Nothing to draw: only the title says why (empty axes with a crosshair at 0 read as data)."""
        self.values = None
        self.image.clear()
        self.plot.setVisible(False)
        self.set_title(title)


def max_pool(values: np.ndarray, pool: int) -> np.ndarray:
    """(rows, cols) -> (rows, ceil(cols / pool)): the largest value of each run of `pool` columns."""
    pad = -values.shape[1] % pool
    padded = np.pad(values, ((0, 0), (0, pad)), mode="edge") if pad else values
    return padded.reshape(values.shape[0], -1, pool).max(axis=2)


def set_levels(bar: pg.ColorBarItem, levels: tuple[float, float]) -> None:
    """Only on a real change: each call redraws the bar's axis, which costs milliseconds on every slider move."""
    if tuple(bar.levels()) != tuple(levels):
        bar.setLevels(levels)


def _thinned(names: list[str]) -> list[tuple[int, str]]:
    stride = max(1, -(-len(names) // _MAX_TICKS))
    return [(i, names[i]) for i in range(0, len(names), stride)]


class SelectionHeatmap(HeatmapPlot):
    """A heatmap of one session linked to the Selection: rows are blocks, columns the field `column`
    ("channel" or "step"). It redraws when a field in `redraw_on` changes and only moves the crosshair
    otherwise, which keeps slider moves cheap. Subclasses draw in `_redraw(fit)`."""

    column: str
    redraw_on: frozenset

    def __init__(self, selection, x_label: str, bar_label: str, colormap: str, crosshair: str):
        super().__init__(x_label, "block", bar_label, colormap=colormap, crosshair=crosshair)
        self.selection = selection
        self.data = None
        self.log = False
        self.cellClicked.connect(lambda row, col: selection.set(block=row, **{self.column: col}))
        selection.changed.connect(self._on_changed)

    def set_data(self, data) -> None:
        self.data = data
        self._redraw(fit=True)

    def set_log(self, log: bool) -> None:
        self.log = log
        self.set_bar_label("log10 mean |x|" if log else "mean |x|")  # here, not per redraw: it re-lays the bar
        self._redraw()

    def _on_changed(self, fields: frozenset) -> None:
        if fields & self.redraw_on:
            self._redraw(fit="stream" in fields)
        else:
            self._mark()

    def _mark(self) -> None:
        pick = self.data.resolve(self.selection) if self.data else None
        if pick is not None:
            self.mark(pick.block, getattr(pick, self.column))

    def _redraw(self, fit: bool = False) -> None:
        raise NotImplementedError
