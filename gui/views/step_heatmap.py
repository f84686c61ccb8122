"""Mean |x| of the selected channel over block x step: how a massive channel grows through the run."""
from __future__ import annotations

import numpy as np

from ..selection import Selection
from .heatmap_plot import NO_SESSION, SelectionHeatmap


class StepHeatmap(SelectionHeatmap):
    """Recomputed on a channel or stream change only; a step move just moves the crosshair."""

    column = "step"
    redraw_on = frozenset({"stream", "channel"})

    def __init__(self, selection: Selection):
        super().__init__(selection, "step", "mean |x|", colormap="inferno", crosshair="#00c8ff")

    def _redraw(self, fit: bool = False) -> None:
        pick = self.data.resolve(self.selection) if self.data else None
        if pick is None:
            self.clear_values(NO_SESSION if self.data is None else "mean |x| per step: no step recorded")
            return
        st = self.data.stats(pick.stream)
        values = self._values(pick)
        self.set_values(values, self.levels(pick))
        self.set_title(f"mean |x| of channel {pick.channel} · {pick.stream}")
        if fit:
            self.set_row_names(st.blocks)
            self.fit(*values.shape)
        self.mark(pick.block, pick.step)

    def _values(self, pick) -> np.ndarray:
        """(blocks, steps) mean |x| of the selected channel, log10 when asked."""
        values = self.data.stats(pick.stream).mean_abs[:, :, pick.channel].T
        return np.ascontiguousarray(np.log10(np.maximum(values, 1e-6)) if self.log else values)

    def own_levels(self, pick) -> tuple[float, float]:
        values = self._values(pick)
        finite = values[np.isfinite(values)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        return lo, max(hi, lo + 1e-6)

    def describe(self, row: int, col: int, value: float) -> str:
        pick = self.data.resolve(self.selection)
        return (f"{self.row_names[row]} · channel {pick.channel} · {self.data.step_label(col)} · "
                f"{self.bar_label} {value:,.4g}")
