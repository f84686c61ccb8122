"""The disruption probe: the paper's critical claim, measured.

For each prompt and seed, a baseline generation is recorded (it ranks the channels of every
block by mean |x| over image tokens and steps); then the image is regenerated with k channels
set to zero (or their mean) at the chosen blocks, for k in a list and three strategies: the top-k
channels, the bottom-k, and random draws. Each result is scored against the baseline (MSE, PSNR)
and, on the embedded model, by the world reader (all-attributes accuracy, subject-mask IoU). A video
is scored on the whole clip, per frame, and by its temporal consistency (mean PSNR between
consecutive frames).
"""
from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from massivelens.sessions.massive import bottom_channels, top_channels
from massivelens.sessions.reader import open_session
from massivelens.sessions.schema import RANDOM_DRAWS

from .. import defaults
from ..api import zero_channels
from ..cancel import CancelToken
from ..core.architectures import adapter_for
from ..core.calls import output_images
from ..core.recording import random_seed
from ..defaults import PROBE_KS, STRATEGIES
from ..errors import BadRequest
from ..generation import Generation, call_kwargs, resolve
from ..jobs import RecordRequest, record, run
from ..loading import ModelSpec, load_pipeline
from ..video_files import save_output
from .clip_score import ClipScorer
from .clusters import iou
from .intervals import mean_interval, unit_means
from .metrics import frame_psnr, mse, psnr, temporal_consistency, uses_world, world_score


@dataclass
class ProbeRequest:
    prompts: list[str]
    out: Path
    spec: ModelSpec = field(default_factory=lambda: ModelSpec(defaults.DEFAULT_MODEL))
    seeds: tuple[int, ...] = (defaults.SEED,)
    ks: tuple[int, ...] = PROBE_KS
    strategies: tuple[str, ...] = STRATEGIES
    draws: int = RANDOM_DRAWS  # random-k channel sets per block, prompt and k
    mode: str = "zero"
    blocks: tuple[str, ...] | None = None
    negative_prompt: str | None = None
    steps: int | None = None
    guidance: float | None = None
    height: int | None = None
    width: int | None = None
    frames: int | None = None  # a video pipeline's num_frames
    clip: str | None = None  # a CLIP model (hub id or folder): adds each image's similarity to its prompt


@dataclass
class ProbeRow:
    prompt_index: int
    prompt: str
    seed: int
    strategy: str
    k: int
    draw: int
    mse: float
    psnr: float
    accuracy: float | None
    mask_iou: float | None
    image: str
    clip: float | None = None
    temporal: float | None = None  # a video's mean PSNR between consecutive frames


@dataclass
class FrameRow:
    """One frame of one probe video: its PSNR against the same frame of the baseline."""

    prompt_index: int
    seed: int
    strategy: str
    k: int
    draw: int
    frame: int
    psnr: float


@dataclass
class ProbeResult:
    model: str
    rows: list[ProbeRow]
    baseline_accuracy: float | None
    sessions: list[Path]
    frame_rows: list[FrameRow] = field(default_factory=list)  # videos only
    baseline_temporal: float | None = None  # videos: the baselines' mean temporal consistency

    def summary(self) -> list[dict]:
        """Per (strategy, k): mean, spread (std), standard error and 95% interval over prompts and seeds,
        a prompt's random draws averaged first (`n` generations, `units` prompt-seed pairs)."""
        out = []
        for strategy in dict.fromkeys(r.strategy for r in self.rows):
            for k in sorted({r.k for r in self.rows if r.strategy == strategy}):
                group = [r for r in self.rows if r.strategy == strategy and r.k == k]
                entry = {"strategy": strategy, "k": k, "n": len(group), "units": len({(r.prompt_index, r.seed) for r in group})}
                for name in ("accuracy", "psnr", "mse", "mask_iou", "clip", "temporal"):
                    values = unit_means(((r.prompt_index, r.seed), getattr(r, name)) for r in group)
                    mean, low, high = mean_interval(values)
                    entry[name] = mean if values else None
                    entry[f"{name}_std"] = float(np.std(values)) if values else None
                    entry[f"{name}_sem"] = float(np.std(values) / np.sqrt(len(values))) if values else None
                    entry[f"{name}_ci"] = [low, high] if values else None
                out.append(entry)
        return out


