"""Mean |x| of the selected channel over block x step: how a massive channel grows through the run."""
from __future__ import annotations

import numpy as np

from gui.selection import Selection
from gui.session_data import SessionData
from gui.views.heatmap_plot import HeatmapPlot


class StepHeatmap(HeatmapPlot):
    """Recomputed on a channel or stream change only; a step move just moves the crosshair."""

    def __init__(self, selection: Selection):
        super().__init__("step", "block", "mean |x|", colormap="inferno", crosshair="#00c8ff")
        self.selection = selection
        self.data: SessionData | None = None
        self.log = False
        self.cellClicked.connect(lambda row, col: selection.set(block=row, step=col))
        selection.changed.connect(self._on_changed)

    def set_data(self, data: SessionData | None) -> None:
        self.data = data
        self._redraw(fit=True)

    def set_log(self, log: bool) -> None:
        self.log = log
        self.set_bar_label("log10 mean |x|" if log else "mean |x|")  # here, not per redraw: it re-lays the bar
        self._redraw()

    def _on_changed(self, fields: frozenset) -> None:
        if fields & {"stream", "channel"}:
            self._redraw(fit="stream" in fields)
        else:
            self._mark()

    def _mark(self) -> None:
        pick = self.data.resolve(self.selection) if self.data else None
        if pick is not None:
            self.mark(pick.block, pick.step)

    def _redraw(self, fit: bool = False) -> None:
        pick = self.data.resolve(self.selection) if self.data else None
        if pick is None:
            self.clear_values("mean |x| per step: no step recorded")
            return
        st = self.data.stats(pick.stream)
        values = st.mean_abs[:, :, pick.channel].T  # (blocks, steps)
        if self.log:
            values = np.log10(np.maximum(values, 1e-6))
        finite = values[np.isfinite(values)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        self.set_values(np.ascontiguousarray(values), (lo, max(hi, lo + 1e-6)))
        self.set_title(f"mean |x| of channel {pick.channel} · {pick.stream}")
        if fit:
            self.set_row_names(st.blocks)
            self.set_column_numbers(values.shape[1])
            self.fit(*values.shape)
        self.mark(pick.block, pick.step)
