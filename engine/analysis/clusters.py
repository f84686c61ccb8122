"""Token clusters on a few channels: the paper's spatial claim.

Image tokens restricted to k channels, each channel min-max normalised across tokens, clustered
with KMeans; the foreground is the cluster with the larger mean summed normalised score (the paper's
rule), or, sign-agnostic, the cluster that holds the least of the image's border.
Works on the token maps a session recorded, so no model is needed. A video's tokens are clustered
over the whole clip at once, so every latent frame's mask has the same meaning, and scored frame by
frame against per-frame masks.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Sequence

import numpy as np

from massivelens.sessions.reader import Session, open_session

from ..defaults import DEFAULT_FOREGROUND, FOREGROUND
from ..errors import BadRequest
from .intervals import mean_interval, separated, unit_means

# The clustering, named in every claims.json with its foreground rule: KMeans(n_clusters, n_init,
# random_state) on the tokens' min-max normalised values of the k channels.
KMEANS = {"algorithm": "sklearn.cluster.KMeans", "n_clusters": 2, "n_init": 10, "random_state": 0,
          "normalisation": "min-max per channel over the image tokens"}


@cache
def _threads():
    """One thread for KMeans on at most a few thousand tokens: OpenMP's spinning workers made single
    calls take 100-700 ms instead of ~10 ms on a busy 2-core machine (bench/cluster_overlay.py).
    scikit-learn loads on first use, so opening a session (app, CLI) does not pay for it."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def normalise(maps: np.ndarray) -> np.ndarray:
    """(k, *grid) -> (tokens, k), each channel scaled to [0, 1] across tokens (constant channels -> 0)."""
    x = maps.reshape(maps.shape[0], -1).T.astype(np.float64)
    low, high = x.min(axis=0), x.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    return (x - low) / span


def cluster_tokens(maps: np.ndarray, n_clusters: int = KMEANS["n_clusters"], seed: int = KMEANS["random_state"],
                   rule: str = DEFAULT_FOREGROUND) -> tuple[np.ndarray, np.ndarray]:
    """Cluster labels and the foreground mask by `rule` (FOREGROUND) on the maps' grid: (h, w) for an
    image's maps (k, h, w), (frames, h, w) for a video's (k, frames, h, w)."""
    labels, means = _kmeans(maps, n_clusters, seed)
    if not np.isfinite(means).any():
        return labels, np.zeros(labels.shape, bool)
    return labels, labels == _order(labels, means, rule)[0]


def ranked_clusters(maps: np.ndarray, n_clusters: int = KMEANS["n_clusters"], seed: int = KMEANS["random_state"],
                    rule: str = DEFAULT_FOREGROUND) -> np.ndarray:
    """(K, *grid) masks of the clusters, the foreground by `rule` first, then the rule's next choices: what a
    reader may prefer to call the subject when the rule picks the background."""
    labels, means = _kmeans(maps, n_clusters, seed)
    return np.stack([labels == c for c in _order(labels, means, rule)])


def _order(labels: np.ndarray, means: list[float], rule: str) -> np.ndarray:
    """Cluster ids, the foreground by `rule` first."""
    score = -np.asarray(means)
    if rule == "score":
        return np.argsort(score, kind="stable")
    if rule != "border":
        raise BadRequest(f"unknown foreground rule {rule!r}: choose from {', '.join(FOREGROUND)}")
    edge = np.zeros(labels.shape[-2:], bool)
    edge[[0, -1], :] = edge[:, [0, -1]] = True
    border = labels[..., edge].ravel()
    share = np.array([np.mean(border == c) if np.isfinite(m) else np.inf for c, m in enumerate(means)])  # empty: last
    return np.lexsort((score, share))


