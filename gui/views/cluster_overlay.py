"""Token clusters over the image (the paper's spatial claim, issue 5): KMeans on one channel set's recorded
token maps at the selected block and step, its foreground painted on the image, and its IoU against a
subject mask when there is one (the world reader's on the embedded model, or a mask image the user loads).

KMeans runs here, on the GUI thread: on <= 4096 tokens x 16 channels it takes ~5-30 ms (engine.clusters runs it on one
thread; bench/cluster_overlay.py), and every result is cached per (session, set, step, block, K).
"""
from __future__ import annotations

import html
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from massivelens.engine.analysis.clusters import cluster_tokens, mask_iou
from massivelens.engine.analysis.metrics import uses_world

from ..selection import Selection
from ..session_data import Pick, SessionData
from .heatmap_plot import Title
from .token_map import image_plot

_CACHE = 256  # foreground masks kept: a FLUX 64 x 64 grid is 4 KiB each
_FOREGROUND = (255, 0, 200)  # magenta and cyan: neither is a colour of the shapes world
_OUTLINE = pg.mkPen((0, 230, 255), width=2.5, cosmetic=True)
MASK_FILTER = "Mask image, white = subject (*.png *.jpg *.bmp *.tif);;All files (*)"


def foreground(maps: np.ndarray, n_clusters: int) -> np.ndarray:
    return cluster_tokens(maps, n_clusters)[1]


def world_mask(data: SessionData) -> np.ndarray | None:
    """The world reader's subject mask of the session image, on the embedded model only."""
    if data.image is None or not uses_world(str(data.info.get("model", ""))):
        return None
    from massivelens.engine.shapes.reader import read

    try:
        return read(data.image)[1]
    except ValueError:  # not the world's image size
        return None


def read_mask(path: Path) -> np.ndarray | None:
    """A mask image as (H, W) bool, white = subject; None when it cannot be read."""
    image = QImage(str(path))
    if image.isNull():
        return None
    gray = image.convertToFormat(QImage.Format.Format_Grayscale8)
    rows = np.frombuffer(gray.constBits(), np.uint8, gray.sizeInBytes()).reshape(gray.height(), gray.bytesPerLine())
    return rows[:, : gray.width()] > 127


