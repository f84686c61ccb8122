"""Per-block ranking at the selected step: top channels by mean |x| (the paper's rule) and max/median."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..selection import Selection
from ..session_data import Pick, SessionData

HEADERS = ("block", "top channels", "max/median", "max |x|", "Sun")
HEADER_TIPS = ("the block", "the block's channels by mean |x| over image tokens, largest first (the paper's rule); "
               "the selected channel in brackets", "max |x| over the block's median |x|", "largest |x| in the block",
               "channels massive by Sun et al.'s rule: max |x| > 100 and > 1000 x the block's median |x|")
_SHOWN_TOP = 8
_MASSIVE_TINT = QColor(255, 228, 196)
# Flat header sections: the style's gradient sections make Qt's PDF writer warn and drop them.
FLAT_HEADER = "QHeaderView::section { background: #ececec; border: none; border-right: 1px solid #c8c8c8; " \
              "border-bottom: 1px solid #c8c8c8; padding: 2px 4px; }"


class RankingModel(QAbstractTableModel):
    """Rows are plain tuples prepared once per step, so painting does no numpy work."""

    def __init__(self):
        super().__init__()
        self.rows: list[tuple[str, str, str, str, str]] = []
        self.massive: list[bool] = []

    def set_rows(self, rows: list[tuple[str, str, str, str, str]], massive: list[bool]) -> None:
        if rows and len(rows) == len(self.rows):  # an empty range would be an invalid dataChanged
            self.rows, self.massive = rows, massive
            self.dataChanged.emit(self.index(0, 0), self.index(len(rows) - 1, len(HEADERS) - 1))
        else:
            self.beginResetModel()
            self.rows, self.massive = rows, massive
            self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(HEADERS)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole:
            return self.rows[index.row()][index.column()]
        if role == Qt.ItemDataRole.BackgroundRole and self.massive[index.row()]:
            return _MASSIVE_TINT
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() in (2, 3):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS[section]
        return None


class RankingView(QWidget):
    """A titled table. Clicking a row selects its block and that block's top channel; the selected channel is
    bracketed wherever it ranks."""

    def __init__(self, selection: Selection):
        super().__init__()
        self.selection = selection
        self.data_: SessionData | None = None
        self.title = QLabel()
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # never widens the panel
        self.model_ = RankingModel()
        self._rows: dict[tuple[str, int, int], tuple[list, list[bool]]] = {}  # formatted once per view
        self.table = _table(self.model_)
        self.table.clicked.connect(lambda index: self.select_block(index.row()))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addWidget(self.table)
        selection.changed.connect(self._on_changed)

    def set_data(self, data: SessionData | None) -> None:
        self.data_ = data
        self._rows.clear()
        self._refresh()

    def select_block(self, block: int) -> None:
        """A row's block, at its strongest channel (the first the row lists)."""
        pick = self.data_.resolve(self.selection) if self.data_ else None
        if pick is not None:
            self.selection.set(block=block, channel=int(self.data_.top_channels(pick.stream, pick.step)[block][0]))

    def _on_changed(self, fields: frozenset) -> None:
        if fields & {"stream", "step", "channel"}:
            self._refresh()
        else:
            self._select_row()

    def _refresh(self) -> None:
        pick = self.data_.resolve(self.selection) if self.data_ else None
        if pick is None:
            self.title.setText("ranking: no step recorded")
            self.model_.set_rows([], [])
            return
        self.title.setText(f"top channels per block · {pick.stream} stream · {self.data_.step_label(pick.step)}")
        self.title.setToolTip(self.title.text())
        key = (pick.stream, pick.step, pick.channel)
        if key not in self._rows:
            self._rows[key] = _rows(self.data_, pick)
        self.model_.set_rows(*self._rows[key])
        self._select_row()

    def _select_row(self) -> None:
        pick = self.data_.resolve(self.selection) if self.data_ else None
        if pick is None:
            return
        index = self.model_.index(pick.block, 0)
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.table.selectionModel().select(index, flags)
        self.table.scrollTo(index)


def _rows(data: SessionData, pick: Pick) -> tuple[list[tuple[str, str, str, str, str]], list[bool]]:
    """Table rows at one step, and which blocks hold a massive channel by Sun et al.'s rule."""
    st = data.stats(pick.stream)
    top = data.top_channels(pick.stream, pick.step)
    sun_rows, sun_cols = data.sun_cells(pick.stream, pick.step)
    sun = [sun_cols[sun_rows == b] for b in range(len(st.blocks))]
    rows = [
        (
            name,
            _channels(top[b], pick.channel),
            f"{st.ratio[pick.step, b]:,.0f}",
            f"{st.peak[pick.step, b]:,.1f}",
            ", ".join(str(c) for c in sun[b]) or "–",
        )
        for b, name in enumerate(st.blocks)
    ]
    return rows, [s.size > 0 for s in sun]


def _table(model: RankingModel) -> QTableView:
    table = QTableView()
    table.setModel(model)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setWordWrap(False)  # wrapping lays out every cell's text on each repaint
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(20)
    header = table.horizontalHeader()
    header.setStyleSheet(FLAT_HEADER)
    header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
    widest = {0: "single.00"}  # block names; the numbers are no wider than their headers
    for column in (0, 2, 3, 4):
        table.setColumnWidth(column, header.fontMetrics().horizontalAdvance(widest.get(column, HEADERS[column])) + 18)
    return table


def _channels(ranked: np.ndarray, selected: int) -> str:
    shown = [f"[{c}]" if c == selected else str(c) for c in ranked[:_SHOWN_TOP]]
    return ", ".join(shown) + (" …" if len(ranked) > _SHOWN_TOP else "")
