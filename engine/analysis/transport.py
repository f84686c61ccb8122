"""Transport: copy a source trajectory's massive channels into a target generation.

The target's top-k channels per block (ranked by mean |x| over image tokens and steps in the
target's own plain run) are replaced, at the chosen blocks and steps and inside a token mask,
by the source's values at the same block, step and guidance branch, blended by alpha. The
source is another prompt with the same seed (prompt interpolation) or a reference image turned
into a trajectory by `engine.inversion` (subject-driven generation). Nothing is trained.

Every generation is a session: the plain target and source runs under out/sessions, and one
result per alpha whose `extra` names its source, target and settings. On a video pipeline the
masks and replacements span every latent frame, and each image is the video's frames.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from massivelens.sessions.massive import top_channels
from massivelens.sessions.reader import open_session

from .. import defaults
from ..cancel import CancelToken
from ..core.architectures import adapter_for
from ..core.capture import Capture
from ..core.interventions import Intervention, ValueSource
from ..defaults import ALPHAS, DEFAULT_FOREGROUND, FOREGROUND, INVERSION_GUIDANCE, INVERSIONS, MASK_MODES
from ..errors import BadRequest
from ..generation import Generation, default_size, default_steps, resolve
from ..jobs import RecordRequest, record
from ..loading import ModelSpec, load_pipeline
from .clusters import cluster_tokens
from .inversion import load_reference, source_overrides

SESSIONS = "sessions"
NO_CAPTION = "(reference image, no caption)"


@dataclass
class TransportRequest:
    """One transport sweep. Exactly one of source_prompt / source_image; None means the default.

    `blocks` holds block names or index ranges ("0:4", half-open; "3" is one block; "all"), empty = all;
    `window` is the half-open step range (start, end), None ends meaning the first / last step.
    `blocks`, `window`, `mask` and `k` left None take the model's transport defaults
    (`defaults.transport_defaults`: its massivelens.json, else every block and step, all tokens, K).
    `mask_step` / `mask_block` pick the token maps the masks are clustered on (default: middle), and
    `foreground` the rule that calls one cluster each run's foreground (clusters.FOREGROUND).
    `inversion_guidance` is the guidance of a reference's inversion and trajectory: without
    classifier-free guidance (1.0) the trajectory reconstructs the reference far better, and having
    no unconditional branch, it changes only the target's conditional one.
    """

    target_prompt: str
    out: Path
    source_prompt: str | None = None
    source_image: Path | None = None
    source_caption: str = ""
    inversion: str = "euler"
    inversion_guidance: float = INVERSION_GUIDANCE
    alphas: tuple[float, ...] = ALPHAS
    blocks: tuple[str, ...] | None = None
    window: tuple[int | None, int | None] | None = None
    mask: str | None = None
    k: int | None = None
    mask_step: int | None = None
    mask_block: int | None = None
    foreground: str = DEFAULT_FOREGROUND
    spec: ModelSpec = field(default_factory=lambda: ModelSpec(defaults.DEFAULT_MODEL))
    negative_prompt: str | None = None
    seed: int = defaults.SEED
    steps: int | None = None
    guidance: float | None = None
    height: int | None = None
    width: int | None = None
    frames: int | None = None  # a video pipeline's num_frames


@dataclass
class AlphaResult:
    alpha: float
    image: np.ndarray  # (H, W, 3), or a video's frames (F, H, W, 3)
    session: Path


@dataclass
class TransportResult:
    """What a sweep made: the plain target and source images, one result per alpha, and the
    settings as resolved (block names, step window, token mask on the grid or None = all).
    `source_prompt` is the source run's prompt: a reference's caption, possibly empty."""

    request: TransportRequest
    target_prompt: str
    source_prompt: str
    target_image: np.ndarray
    source_image: np.ndarray
    reference: np.ndarray | None
    results: list[AlphaResult]
    blocks: list[str]
    window: tuple[int, int]
    mask: np.ndarray | None
    mask_at: tuple[int, int]
    channels: dict[str, list[int]]
    target_session: Path
    source_session: Path


def select_blocks(specs: Sequence[str], names: Sequence[str]) -> list[str]:
    """Block names from names or index ranges, in the model's call order; empty or "all" -> all blocks."""
    if not specs or "all" in specs:
        return list(names)
    chosen: set[str] = set()
    for spec in specs:
        if spec in names:
            chosen.add(spec)
            continue
        try:
            parts = [int(p) if p.strip() else None for p in spec.split(":")]
        except ValueError:
            raise BadRequest(f"unknown block {spec!r}; use block names ({names[0]} ... {names[-1]}) or index ranges like 0:4") from None
        if len(parts) > 2 or (len(parts) == 1 and not -len(names) <= parts[0] < len(names)):
            raise BadRequest(f"bad block range {spec!r}; the model has blocks 0 to {len(names) - 1}")
        picked = names[slice(*parts)] if len(parts) == 2 else [names[parts[0]]]
        if not picked:
            raise BadRequest(f"block range {spec!r} selects no block; the model has blocks 0 to {len(names) - 1}")
        chosen.update(picked)
    return [name for name in names if name in chosen]


