"""The two rules for massive channels, applied to recorded statistics without re-running a model."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import schema as S

if TYPE_CHECKING:
    from .reader import Session


def top_channels(mean_abs: np.ndarray, k: int) -> np.ndarray:
    """The paper's rule: per block (last axis = channels), the k channels of largest mean |x|, largest first."""
    k = min(k, mean_abs.shape[-1])
    order = np.argsort(-mean_abs, axis=-1, kind="stable")
    return order[..., :k]


def bottom_channels(mean_abs: np.ndarray, k: int) -> np.ndarray:
    """The k channels of smallest mean |x| per block, smallest first: the paper's control."""
    k = min(k, mean_abs.shape[-1])
    return np.argsort(mean_abs, axis=-1, kind="stable")[..., :k]


def sun_massive(
    max_abs: np.ndarray, median_abs: np.ndarray, absolute: float = S.SUN_ABSOLUTE, relative: float = S.SUN_RELATIVE
) -> np.ndarray:
    """Sun et al.'s rule: channels whose |x| exceeds `absolute` and `relative` times the block's median."""
    median = np.asarray(median_abs)[..., None]
    return (max_abs > absolute) & (max_abs > relative * median)


def max_over_median(max_abs: np.ndarray, median_abs: np.ndarray) -> np.ndarray:
    """Largest channel magnitude over the block's median |x| (the massive-activation ratio)."""
    return peak_over_median(max_abs.max(axis=-1), median_abs)


def peak_over_median(peak_abs: np.ndarray, median_abs: np.ndarray) -> np.ndarray:
    """The massive-activation ratio from a block's largest |x| and its median |x|."""
    return peak_abs / np.maximum(median_abs, np.finfo(np.float32).tiny)


RULES = ("topk", "sun")


def massive_channels(session: Session, rule: str = "topk", stream: str = "image", k: int | None = None) -> dict[str, list[int]]:
    """Per block of a stream, over the finished steps: the paper's top-k channels by mean |x| (largest
    first), or the channels Sun et al.'s rule marks at some step (ascending)."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; use {' or '.join(RULES)}")
    if session.steps_done == 0:
        return {}
    if rule == "topk":
        ids = top_channels(session.mean_abs_run(stream), k or session.k)
        chosen = [[int(c) for c in row] for row in ids]
    else:
        chosen = [[int(c) for c in np.flatnonzero(row)] for row in session.sun_steps(stream) > 0]
    return dict(zip(session.blocks(stream), chosen))


@dataclass
class BlockSummary:
    block: str
    stream: str
    top_channels: list[int]
    max_over_median: float
    max_abs: float
    sun_channels: list[int]


def summarize(session: Session, k: int | None = None) -> list[BlockSummary]:
    """Per block and stream over all finished steps: channels ranked by mean |x|, and the massive ratio."""
    if session.steps_done == 0:
        return []
    k = k or session.k
    out = []
    for stream in session.streams:
        mean, peak = session.mean_abs_run(stream), session.max_abs_run(stream)
        ratio = peak_over_median(session.peak_abs(stream), session.median_abs(stream)).max(axis=0)
        sun = session.sun_steps(stream) > 0
        ranked = top_channels(mean, k)
        for i, name in enumerate(session.blocks(stream)):
            if np.isnan(mean[i]).all():  # the block had no such stream output (SD3's last joint block: no text)
                continue
            out.append(
                BlockSummary(
                    block=name,
                    stream=stream,
                    top_channels=[int(c) for c in ranked[i]],
                    max_over_median=float(ratio[i]),
                    max_abs=float(peak[i].max()),
                    sun_channels=[int(c) for c in np.flatnonzero(sun[i])],
                )
            )
    return out
