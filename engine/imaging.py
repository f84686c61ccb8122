"""Image grids with labels, for probe results and transport strips (PIL only, no Qt)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

_FONT = ImageFont.load_default()


def image_grid(
    rows: Sequence[Sequence[np.ndarray | None]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    cell: int = 128,
    pad: int = 4,
) -> Image.Image:
    """A labelled grid; every image is scaled (nearest neighbour, keeping pixels crisp) to `cell`."""
    label_w, label_h = 110, 18
    width = label_w + len(col_labels) * (cell + pad)
    height = label_h + len(rows) * (cell + pad)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for j, text in enumerate(col_labels):
        draw.text((label_w + j * (cell + pad) + 2, 3), text, fill="black", font=_FONT)
    for i, row in enumerate(rows):
        y = label_h + i * (cell + pad)
        draw.text((4, y + cell // 2 - 6), row_labels[i], fill="black", font=_FONT)
        for j, image in enumerate(row):
            if image is not None:
                tile = Image.fromarray(image).resize((cell, cell), Image.NEAREST)
                canvas.paste(tile, (label_w + j * (cell + pad), y))
    return canvas


def save_png(image: np.ndarray | Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(path)
    return path


def overlay(image: np.ndarray, token_mask: np.ndarray, color: tuple[int, int, int] = (255, 0, 255), alpha: float = 0.5) -> np.ndarray:
    """The image with a token-grid mask painted over it at pixel resolution."""
    from .analysis.clusters import upsample

    mask = upsample(token_mask, image.shape[:2])[..., None]
    tinted = (1 - alpha) * image + alpha * np.asarray(color, float)
    return np.where(mask, tinted, image).astype(np.uint8)
