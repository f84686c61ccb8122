"""Mean |x| over block x channel at the selected step, with massive channels circled."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from ..selection import Selection
from .heatmap_plot import NO_SESSION, SelectionHeatmap

_SUN_PEN = pg.mkPen(color=(255, 255, 255), width=1.2)


class _Markers(pg.ScatterPlotItem):
    """Circles that let a click through to the cell underneath (massive cells are the ones people click)."""

    def mouseClickEvent(self, ev) -> None:
        ev.ignore()


class ChannelHeatmap(SelectionHeatmap):
    """Redraws only the cells on a step or stream change; a block or channel change moves the crosshair."""

    column = "channel"
    redraw_on = frozenset({"stream", "step"})

    def __init__(self, selection: Selection):
        super().__init__(selection, "channel", "mean |x|", colormap="viridis", crosshair="#dc143c")
        self.sun = _Markers(symbol="o", size=7, pen=_SUN_PEN, brush=None, pxMode=True)
        self.sun.setToolTip("massive by Sun et al.'s rule: max |x| > 100 and > 1000 x the block's median |x|")
        self.plot.addItem(self.sun)

    def _redraw(self, fit: bool = False) -> None:
        pick = self.data.resolve(self.selection) if self.data else None
        if pick is None:
            self.sun.clear()
            self.clear_values(NO_SESSION if self.data is None else "mean |x|: no step recorded")
            return
        if not self.data.keeps(pick.step):
            self.sun.clear()
            self.clear_values(self.data.not_kept(pick.step, "per-channel statistics"))
            return
        st = self.data.stats(pick.stream)
        self.set_values(self.data.heatmap(pick.stream, pick.step, self.log), self.levels(pick))
        rows, cols = self.data.sun_cells(pick.stream, pick.step)
        self.sun.setData(x=cols, y=rows)
        self.set_title(f"mean |x| · {pick.stream} · {self.data.step_label(pick.step)} · ○ massive: {_listed(cols)}")
        if fit:
            self.set_row_names(st.blocks)
            self.fit(*st.mean_abs.shape[1:])
        self.mark(pick.block, pick.channel)

    def own_levels(self, pick) -> tuple[float, float]:
        """One range over every step of the stream, so that colours compare across steps."""
        st = self.data.stats(pick.stream)
        return st.log_levels if self.log else st.levels

    def describe(self, row: int, col: int, value: float) -> str:
        pick = self.data.resolve(self.selection)
        return (f"{self.row_names[row]} · channel {col} · {self.data.step_label(pick.step)} · "
                f"{self.bar_label} {value:,.4g}")


def _listed(channels: np.ndarray) -> str:
    """The first few distinct massive channels, for a title that must stay short."""
    unique = np.unique(channels)
    shown = ", ".join(str(c) for c in unique[:4])
    return f"{shown}{'…' if unique.size > 4 else ''}" if unique.size else "none"
