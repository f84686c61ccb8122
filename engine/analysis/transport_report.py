"""Scoring and saving a transport sweep: attribute transfer, strip smoothness, images and JSON.

Shared by the CLI and the app so `transport.json` means one thing. Attribute transfer needs the
embedded model's world reader; smoothness (1 - Gini of distances between consecutive images, as
AID defines it) works for any model, with pixel RMS distance standing in for LPIPS. A video result is
saved as its first frame (PNG, the strip's cell) and the clip (GIF), and scored on the whole clip,
plus its temporal consistency.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
from PIL import Image

from ..imaging import image_grid, save_png
from ..shapes.world import ATTRIBUTES, parse_caption
from ..video_files import save_output
from .metrics import mse, psnr, temporal_consistency, uses_world, world_image
from .transport import TransportResult

REPORT = "transport.json"
STRIP = "strip.png"


class Transfer(NamedTuple):
    """What the world reader finds in a transport result. taken / kept: shares of the attributes that
    differ between the captions read as the source's / the target's value; unchanged: share of the
    attributes both captions share that the result still has (a transfer that breaks the rest of the
    image is not a transfer). None where there is nothing to count."""

    taken: float | None
    kept: float | None
    unchanged: float | None


UNSCORED = Transfer(None, None, None)


def attribute_transfer(source_caption: str, target_caption: str, image: np.ndarray,
                       reference: np.ndarray | None = None) -> Transfer:
    """Score one result against its source and target. A reference image without a caption of the
    grammar is described by what the reader finds in it. UNSCORED when the source or the target cannot
    be described, or they do not differ."""
    from ..shapes.reader import read

    try:
        target = parse_caption(target_caption)
        source = parse_caption(source_caption) if reference is None or _in_grammar(source_caption) else \
            read(world_image(reference))[0].attributes()
    except ValueError:
        return UNSCORED
    if source is None:
        return UNSCORED
    differing = [name for name in ATTRIBUTES if getattr(source, name) != getattr(target, name)]
    if not differing:
        return UNSCORED
    shared = [name for name in ATTRIBUTES if name not in differing]
    reading, _ = read(world_image(image))
    taken = sum(getattr(reading, name) == getattr(source, name) for name in differing)
    kept = sum(getattr(reading, name) == getattr(target, name) for name in differing)
    unchanged = sum(getattr(reading, name) == getattr(target, name) for name in shared)
    return Transfer(taken / len(differing), kept / len(differing), unchanged / len(shared) if shared else None)


def _in_grammar(caption: str) -> bool:
    try:
        parse_caption(caption)
    except ValueError:
        return False
    return True


def gini(values: Sequence[float]) -> float:
    """Gini coefficient of non-negative values: 0 when all are equal (or all zero)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0 or x.sum() == 0:
        return 0.0
    return float(np.abs(x[:, None] - x[None, :]).sum() / (2 * x.size**2 * x.mean()))


def smoothness(images: Sequence[np.ndarray]) -> float | None:
    """1 - Gini of the RMS distances between consecutive images: 1 when every step of the strip
    changes the image equally; None for fewer than two images."""
    if len(images) < 2:
        return None
    return 1.0 - gini([math.sqrt(mse(a, b)) for a, b in zip(images, images[1:])])


def strip(result: TransportResult, cell: int = 128) -> Image.Image:
    """One row: the source (reference or source prompt's image), each alpha's result, in order."""
    first = result.reference if result.reference is not None else result.source_image
    label = "reference" if result.reference is not None else "source"
    return image_grid([[_still(first), *(_still(r.image) for r in result.results)]], ["transport"],
                      [label, *(f"alpha {r.alpha:g}" for r in result.results)], cell=cell)


def summary(result: TransportResult, clip=None) -> dict:
    """The content of transport.json (file names are relative to the output folder). For an image
    source, `source_psnr` compares the source run's own image with the reference: the inversion's
    reconstruction for "euler", the VAE round trip for "noise" (its last step lands on x0)."""
    request = result.request
    world = uses_world(request.spec.model)
    rows = []
    for i, r in enumerate(result.results):
        transfer = attribute_transfer(result.source_prompt, result.target_prompt, r.image, result.reference) \
            if world else UNSCORED
        row = {"alpha": r.alpha, "image": _image_name(i, r.alpha), "from_source": transfer.taken,
               "from_target": transfer.kept, "unchanged": transfer.unchanged,
               "session": str(r.session.relative_to(request.out))}
        if clip is not None:
            row["clip"] = clip.scores(r.image, result.source_prompt, result.target_prompt, result.reference)
        if r.image.ndim == 4:
            row["video"] = Path(row["image"]).with_suffix(".gif").name
            row["temporal"] = temporal_consistency(r.image)
        rows.append(row)
    source = {"prompt": request.source_prompt} if request.source_image is None else {
        "image": str(request.source_image), "caption": request.source_caption, "inversion": request.inversion,
        "inversion_guidance": request.inversion_guidance,
        "source_psnr": psnr(result.source_image, result.reference)}
    return {
        "model": request.spec.model,
        "seed": request.seed,
        "source": {**source, "session": str(result.source_session.relative_to(request.out))},
        "target": {"prompt": result.target_prompt, "session": str(result.target_session.relative_to(request.out))},
        "alphas": [r.alpha for r in result.results],
        "blocks": result.blocks,
        "steps": list(result.window),
        "mask": request.mask,
        "foreground": request.foreground,
        "mask_at": {"step": result.mask_at[0], "block": result.mask_at[1]},
        "k": request.k,
        "results": rows,
        "smoothness": smoothness([r.image for r in result.results]),
    }


def save(result: TransportResult, clip=None) -> tuple[list[Path], dict]:
    """Result images, source/target (and reference) images, strip.png and transport.json in
    request.out; returns the files written and the summary."""
    out = result.request.out
    names = [_image_name(i, r.alpha) for i, r in enumerate(result.results)] + ["target.png", "source.png"]
    images = [r.image for r in result.results] + [result.target_image, result.source_image]
    written = [path for image, name in zip(images, names) for path in save_output(image, out / name)]
    if result.reference is not None:
        written.append(save_png(result.reference, out / "reference.png"))
    written.append(save_png(strip(result), out / STRIP))
    data = summary(result, clip)
    report = out / REPORT
    report.write_text(json.dumps(data, indent=2) + "\n")
    return [*written, report], data


def _image_name(index: int, alpha: float) -> str:
    return f"result-{index:02d}-alpha{alpha:g}.png"


def _still(image: np.ndarray) -> np.ndarray:
    """An image, or a video's first frame."""
    return image[0] if image.ndim == 4 else image
