"""The generated image (a video's selected frame) and the selected channel's token map, over the image or beside it."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF

from ..selection import Selection
from ..session_data import READ_ERRORS, Pick, SessionData
from .heatmap_plot import Title, set_levels

OVER, BESIDE = "over", "beside"


def image_plot() -> pg.PlotItem:
    plot = pg.PlotItem()
    plot.invertY(True)
    plot.setAspectLocked(True)
    plot.hideAxis("left")
    plot.hideAxis("bottom")
    plot.setMenuEnabled(False)
    plot.hideButtons()
    return plot


class TokenMapView(pg.GraphicsLayoutWidget):
    """Signed token maps use a diverging colour map centred on 0 so that sign and size both read at a glance.

    One title row spans the panels (image, map, colour bar).
    """

    def __init__(self, selection: Selection):
        super().__init__()
        self.selection = selection
        self.data: SessionData | None = None
        self.mode = OVER
        self.title = Title()
        self.ci.addItem(self.title, row=0, col=0, colspan=3)
        self.left, self.right = image_plot(), image_plot()
        self.picture, self.overlay, self.side = pg.ImageItem(), pg.ImageItem(), pg.ImageItem()
        self.left.addItem(self.picture)
        self.left.addItem(self.overlay)
        self.right.addItem(self.side)
        self.opacity = 0.6
        self._picture_key: tuple | None = None  # (session, frame) of the picture on screen
        self.bar = pg.ColorBarItem(colorMap="CET-D1", label="x (signed)", interactive=False, colorMapMenu=False)
        self.bar.setImageItem([self.overlay, self.side])
        self.bar.axis.setWidth(None)  # a fixed width hides tick labels of narrow ranges
        self.ci.addItem(self.left, row=1, col=0)
        self.ci.addItem(self.bar, row=1, col=2)
        selection.changed.connect(self._on_changed)
        self._redraw()

    # Controls ------------------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        """OVER draws the map on the image at the chosen opacity; BESIDE gives it its own panel."""
        if mode == self.mode:
            return
        self.mode = mode
        if mode == BESIDE:
            self.ci.addItem(self.right, row=1, col=1)
        else:
            self.ci.removeItem(self.right)
        self.overlay.setVisible(mode == OVER)
        self._redraw()

    def set_opacity(self, opacity: float) -> None:
        self.opacity = opacity
        if self.data is not None and self.data.image is not None:
            self.overlay.setOpacity(opacity)

    # Data ----------------------------------------------------------------------------------------
    def set_data(self, data: SessionData | None) -> None:
        self.data = data
        self._picture_key = None
        self._redraw()

    def _show_picture(self, frame: int) -> np.ndarray | None:
        """The image, or the video's frame, under the map; set again only when it changes."""
        picture = self.data.picture(frame) if self.data else None
        key = (id(self.data), frame, picture is None)
        if key != self._picture_key:
            self._picture_key = key
            if picture is None:
                self.picture.clear()
            else:
                self.picture.setImage(picture, autoLevels=False, levels=(0, 255))
        return picture

    def _on_changed(self, fields: frozenset) -> None:
        self._redraw()

    def current_map(self) -> np.ndarray | None:
        """The (h, w) map on screen, or None when nothing is shown."""
        return self.side.image

    def _redraw(self) -> None:
        pick = self.data.resolve(self.selection) if self.data else None
        image = self._show_picture(pick.frame if pick else 0)
        values, title = self._map(pick)
        self.title.setText(title)
        self.bar.setVisible(values is not None)  # a colour bar with no map beside it reads as data
        if values is None:
            self.overlay.clear()
            self.side.clear()
            return
        self.overlay.setImage(values, autoLevels=False)
        self.side.setImage(values, autoLevels=False)
        peak = _nice(float(np.nanmax(np.abs(values))))
        set_levels(self.bar, (-peak, peak))
        h, w = image.shape[:2] if image is not None else values.shape
        self.overlay.setRect(QRectF(0, 0, w, h))
        self.overlay.setOpacity(self.opacity if image is not None else 1.0)  # nothing underneath to see through

    def _map(self, pick: Pick | None) -> tuple[np.ndarray | None, str]:
        if pick is None:
            return None, "token map: nothing recorded" if self.data else "no session"
        if pick.stream != "image":
            return None, "token maps exist for the image stream only"
        block = self.data.blocks("image")[pick.block]
        if not self.data.keeps(pick.step) and pick.channel in self.data.stored_top[pick.step, pick.block]:
            return None, self.data.not_kept(pick.step, "token maps")
        try:
            values = self.data.token_map(pick.step, pick.block, pick.channel, pick.frame)
        except READ_ERRORS as exc:
            return None, f"token map unreadable at {block}, step {pick.step}: {str(exc).split(': ')[-1]}"
        if values is None:
            return None, f"no map: channel {pick.channel} not in top-{self.data.k} of {block}, step {pick.step}"
        where = f"{block} · {self.data.step_label(pick.step)}{frame_label(self.data, pick)}"
        return values, f"token map · channel {pick.channel} · {where}"


def frame_label(data: SessionData, pick: Pick) -> str:
    """" · frame f (latent l)" for a video, "" for an image."""
    return f" · frame {pick.frame} (latent {data.latent_of(pick.frame)})" if data.is_video else ""


def _nice(peak: float) -> float:
    """The next 1, 2 or 5 x 10^n at or above `peak`: a readable colour bar that stays put between nearby maps."""
    if not np.isfinite(peak) or peak <= 0:
        return 1.0
    scale = 10.0 ** np.floor(np.log10(peak))
    return float(next(m * scale for m in (1, 2, 5, 10) if m * scale >= peak))
