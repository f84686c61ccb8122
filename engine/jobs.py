"""The record job that the CLI, the app's worker and the batch call: request in, session file out.

It loads the model, turns the request's settings into a pipeline call (engine.generation) and records
that call through the public API (engine.api), like a user recording their own pipeline would.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from massivelens.sessions.schema import RANDOM_DRAWS

from . import defaults
from .api import recording
from .cancel import CancelToken
from .core.hooks import Observer
from .errors import OutOfMemory
from .generation import Generation, call_kwargs, resolve
from .loading import ModelSpec, load_pipeline, model_source
from .progress import Progress

ProgressFn = Callable[[Progress], None]


@dataclass
class RecordRequest:
    """One generation to record. None (and an empty negative prompt) means: the model's default."""

    prompt: str
    out: Path
    model: str = defaults.DEFAULT_MODEL
    negative_prompt: str | None = None
    seed: int = defaults.SEED
    steps: int | None = None
    guidance: float | None = None
    height: int | None = None
    width: int | None = None
    frames: int | None = None  # a video pipeline's num_frames (None: the pipeline's default)
    k: int = defaults.K
    dtype: str = defaults.DTYPE
    device: str | None = None
    offload: bool = False
    hidden_blocks: tuple[str, ...] = ()
    hidden_steps: tuple[int, ...] | None = None
    control_sets: tuple[str, ...] = ()
    random_draws: int = RANDOM_DRAWS
    profile: str = defaults.PROFILE
    map_steps: tuple[int, ...] | None = None
    overwrite: bool = False

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(self.model, self.dtype, self.device, self.offload)

    def generation(self) -> Generation:
        return resolve(self.model, self.prompt, self.negative_prompt, self.seed, self.steps, self.guidance, self.height, self.width,
                       self.frames)


def record(
    request: RecordRequest,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    observers: Sequence[Observer] = (),
    kind: str = "record",
    extra: dict | None = None,
    call_overrides: dict | None = None,
) -> Path:
    """Generate once with recording hooks; the session is written step by step to `request.out`.

    `observers` (interventions) run before the recorder, so the session shows what they did;
    `kind` and `extra` name the job in the file (a transport result names its source and target);
    `call_overrides` go to the pipeline call (e.g. starting latents from an inversion).
    """
    gen = request.generation()
    pipe = load_pipeline(request.spec)
    kwargs = {**call_kwargs(pipe, gen), **(call_overrides or {})}
    with recording(
        pipe, request.out, k=request.k, controls=request.control_sets, random_draws=request.random_draws, hidden_blocks=request.hidden_blocks,
        hidden_steps=request.hidden_steps, profile=request.profile, map_steps=request.map_steps,
        overwrite=request.overwrite, observers=observers, progress=progress,
        cancel=cancel, kind=kind, extra=extra, model=model_source(request.model), notes=_notes(request),
    ) as rec:
        run(pipe, kwargs)
    return rec.paths[0] if rec.paths else Path(request.out)


def run(pipe, kwargs: dict):
    """Call the pipeline; running out of memory becomes a message with what to try."""
    try:
        return pipe(**kwargs)
    except torch.OutOfMemoryError as exc:
        raise OutOfMemory(f"out of memory on {pipe.device}: try a smaller size, bf16, or --offload") from exc


def _notes(request: RecordRequest) -> list[str]:
    """Where the call departs from the pipeline's own defaults, and why."""
    own = {k: v for k, v in defaults.model_defaults(request.model).items() if k != "world"}
    return [f"settings from the model folder's {defaults.MODEL_DEFAULTS_FILE}: {own}"] if own else []