def _kmeans(maps: np.ndarray, n_clusters: int, seed: int) -> tuple[np.ndarray, list[float]]:
    """Labels on the maps' grid and each cluster's mean summed normalised score (-inf for an empty cluster)."""
    grid = maps.shape[1:]
    if not np.isfinite(maps).all():
        raise ValueError("the token maps hold non-finite values (a damaged session?); they are not clustered")
    x = normalise(maps)
    if np.ptp(x, axis=0).max() == 0:  # nothing to separate: every token looks the same
        return np.zeros(grid, np.int64), [-np.inf] * n_clusters
    from sklearn.cluster import KMeans

    with _threads().limit(limits=1):
        labels = KMeans(n_clusters=n_clusters, n_init=KMEANS["n_init"], random_state=seed).fit_predict(x)
    scores = x.sum(axis=1)
    means = [float(scores[labels == c].mean()) if np.any(labels == c) else -np.inf for c in range(n_clusters)]
    return labels.reshape(grid), means


def upsample(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A token mask (h, w) at pixel resolution (H, W), nearest neighbour, for IoU against pixel masks."""
    h, w = mask.shape
    rows = (np.arange(shape[0]) * h) // shape[0]
    cols = (np.arange(shape[1]) * w) // shape[1]
    return mask[rows][:, cols]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks of one shape; 1.0 when both are empty."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def mask_iou(token_mask: np.ndarray, pixel_mask: np.ndarray) -> float:
    """IoU of a token-grid mask against a pixel mask, compared at pixel resolution."""
    return iou(upsample(token_mask, pixel_mask.shape), pixel_mask.astype(bool))


def latent_frame(frame: int, frames: int, latent_frames: int) -> int:
    """The latent frame an output frame decodes from. Video VAEs keep the first frame alone and pack
    each following group of (frames - 1) / (latent frames - 1) frames into one latent frame (4 for Wan,
    HunyuanVideo and CogVideoX, 8 for LTX-Video)."""
    if latent_frames == 1 or frame == 0:
        return 0
    per_latent = (frames - 1) / (latent_frames - 1)
    return min(latent_frames - 1, int(np.ceil(frame / per_latent)))


def frame_ious(token_masks: np.ndarray, pixel_masks: np.ndarray) -> list[float]:
    """IoU of each output frame's mask (frames, H, W) against its latent frame's token mask (latent frames, h, w)."""
    frames, latent = len(pixel_masks), len(token_masks)
    return [mask_iou(token_masks[latent_frame(f, frames, latent)], pixel_masks[f]) for f in range(frames)]


@dataclass
class ClusterRow:
    session: str
    block: str
    step: int
    strategy: str
    iou: float
    frame: int | None = None  # a video's output frame; None for an image
    k: int = 0  # channels clustered (the set's first k)
    draw: int = 0  # which of the random control's draws


def session_masks(session: Session, step: int, block: int, n_clusters: int = KMEANS["n_clusters"],
                  k: int | None = None, rule: str = DEFAULT_FOREGROUND) -> dict[str, np.ndarray]:
    """Foreground token mask per recorded channel set ("top", and "bottom"/"random" when recorded; the
    random set's first draw) on the set's first k channels (all recorded by default); a video's masks
    are (latent frames, h, w)."""
    return {name: set_masks(session, name, step, block, n_clusters, k, rule)[0] for name in session.channel_sets}


def set_masks(session: Session, name: str, step: int, block: int, n_clusters: int = KMEANS["n_clusters"],
              k: int | None = None, rule: str = DEFAULT_FOREGROUND) -> list[np.ndarray]:
    """One channel set's foreground mask per draw (one for top and bottom) on its first k channels."""
    return [cluster_tokens(session.set_maps(name, step, block, draw)[:k], n_clusters, rule=rule)[1]
            for draw in range(session.draws(name))]


def default_step(session: Session) -> int:
    """The middle of the recorded trajectory, where the layout is set but details are not."""
    return session.steps_done // 2


def claim_steps(session: Session) -> tuple[int, int]:
    """The steps the claims are measured at: the middle (layout set, details not) and the last."""
    return default_step(session), session.steps_done - 1


def evaluate(
    sessions: list[Path], references: list[np.ndarray], step: int | None = None, n_clusters: int = KMEANS["n_clusters"],
    ks: Sequence[int] | None = None, steps: Sequence[int] | None = None, rule: str = DEFAULT_FOREGROUND,
) -> list[ClusterRow]:
    """IoU of every block's foreground mask, per channel set, draw and k (default: the k recorded), against
    each session's reference mask: one (H, W) mask for an image, one per output frame (frames, H, W) for a
    video (a row per frame); at `step`, or each of `steps`, or the middle step."""
    rows = []
    for path, reference in zip(sessions, references, strict=True):
        with open_session(path) as s:
            _check_reference(s, reference)
            chosen = steps if steps is not None else [default_step(s) if step is None else step]
            for at in chosen:
                for k in [s.k] if ks is None else [k for k in ks if k <= s.k]:
                    rows += _session_rows(s, path.name, reference, at, k, n_clusters, rule)
    return rows


def _session_rows(s: Session, name: str, reference: np.ndarray, step: int, k: int, n_clusters: int,
                  rule: str) -> list[ClusterRow]:
    rows = []
    for b, block in enumerate(s.blocks("image")):
        for strategy in s.channel_sets:
            for draw, mask in enumerate(set_masks(s, strategy, step, b, n_clusters, k, rule)):
                if not s.is_video:
                    rows.append(ClusterRow(name, block, step, strategy, mask_iou(mask, reference), None, k, draw))
                    continue
                rows += [ClusterRow(name, block, step, strategy, value, f, k, draw) for f, value in enumerate(frame_ious(mask, reference))]
    return rows


def _check_reference(session: Session, reference: np.ndarray) -> None:
    """A video needs one mask per output frame, an image one mask."""
    if not session.is_video:
        if reference.ndim != 2:
            raise BadRequest(f"{session.path.name} is an image: give one mask image, not a folder of frame masks")
        return
    frames = session.output_frames
    if reference.ndim != 3 or (frames and len(reference) != frames):
        got = f"{len(reference)} frame masks" if reference.ndim == 3 else "one mask image"
        raise BadRequest(f"{session.path.name} is a video of {frames} frames: give a folder of {frames} frame masks, got {got}")


def miou_by_block(rows: list[ClusterRow]) -> list[dict]:
    """Mean IoU per (block, strategy) with its 95% interval over sessions (a session's draws and frames
    averaged first), in block order: the paper's Fig. 3D curve. With several steps or ks in the rows,
    one curve per (step, k)."""
    out = []
    for step, k in dict.fromkeys((r.step, r.k) for r in rows):
        at = [r for r in rows if (r.step, r.k) == (step, k)]
        for block in dict.fromkeys(r.block for r in at):
            for strategy in dict.fromkeys(r.strategy for r in at):
                group = [r for r in at if r.block == block and r.strategy == strategy]
                mean, low, high = mean_interval(unit_means((r.session, r.iou) for r in group))
                out.append({"block": block, "strategy": strategy, "step": step, "k": k, "miou": mean,
                            "ci": [low, high], "n": len({r.session for r in group}), "draws": 1 + max(r.draw for r in group)})
    return out


def ordering(curve: list[dict]) -> list[dict]:
    """Per (step, k): in how many blocks top > random > bottom with non-overlapping 95% intervals, and in how
    many top's interval lies above both controls' (random and bottom may overlap each other)."""
    out = []
    for step, k in dict.fromkeys((e["step"], e["k"]) for e in curve):
        by_block: dict[str, dict[str, tuple]] = {}
        for e in curve:
            if (e["step"], e["k"]) == (step, k):
                by_block.setdefault(e["block"], {})[e["strategy"]] = (e["miou"], *e["ci"])
        full = {b: v for b, v in by_block.items() if {"top", "random", "bottom"} <= set(v)}
        above = [b for b, v in full.items() if separated(v["top"], v["random"]) and separated(v["top"], v["bottom"])]
        ordered = [b for b in above if separated(full[b]["random"], full[b]["bottom"])]
        out.append({"step": step, "k": k, "blocks": len(by_block), "top_random_bottom": len(ordered), "which": ordered,
                    "top_above_both": len(above)})
    return out
