"""Synthetic sessions written through `sessions.writer`, with massive channels planted on purpose."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from massivelens.sessions import schema as S
from massivelens.sessions.compact import encode_maps, encode_stats
from massivelens.sessions.records import Layout, Packed, RunInfo, StepRecord, StreamStats
from massivelens.sessions.writer import SessionWriter

PLANTED = (7, 3, 11)  # outlier channels, strongest first; only 7 passes Sun et al.'s 1000x rule
_PLANTED_SCALE = (3000.0, 300.0, 150.0)  # peak |x| inside the subject; 5x less outside


def synthetic_info(steps: int, k: int, prompt: str = "a small red circle on a blue background at top left") -> RunInfo:
    return RunInfo(
        model="synthetic",
        pipeline_class="FluxPipeline",
        transformer_class="FluxTransformer2DModel",
        dtype="fp32",
        device="cpu",
        prompt=prompt,
        negative_prompt="",
        seed=0,
        steps=steps,
        guidance=3.5,
        height=64,
        width=64,
        k=k,
        scheduler="FlowMatchEulerDiscreteScheduler",
    )


def write_synthetic_session(
    path: Path,
    blocks: int = 4,
    channels: int = 32,
    steps: int = 3,
    grid: tuple[int, int] = (8, 8),
    k: int = 4,
    complete: bool = True,
    steps_written: int | None = None,
    hidden_blocks: tuple[str, ...] = (),
    seed: int = 0,
    control_sets: tuple[str, ...] = (),
    profile: str = "default",
    kept_steps: tuple[int, ...] | None = None,
    dark_subject: bool = False,
) -> Path:
    """A session whose image stream has PLANTED channels far above the rest, brighter on the top-left subject
    (`dark_subject`: dimmer there, as FLUX.2's massive channel is); `control_sets` ("bottom", "random") also
    records those channel sets' maps, as `record --controls` does."""
    rng = np.random.default_rng(seed)
    names = {"image": [f"double.{i}" for i in range(blocks)], "text": [f"double.{i}" for i in range(blocks)]}
    layout = Layout(
        blocks=names,
        channels={"image": channels, "text": channels},
        grid=grid,
        hidden_blocks=hidden_blocks,
        hidden_steps=tuple(range(steps)) if hidden_blocks else (),
        control_sets=control_sets,
        profile=profile,
        kept_steps=kept_steps,
    )
    writer = SessionWriter(path, synthetic_info(steps, k), layout)
    runs: dict = {}
    for step in range(steps if steps_written is None else steps_written):
        writer.write_step(_synthetic_step(rng, step, steps, layout, k, runs, dark_subject))
    if complete:
        writer.finish(rng.integers(0, 255, size=(64, 64, 3), dtype=np.uint8))
    else:
        writer.close()
    return path


def _tokens(rng: np.random.Generator, channels: int, grid: tuple[int, int], dark_subject: bool = False) -> np.ndarray:
    """(tokens, channels) of one block: unit noise plus the planted channels, 5x brighter on the
    top-left quarter (the "subject"), or 5x dimmer there."""
    h, w = grid
    tokens = rng.normal(size=(h * w, channels)).astype(np.float32)
    yy, xx = np.mgrid[:h, :w]
    subject = ((yy < h // 2) & (xx < w // 2)).reshape(-1)
    for c, scale in zip(PLANTED, _PLANTED_SCALE):
        if c < channels:
            tokens[:, c] += np.where(subject != dark_subject, scale, scale / 5)
    return tokens


def _synthetic_step(rng, step: int, steps: int, layout: Layout, k: int, runs: list, dark_subject: bool = False) -> StepRecord:
    """Statistics of one step. Blocks share one token sample (cheap at FLUX size: 57 x 3072 x 4096
    would be 2.9 GB a step); per-block noise on the statistics keeps blocks distinguishable."""
    blocks, channels, grid = layout.blocks["image"], layout.channels["image"], layout.grid
    tokens = _tokens(rng, channels, grid, dark_subject)
    a = np.abs(tokens)
    jitter = 1 + 0.05 * rng.random((len(blocks), channels), dtype=np.float32)
    mean = a.mean(axis=0) * jitter
    peak = a.max(axis=0) * jitter
    median = np.full(len(blocks), np.median(a), np.float32)
    top = np.argsort(-mean, axis=1, kind="stable")[:, :k].astype(np.int32)
    channel_sets = {"top": top, **{name: _control(name, mean, k, step) for name in layout.control_sets}}
    maps = {name: _maps(tokens, ids, grid) for name, ids in channel_sets.items()}
    hidden = {("image", name): tokens for name in layout.hidden_blocks}
    return float_step(layout, step, 1000.0 * (1 - step / steps), {s: (mean, peak, median) for s in layout.blocks},
                      channel_sets, maps, runs, hidden)


def float_step(layout: Layout, step: int, timestep: float, stats: dict, channels: dict, maps: dict, runs: dict,
               hidden: dict | None = None) -> StepRecord:
    """A StepRecord from exact float arrays, stored as the layout's profile stores them (what the engine's
    recorder does on the device). stats: stream -> (mean, peak, median); `runs` (a dict kept across the
    steps of one session) collects them for the run aggregates."""
    keep = layout.keeps(step)
    out = {}
    for stream, (mean, peak, median) in stats.items():
        run = runs.setdefault(stream, {"n": 0, "sum": 0.0, "max": peak, "sun": 0})
        run["n"] += 1
        run["sum"] = run["sum"] + mean
        run["max"] = np.fmax(run["max"], peak)
        run["sun"] = run["sun"] + ((peak > S.SUN_ABSOLUTE) & (peak > S.SUN_RELATIVE * median[:, None]))
        out[stream] = StreamStats(
            median, peak.max(axis=1), (run["sum"] / run["n"]).astype(np.float32), run["max"].astype(np.float32),
            np.asarray(run["sun"], np.uint16), _packed_stats(mean, layout) if keep else None,
            _packed_stats(peak, layout) if keep else None,
        )
    packed_maps = {name: Packed(*encode_maps(values, 2)) for name, values in maps.items()} if keep else {}  # a scale per (latent) frame
    return StepRecord(step, timestep, out, channels, packed_maps, hidden or {})


def _packed_stats(values: np.ndarray, layout: Layout) -> Packed:
    return Packed(values) if layout.float_stats else Packed(*encode_stats(values))


def _control(name: str, mean: np.ndarray, k: int, step: int) -> np.ndarray:
    """(blocks, k) ids of a control set: the k weakest channels, or a draw of its own generator (so that
    recording controls leaves every other value of the session unchanged)."""
    if name == "bottom":
        return np.argsort(mean, axis=1, kind="stable")[:, :k].astype(np.int32)
    draw = np.random.default_rng(step)
    return np.stack([draw.choice(mean.shape[1], k, replace=False) for _ in mean]).astype(np.int32)


def _maps(tokens: np.ndarray, ids: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(blocks, k, h, w) token maps of the chosen channels of every block."""
    return np.stack([tokens[:, row].T.reshape(len(row), *grid) for row in ids])
