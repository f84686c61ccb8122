"""`python main.py clusters`: token clusters on top-k vs bottom-k vs random-k channels, scored by IoU."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

NAME = "clusters"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="cluster image tokens on few channels; IoU against the subject mask")
    p.add_argument("sessions", nargs="+", type=Path, help="session files, images or videos (record them with --controls bottom random)")
    p.add_argument("--step", type=int, help="denoising step (default: the middle one)")
    p.add_argument("--clusters", type=int, default=2, help="KMeans clusters (the paper uses 2)")
    p.add_argument("--ks", nargs="+", type=int,
                   help="cluster on each set's first k channels, for each k (default: all recorded)")
    add_foreground_argument(p)
    p.add_argument("--masks", nargs="+", type=Path,
                   help="per session: a subject-mask image (white = subject); for a video, a folder of one mask PNG per frame, in name order")
    p.add_argument("--out", required=True, type=Path)


def add_foreground_argument(p: argparse.ArgumentParser) -> None:
    from massivelens.engine.defaults import DEFAULT_FOREGROUND, FOREGROUND

    p.add_argument("--foreground", choices=list(FOREGROUND), default=DEFAULT_FOREGROUND,
                   help="which cluster is the subject: score = the higher summed score (the paper's rule; it picks the "
                        "background where the massive channels are smaller on the subject), border = the one holding "
                        "the least of the image's border")


def reference_masks(sessions: list[Path], masks: list[Path] | None) -> list[np.ndarray]:
    """User masks (a video's: a folder of per-frame masks), else the world reader's subject mask of each
    session's image (embedded model)."""
    from massivelens.engine.analysis.metrics import uses_world
    from massivelens.engine.errors import BadRequest
    from massivelens.engine.shapes.reader import read
    from massivelens.sessions.reader import open_session

    if masks:
        if len(masks) != len(sessions):
            raise BadRequest(f"give one mask per session ({len(sessions)} sessions, {len(masks)} masks)")
        return [load_mask(path) for path in masks]
    out = []
    for path in sessions:
        with open_session(path) as s:
            model, image = s.info["model"], s.image
        if image is None or not uses_world(model):
            raise BadRequest(f"{path}: give --masks (no image, or a model outside the Shapes world)")
        out.append(read(image)[1])
    return out


def load_mask(path: Path) -> np.ndarray:
    """A mask image (H, W), or a folder's mask PNGs in name order as (frames, H, W)."""
    from PIL import Image

    from massivelens.engine.errors import BadRequest

    if path.is_dir():
        frames = sorted(path.glob("*.png"))
        if not frames:
            raise BadRequest(f"no PNG frame masks in {path}")
        masks = [load_mask(frame) for frame in frames]
        if len({m.shape for m in masks}) > 1:
            raise BadRequest(f"the frame masks in {path} differ in size")
        return np.stack(masks)
    try:
        return np.asarray(Image.open(path).convert("L")) > 127
    except (OSError, ValueError) as exc:
        raise BadRequest(f"cannot read mask {path}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from massivelens.engine.analysis.clusters import evaluate, miou_by_block

    from .reports import cluster_report, overlays

    _check_ks(args.sessions, args.ks)
    rows = evaluate(args.sessions, reference_masks(args.sessions, args.masks), args.step, args.clusters, ks=args.ks,
                    rule=args.foreground)
    for path in cluster_report(rows, args.out, "Token clusters: subject-mask IoU per block"):
        print(f"wrote {path}")
    for path in overlays(args.sessions, rows, args.out, args.clusters, args.foreground):
        print(f"wrote {path}")
    curve = miou_by_block(rows)
    for k, strategy in dict.fromkeys((e["k"], e["strategy"]) for e in curve):
        group = [e for e in curve if (e["k"], e["strategy"]) == (k, strategy)]
        best = max(group, key=lambda e: e["miou"])
        mean = np.mean([e["miou"] for e in group])
        print(f"  {f'{strategy}-{k}':<10} mIoU over blocks {mean:.3f}, best {best['miou']:.3f} at {best['block']}")
    return 0


def _check_ks(sessions: list[Path], ks: list[int] | None) -> None:
    """Every k asked for is kept by every session (a set's first k of the k it recorded)."""
    from massivelens.engine.errors import BadRequest
    from massivelens.sessions.reader import open_session

    if not ks:
        return
    if min(ks) < 1:
        raise BadRequest(f"--ks must be at least 1, got {min(ks)}")
    for path in sessions:
        with open_session(path) as s:
            if max(ks) > s.k:
                raise BadRequest(f"{path.name} keeps {s.k} channels per set; --ks asks for {max(ks)}")
