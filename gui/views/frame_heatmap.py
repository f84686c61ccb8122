"""Mean |x| of the selected channel over block x frame of a video at the selected step: where in the clip a
massive channel lives (first-frame dominance shows as one bright column). Columns are the video's frames; the
frames one latent frame decodes to share its value, so the latent grouping reads as runs of equal cells."""
from __future__ import annotations

import numpy as np

from ..selection import Selection
from .heatmap_plot import NO_SESSION, SelectionHeatmap


class FrameHeatmap(SelectionHeatmap):
    """From the per-frame mean |x| the session keeps for each block's top-k channels: blocks where the selected
    channel is not in the top-k at this step are gaps. Recomputed on a stream, channel or step change; a frame
    move just moves the crosshair."""

    column = "frame"
    redraw_on = frozenset({"stream", "channel", "step"})

    def __init__(self, selection: Selection):
        super().__init__(selection, "frame", "mean |x|", colormap="inferno", crosshair="#00c8ff")

    def _redraw(self, fit: bool = False) -> None:
        pick = self.data.resolve(self.selection) if self.data else None
        if pick is None or not self.data.is_video:
            self.clear_values(NO_SESSION if self.data is None else "mean |x| per frame: a video session's view")
            return
        if pick.stream != "image":
            self.clear_values("mean |x| per frame: image (video) stream only")
            return
        values = self._values(pick)
        if not np.isfinite(values).any():
            self.clear_values(f"channel {pick.channel} is in no block's top-{self.data.k} at step {pick.step}: "
                              "per-frame values exist for top-k channels")
            return
        self.set_values(values, self.levels(pick))
        self.set_title(f"mean |x| of channel {pick.channel} per frame · {self.data.step_label(pick.step)}")
        self.set_row_names(self.data.blocks("image"))
        self.fit(*values.shape)
        self.mark(pick.block, pick.frame)

    def _values(self, pick) -> np.ndarray:
        """(blocks, frames) mean |x| of the selected channel, NaN where it is not in a block's top-k; log10 when asked."""
        values = self.data.frame_means(pick.step, pick.channel)
        latent = [self.data.latent_of(f) for f in range(self.data.frame_count)]
        values = values[:, latent]
        return np.ascontiguousarray(np.log10(np.maximum(values, 1e-6)) if self.log else values)

    def own_levels(self, pick) -> tuple[float, float]:
        values = self._values(pick)
        finite = values[np.isfinite(values)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        return lo, max(hi, lo + 1e-6)

    def describe(self, row: int, col: int, value: float) -> str:
        pick = self.data.resolve(self.selection)
        return (f"{self.row_names[row]} · channel {pick.channel} · frame {col} (latent {self.data.latent_of(col)}) · "
                f"{self.bar_label} {value:,.4g}")
