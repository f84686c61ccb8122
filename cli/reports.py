"""Files the probe, clusters and claims commands leave behind: tables, figures, image grids."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image

from massivelens.engine.analysis.clusters import ClusterRow, miou_by_block
from massivelens.engine.analysis.probe import ProbeResult, write_tables
from massivelens.engine.imaging import image_grid, save_png
from massivelens.gui.figures import line_figure


def probe_report(result: ProbeResult, out: Path) -> list[Path]:
    """probe.csv, probe_summary.csv, probe.png/.svg (quality against k per strategy), grid.png."""
    written = list(write_tables(result, out))
    summary = result.summary()
    metric = "accuracy" if result.baseline_accuracy is not None else "psnr"
    label = "all-attributes accuracy" if metric == "accuracy" else "PSNR to the unperturbed image (dB)"
    label += " (mean, 95% interval)"
    ks = sorted({e["k"] for e in summary})
    position = {k: i for i, k in enumerate(ks)}  # k grows geometrically: evenly spaced ticks read best
    series = {}
    for strategy in dict.fromkeys(e["strategy"] for e in summary):
        group = [e for e in summary if e["strategy"] == strategy]
        series[strategy] = ([position[e["k"]] for e in group], [e[metric] for e in group], [_half_width(e[f"{metric}_ci"]) for e in group])
    if result.baseline_accuracy is not None:
        series["unperturbed"] = (list(range(len(ks))), [result.baseline_accuracy] * len(ks), None)
    written += line_figure(series, f"Zeroing k channels per block ({Path(result.model).name})", "k (channels zeroed per block)",
                           label, out / "probe", x_ticks=[str(k) for k in ks], unit_interval=metric == "accuracy")
    written.append(save_png(_probe_grid(result, out), out / "grid.png"))
    return written


def _probe_grid(result: ProbeResult, out: Path) -> Image.Image:
    """First prompt and seed: one row per strategy (first draw), one column per k, baseline first."""
    first = result.rows[0]
    rows = [r for r in result.rows if (r.prompt_index, r.seed, r.draw) == (first.prompt_index, first.seed, 0)]
    strategies = list(dict.fromkeys(r.strategy for r in rows))
    ks = sorted({r.k for r in rows})
    from massivelens.sessions.reader import open_session

    with open_session(result.sessions[0]) as s:
        baseline = s.image
    cells = []
    for strategy in strategies:
        by_k = {r.k: np.asarray(Image.open(out / "images" / r.image)) for r in rows if r.strategy == strategy}
        cells.append([baseline] + [by_k.get(k) for k in ks])
    return image_grid(cells, strategies, ["baseline"] + [f"k={k}" for k in ks])


def cluster_report(rows: list[ClusterRow], out: Path, title: str) -> list[Path]:
    """clusters.csv (per session, block, strategy, step, k, draw), clusters_miou.csv (mean and 95% interval)
    and per-block mIoU figures: clusters_miou.png/.svg at the first step and the largest k, and, when the
    rows hold several steps or ks, clusters_miou-step<S>-k<K> for each."""
    import csv

    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "clusters.csv", out / "clusters_miou.csv"]
    curve = miou_by_block(rows)
    flat = [{**{k: v for k, v in e.items() if k != "ci"}, "ci_low": e["ci"][0], "ci_high": e["ci"][1]} for e in curve]
    for path, data in zip(paths, ([asdict(r) for r in rows], flat)):
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(data[0]))
            writer.writeheader()
            writer.writerows(data)
    pairs = list(dict.fromkeys((e["step"], e["k"]) for e in curve))
    first = (pairs[0][0], max(k for s, k in pairs if s == pairs[0][0]))
    for step, k in [first] + (pairs if len(pairs) > 1 else []):
        at = [e for e in curve if (e["step"], e["k"]) == (step, k)]
        blocks = list(dict.fromkeys(e["block"] for e in at))
        series = {
            strategy: (list(range(len(blocks))), [e["miou"] for e in at if e["strategy"] == strategy],
                       [_half_width(e["ci"]) for e in at if e["strategy"] == strategy])
            for strategy in dict.fromkeys(e["strategy"] for e in at)
        }
        name = "clusters_miou" if (step, k) == first and not paths[2:] else f"clusters_miou-step{step}-k{k}"
        paths += line_figure(series, f"{title}, step {step}, k {k}", "block", "mIoU with the subject mask (mean, 95% interval)",
                             out / name, x_ticks=_sparse(blocks), unit_interval=True)
    return paths


def _half_width(interval: list[float]) -> float | None:
    """Half the width of a symmetric interval, for error bars; None where there is none (one sample)."""
    low, high = interval
    return None if not np.isfinite(low) else (high - low) / 2


def _sparse(labels: list[str], most: int = 12) -> list[str]:
    """Tick labels thinned so they stay readable on deep models."""
    step = max(1, int(np.ceil(len(labels) / most)))
    return [label if i % step == 0 else "" for i, label in enumerate(labels)]


def overlays(sessions: list[Path], rows: list[ClusterRow], out: Path, n_clusters: int, rule: str) -> list[Path]:
    """Per session: the image (a video's first frame) with each channel set's foreground, at the block where
    top-k scores best; for a video also overlay-<session>.gif, every frame under the top-k foreground."""
    from massivelens.engine.analysis.clusters import session_masks
    from massivelens.engine.imaging import overlay
    from massivelens.sessions.reader import open_session

    written = []
    for path in sessions:
        mine = [r for r in rows if r.session == path.name and r.strategy == "top"]
        best = max(mine, key=lambda r: r.iou)
        with open_session(path) as s:
            image, frames = s.image, s.frames
            block = s.blocks("image").index(best.block)
            masks = session_masks(s, best.step, block, n_clusters, best.k, rule)
        first = {name: mask[0] if frames is not None else mask for name, mask in masks.items()}
        cells = [[image] + [overlay(image, mask) for mask in first.values()]]
        grid = image_grid(cells, [best.block], ["image"] + [f"{name}-{best.k}" for name in masks], cell=160)
        written.append(save_png(grid, out / f"overlay-{path.stem}.png"))
        if frames is not None:
            written.append(_overlay_clip(frames, masks["top"], out / f"overlay-{path.stem}.gif"))
    return written


def _overlay_clip(frames: np.ndarray, token_masks: np.ndarray, path: Path) -> Path:
    """Every frame under the token mask of the latent frame it decodes from, as an animation."""
    from massivelens.engine.analysis.clusters import latent_frame
    from massivelens.engine.imaging import overlay
    from massivelens.engine.video_files import save_animation

    latent = len(token_masks)
    return save_animation(np.stack([overlay(frame, token_masks[latent_frame(f, len(frames), latent)])
                                    for f, frame in enumerate(frames)]), path)
