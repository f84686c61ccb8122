"""All views of one session under one toolbar; the unit the main window shows and a comparison doubles."""
from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from .frame_controls import FrameControls
from .remembered import value
from .selection import Selection
from .session_data import SessionData
from .views.cluster_overlay import ClusterOverlay
from .views.frame_heatmap import FrameHeatmap
from .views.heatmap import ChannelHeatmap
from .views.ranking import RankingView
from .views.step_heatmap import StepHeatmap
from .views.token_map import BESIDE, OVER, TokenMapView


class SessionView(QWidget):
    """Controls write to the Selection and follow it back, so two views sharing one Selection stay in step.

    The selection controls and the display options sit on two rows, so the view fits beside the side panel on a
    1024 px screen and at half width in a comparison.
    """

    def __init__(self, selection: Selection, parent: QWidget | None = None):
        super().__init__(parent)
        self.selection = selection
        self.data: SessionData | None = None
        self.heatmap = ChannelHeatmap(selection)
        self.step_heatmap = StepHeatmap(selection)
        self.frame_heatmap = FrameHeatmap(selection)
        self.ranking = RankingView(selection)
        self.token_map = TokenMapView(selection)
        self.clusters = ClusterOverlay(selection)
        self.header = QLabel("No session. Record one, or File > Open.")
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.header.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.header)
        layout.addLayout(self._toolbar())
        layout.addWidget(self._panels(), stretch=1)
        selection.changed.connect(self._sync_controls)

    # Layout --------------------------------------------------------------------------------------
    def _toolbar(self) -> QVBoxLayout:
        self.stream = QComboBox()
        self.stream.currentTextChanged.connect(lambda text: text and self.selection.set(stream=text))
        self.step = QSlider(Qt.Orientation.Horizontal)
        self.step.setMinimumWidth(120)
        self.step.valueChanged.connect(lambda value: self.selection.set(step=value))
        self.step_label = QLabel()
        self.step_label.setFixedSize(self.step_label.fontMetrics().horizontalAdvance("step 9999 (t=9999)"),
                                     self.step_label.sizeHint().height())  # fixed: no relayout on every step
        self.frames = FrameControls(self.selection)
        self.block = QSpinBox()
        self.block.valueChanged.connect(lambda value: self.selection.set(block=value))
        self.channel = QSpinBox()
        self.channel.valueChanged.connect(lambda value: self.selection.set(channel=value))
        self.log = QCheckBox("log colour scale")
        self.log.toggled.connect(self.set_log)
        self.map_mode = QComboBox()
        self.map_mode.addItem("map over image", OVER)
        self.map_mode.addItem("map beside image", BESIDE)
        self.map_mode.currentIndexChanged.connect(lambda: self.token_map.set_mode(self.map_mode.currentData()))
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(60)
        self.opacity.setMaximumWidth(100)
        self.opacity.valueChanged.connect(lambda value: self.token_map.set_opacity(value / 100))
        bar = QVBoxLayout()
        bar.setSpacing(2)
        bar.addLayout(_row(("stream", self.stream), ("step", self.step), (None, self.step_label),
                           ("block", self.block), ("channel", self.channel)))
        bar.addLayout(_row((None, self.log), (None, self.map_mode), ("opacity", self.opacity),
                           *((None, widget) for widget in self.frames.widgets())))
        return bar

    def _panels(self) -> QSplitter:
        self.top = top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.heatmap)
        top.addWidget(self.token_map)
        top.addWidget(self.clusters)
        top.setSizes([350, 340, 370])
        self.bottom = bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.step_heatmap)
        bottom.addWidget(self.frame_heatmap)
        bottom.addWidget(self.ranking)
        bottom.setSizes([320, 320, 400])
        self.panels = panels = QSplitter(Qt.Orientation.Vertical)
        panels.addWidget(top)
        panels.addWidget(bottom)
        panels.setSizes([470, 330])
        return panels

    def splitters(self) -> dict[str, QSplitter]:
        return {"view_top": self.top, "view_bottom": self.bottom, "view_panels": self.panels}

    def remember(self, settings) -> None:
        """The display options, kept between launches."""
        settings.setValue("view/log", self.log.isChecked())
        settings.setValue("view/map_mode", self.map_mode.currentData())
        settings.setValue("view/opacity", self.opacity.value())

    def restore(self, settings) -> None:
        self.log.setChecked(value(settings, "view/log", False, bool))
        self.map_mode.setCurrentIndex(max(self.map_mode.findData(value(settings, "view/map_mode", OVER)), 0))
        self.opacity.setValue(value(settings, "view/opacity", self.opacity.value(), int))

    def figures(self) -> dict[str, QWidget]:
        """The exportable views by file stem (the block x frame heatmap: video sessions only)."""
        video = {"frame_heatmap": self.frame_heatmap} if self.data is not None and self.data.is_video else {}
        return {
            "channel_heatmap": self.heatmap,
            "step_heatmap": self.step_heatmap,
            **video,
            "ranking": self.ranking,
            "token_map": self.token_map,
            "cluster_overlay": self.clusters.figure,
        }

    # Data ----------------------------------------------------------------------------------------
    def set_data(self, data: SessionData | None) -> None:
        self.data = data
        self.header.setText(_describe(data))
        self._configure_controls()
        self.frames.set_data(data)
        self.frame_heatmap.setVisible(data is not None and data.is_video)
        for view in (self.heatmap, self.step_heatmap, self.frame_heatmap, self.ranking, self.token_map, self.clusters):
            view.set_data(data)

    def refresh(self) -> None:
        """The session grew (a live recording): redraw everything at the current zoom, the step axis refitted."""
        self.header.setText(_describe(self.data))
        self._configure_controls()
        self.frames.sync()
        self.heatmap._redraw()
        self.step_heatmap._redraw(fit=True)
        self.frame_heatmap._redraw(fit=True)
        self.ranking.set_data(self.data)
        self.token_map.set_data(self.data)
        self.clusters.set_data(self.data)

    def set_log(self, log: bool) -> None:
        self.heatmap.set_log(log)
        self.step_heatmap.set_log(log)

    def _configure_controls(self) -> None:
        """Ranges follow the session; values follow the selection (clamped to this session)."""
        widgets = (self.stream, self.step, self.block, self.channel)
        for widget in widgets:
            widget.blockSignals(True)
        self.stream.clear()
        if self.data is not None:
            self.stream.addItems(list(self.data.streams))
        for widget in widgets:
            widget.blockSignals(False)
        self._sync_controls()

    def _sync_controls(self, fields: frozenset = frozenset()) -> None:
        pick = self.data.resolve(self.selection) if self.data else None
        widgets = (self.stream, self.step, self.block, self.channel)
        for widget in widgets:
            widget.blockSignals(True)
            widget.setEnabled(pick is not None)
        if pick is not None:
            st = self.data.stats(pick.stream)
            self.stream.setCurrentText(pick.stream)
            self.step.setRange(0, self.data.steps_done - 1)
            lean = self.data.stat_steps != tuple(range(self.data.steps_done))
            self.step.setToolTip(f"statistics and token maps at steps {', '.join(map(str, self.data.stat_steps))} only "
                                 f"({self.data.session.profile} session); ranks and medians at every step" if lean else "")
            self.step.setValue(pick.step)
            self.block.setRange(0, len(st.blocks) - 1)
            self.block.setValue(pick.block)
            self.channel.setRange(0, st.mean_abs.shape[2] - 1)
            self.channel.setValue(pick.channel)
            self.step_label.setText(self.data.step_label(pick.step))
        for widget in widgets:
            widget.blockSignals(False)
        self.frames.sync()


def _row(*widgets: tuple[str | None, QWidget]) -> QHBoxLayout:
    """Widgets, each after its label if it has one, packed to the left."""
    row = QHBoxLayout()
    for label, widget in widgets:
        if label:
            row.addWidget(QLabel(label))
        row.addWidget(widget)
    row.addStretch(1)
    return row


def _describe(data: SessionData | None) -> str:
    if data is None:
        return "No session. Record one, or File > Open."
    i = data.info
    state = "complete" if data.complete else f"INCOMPLETE: {data.steps_done} of {data.steps_planned} steps recorded"
    prompt, model = html.escape(str(i.get("prompt", ""))), html.escape(str(i.get("model")))
    return (
        f"<b>{prompt}</b>  ·  model {model}  ·  seed {i.get('seed')}  ·  "
        f"{i.get('steps')} steps  ·  guidance {i.get('guidance')}  ·  {i.get('width')}×{i.get('height')}  ·  "
        f"{i.get('dtype')}  ·  k={data.k}  ·  {state}  ·  "
        f"<span style='color:gray'>{html.escape(data.path.name)}</span>"
    )
