"""Token clusters on a few channels: the paper's spatial claim.

Image tokens restricted to k channels, each channel min-max normalised across tokens, clustered
with KMeans; the foreground is the cluster with the larger mean summed normalised score.
Works on the token maps a session recorded, so no model is needed.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from massivelens.sessions.reader import Session, open_session


@cache
def _threads():
    """One thread for KMeans on at most a few thousand tokens: OpenMP's spinning workers made single
    calls take 100-700 ms instead of ~10 ms on a busy 2-core machine (bench/cluster_overlay.py).
    scikit-learn loads on first use, so opening a session (app, CLI) does not pay for it."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def normalise(maps: np.ndarray) -> np.ndarray:
    """(k, h, w) -> (tokens, k), each channel scaled to [0, 1] across tokens (constant channels -> 0)."""
    x = maps.reshape(maps.shape[0], -1).T.astype(np.float64)
    low, high = x.min(axis=0), x.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    return (x - low) / span


def cluster_tokens(maps: np.ndarray, n_clusters: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cluster labels (h, w), and the foreground mask (h, w): the cluster of highest mean summed score."""
    k, h, w = maps.shape
    x = normalise(maps)
    if np.ptp(x, axis=0).max() == 0:  # nothing to separate: every token looks the same
        return np.zeros((h, w), np.int64), np.zeros((h, w), bool)
    from sklearn.cluster import KMeans

    with _threads().limit(limits=1):
        labels = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(x)
    scores = x.sum(axis=1)
    means = [scores[labels == c].mean() if np.any(labels == c) else -np.inf for c in range(n_clusters)]
    foreground = labels == int(np.argmax(means))
    return labels.reshape(h, w), foreground.reshape(h, w)


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


@dataclass
class ClusterRow:
    session: str
    block: str
    step: int
    strategy: str
    iou: float


def session_masks(session: Session, step: int, block: int, n_clusters: int = 2) -> dict[str, np.ndarray]:
    """Foreground token mask per recorded channel set ("top", and "bottom"/"random" when recorded)."""
    return {name: cluster_tokens(session.set_maps(name, step, block), n_clusters)[1] for name in session.channel_sets}


def default_step(session: Session) -> int:
    """The middle of the recorded trajectory, where the layout is set but details are not."""
    return session.steps_done // 2


def evaluate(
    sessions: list[Path], references: list[np.ndarray], step: int | None = None, n_clusters: int = 2
) -> list[ClusterRow]:
    """IoU of every block's foreground mask, per channel set, against each session's reference mask."""
    rows = []
    for path, reference in zip(sessions, references, strict=True):
        with open_session(path) as s:
            at = default_step(s) if step is None else step
            for b, name in enumerate(s.blocks("image")):
                for strategy, mask in session_masks(s, at, b, n_clusters).items():
                    rows.append(ClusterRow(path.name, name, at, strategy, mask_iou(mask, reference)))
    return rows


def miou_by_block(rows: list[ClusterRow]) -> list[dict]:
    """Mean IoU per (block, strategy) over sessions, in block order: the paper's Fig. 3D curve."""
    out = []
    for block in dict.fromkeys(r.block for r in rows):
        for strategy in dict.fromkeys(r.strategy for r in rows):
            values = [r.iou for r in rows if r.block == block and r.strategy == strategy]
            out.append({"block": block, "strategy": strategy, "miou": float(np.mean(values)), "n": len(values)})
    return out
