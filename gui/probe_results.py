"""A probe's results: the image grid (rows = strategies, columns = k, the unperturbed baseline first) with each
image's metrics under it, and the quality-vs-k plot per strategy. `figure` is what gets exported."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

import massivelens.gui.views  # noqa: F401  (pyqtgraph's white look, set once for every figure of the app)

from .figures import COLORS
from .probe_report import METRICS, ProbeReport
from .session_list import to_qimage

TILE = 112  # pixels per image: three strategies and the plot fit a 900 px window


class Tile(QWidget):
    """One image with a caption under it; small images are scaled with nearest neighbour to stay crisp."""

    def __init__(self, pixmap: QPixmap, caption: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.image = QLabel()
        self.image.setFixedSize(TILE, TILE)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setStyleSheet("background: #222;")
        smooth = pixmap.width() > TILE
        mode = Qt.TransformationMode.SmoothTransformation if smooth else Qt.TransformationMode.FastTransformation
        self.image.setPixmap(pixmap.scaled(TILE, TILE, Qt.AspectRatioMode.KeepAspectRatio, mode))
        self.caption = QLabel(caption)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        layout.addWidget(self.image)
        layout.addWidget(self.caption)


def caption(row: dict) -> str:
    text = f"PSNR {row['psnr']:.1f} dB"
    if row["accuracy"] is not None:
        text += f"\naccuracy {row['accuracy']:.0f} · IoU {row['mask_iou']:.2f}"
    return text


class ProbeResults(QWidget):
    """Pickers for the generation (prompt and seed) and the plotted metric, above the exportable figure."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.report: ProbeReport | None = None
        self.tiles: dict[tuple[str, int], Tile] = {}
        self.baseline: Tile | None = None
        self.generation = QComboBox()
        self.generation.currentIndexChanged.connect(self._show_grid)
        self.draw = QSpinBox()
        self.draw.setToolTip("which random draw the random-k row shows")
        self.draw.valueChanged.connect(self._show_grid)
        self.metric_box = QComboBox()
        self.metric_box.currentIndexChanged.connect(self._plot)
        for box in (self.generation, self.metric_box):
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.figure = QWidget()
        self.figure.setStyleSheet("background: white; color: black;")
        self.title = QLabel("No probe yet: set it up on the left and press Run.")
        self.title.setWordWrap(True)
        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        self.grid.setSpacing(4)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(260)
        self.plot.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)  # fill what the grid leaves
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.legend = self.plot.addLegend(offset=(-10, 10))
        figure = QVBoxLayout(self.figure)
        figure.addWidget(self.title)
        figure.addWidget(self.grid_host, alignment=Qt.AlignmentFlag.AlignLeft)
        figure.addWidget(self.plot, stretch=1)
        pickers = QHBoxLayout()
        for label, box in (("generation", self.generation), ("random draw", self.draw), ("plot", self.metric_box)):
            pickers.addWidget(QLabel(label))
            pickers.addWidget(box)
        pickers.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(pickers)
        layout.addWidget(self.figure, stretch=1)

    def show_report(self, report: ProbeReport) -> None:
        self.report = report
        for box, items in ((self.generation, [(f"{i + 1}: {p} · seed {s}", (i, s)) for i, s, p in report.runs()]),
                           (self.metric_box, [(METRICS[m], m) for m in report.metrics()])):
            box.blockSignals(True)
            box.clear()
            for text, data in items:
                box.addItem(text, data)
            box.blockSignals(False)
        self.generation.setEnabled(self.generation.count() > 1)
        self.draw.blockSignals(True)
        self.draw.setRange(1, report.draws())
        self.draw.setValue(1)
        self.draw.blockSignals(False)
        self.draw.setEnabled(report.draws() > 1)
        self._show_grid()
        self._plot()

    # The grid ------------------------------------------------------------------------------------
    def _show_grid(self) -> None:
        while self.grid.count():
            self.grid.takeAt(0).widget().deleteLater()
        self.tiles, self.baseline = {}, None
        if self.report is None or self.generation.currentData() is None:
            return
        prompt_index, seed = self.generation.currentData()
        draw = self.draw.value() - 1
        rows = self.report.tiles(prompt_index, seed, draw)
        strategies, ks = self.report.strategies(), self.report.ks()
        prompt = next(p for i, s, p in self.report.runs() if (i, s) == (prompt_index, seed))
        action = "set to zero" if self.report.mode == "zero" else "set to their mean"
        self.title.setText(f"<b>{prompt}</b> · seed {seed} · {Path(self.report.model).name} · "
                           f"k channels per block {action}"
                           + (f" (random: draw {draw + 1} of {self.report.draws()})" if "random" in strategies else ""))
        for col, text in enumerate(["unperturbed"] + [f"k = {k}" for k in ks], start=1):
            self.grid.addWidget(_header(text), 0, col)
        for row, strategy in enumerate(strategies, start=1):
            self.grid.addWidget(_header(f"{strategy}-k", COLORS.get(strategy)), row, 0)
            for col, k in enumerate(ks, start=2):
                if (strategy, k) in rows:
                    found = rows[(strategy, k)]
                    self.tiles[(strategy, k)] = Tile(QPixmap(str(self.report.image_path(found))), caption(found))
                    self.grid.addWidget(self.tiles[(strategy, k)], row, col)
        image = self.report.baseline_image(prompt_index, seed)
        pixmap = QPixmap.fromImage(to_qimage(image)) if image is not None else QPixmap()
        self.baseline = Tile(pixmap, "baseline")
        self.grid.addWidget(self.baseline, 1, 1, max(len(strategies), 1), 1, Qt.AlignmentFlag.AlignVCenter)

    # The plot ------------------------------------------------------------------------------------
    def _plot(self) -> None:
        self.plot.clear()
        self.legend.clear()
        metric = self.metric_box.currentData()
        if self.report is None or metric is None:
            return
        ks = self.report.ks()
        position = {k: i for i, k in enumerate(ks)}  # k grows geometrically: evenly spaced ticks read best
        for strategy in self.report.strategies():
            group = [e for e in self.report.summary if e["strategy"] == strategy and e[metric] is not None]
            x = np.asarray([position[e["k"]] for e in group], float)
            y = np.asarray([e[metric] for e in group], float)
            color = COLORS.get(strategy, (44, 160, 44))
            self.plot.plot(x, y, pen=pg.mkPen(color, width=2.5), symbol="o", symbolBrush=color, symbolPen=color,
                           symbolSize=8, name=f"{strategy}-k")
            spread = np.asarray([e.get(f"{metric}_sem") or 0.0 for e in group], float)  # standard error of the mean
            if spread.any():
                self.plot.addItem(pg.ErrorBarItem(x=x, y=y, height=2 * spread, pen=pg.mkPen(color, width=1.2), beam=0.1))
        if metric == "accuracy" and self.report.baseline_accuracy is not None:
            self.plot.plot([0, len(ks) - 1], [self.report.baseline_accuracy] * 2, name="unperturbed",
                           pen=pg.mkPen((0, 0, 0), width=1.5, style=Qt.PenStyle.DashLine))
        self.plot.getAxis("bottom").setTicks([[(i, str(k)) for i, k in enumerate(ks)]])
        self.plot.setLabel("bottom", "k (channels per block)")
        self.plot.setLabel("left", METRICS[metric])
        self.plot.setTitle(f"{METRICS[metric]} against k · mean ± std over prompts, seeds and draws", size="10pt")


def _header(text: str, color: tuple[int, int, int] | None = None) -> QLabel:
    label = QLabel(f"<b>{text}</b>")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    if color is not None:
        label.setStyleSheet(f"color: rgb{color};")
    return label
