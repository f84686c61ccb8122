"""A clickable heatmap with a colour bar and a crosshair: the common base of the two heatmap views.

When there are more columns than screen pixels (3072 FLUX channels in a 500 px plot), columns are
max-pooled for display: plain resampling would skip most channels, and a massive channel is one column.
"""
from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QCursor, QFontMetrics, QKeyEvent
from PySide6.QtWidgets import QGraphicsRectItem, QToolTip

_MAX_TICKS = 12
NO_SESSION = "no session"


class Title(pg.LabelItem):
    """A title that never widens its figure: each line is elided to the width it gets, and the whole text is its
    tooltip (a LabelItem's minimum width is its text's, and in a narrow panel that pushes the colour bar out of
    sight). Lines are plain text separated by newlines; `full` is the text as set."""

    def __init__(self, text: str = ""):
        super().__init__("", size="10pt")
        self.full = ""
        self.setText(text)

    def setText(self, text: str, **args) -> None:
        self.full = text
        self.setToolTip(text)
        self._fit()

    def updateMin(self) -> None:
        super().updateMin()
        height = self._sizeHint[Qt.SizeHint.MinimumSize][1]
        self._sizeHint[Qt.SizeHint.MinimumSize] = (0, height)
        self.setMinimumWidth(0)

    def resizeEvent(self, ev) -> None:
        super().resizeEvent(ev)
        self._fit()

    def _fit(self) -> None:
        width = int(self.width()) - 8
        metrics = QFontMetrics(self.item.font())
        lines = self.full.split("\n")
        if width > 20:
            lines = [metrics.elidedText(line, Qt.TextElideMode.ElideRight, width) for line in lines]
        shown = "<br>".join(html.escape(line) for line in lines)
        if shown != getattr(self, "_shown", None):
            self._shown = shown
            super().setText(shown)


class CellAxis(pg.AxisItem):
    """Automatic ticks (they thin out as the plot narrows) that only fall on whole cells."""

    def tickSpacing(self, minVal: float, maxVal: float, size: float):
        return [(max(spacing, 1.0), offset) for spacing, offset in super().tickSpacing(minVal, maxVal, size)]


class _ClickableImage(pg.ImageItem):
    """An ImageItem that reports which pixel was left-clicked or hovered (item coordinates are pixel indices);
    (-1, -1) when the pointer leaves."""

    sigCellClicked = Signal(int, int)
    sigHovered = Signal(int, int)

    def _cell(self, pos) -> tuple[int, int] | None:
        if self.image is None:
            return None
        row, col = int(np.floor(pos.y())), int(np.floor(pos.x()))
        return (row, col) if 0 <= row < self.image.shape[0] and 0 <= col < self.image.shape[1] else None

    def mouseClickEvent(self, ev) -> None:
        cell = self._cell(ev.pos())
        if ev.button() != Qt.MouseButton.LeftButton or cell is None:
            return
        ev.accept()
        self.sigCellClicked.emit(*cell)

    def hoverEvent(self, ev) -> None:
        cell = None if ev.isExit() else self._cell(ev.pos())
        self.sigHovered.emit(*(cell or (-1, -1)))


class SelectionOutline(QGraphicsRectItem):
    """A box drawn just outside the selected cell, so the cell itself (usually the massive channel) stays
    visible; its margin is in screen pixels, so it stays a thin frame at any zoom and around pooled columns."""

    MARGIN = 2.5  # screen pixels between the cell's edge and the box

    def __init__(self, color: str, view: pg.ViewBox):
        super().__init__()
        self.view = view
        self.cell: tuple[int, int] | None = None
        self.setPen(pg.mkPen(color, width=2, cosmetic=True))
        self.setZValue(10)
        view.sigRangeChanged.connect(self.place)
        view.sigResized.connect(self.place)

    def set_cell(self, row: int, col: int) -> None:
        self.cell = (row, col)
        self.place()

    def place(self) -> None:
        if self.cell is None:
            return
        row, col = self.cell
        px, py = self.view.viewPixelSize()
        dx, dy = self.MARGIN * px, self.MARGIN * py
        self.setRect(QRectF(col - 0.5 - dx, row - 0.5 - dy, 1 + 2 * dx, 1 + 2 * dy))


