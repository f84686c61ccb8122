"""Image quality measures for probes and transport: pixel distances for any model (per frame and over
the clip for videos, and a video's temporal consistency), and the world reader's attribute and mask
scores for the embedded model."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import defaults
from ..shapes.world import ATTRIBUTES, parse_caption

PSNR_IDENTICAL = 100.0  # dB reported for identical images, so tables and JSON stay finite


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error of two uint8 images (or clips) on the [0, 1] scale."""
    return float(np.mean((a.astype(np.float64) / 255 - b.astype(np.float64) / 255) ** 2))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = mse(a, b)
    return PSNR_IDENTICAL if error == 0 else min(PSNR_IDENTICAL, 10 * math.log10(1.0 / error))


def frame_psnr(a: np.ndarray, b: np.ndarray) -> list[float]:
    """PSNR of each frame of clip `a` (F, H, W, 3) against the same frame of `b`."""
    return [psnr(x, y) for x, y in zip(a, b, strict=True)]


def temporal_consistency(frames: np.ndarray) -> float | None:
    """Mean PSNR between consecutive frames (F, H, W, 3): higher is steadier; None for one frame."""
    if len(frames) < 2:
        return None
    return float(np.mean([psnr(x, y) for x, y in zip(frames, frames[1:])]))


def uses_world(model: str) -> bool:
    """Whether a model generates the Shapes world (its folder says so in massivelens.json). A session recorded on
    another machine names an embedded model by its path there: a missing folder of that name means the one here."""
    from massivelens.resources import embedded_models

    shipped = embedded_models()
    if not Path(model).is_dir() and Path(model).name in shipped:
        model = str(shipped[Path(model).name])
    return defaults.model_defaults(model).get("world") == "shapes"


@dataclass(frozen=True)
class WorldScore:
    """What the world reader finds in an image, against a caption of the world's grammar."""

    correct: dict[str, bool]
    mask: np.ndarray

    @property
    def accuracy(self) -> float:
        """1.0 when all five attributes are right, else 0.0 (the all-attributes accuracy)."""
        return float(all(self.correct.values()))


def world_image(image: np.ndarray) -> np.ndarray:
    """An image at the world's own size, which the reader needs: a generation at another size (the embedded
    model accepts any multiple of 16) is resampled by area, and the reader snaps colours to the palette."""
    from PIL import Image

    from ..shapes.world import SIZE

    if image.shape[:2] == (SIZE, SIZE):
        return image
    return np.asarray(Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).resize((SIZE, SIZE), Image.Resampling.BOX))


def world_score(caption: str, image: np.ndarray) -> WorldScore:
    """The reader's findings on `image` (resampled to the world's size); its mask is at the world's size."""
    from ..shapes.reader import read

    truth = parse_caption(caption)
    reading, mask = read(world_image(image))
    return WorldScore({name: getattr(reading, name) == getattr(truth, name) for name in ATTRIBUTES}, mask)