def parse_window(text: str) -> tuple[int | None, int | None]:
    """"START:END" (half-open; either end may be left out, "" means every step)."""
    parts = text.split(":") if text.strip() else ["", ""]
    try:
        if len(parts) != 2:
            raise ValueError
        start, end = (int(p) if p.strip() else None for p in parts)
    except ValueError:
        raise BadRequest(f"a step window looks like START:END, e.g. 2:10, got {text!r}") from None
    return start, end


def step_window(window: tuple[int | None, int | None], steps: int) -> tuple[int, int]:
    """The half-open step range, checked against the number of steps."""
    start = 0 if window[0] is None else window[0]
    end = steps if window[1] is None else window[1]
    if not 0 <= start < end <= steps:
        raise BadRequest(f"step window {start}:{end} is not inside 0:{steps} (half-open, start < end)")
    return start, end


def token_mask(mode: str, source: np.ndarray, target: np.ndarray) -> np.ndarray | None:
    """The token mask ((h, w), a video's (frames, h, w)) for a mask mode from the two foregrounds; None = every token."""
    masks = {"source": source, "target": target, "union": source | target, "all": None}
    if mode not in masks:
        raise BadRequest(f"unknown mask {mode!r}; use {', '.join(MASK_MODES)}")
    return masks[mode]


def foreground(session: Path, step: int | None, block: int | None,
               rule: str = DEFAULT_FOREGROUND) -> tuple[np.ndarray, tuple[int, int]]:
    """Foreground tokens of a recorded run by `rule`: KMeans on its top-k token maps (default: middle step and block)."""
    with open_session(session) as s:
        step = s.steps_done // 2 if step is None else step
        block = len(s.blocks("image")) // 2 if block is None else block
        if not 0 <= step < s.steps_done or not 0 <= block < len(s.blocks("image")):
            raise BadRequest(f"mask step {step} / block {block} outside the run ({s.steps_done} steps, {len(s.blocks('image'))} blocks)")
        return cluster_tokens(s.top_maps(step, block), rule=rule)[1], (step, block)


def ranked_channels(session: Path, blocks: Sequence[str], k: int) -> dict[str, list[int]]:
    """The run's top-k channels of each chosen block, by mean |x| over image tokens and steps."""
    with open_session(session) as s:
        names, mean = s.blocks("image"), s.mean_abs_run("image")
    ids = top_channels(mean, k)
    return {name: [int(c) for c in ids[i]] for i, name in enumerate(names) if name in blocks}


def intervention(
    channels: dict[str, list[int]], window: tuple[int, int], mask: np.ndarray | None, alpha: float, source: ValueSource
) -> Intervention:
    """The replacement one result runs with: source values of the channels, in the window and mask, blended by alpha."""
    tokens = None if mask is None else torch.from_numpy(mask.reshape(-1))  # row-major (frame-major), as the tokens are
    return Intervention(channels, "replace", steps=range(*window), token_mask=tokens, alpha=alpha, source=source)


def transport(
    request: TransportRequest,
    progress: Callable[[int, int, str], None] | None = None,
    cancel: CancelToken | None = None,
) -> TransportResult:
    """Record the plain target, the source with a capture of the target's channels, then one
    transported target per alpha."""
    request = with_model_defaults(request)
    _validate(request)
    pipe = load_pipeline(request.spec)
    adapter = adapter_for(pipe.transformer)
    target = _resolve(pipe, request)
    source = replace(target, prompt=request.source_prompt or request.source_caption.strip())
    if request.source_image is not None:
        source = replace(source, guidance=request.inversion_guidance)
    names = adapter.block_names(pipe.transformer)
    blocks = select_blocks(request.blocks, names)
    window = step_window(request.window, target.steps)
    total = 2 + len(request.alphas) + (request.source_image is not None)
    report = _reporter(progress, total)

    reference, overrides = None, None
    if request.source_image is not None:
        report("inverting the reference")
        reference = load_reference(request.source_image, source.height, source.width)
        overrides = source_overrides(pipe, adapter, source, reference, request.inversion, cancel)
    report("plain target")
    target_session = record(_record(request, target, f"{SESSIONS}/target.h5"), cancel=cancel, extra={"role": "transport target"})
    channels = ranked_channels(target_session, blocks, request.k)
    capture = Capture(channels, steps=range(*window))
    report("source")
    source_session = record(_record(request, source, f"{SESSIONS}/source.h5"), cancel=cancel, observers=[capture],
                            extra=_source_info(request), call_overrides={**(overrides or {}), "prompt": source.prompt})
    source_fg, mask_at = foreground(source_session, request.mask_step, request.mask_block, request.foreground)
    target_fg, _ = foreground(target_session, request.mask_step, request.mask_block, request.foreground)
    mask = token_mask(request.mask, source_fg, target_fg)
    extra = _extra(request, source, blocks, window, mask_at, channels)

    results = []
    for i, alpha in enumerate(request.alphas):
        report(f"alpha {alpha:g}")
        path = record(_record(request, target, f"{SESSIONS}/result-{i:02d}-alpha{alpha:g}.h5"), cancel=cancel,
                      observers=[intervention(channels, window, mask, alpha, capture.values)], kind="transport",
                      extra={**extra, "alpha": alpha})
        results.append(AlphaResult(alpha, _image(path), path))
    report("done")
    return TransportResult(
        request, target.prompt, source.prompt, _image(target_session), _image(source_session), reference, results,
        blocks, window, mask, mask_at, channels, target_session, source_session,
    )