class HeatmapPlot(pg.GraphicsLayoutWidget):
    """Rows top to bottom, columns left to right, cell (row, col) centred on (x=col, y=row) so that axis ticks
    name cells; `cellClicked(row, col)` on a left click (on a pooled pixel: its largest cell), `moved(drow, dcol)`
    on an arrow key. The wheel zooms; a double click, Home or the right-click menu's "View All" undo it; hovering
    a cell shows its values in a tooltip (`hover_text`)."""

    cellClicked = Signal(int, int)
    moved = Signal(int, int)

    def __init__(self, x_label: str, y_label: str, bar_label: str, colormap: str, crosshair: str):
        super().__init__()
        self.x_label, self.y_label, self.bar_label = x_label, y_label, bar_label
        self.row_names: list[str] = []
        self.shape: tuple[int, int] | None = None
        self.hover_text = ""
        self.title = Title()
        self.ci.addItem(self.title, row=0, col=0)
        self.plot = self.ci.addPlot(row=1, col=0, axisItems={"bottom": CellAxis("bottom")})
        self.plot.invertY(True)
        self.plot.setLabel("bottom", x_label)
        self.plot.setLabel("left", y_label)
        self.plot.setMenuEnabled(False, enableViewBoxMenu=True)  # the view box's menu: View All, mouse mode
        self.plot.hideButtons()
        self.sceneObj.contextMenu = []  # pyqtgraph's own "Export…" writes SVGs that only Qt draws right
        self.image = _ClickableImage()
        self.plot.addItem(self.image)
        self.values: np.ndarray | None = None
        self.pool = 1  # columns per displayed pixel
        self.bar = pg.ColorBarItem(colorMap=colormap, label=bar_label, interactive=False, colorMapMenu=False)
        self.bar.setImageItem(self.image, insert_in=self.plot)
        self.bar.axis.setWidth(None)  # the bar's fixed 45 px hides tick labels of narrow ranges such as 3.0791
        self.outline = SelectionOutline(crosshair, self.plot.getViewBox())  # a colour absent from the colour map
        self.plot.addItem(self.outline, ignoreBounds=True)
        self.image.sigCellClicked.connect(self._clicked)
        self.image.sigHovered.connect(self._hovered)
        self.plot.getViewBox().sigXRangeChanged.connect(self._repool)
        self.plot.getViewBox().sigResized.connect(self._repool)
        self.clear_values(NO_SESSION)

    @property
    def marked(self) -> tuple[int, int] | None:
        """The (row, column) the selection outline surrounds."""
        return self.outline.cell if self.outline.isVisible() else None

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

    def _cell(self, row: int, pixel: int) -> int:
        """The data column of a displayed pixel: on a pooled pixel, its largest cell."""
        start = pixel * self.pool
        cells = self.values[row, start : start + self.pool]
        return start + (int(np.nanargmax(cells)) if np.isfinite(cells).any() else 0)

    def _clicked(self, row: int, pixel: int) -> None:
        self.setFocus()
        self.cellClicked.emit(row, self._cell(row, pixel))

    def _hovered(self, row: int, pixel: int) -> None:
        if row < 0 or self.values is None:
            self.hover_text = ""
            QToolTip.hideText()
            return
        col = self._cell(row, pixel)
        self.hover_text = self.describe(row, col, float(self.values[row, col]))
        QToolTip.showText(QCursor.pos(), self.hover_text, self)

    def describe(self, row: int, col: int, value: float) -> str:
        """What a hovered cell is: its row, column and value."""
        name = self.row_names[row] if row < len(self.row_names) else str(row)
        return f"{self.y_label} {name} · {self.x_label} {col} · {self.bar_label} {value:,.4g}"

    def keyPressEvent(self, ev: QKeyEvent) -> None:
        steps = {Qt.Key.Key_Up: (-1, 0), Qt.Key.Key_Down: (1, 0), Qt.Key.Key_Left: (0, -1), Qt.Key.Key_Right: (0, 1)}
        if ev.key() in steps and self.values is not None:
            self.moved.emit(*steps[ev.key()])
        elif ev.key() == Qt.Key.Key_Home:
            self.reset_zoom()
        else:
            super().keyPressEvent(ev)

    def mouseDoubleClickEvent(self, ev) -> None:
        self.reset_zoom()
        ev.accept()

    def reset_zoom(self) -> None:
        if self.shape is not None:
            self.fit(*self.shape)

    def set_bar_label(self, text: str) -> None:
        self.bar_label = text
        self.bar.getAxis("left").setLabel(text)  # where ColorBarItem puts its label on a vertical bar

    def set_title(self, text: str) -> None:
        self.title.setText(text)

    def set_row_names(self, names: list[str]) -> None:
        """Label rows by name; thinned so that long block lists stay readable."""
        self.row_names = list(names)
        self.plot.getAxis("left").setTicks([_thinned(names)])

    def fit(self, rows: int, cols: int) -> None:
        """Show every cell: the view a zoom reset returns to."""
        self.shape = (rows, cols)
        self.plot.setRange(xRange=(-0.5, cols - 0.5), yRange=(-0.5, rows - 0.5), padding=0)

    def mark(self, row: int, col: int) -> None:
        """Outline the selected cell."""
        self.outline.setVisible(True)
        self.outline.set_cell(row, col)

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
        self.partner: SelectionHeatmap | None = None  # in a comparison: the other side's view, for one colour range
        self.cellClicked.connect(lambda row, col: selection.set(block=row, **{self.column: col}))
        self.moved.connect(self._move)
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

    def _move(self, rows: int, cols: int) -> None:
        """Arrow keys: the next block or column, kept inside the session."""
        pick = self.data.resolve(self.selection) if self.data else None
        if pick is None:
            return
        last_row, last_col = self.values.shape[0] - 1, self.values.shape[1] - 1
        row = min(max(pick.block + rows, 0), last_row)
        col = min(max(getattr(pick, self.column) + cols, 0), last_col)
        self.selection.set(block=row, **{self.column: col})

    def _mark(self) -> None:
        pick = self.data.resolve(self.selection) if self.data else None
        if pick is not None:
            self.mark(pick.block, getattr(pick, self.column))

    def own_levels(self, pick) -> tuple[float, float]:
        """The colour range this view's own session calls for at `pick`."""
        raise NotImplementedError

    def levels(self, pick) -> tuple[float, float]:
        """The own range, widened to the partner's when a comparison shares one colour scale."""
        lo, hi = self.own_levels(pick)
        other = self.partner.data.resolve(self.partner.selection) if self.partner and self.partner.data else None
        if other is not None:
            other_lo, other_hi = self.partner.own_levels(other)
            lo, hi = min(lo, other_lo), max(hi, other_hi)
        return lo, hi

    def _redraw(self, fit: bool = False) -> None:
        raise NotImplementedError
