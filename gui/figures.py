"""Line figures shared by the app (the probe panel) and the headless commands (probe, clusters, claims, the model
card), drawn with pyqtgraph; the CLI runs Qt on the offscreen platform when there is no display.

One style per series name: the paper's strategies differ in colour, dash and marker, so lines that overlap
(bottom-k sits on the unperturbed line) stay distinguishable, also in greyscale; the reference line is drawn
first, under the others. The legend sits beside the plot, never on the data, and a quantity in [0, 1] gets a
plain 0-1 axis (pyqtgraph would otherwise rescale it to "x0.001" units).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

COLORS = {"top": (214, 39, 40), "bottom": (31, 119, 180), "random": (110, 110, 110), "unperturbed": (0, 0, 0)}
# Series without a strategy's colour (blocks, variants): eight distinct colours, then the markers change.
_FALLBACK = [(44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207), (140, 86, 75), (227, 119, 194),
             (188, 189, 34), (0, 0, 0)]
_FALLBACK_SYMBOLS = ("o", "s", "t", "d")
_DASHES = {"top": "solid", "bottom": "dash", "random": "dot", "unperturbed": "dashdot"}
_SYMBOLS = {"top": "o", "bottom": "s", "random": "t", "unperturbed": None}
DRAW_ORDER = ("unperturbed", "random", "top", "bottom")  # later is on top: bottom-k over the flat reference
Series = dict[str, tuple[Sequence[float], Sequence[float | None], Sequence[float | None] | None]]


def _app():
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import pyqtgraph as pg

    return pg.mkQApp()


def style(label: str, index: int) -> tuple[tuple[int, int, int], str, str | None]:
    """(colour, dash, marker) of a series: the strategies' own, else by position."""
    base = label.removesuffix("-k")
    symbol = _FALLBACK_SYMBOLS[(index // len(_FALLBACK)) % len(_FALLBACK_SYMBOLS)]
    return (COLORS.get(base, _FALLBACK[index % len(_FALLBACK)]), _DASHES.get(base, "solid"), _SYMBOLS.get(base, symbol))


def draw_lines(layout, series: Series, x_label: str, y_label: str, unit_interval: bool = False,
               x_ticks: Sequence[str] | None = None):
    """A plot at (0, 0) of a pyqtgraph GraphicsLayout and its legend beside it at (0, 1); returns the plot."""
    import numpy as np
    import pyqtgraph as pg
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QSizePolicy

    dashes = {"solid": Qt.PenStyle.SolidLine, "dash": Qt.PenStyle.DashLine, "dot": Qt.PenStyle.DotLine,
              "dashdot": Qt.PenStyle.DashDotLine}
    plot = layout.addPlot(row=0, col=0)
    legend = pg.LegendItem(labelTextColor="k")
    legend.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)  # its own size, at the top right
    layout.addItem(legend, row=0, col=1)
    layout.layout.setAlignment(legend, Qt.AlignmentFlag.AlignTop)
    plot.showGrid(x=True, y=True, alpha=0.25)
    plot.setLabel("bottom", x_label, color="k")
    plot.setLabel("left", y_label, color="k")
    ordered = sorted(series.items(), key=lambda item: _rank(item[0]))
    for i, (label, (x, y, spread)) in enumerate(ordered):
        color, dash, symbol = style(label, list(series).index(label))
        x = np.asarray(x, float)
        y = np.asarray([np.nan if v is None else v for v in y], float)
        pen = pg.mkPen(color, width=2.2 if dash == "solid" else 2.0, style=dashes[dash])
        curve = plot.plot(x, y, name=label, pen=pen, symbol=symbol, symbolSize=8, symbolPen=pg.mkPen(color, width=1.5),
                          symbolBrush=(255, 255, 255) if symbol == "s" else color)  # hollow squares show what is under
        legend.addItem(curve, label)
        errors = np.asarray([0 if v is None else v for v in spread], float) if spread is not None else np.zeros(0)
        if errors.any():
            plot.addItem(pg.ErrorBarItem(x=x, y=y, height=2 * errors, pen=pg.mkPen(color, width=1.2), beam=0.1))
    if x_ticks is not None:
        plot.getAxis("bottom").setTicks([list(enumerate(x_ticks))])
    for axis in ("left", "bottom"):
        plot.getAxis(axis).enableAutoSIPrefix(False)
        plot.getAxis(axis).setTextPen("k")
        plot.getAxis(axis).setPen("k")
    if unit_interval:
        plot.setYRange(0, 1, padding=0.05)
        plot.getAxis("left").setTicks([[(v / 5, f"{v / 5:.1f}") for v in range(6)]])
    return plot


def _rank(label: str) -> int:
    base = label.removesuffix("-k")
    return DRAW_ORDER.index(base) if base in DRAW_ORDER else len(DRAW_ORDER)


def line_figure(series: Series, title: str, x_label: str, y_label: str, out: Path,
                x_ticks: Sequence[str] | None = None, unit_interval: bool = False) -> list[Path]:
    """Lines with optional error bars, one per series (label -> (x, y, spread)); writes out.png and out.svg
    through the app's exporter (pyqtgraph's own SVG exporter fails on Qt 6.12's path strings)."""
    _app()
    import pyqtgraph as pg

    from .export import export_widget

    widget = pg.GraphicsLayoutWidget()
    widget.setBackground("w")
    widget.resize(820, 460)
    widget.ci.addLabel(title, row=0, col=0, colspan=2, color="k", size="12pt")
    layout = widget.ci.addLayout(row=1, col=0, colspan=2)
    draw_lines(layout, series, x_label, y_label, unit_interval, x_ticks)
    written = [export_widget(widget, out.with_suffix(suffix)) for suffix in (".png", ".svg")]
    widget.close()
    return written