def with_model_defaults(request: TransportRequest) -> TransportRequest:
    """The request with every setting left None taken from the model's transport defaults."""
    own = defaults.transport_defaults(request.spec.model)
    return replace(request, **{name: getattr(own, name) for name in ("blocks", "window", "mask", "k")
                               if getattr(request, name) is None})


def _validate(request: TransportRequest) -> None:
    if (request.source_prompt is None) == (request.source_image is None):
        raise BadRequest("give exactly one source: a source prompt or a source image")
    if request.source_prompt is not None and not request.source_prompt.strip():
        raise BadRequest("the source prompt is empty")
    if request.inversion not in INVERSIONS:
        raise BadRequest(f"unknown inversion {request.inversion!r}; use {' or '.join(INVERSIONS)}")
    if request.mask not in MASK_MODES:
        raise BadRequest(f"unknown mask {request.mask!r}; use {', '.join(MASK_MODES)}")
    if request.foreground not in FOREGROUND:
        raise BadRequest(f"unknown foreground rule {request.foreground!r}; use {', '.join(FOREGROUND)}")
    if not request.alphas:
        raise BadRequest("give at least one alpha")
    bad = [a for a in request.alphas if not 0.0 <= a <= 1.0]
    if bad:
        raise BadRequest(f"alpha must be in [0, 1], got {bad[0]}")
    if request.k < 1:
        raise BadRequest(f"k must be at least 1, got {request.k}")


def _resolve(pipe, request: TransportRequest) -> Generation:
    """The target's settings, made concrete: the step window and a reference image need the number
    of steps and the size. Source and target share every setting but the prompt, the seed included."""
    gen = resolve(request.spec.model, request.target_prompt, request.negative_prompt, request.seed,
                  request.steps, request.guidance, request.height, request.width, request.frames)
    height, width = default_size(pipe, gen)
    return replace(gen, steps=default_steps(pipe, gen), height=height, width=width)


def _reporter(progress: Callable[[int, int, str], None] | None, total: int) -> Callable[[str], None]:
    done = iter(range(total + 1))

    def report(text: str) -> None:
        if progress is not None:
            progress(next(done), total, text)

    return report


def _record(request: TransportRequest, gen: Generation, name: str) -> RecordRequest:
    """A recording of `gen`. An uncaptioned reference's runs use the empty prompt, which a
    recording request refuses: the session then names the reference instead, and the call
    gets the real (empty) prompt through its overrides."""
    spec = request.spec
    return RecordRequest(
        prompt=gen.prompt or NO_CAPTION, out=request.out / name, model=spec.model, negative_prompt=gen.negative_prompt,
        seed=gen.seed, steps=gen.steps, guidance=gen.guidance, height=gen.height, width=gen.width, frames=gen.frames,
        k=request.k, dtype=spec.dtype, device=spec.device, offload=spec.offload, overwrite=True,
    )


def _source_info(request: TransportRequest) -> dict:
    if request.source_image is None:
        return {"role": "transport source", "prompt": request.source_prompt}
    return {"role": "transport source", "image": str(request.source_image), "caption": request.source_caption,
            "inversion": request.inversion, "inversion_guidance": request.inversion_guidance}


def _extra(request: TransportRequest, source: Generation, blocks: list[str], window: tuple[int, int],
           mask_at: tuple[int, int], channels: dict[str, list[int]]) -> dict:
    """What a result session records about its transport (JSON-able)."""
    return {
        "source": {**_source_info(request), "session": f"{SESSIONS}/source.h5"},
        "target": {"prompt": request.target_prompt, "session": f"{SESSIONS}/target.h5"},
        "seed": source.seed,
        "blocks": list(blocks),
        "steps": list(window),
        "mask": request.mask,
        "foreground": request.foreground,
        "mask_at": {"step": mask_at[0], "block": mask_at[1]},
        "k": request.k,
        "channels": channels,
    }


def _image(session: Path) -> np.ndarray:
    """The session's image, or its video's frames."""
    with open_session(session) as s:
        return s.frames if s.is_video else s.image
