"""Token clusters over the image (the paper's spatial claim, issue 5): KMeans on one channel set's recorded
token maps at the selected block and step, its foreground painted on the image, and its IoU against a
subject mask when there is one (the world reader's on the embedded model, or a mask image the user loads).

The paper calls foreground the cluster of highest summed score, and often that is the background (FLUX.2's
massive channel is smaller on the subject). The view says which cluster the rule picked, gives every cluster's
IoU, offers the sign-agnostic border rule (`rule`), clusters on the set's first k channels (`k`), and lets the
user paint another cluster instead (`shown_rank`); `iou` always keeps the rule's choice, the number mIoU averages.

A video's tokens are clustered over the whole clip at once (so a cluster means the same in every frame) and
the selected frame's slice is painted over that frame.

KMeans runs here, on the GUI thread: on <= 4096 tokens x 16 channels it takes ~5-30 ms (engine.clusters runs it on one
thread; bench/cluster_overlay.py), and every result is cached per (session, set, step, block, k, K, rule); a Wan-480p clip's
32760 tokens take proportionally longer, once per step and block.
"""
from __future__ import annotations

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

from massivelens.engine.analysis.clusters import mask_iou, ranked_clusters
from massivelens.engine.analysis.metrics import uses_world, world_image
from massivelens.engine.defaults import DEFAULT_FOREGROUND, FOREGROUND

from ..selection import Selection
from ..session_data import READ_ERRORS, Pick, SessionData
from .heatmap_plot import Title
from .token_map import frame_label, image_plot

_CACHE = 256  # foreground masks kept: a FLUX 64 x 64 grid is 4 KiB each
_FOREGROUND = (255, 0, 200)  # magenta and cyan: neither is a colour of the shapes world
_OUTLINE = pg.mkPen((0, 230, 255), width=2.5, cosmetic=True)
MASK_FILTER = "Mask image, white = subject (*.png *.jpg *.bmp *.tif);;All files (*)"


def _rule_name(rule: str) -> str:
    return "paper's rule" if rule == DEFAULT_FOREGROUND else f"{rule} rule"