def choose_channels(strategy: str, mean_abs: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """(blocks, k) channel ids for one strategy, from per-block mean |x| (blocks, channels)."""
    if strategy == "top":
        return top_channels(mean_abs, k)
    if strategy == "bottom":
        return bottom_channels(mean_abs, k)
    if strategy == "random":
        return np.stack([rng.choice(mean_abs.shape[1], size=min(k, mean_abs.shape[1]), replace=False) for _ in mean_abs])
    raise BadRequest(f"unknown strategy {strategy!r}; use {', '.join(STRATEGIES)}")


def probe(
    request: ProbeRequest,
    progress: Callable[[int, int, str], None] | None = None,
    cancel: CancelToken | None = None,
) -> ProbeResult:
    """Run the whole probe; images go to out/images, baseline sessions to out/sessions."""
    _validate(request)
    pipe = load_pipeline(request.spec)
    world = uses_world(request.spec.model)
    names = adapter_for(pipe.transformer).block_names(pipe.transformer)
    unknown = set(request.blocks or ()) - set(names)
    if unknown:
        raise BadRequest(f"unknown block(s) {', '.join(sorted(unknown))}")
    chosen = set(request.blocks or names)
    clip = ClipScorer(request.clip, request.spec.device) if request.clip else None
    (request.out / "images").mkdir(parents=True, exist_ok=True)
    plan = [(s, k, d) for s in request.strategies for k in request.ks for d in range(request.draws if s == "random" else 1)]
    total, done = len(request.prompts) * len(request.seeds) * (1 + len(plan)), 0
    rows, frame_rows, sessions, baseline_scores, baseline_temporal = [], [], [], [], []
    for index, prompt in enumerate(request.prompts):
        for seed in request.seeds:
            gen = resolve(request.spec.model, prompt, request.negative_prompt, seed,
                          request.steps, request.guidance, request.height, request.width, request.frames)
            session = record(_baseline_request(request, gen, index), cancel=cancel)
            sessions.append(session)
            with open_session(session) as s:
                baseline, mean = (s.frames if s.is_video else s.image), s.mean_abs_run("image")
            base_score = world_score(prompt, baseline) if world else None
            if base_score:
                baseline_scores.append(base_score.accuracy)
            if baseline.ndim == 4 and len(baseline) > 1:
                baseline_temporal.append(temporal_consistency(baseline))
            done += 1
            for strategy, k, draw in plan:
                if progress:
                    progress(done, total, f"prompt {index + 1}, seed {seed}: {strategy}-{k}")
                ids = choose_channels(strategy, mean, k, np.random.default_rng([random_seed(prompt, seed), k, draw]))
                channels = {n: [int(c) for c in ids[i]] for i, n in enumerate(names) if n in chosen}
                image = zeroed_image(pipe, gen, channels, request.mode, cancel)
                name = save_output(image, request.out / "images" / f"{index:03d}-seed{seed}-{strategy}-k{k}-d{draw}.png")[0].name
                score = world_score(prompt, image) if world else None
                rows.append(ProbeRow(
                    index, prompt, seed, strategy, k, draw, mse(image, baseline), psnr(image, baseline),
                    score.accuracy if score else None,
                    iou(score.mask, base_score.mask) if score else None,
                    name,
                    clip.scores(image, "", prompt)["target_prompt"] if clip else None,
                    temporal_consistency(image) if image.ndim == 4 else None,
                ))
                if image.ndim == 4:
                    frame_rows += [FrameRow(index, seed, strategy, k, draw, f, value) for f, value in enumerate(frame_psnr(image, baseline))]
                done += 1
    if progress:
        progress(total, total, "done")
    baseline_accuracy = float(np.mean(baseline_scores)) if baseline_scores else None
    temporal = float(np.mean(baseline_temporal)) if baseline_temporal else None
    return ProbeResult(request.spec.model, rows, baseline_accuracy, sessions, frame_rows, temporal)


def zeroed_image(pipe, gen: Generation, channels: dict[str, list[int]], mode: str, cancel: CancelToken | None = None) -> np.ndarray:
    """The generation's image (a video's frames) with those channels zeroed (or set to their mean) at every step."""
    with zero_channels(pipe, channels, mode=mode, cancel=cancel):
        return output_images(run(pipe, call_kwargs(pipe, gen)), 1, "pil")[0]


def _validate(request: ProbeRequest) -> None:
    if not request.prompts:
        raise BadRequest("the probe needs at least one prompt")
    if request.mode not in ("zero", "mean"):
        raise BadRequest(f"unknown mode {request.mode!r}; use zero or mean")
    if any(k < 1 for k in request.ks):
        raise BadRequest("every k must be at least 1")
    for strategy in request.strategies:
        if strategy not in STRATEGIES:
            raise BadRequest(f"unknown strategy {strategy!r}; use {', '.join(STRATEGIES)}")


def _baseline_request(request: ProbeRequest, gen, index: int) -> RecordRequest:
    spec = request.spec
    return RecordRequest(
        prompt=gen.prompt, out=request.out / "sessions" / f"{index:03d}-seed{gen.seed}.h5", model=spec.model,
        negative_prompt=gen.negative_prompt, seed=gen.seed, steps=gen.steps, guidance=gen.guidance,
        height=gen.height, width=gen.width, frames=gen.frames, k=max(request.ks), dtype=spec.dtype, device=spec.device,
        offload=spec.offload, control_sets=("bottom", "random"), random_draws=request.draws, overwrite=True,
    )


def write_tables(result: ProbeResult, out: Path) -> tuple[Path, ...]:
    """probe.csv (one row per generation), probe_summary.csv (per strategy and k) and, for videos,
    probe_frames.csv (one row per frame of each generation)."""
    rows_path, summary_path, frames_path = out / "probe.csv", out / "probe_summary.csv", out / "probe_frames.csv"
    _write_csv(rows_path, [asdict(r) for r in result.rows])
    _write_csv(summary_path, result.summary())
    if not result.frame_rows:
        return rows_path, summary_path
    _write_csv(frames_path, [asdict(r) for r in result.frame_rows])
    return rows_path, summary_path, frames_path


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
