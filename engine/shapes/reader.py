"""Read the attributes and subject mask back from an image of the shapes world.

Used to score generated images, so it must tolerate noise: pixels are snapped
to the nearest palette colour and only the largest connected subject blob counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .world import (
    ATTRIBUTES,
    CENTERS,
    COLORS,
    PALETTE,
    SIZE,
    Attributes,
    parse_caption,
    render,
)

_PALETTE = np.array([PALETTE[c] for c in COLORS], dtype=np.float32)
_MIN_SUBJECT_PIXELS = 12
# Triangles point up, so their top half holds ~1/4 of the area (circles/squares 1/2), even when blurred.
_TRIANGLE_MAX_TOP_SHARE = 0.38
_CIRCLE_MAX_FILL = 0.86  # bbox fill: circle ~0.78, square ~1.0 (~0.9 with rounded corners)
_LARGE_MIN_EXTENT = 22.5  # max bbox side: small <= ~20 px, large >= ~25 px


@dataclass(frozen=True)
class Reading:
    """Attributes read from an image; a field is None when it could not be recovered."""

    size: str | None = None
    color: str | None = None
    shape: str | None = None
    background: str | None = None
    position: str | None = None

    def attributes(self) -> Attributes | None:
        """The full attributes, or None if any is missing or they are inconsistent."""
        values = [getattr(self, name) for name in ATTRIBUTES]
        if any(v is None for v in values):
            return None
        try:
            return Attributes(*values)
        except ValueError:
            return None


def palette_labels(image: np.ndarray) -> np.ndarray:
    """Index (into COLORS) of the nearest palette colour for every pixel."""
    pixels = image.reshape(-1, 3).astype(np.float32)
    dist = ((pixels[:, None, :] - _PALETTE[None, :, :]) ** 2).sum(-1)
    return dist.argmin(1).reshape(image.shape[:2])


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, count = ndimage.label(mask)
    if count == 0:
        return mask
    sizes = ndimage.sum(mask, labels, index=np.arange(1, count + 1))
    return labels == (1 + int(np.argmax(sizes)))


def read(image: np.ndarray) -> tuple[Reading, np.ndarray]:
    """Recover (attributes, subject mask) from an HxWx3 uint8 image of the world."""
    if image.shape[:2] != (SIZE, SIZE):
        raise ValueError(f"expected a {SIZE}x{SIZE} image, got shape {image.shape}")
    labels = palette_labels(image)
    counts = np.bincount(labels.ravel(), minlength=len(COLORS))
    background = int(counts.argmax())
    counts[background] = 0
    subject = int(counts.argmax())
    mask = _largest_component(labels == subject) if counts[subject] else np.zeros_like(labels, dtype=bool)
    if mask.sum() < _MIN_SUBJECT_PIXELS:
        return Reading(background=COLORS[background]), np.zeros_like(mask)
    ys, xs = np.nonzero(mask)
    width, height = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    fill = mask.sum() / float(width * height)
    cx, cy = (xs.min() + xs.max() + 1) / 2.0, (ys.min() + ys.max() + 1) / 2.0
    top_share = float((ys + 0.5 < cy).sum()) / len(ys)
    shape = "triangle" if top_share < _TRIANGLE_MAX_TOP_SHARE else "circle" if fill < _CIRCLE_MAX_FILL else "square"
    position = min(CENTERS, key=lambda p: (CENTERS[p][0] - cx) ** 2 + (CENTERS[p][1] - cy) ** 2)
    reading = Reading(
        size="large" if max(width, height) >= _LARGE_MIN_EXTENT else "small",
        color=COLORS[subject],
        shape=shape,
        background=COLORS[background],
        position=position,
    )
    return reading, mask


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def score(
    pairs: Sequence[tuple[str, np.ndarray]], masks: Sequence[np.ndarray] | None = None
) -> dict[str, float]:
    """Per-attribute accuracy, all-five accuracy and mean mask IoU over (caption, image) pairs.

    Without reference masks (generated images) the IoU is against the jitter-free render of the caption.
    """
    if not pairs:
        raise ValueError("score needs at least one (caption, image) pair")
    hits = {name: 0 for name in ATTRIBUTES}
    all_five = 0
    ious = []
    for i, (caption, image) in enumerate(pairs):
        truth = parse_caption(caption)
        reading, mask = read(image)
        correct = [getattr(reading, name) == getattr(truth, name) for name in ATTRIBUTES]
        for name, ok in zip(ATTRIBUTES, correct):
            hits[name] += ok
        all_five += all(correct)
        reference = masks[i] if masks is not None else render(truth)[1]
        ious.append(mask_iou(mask, reference))
    n = len(pairs)
    result = {name: hits[name] / n for name in ATTRIBUTES}
    result["all_five"] = all_five / n
    result["mask_iou"] = float(np.mean(ious))
    return result
