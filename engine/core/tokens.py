"""Which tokens of a transformer call's image-token sequence are the generated image, which are
reference images (edit pipelines), text slots or padding.

Most calls hold the generated image only. Edit pipelines append reference images to it (FLUX.1
Kontext, FLUX.2, Qwen-Image-Edit), Z-Image pads it to a multiple of 32, Ideogram 4 and Qwen-Image
2.1 put text slots into the same sequence. Block outputs are split by this layout so that the
"image" stream is always the generated image's h x w tokens in grid order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal, Sequence

import torch

from ..errors import EngineError

Grid = tuple[int, ...]  # (h, w), or a video's (frames, h, w)
Role = Literal["generated", "reference", "text", "padding"]
STREAM_OF_ROLE: dict[str, str] = {"generated": "image", "reference": "reference", "text": "text"}


@dataclass(frozen=True)
class Segment:
    """A run of tokens of one role: an image (with its grid), text slots or padding."""

    role: Role
    start: int
    count: int
    grid: Grid | None = None


@dataclass(frozen=True)
class Tokens:
    """One call's rows (batch), the generated image's grid, and the segments of its image-token sequence."""

    batch: int
    grid: Grid
    segments: tuple[Segment, ...]

    @property
    def length(self) -> int:
        return sum(s.count for s in self.segments)

    @property
    def image_tokens(self) -> int:
        return math.prod(self.grid)

    def of(self, role: Role) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.role == role)

    @classmethod
    def from_images(cls, batch: int, grids: Sequence[Grid], generated: int) -> "Tokens":
        """Consecutive images; `grids[generated]` is the generated one, the others references."""
        segments, start = [], 0
        for i, (h, w) in enumerate(grids):
            segments.append(Segment("generated" if i == generated else "reference", start, h * w, (h, w)))
            start += h * w
        return cls(batch, tuple(grids[generated]), tuple(segments))

    @classmethod
    def interleaved(cls, batch: int, is_image: Sequence[bool], grids: Sequence[Grid]) -> "Tokens":
        """Text runs and images in one sequence (`is_image` per token); images take `grids` in order and
        the last one is the generated image."""
        segments: list[Segment] = []
        start, image = 0, 0
        while start < len(is_image):
            if not is_image[start]:
                end = start
                while end < len(is_image) and not is_image[end]:
                    end += 1
                segments.append(Segment("text", start, end - start))
            else:
                if image == len(grids):
                    raise ValueError(f"more image tokens than the {len(grids)} image(s) listed")
                h, w = grids[image]
                end = start + h * w
                segments.append(Segment("generated" if image == len(grids) - 1 else "reference", start, h * w, (h, w)))
                image += 1
            start = end
        return cls(batch, tuple(grids[-1]), tuple(segments))

    def padded_to(self, multiple: int) -> "Tokens":
        """The sequence padded at its end to a multiple of `multiple` tokens."""
        pad = -self.length % multiple
        if not pad:
            return self
        return replace(self, segments=(*self.segments, Segment("padding", self.length, pad)))

    def after_text(self, count: int) -> "Tokens":
        """The same images behind `count` text slots."""
        if not count:
            return self
        moved = tuple(replace(s, start=s.start + count) for s in self.segments)
        return replace(self, segments=(Segment("text", 0, count), *moved))

    def describe(self) -> dict:
        """The layout as a session stores it: each segment's role, start, count and grid."""
        return {
            "grid": list(self.grid),
            "image_sequence": [
                {"role": s.role, "start": s.start, "count": s.count, **({"grid": list(s.grid)} if s.grid else {})}
                for s in self.segments
            ],
        }


def plain_tokens(batch: int, grid: Grid) -> Tokens:
    """A call whose image-token sequence is the generated image alone."""
    return Tokens(batch, grid, (Segment("generated", 0, math.prod(grid), grid),))


def tokens_from_ids(batch: int, ids: torch.Tensor, length: int, references: torch.Tensor | None = None) -> Tokens:
    """Position ids, one row (first id, h, w, ...) per token: each run of equal first ids is one image,
    the first run the generated one; `references`, ids of reference tokens that follow the sequence."""
    grids = _image_runs(ids, length)
    if references is not None:
        grids += _image_runs(references, None)
    return Tokens.from_images(batch, grids, generated=0)


def _image_runs(ids: torch.Tensor, length: int | None) -> list[Grid]:
    ids = (ids[0] if ids.ndim == 3 else ids).detach().cpu()
    if length is not None and ids.shape[0] != length:
        raise ValueError(f"{ids.shape[0]} position ids for {length} image tokens")
    first = ids[:, 0]
    cuts = [0, *((first[1:] != first[:-1]).nonzero().flatten() + 1).tolist(), len(first)]
    grids = []
    for start, end in zip(cuts, cuts[1:]):
        run = ids[start:end]
        h = int(run[:, 1].max() - run[:, 1].min()) + 1
        w = int(run[:, 2].max() - run[:, 2].min()) + 1
        if h * w != end - start:
            raise ValueError(f"an image of {end - start} tokens has ids spanning {h} x {w}")
        grids.append((h, w))
    return grids


def split_image_stream(x: torch.Tensor, tokens: Tokens) -> dict[str, torch.Tensor]:
    """x (batch, tokens, channels): the generated image's tokens alone, or the whole sequence of the call."""
    if x.shape[1] == tokens.image_tokens:
        return {"image": x}
    if x.shape[1] != tokens.length:
        raise EngineError(f"{x.shape[1]} image-stream tokens, expected {tokens.image_tokens} or {tokens.length}")
    streams = {}
    for role, stream in STREAM_OF_ROLE.items():
        segments = tokens.of(role)
        if segments:
            pieces = [x[:, s.start : s.start + s.count] for s in segments]
            streams[stream] = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)
    return streams


def merge_image_stream(x: torch.Tensor, tokens: Tokens, streams: dict[str, torch.Tensor]) -> torch.Tensor:
    """x with the streams written back at their segments (padding stays as it was)."""
    if x.shape[1] == tokens.image_tokens:
        return streams["image"]
    out = x.clone()
    for role, stream in STREAM_OF_ROLE.items():
        if stream not in streams:
            continue
        offset = 0
        for s in tokens.of(role):
            out[:, s.start : s.start + s.count] = streams[stream][:, offset : offset + s.count]
            offset += s.count
    return out
