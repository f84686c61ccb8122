"""The synthetic shapes world: caption grammar, renderer and seeded sampler.

This module is the single source of truth for the vocabulary; the reader, the
tokenizers and the training data all derive from the lists below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

import numpy as np

SIZE = 64
SIZES = ("small", "large")
COLORS = ("red", "green", "blue", "yellow", "white", "black")
SHAPES = ("circle", "square", "triangle")
POSITIONS = ("top left", "top right", "bottom left", "bottom right", "center")
ATTRIBUTES = ("size", "color", "shape", "background", "position")

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (225, 35, 35),
    "green": (30, 175, 60),
    "blue": (40, 70, 230),
    "yellow": (240, 215, 40),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}
# Subject centre (x, y) in pixels for each position word.
CENTERS: dict[str, tuple[float, float]] = {
    "top left": (17.0, 17.0),
    "top right": (47.0, 17.0),
    "bottom left": (17.0, 47.0),
    "bottom right": (47.0, 47.0),
    "center": (32.0, 32.0),
}
# Nominal half-extent (pixels) of the subject for each size word.
RADII: dict[str, float] = {"small": 9.0, "large": 15.0}
CENTER_JITTER = 2.0
RADIUS_JITTER = 1.0
SQUARE_HALF = 0.9  # half side of a square relative to the radius
HELDOUT_SEED_BASE = 1_000_000_000  # seeds >= this are held out from training

_CAPTION = re.compile(
    r"^a (?P<size>\w+) (?P<color>\w+) (?P<shape>\w+) on a (?P<background>\w+) background at (?P<position>[\w ]+)$"
)


@dataclass(frozen=True)
class Attributes:
    """The five attributes that fully describe one image of the world."""

    size: str
    color: str
    shape: str
    background: str
    position: str

    def __post_init__(self) -> None:
        choices = {"size": SIZES, "color": COLORS, "shape": SHAPES, "background": COLORS, "position": POSITIONS}
        for f in fields(self):
            value = getattr(self, f.name)
            if value not in choices[f.name]:
                raise ValueError(f"{f.name} must be one of {choices[f.name]}, got {value!r}")
        if self.color == self.background:
            raise ValueError(f"color and background must differ, both are {self.color!r}")

    @property
    def caption(self) -> str:
        return f"a {self.size} {self.color} {self.shape} on a {self.background} background at {self.position}"


def parse_caption(caption: str) -> Attributes:
    """Parse a caption of the grammar back into attributes (ValueError outside the grammar)."""
    match = _CAPTION.match(" ".join(caption.strip().lower().split()))
    if match is None:
        raise ValueError(
            f"caption {caption!r} is outside the grammar "
            "'a {size} {color} {shape} on a {background} background at {position}'"
        )
    try:
        return Attributes(**match.groupdict())
    except ValueError as err:
        raise ValueError(f"caption {caption!r} is outside the grammar: {err}") from err


def all_attributes() -> list[Attributes]:
    """Every valid attribute combination (900 of them), in a fixed order."""
    return [
        Attributes(size, color, shape, background, position)
        for size in SIZES
        for color in COLORS
        for shape in SHAPES
        for background in COLORS
        for position in POSITIONS
        if color != background
    ]


def vocabulary() -> list[str]:
    """All words the grammar can produce, in a fixed order (for the tokenizers)."""
    words: list[str] = []
    for phrase in ("a", "on", "background", "at", *SIZES, *COLORS, *SHAPES, *POSITIONS):
        for word in phrase.split():
            if word not in words:
                words.append(word)
    return words


def shape_mask(shape: str, cx: float, cy: float, radius: float, size: int = SIZE) -> np.ndarray:
    """Boolean mask of one shape; circles, squares and upward triangles differ in bbox fill ratio."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dx, dy = xs - cx, ys - cy
    if shape == "circle":
        return dx * dx + dy * dy <= radius * radius
    if shape == "square":
        half = SQUARE_HALF * radius
        return (np.abs(dx) <= half) & (np.abs(dy) <= half)
    if shape == "triangle":
        top, bottom = -radius, 0.8 * radius
        frac = (dy - top) / (bottom - top)
        return (dy >= top) & (dy <= bottom) & (np.abs(dx) <= radius * frac)
    raise ValueError(f"unknown shape {shape!r}")


def render(attrs: Attributes, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Render (image uint8 HxWx3, subject mask bool HxW); a seed adds small position/size jitter."""
    cx, cy = CENTERS[attrs.position]
    radius = RADII[attrs.size]
    if seed is not None:
        rng = np.random.default_rng([seed, 1])
        cx += rng.uniform(-CENTER_JITTER, CENTER_JITTER)
        cy += rng.uniform(-CENTER_JITTER, CENTER_JITTER)
        radius += rng.uniform(-RADIUS_JITTER, RADIUS_JITTER)
    mask = shape_mask(attrs.shape, cx, cy, radius)
    image = np.empty((SIZE, SIZE, 3), dtype=np.uint8)
    image[:] = PALETTE[attrs.background]
    image[mask] = PALETTE[attrs.color]
    return image, mask


def sample_attributes(seed: int) -> Attributes:
    """Uniformly drawn attributes for a seed."""
    rng = np.random.default_rng([seed, 0])
    color, background = rng.choice(len(COLORS), size=2, replace=False)
    return Attributes(
        size=SIZES[rng.integers(len(SIZES))],
        color=COLORS[color],
        shape=SHAPES[rng.integers(len(SHAPES))],
        background=COLORS[background],
        position=POSITIONS[rng.integers(len(POSITIONS))],
    )


def sample(seed: int) -> tuple[str, np.ndarray, np.ndarray]:
    """One (caption, image, mask) triple, fully determined by the seed."""
    attrs = sample_attributes(seed)
    image, mask = render(attrs, seed)
    return attrs.caption, image, mask


def is_heldout(seed: int) -> bool:
    """Held-out seeds live in their own range so training never sees them."""
    return seed >= HELDOUT_SEED_BASE


def heldout_seeds(n: int, offset: int = 0) -> list[int]:
    """The first n held-out seeds (after offset)."""
    return [HELDOUT_SEED_BASE + offset + i for i in range(n)]


def heldout_samples(n: int, offset: int = 0) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """n deterministic held-out (caption, image, mask) triples."""
    return [sample(seed) for seed in heldout_seeds(n, offset)]