def world_mask(data: SessionData) -> np.ndarray | None:
    """The world reader's subject mask of the session image, on the embedded model only."""
    if data.image is None or not uses_world(str(data.info.get("model", ""))):
        return None
    from massivelens.engine.shapes.reader import read

    return read(world_image(data.image))[1]


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
        self.shown: np.ndarray | None = None  # the (h, w) cluster on screen
        self._picture_key: tuple | None = None  # (session, frame) of the picture on screen
        self.iou: float | None = None  # the paper's foreground's IoU
        self.ious: list[float] = []  # every cluster's IoU, by rank (0 = the rule's foreground)
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
        self.channel_set.currentIndexChanged.connect(self._redraw)
        self.n_clusters = QSpinBox()
        self.n_clusters.setRange(2, 8)
        self.n_clusters.setValue(2)
        self.n_clusters.setToolTip("KMeans clusters; the rule picks one as the foreground")
        self.n_clusters.valueChanged.connect(self._clusters_changed)
        self.k = QSpinBox()
        self.k.setRange(1, 1)
        self.k.setToolTip("cluster on the channel set's first k channels (the paper's spatial claim holds at small k)")
        self.k.valueChanged.connect(self._redraw)
        self.rule = QComboBox()
        for name, text in ((DEFAULT_FOREGROUND, f"{DEFAULT_FOREGROUND} (paper)"),
                           *((n, n) for n in FOREGROUND if n != DEFAULT_FOREGROUND)):
            self.rule.addItem(text, name)
            self.rule.setItemData(self.rule.count() - 1, FOREGROUND[name], Qt.ItemDataRole.ToolTipRole)
        self.rule.setToolTip("which cluster is the foreground: " + "; ".join(f"{n}: {d}" for n, d in FOREGROUND.items()))
        self.rule.currentIndexChanged.connect(self._clusters_changed)
        self.shown_rank = QComboBox()
        self.shown_rank.setToolTip("which cluster to paint: the rule's foreground, or another (the IoU reported stays "
                                   "the rule's)")
        self.shown_rank.currentIndexChanged.connect(self._redraw)
        self._fill_ranks()
        for box in (self.channel_set, self.shown_rank, self.rule):  # shrink with the panel; the full text is in the list
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(6)
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
        """Three short rows: the panel must stay narrow on a 1024 px screen and in a comparison."""
        first, second, third = QHBoxLayout(), QHBoxLayout(), QHBoxLayout()
        for row, label, widget in ((first, "channels", self.channel_set), (first, "k", self.k), (first, "K", self.n_clusters),
                                   (second, "rule", self.rule), (second, "show", self.shown_rank),
                                   (third, "opacity", self.opacity)):
            row.addWidget(QLabel(label))
            row.addWidget(widget, stretch=1 if widget is self.shown_rank else 0)
        first.addStretch(1)
        for widget in self.buttons:
            third.addWidget(widget)
        third.addWidget(self.mask_label, stretch=1)
        rows = QVBoxLayout()
        rows.setSpacing(2)
        for row in (first, second, third):
            rows.addLayout(row)
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
        chosen = self.channel_set.currentData()
        self.channel_set.blockSignals(True)
        self.channel_set.clear()
        for name in data.channel_sets if data else ():
            self.channel_set.addItem(f"{name}-{data.k}", name)
        self.channel_set.setCurrentIndex(max(self.channel_set.findData(chosen), 0))
        self.channel_set.blockSignals(False)
        self.k.blockSignals(True)
        every = self.k.value() == self.k.maximum()  # all channels stays all channels in the next session
        self.k.setMaximum(data.k if data else 1)
        self.k.setValue(self.k.maximum() if every else self.k.value())
        self.k.blockSignals(False)
        self._picture_key = None
        self._redraw()

    def _show_picture(self, frame: int) -> np.ndarray | None:
        """The image, or the video's frame, under the clusters; set again only when it changes."""
        picture = self.data.picture(frame) if self.data else None
        key = (id(self.data), frame, picture is None)
        if key != self._picture_key:
            self._picture_key = key
            if picture is None:
                self.picture.clear()
            else:
                self.picture.setImage(picture, autoLevels=False, levels=(0, 255))
        return picture

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
        if self._world_masks.get(self.data.path) is None and self.data.image is not None:  # a live run's image comes last
            self._world_masks[self.data.path] = world_mask(self.data)
        mask = self._world_masks.get(self.data.path)
        return None if mask is None else ("world reader's subject", mask)

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load subject mask", str(self.data.path.parent) if self.data else "", MASK_FILTER)
        if path:
            self.load_mask(Path(path))

    # Drawing -------------------------------------------------------------------------------------
    def _on_changed(self, fields: frozenset) -> None:
        if fields & {"stream", "block", "step", "frame"}:
            self._redraw()

    def _fill_ranks(self) -> None:
        """One entry per cluster in the rule's order; the first is the rule's foreground."""
        rule = self.rule.currentData()
        self.shown_rank.blockSignals(True)
        self.shown_rank.clear()
        for rank in range(self.n_clusters.value()):
            self.shown_rank.addItem(f"foreground ({_rule_name(rule)})" if rank == 0 else f"cluster #{rank + 1} by {rule}", rank)
        self.shown_rank.blockSignals(False)

    def _clusters_changed(self) -> None:
        self._fill_ranks()
        self._redraw()

    def _clusters(self, name: str, pick: Pick) -> np.ndarray:
        """(K, h, w) cluster masks by rank (at the selected frame of a video's clip-wide clusters); ValueError or
        SessionError for maps that cannot be clustered."""
        key = (self.data.path, name, pick.step, pick.block, self.k.value(), self.n_clusters.value(), self.rule.currentData())
        if key in self._cache:
            self._cache.move_to_end(key)
        else:
            maps = self.data.session.set_maps(name, pick.step, pick.block)[: key[4]]
            self._cache[key] = ranked_clusters(maps, key[5], rule=key[6])
            while len(self._cache) > _CACHE:
                self._cache.popitem(last=False)
        clusters = self._cache[key]
        return clusters[:, self.data.latent_of(pick.frame)] if self.data.is_video else clusters

    def _redraw(self) -> None:
        pick = self.data.resolve(self.selection) if self.data else None
        image = self._show_picture(pick.frame if pick else 0)
        reference = self.reference()
        self.clear.setEnabled(self.data is not None and self.data.path in self._user_masks)
        self.mask_label.setText(f"IoU against {reference[0]}" if reference else "no subject mask: load one for the IoU")
        self.mask_label.setToolTip(self.mask_label.text())
        self.shown, self.iou, self.ious = None, None, []
        if pick is None or pick.stream != "image" or self.channel_set.count() == 0:
            self._blank(_empty(self.data, pick))
            return
        name = self.channel_set.currentData()
        if not self.data.keeps(pick.step):
            self._blank(self.data.not_kept(pick.step, "token maps"))
            return
        try:
            clusters = self._clusters(name, pick)
        except READ_ERRORS as exc:  # non-finite maps (ValueError) or a damaged file
            self._blank(f"{name}-{self.data.k} · {self.data.blocks('image')[pick.block]} · step {pick.step}\n"
                        f"not clustered: {str(exc).split(': ')[-1]}")
            return
        self.shown = clusters[self.shown_rank.currentData() or 0]
        h, w = image.shape[:2] if image is not None else self.shown.shape
        rgba = np.zeros((*self.shown.shape, 4), np.uint8)
        rgba[self.shown] = (*_FOREGROUND, 255)
        self.mask_item.setImage(rgba, autoLevels=False, levels=(0, 255))
        self.mask_item.setRect(QRectF(0, 0, w, h))
        self._draw_reference(reference[1] if reference else None, w, h)
        if reference is not None:
            self.ious = [mask_iou(cluster, reference[1]) for cluster in clusters]
            self.iou = self.ious[0]
        self.title.setText(self._caption(name, pick, reference[0] if reference else None))

    def _blank(self, title: str) -> None:
        self.mask_item.clear()
        self.reference_item.clear()
        self.outline.setData(None)
        self.title.setText(title)

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
        """Short lines (they are elided, not wrapped): what is clustered, what is painted and why, every IoU."""
        block = self.data.blocks("image")[pick.block]
        rank, rule = self.shown_rank.currentData() or 0, self.rule.currentData()
        painted = f"the foreground by the {_rule_name(rule)}" if rank == 0 else \
            f"cluster #{rank + 1} by {rule}, not the rule's foreground"
        channels = f"first {self.k.value()} of {name}-{self.data.k}" if self.k.value() < self.data.k else f"{name}-{self.data.k}"
        lines = [f"{channels} · K={self.n_clusters.value()} · {block} · step {pick.step}{frame_label(self.data, pick)}",
                 f"magenta: {painted} · {int(self.shown.sum())} of {self.shown.size} tokens"]
        if self.ious:
            scores = " · ".join(f"#{i + 1}{' (rule)' if i == 0 else ''} {v:.2f}" for i, v in enumerate(self.ious))
            lines.append(f"IoU by cluster: {scores} · cyan outline: {reference}")
        return "\n".join(lines)


def _empty(data: SessionData | None, pick: Pick | None) -> str:
    if data is None:
        return "no session"
    if pick is None:
        return "clusters: no step recorded"
    return "token clusters exist for the image stream only"
