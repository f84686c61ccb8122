"""Figures for the headless commands (probe, clusters, claims, transport), drawn with pyqtgraph offscreen.

The app and the CLI share one plotting stack; the CLI calls `line_figure` without a display by
running Qt on the offscreen platform.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

COLORS = {"top": (214, 39, 40), "bottom": (31, 119, 180), "random": (127, 127, 127)}
_FALLBACK = [(44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207)]


def _app():
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import pyqtgraph as pg

    return pg.mkQApp()


def line_figure(
    series: dict[str, tuple[Sequence[float], Sequence[float], Sequence[float] | None]],
    title: str,
    x_label: str,
    y_label: str,
    out: Path,
    x_ticks: Sequence[str] | None = None,
) -> list[Path]:
    """Lines with optional error bars, one per series (label -> (x, y, spread)); writes out.png and out.svg
    through the app's exporter (pyqtgraph's own SVG exporter fails on Qt 6.12's path strings)."""
    _app()
    import numpy as np
    import pyqtgraph as pg

    from .export import export_widget

    widget = pg.PlotWidget(background="w")
    widget.resize(720, 460)
    plot = widget.getPlotItem()
    plot.setTitle(title, color="k", size="12pt")
    plot.setLabel("bottom", x_label, color="k")
    plot.setLabel("left", y_label, color="k")
    plot.showGrid(x=True, y=True, alpha=0.25)
    plot.addLegend(offset=(-10, 10), labelTextColor="k")
    for i, (label, (x, y, spread)) in enumerate(series.items()):
        color = COLORS.get(label, _FALLBACK[i % len(_FALLBACK)])
        x = np.asarray(x, float)
        y = np.asarray([np.nan if v is None else v for v in y], float)
        plot.plot(x, y, pen=pg.mkPen(color, width=2.5), symbol="o", symbolBrush=color,
                  symbolPen=color, symbolSize=7, name=label)
        errors = np.asarray([0 if v is None else v for v in spread], float) if spread is not None else np.zeros(0)
        if errors.any():
            plot.addItem(pg.ErrorBarItem(x=x, y=y, height=2 * errors, pen=pg.mkPen(color, width=1.2), beam=0.1))
    if x_ticks is not None:
        plot.getAxis("bottom").setTicks([list(enumerate(x_ticks))])
    for axis in ("left", "bottom"):
        plot.getAxis(axis).setTextPen("k")
        plot.getAxis(axis).setPen("k")
    written = [export_widget(widget, out.with_suffix(suffix)) for suffix in (".png", ".svg")]
    widget.close()
    return written