class ClusterOverlay(QWidget):
    """Controls (channel set, K, opacity, mask) above the figure; follows the Selection's block and step."""

    def __init__(self, selection: Selection, parent: QWidget | None = None):
        super().__init__(parent)
        self.selection = selection
        self.data: SessionData | None = None
        self.shown: np.ndarray | None = None  # the (h, w) foreground on screen
        self.iou: float | None = None
        self._cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._user_masks: dict[Path, tuple[str, np.ndarray]] = {}
        self._world_masks: dict[Path, np.ndarray | None] = {}  # read once: redraws follow every slider move
        self._controls()
        self._figure()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(self._control_rows())
        layout.addWidget(self.figure, stretch=1)
        selection.changed.connect(self._on_changed)

    # Construction --------------------------------------------------------------------------------
    def _controls(self) -> None:
        self.channel_set = QComboBox()
        self.channel_set.setToolTip("the channels whose token maps are clustered (bottom/random: when recorded)")
        self.channel_set.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.channel_set.currentIndexChanged.connect(self._redraw)
        self.n_clusters = QSpinBox()
        self.n_clusters.setRange(2, 8)
        self.n_clusters.setValue(2)
        self.n_clusters.setToolTip("KMeans clusters; the foreground is the one of highest summed score")
        self.n_clusters.valueChanged.connect(self._redraw)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(55)
        self.opacity.setMinimumWidth(40)
        self.opacity.setMaximumWidth(90)
        self.opacity.valueChanged.connect(lambda value: self.mask_item.setOpacity(value / 100))
        load = QToolButton()
        load.setText("Load mask…")
        load.setToolTip("a subject mask image for the IoU (white = subject)")
        load.clicked.connect(self._load_dialog)
        self.clear = QToolButton()
        self.clear.setText("×")
        self.clear.setToolTip("forget the loaded mask")
        self.clear.clicked.connect(self.clear_mask)
        self.buttons = (load, self.clear)
        self.mask_label = QLabel()
        self.mask_label.setStyleSheet("color: gray")
        self.mask_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # clipped, never widens

    def _control_rows(self) -> QVBoxLayout:
        """Two short rows: the panel must stay narrow in a side-by-side comparison."""
        first, second = QHBoxLayout(), QHBoxLayout()
        for label, widget in (("cluster", self.channel_set), ("K", self.n_clusters), ("opacity", self.opacity)):
            first.addWidget(QLabel(label))
            first.addWidget(widget)
        first.addStretch(1)
        for widget in self.buttons:
            second.addWidget(widget)
        second.addWidget(self.mask_label, stretch=1)
        rows = QVBoxLayout()
        rows.addLayout(first)
        rows.addLayout(second)
        return rows

    def _figure(self) -> None:
        self.figure = pg.GraphicsLayoutWidget()
        self.title = Title("no session")
        self.figure.ci.addItem(self.title, row=0, col=0)
        self.plot = image_plot()
        self.figure.ci.addItem(self.plot, row=1, col=0)
        self.picture, self.mask_item, self.reference_item = pg.ImageItem(), pg.ImageItem(), pg.ImageItem()
        for item in (self.picture, self.mask_item, self.reference_item):
            self.plot.addItem(item)
        self.mask_item.setOpacity(self.opacity.value() / 100)
        self.outline = pg.IsocurveItem(level=0.5, pen=_OUTLINE)
        self.outline.setParentItem(self.reference_item)  # the reference mask's pixels are its coordinates

    # Data ----------------------------------------------------------------------------------------
    def set_data(self, data: SessionData | None) -> None:
        self.data = data
        self.channel_set.blockSignals(True)
        self.channel_set.clear()
        for name in data.session.channel_sets if data else ():
            self.channel_set.addItem(f"{name}-{data.k}", name)
        self.channel_set.blockSignals(False)
        image = data.image if data else None
        if image is None:
            self.picture.clear()
        else:
            self.picture.setImage(image, autoLevels=False, levels=(0, 255))
        self._redraw()

    def load_mask(self, path: Path) -> bool:
        """Use a mask image for this session's IoU (it replaces the world reader's)."""
        mask = read_mask(path) if self.data else None
        if mask is None:
            self.mask_label.setText(f"cannot read {Path(path).name}" if self.data else "open a session first")
            return False
        self._user_masks[self.data.path] = (Path(path).name, mask)
        self._redraw()
        return True

    def clear_mask(self) -> None:
        if self.data is not None:
            self._user_masks.pop(self.data.path, None)
        self._redraw()

    def reference(self) -> tuple[str, np.ndarray] | None:
        """(what it is, (H, W) bool mask) for the IoU: the user's mask, else the world reader's, else None."""
        if self.data is None:
            return None
        if self.data.path in self._user_masks:
            return self._user_masks[self.data.path]
        if self.data.path not in self._world_masks:
            self._world_masks[self.data.path] = world_mask(self.data)
        mask = self._world_masks[self.data.path]
        return None if mask is None else ("world reader's subject", mask)

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load subject mask", str(self.data.path.parent) if self.data else "", MASK_FILTER)
        if path:
            self.load_mask(Path(path))

    # Drawing -------------------------------------------------------------------------------------
    def _on_changed(self, fields: frozenset) -> None:
        if fields & {"stream", "block", "step"}:
            self._redraw()

    def _foreground(self, name: str, pick: Pick) -> np.ndarray:
        key = (self.data.path, name, pick.step, pick.block, self.n_clusters.value())
        if key in self._cache:
            self._cache.move_to_end(key)
        else:
            self._cache[key] = foreground(self.data.session.set_maps(name, pick.step, pick.block), key[-1])
            while len(self._cache) > _CACHE:
                self._cache.popitem(last=False)
        return self._cache[key]

    def _redraw(self) -> None:
        pick = self.data.resolve(self.selection) if self.data else None
        reference = self.reference()
        self.clear.setEnabled(self.data is not None and self.data.path in self._user_masks)
        self.mask_label.setText(f"IoU against {reference[0]}" if reference else "no subject mask: load one for the IoU")
        self.shown, self.iou = None, None
        if pick is None or pick.stream != "image" or self.channel_set.count() == 0:
            self.mask_item.clear()
            self.reference_item.clear()
            self.outline.setData(None)
            self.title.setText(_empty(self.data, pick))
            return
        name = self.channel_set.currentData()
        self.shown = self._foreground(name, pick)
        h, w = self.data.image.shape[:2] if self.data.image is not None else self.shown.shape
        rgba = np.zeros((*self.shown.shape, 4), np.uint8)
        rgba[self.shown] = (*_FOREGROUND, 255)
        self.mask_item.setImage(rgba, autoLevels=False, levels=(0, 255))
        self.mask_item.setRect(QRectF(0, 0, w, h))
        self._draw_reference(reference[1] if reference else None, w, h)
        if reference is not None:
            self.iou = mask_iou(self.shown, reference[1])
        self.title.setText(self._caption(name, pick, reference[0] if reference else None))

    def _draw_reference(self, mask: np.ndarray | None, w: int, h: int) -> None:
        """The reference mask as an outline. A transparent image carries the isocurve to image coordinates; the
        mask is padded by one pixel so that the outline also closes along the image's edges."""
        if mask is None:
            self.reference_item.clear()
            self.outline.setData(None)
            return
        padded = np.pad(mask, 1).astype(np.float32)
        sx, sy = w / mask.shape[1], h / mask.shape[0]
        self.reference_item.setImage(np.zeros((*padded.shape, 4), np.uint8), autoLevels=False, levels=(0, 255))
        self.reference_item.setRect(QRectF(-sx, -sy, w + 2 * sx, h + 2 * sy))
        self.outline.setData(padded)

    def _caption(self, name: str, pick: Pick, reference: str | None) -> str:
        """Three short lines: the title must fit a third of the window (it is clipped, not wrapped)."""
        block = self.data.blocks("image")[pick.block]
        lines = [f"{name}-{self.data.k} · K={self.n_clusters.value()} · {block} · step {pick.step}",
                 f"foreground: {int(self.shown.sum())} of {self.shown.size} tokens"]
        if self.iou is not None:
            lines.append(f"<b>IoU {self.iou:.2f}</b> · <span style='color:#00a0c0'>outline: {html.escape(reference)}</span>")
        return "<br>".join(lines)


def _empty(data: SessionData | None, pick: Pick | None) -> str:
    if data is None:
        return "no session"
    if pick is None:
        return "clusters: no step recorded"
    return "token clusters exist for the image stream only"
