"""A batch's dataset summary (issue 7): how often each channel is in the top-k across the batch's sessions, as
a block x channel heatmap per stream, and per block the most frequent channels, the Jaccard stability of the
top-k set and how often Sun et al.'s rule holds (sessions.dataset_summary computes all of it; this only shows it).
"""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from massivelens.sessions.dataset_summary import (
    DatasetSummary,
    read_summary,
    summary_json,
)

from .export import ExportPreferences, export_reporting, save_dialog
from .views.heatmap_plot import HeatmapPlot

HEADERS = ("block", "most frequent top-k channels (share of sessions)", "Jaccard seeds", "Jaccard prompts",
           "Sun holds", "Sun channels (share)", "max/median")
_SHOWN = 6  # channels listed per block


class SummaryView(QWidget):
    """A window of its own; the heatmap and the table select a block (and the heatmap a channel) together.
    `closed` fires when it closes, so its owner can let it go."""

    closed = Signal()

    def __init__(self, summary: DatasetSummary, path: Path, preferences: ExportPreferences | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.preferences = preferences or ExportPreferences()
        self.summary, self.path = summary, Path(path)
        self.setWindowTitle(f"MassiveLens · batch summary · {self.path.name}")
        self.blocks_json = summary_json(summary, top=_SHOWN)["blocks"]
        self.header = QLabel(_describe(summary, self.path))
        self.header.setWordWrap(True)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.stream = QComboBox()
        self.stream.addItems(list(summary.streams))
        self.stream.currentTextChanged.connect(self._show_stream)
        export = QPushButton("Export heatmap…")
        export.clicked.connect(self._export_dialog)
        self.heatmap = HeatmapPlot("channel", "block", "fraction of sessions with the channel in their top-k",
                                   colormap="viridis", crosshair="#dc143c")
        self.heatmap.cellClicked.connect(self.select)
        self.cell = QLabel()
        self.cell.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = _table()
        self.table.cellClicked.connect(lambda row, _: self.select(row, self.channel))
        self.status = QLabel()
        self.status.setStyleSheet("color: gray")
        self.block, self.channel = 0, 0
        self._layout(export)
        self.resize(1300, 820)
        self._show_stream(self.stream.currentText())

    @classmethod
    def open(cls, path: Path, preferences: ExportPreferences | None = None) -> "SummaryView":
        """A batch folder or its summary.h5; raises SessionError with a one-line message."""
        return cls(read_summary(path), Path(path), preferences)

    def _layout(self, export: QPushButton) -> None:
        bar = QHBoxLayout()
        bar.addWidget(QLabel("stream"))
        bar.addWidget(self.stream)
        bar.addWidget(export)
        bar.addWidget(self.status, stretch=1)
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.heatmap, stretch=1)
        column.addWidget(self.cell)
        split = QSplitter(Qt.Orientation.Vertical)  # the heatmap gets the full width: channels are many
        split.addWidget(left)
        split.addWidget(self.table)
        split.setSizes([500, 260])
        layout = QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addLayout(bar)
        layout.addWidget(split, stretch=1)

    # Data ----------------------------------------------------------------------------------------
    def _show_stream(self, stream: str) -> None:
        data = self.summary.streams[stream]
        self.heatmap.set_values(data.frequency, (0.0, 1.0))
        self.heatmap.set_title(f"how often each channel is in the top-{self.summary.k} · {stream} stream · "
                               f"{len(self.summary.sessions)} sessions")
        self.heatmap.set_row_names(data.blocks)
        self.heatmap.fit(*data.frequency.shape)
        rows = [b for b in self.blocks_json if b["stream"] == stream]
        self.table.setRowCount(len(data.blocks))
        by_name = {b["block"]: b for b in rows}
        for r, name in enumerate(data.blocks):
            for c, text in enumerate(_cells(name, by_name.get(name))):
                item = QTableWidgetItem(text)
                if c in (2, 3, 4, 6):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        self.select(min(self.block, len(data.blocks) - 1), min(self.channel, data.frequency.shape[1] - 1))

    def select(self, block: int, channel: int) -> None:
        """One block (and channel) everywhere: crosshair, table row, and the cell's numbers."""
        self.block, self.channel = block, channel
        self.heatmap.mark(block, channel)
        self.table.selectRow(block)
        data = self.summary.streams[self.stream.currentText()]
        frequency = data.frequency[block, channel]
        if np.isnan(frequency):
            self.cell.setText(f"{data.blocks[block]}: no {self.stream.currentText()} output")
            return
        self.cell.setText(
            f"{data.blocks[block]} · channel {channel}: in the top-{self.summary.k} of {frequency:.0%} of sessions · "
            f"mean |x| {data.mean_abs_mean[block, channel]:,.1f} ± {data.mean_abs_std[block, channel]:,.1f} · "
            f"Sun et al. in {data.sun_frequency[block, channel]:.0%}")

    # Export --------------------------------------------------------------------------------------
    def export(self, path: Path) -> Path | None:
        return export_reporting(self.heatmap, path, self.status, self.preferences.png_scale)

    def _export_dialog(self) -> None:
        folder = self.path if self.path.is_dir() else self.path.parent
        path = save_dialog(self, "Export the frequency heatmap", folder / "frequency.png")
        if path:
            self.export(path)


    def closeEvent(self, event: QCloseEvent) -> None:
        super().closeEvent(event)
        self.closed.emit()


def _cells(name: str, block: dict | None) -> list[str]:
    """One table row from summary_json's entry for the block (None: the stream has no output there)."""
    if block is None:
        return [name, "no output", "–", "–", "–", "–", "–"]
    frequent = ", ".join(f"{c['channel']} ({c['frequency']:.2f})" for c in block["frequent_channels"])
    sun = ", ".join(f"{c['channel']} ({c['frequency']:.2f})" for c in block["sun_channels"][:_SHOWN])
    holds = "–" if block["sun_holds"] is None else f"{block['sun_holds']:.0%}"
    ratio = "–" if block["max_over_median"] is None else f"{block['max_over_median']:,.0f}"
    return [name, frequent or "–", _number(block["jaccard_seeds"]), _number(block["jaccard_prompts"]), holds, sun or "–", ratio]


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _table() -> QTableWidget:
    table = QTableWidget(0, len(HEADERS))
    table.setHorizontalHeaderLabels(HEADERS)
    table.horizontalHeaderItem(2).setToolTip("mean pairwise Jaccard of the top-k sets across one prompt's seeds")
    table.horizontalHeaderItem(3).setToolTip("mean pairwise Jaccard of the top-k sets across sessions of different prompts")
    table.horizontalHeaderItem(4).setToolTip("share of sessions where Sun et al.'s rule (|x| > 100 and > 1000 x median) marks a channel")
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(20)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
    return table


def _describe(summary: DatasetSummary, path: Path) -> str:
    failed = f" · <span style='color:#b00'>{len(summary.failed)} failed</span>" if summary.failed else ""
    return (f"<b>Batch summary</b> · model {html.escape(Path(summary.model).name)} · k={summary.k} · "
            f"{len(summary.sessions)} sessions of {len(summary.prompts)} prompts{failed} · created {summary.created} · "
            f"<span style='color:gray'>{html.escape(str(path))}</span>")
