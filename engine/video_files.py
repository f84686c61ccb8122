"""A video's frames as files: numbered PNGs and an animated preview (PIL only, no Qt)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .imaging import save_png

PREVIEW_FPS = 16  # Wan's frame rate; a preview only, the PNGs hold every frame exactly


def save_frames(frames: np.ndarray, folder: Path) -> list[Path]:
    """Each frame (F, H, W, 3) uint8 as folder/0000.png, 0001.png ..., losslessly."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:04d}.png" for i in range(len(frames))]
    for frame, path in zip(frames, paths):
        Image.fromarray(frame).save(path)
    return paths


def save_output(image: np.ndarray, path: Path) -> list[Path]:
    """A generation's output: an image as the PNG `path`; a video (F, H, W, 3) as its first frame there
    (the still that grids and strips show) and the clip as a GIF beside it."""
    if image.ndim == 3:
        return [save_png(image, path)]
    return [save_png(image[0], path), save_animation(image, path.with_suffix(".gif"))]


def save_animation(frames: np.ndarray, path: Path, fps: float = PREVIEW_FPS) -> Path:
    """An animated GIF or WebP (by the suffix) that loops forever; WebP is lossless, GIF has 256 colours."""
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(frame) for frame in frames]
    options = {"lossless": True} if path.suffix.lower() == ".webp" else {"optimize": False}
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0, **options)
    return path
