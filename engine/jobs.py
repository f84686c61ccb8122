"""The job API that the CLI and the app's worker both call: request in, session file out."""
from __future__ import annotations

import functools
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from massivelens.sessions.records import Layout, RunInfo
from massivelens.sessions.schema import CONTROL_SETS
from massivelens.sessions.writer import SessionWriter

from . import defaults
from .cancel import CancelToken
from .core.architectures import adapter_for
from .core.hooks import Observer
from .core.recording import Recorder
from .errors import BadRequest
from .generation import Generation, generate, resolve, to_uint8
from .loading import ModelSpec, load_pipeline
from .progress import Progress

ProgressFn = Callable[[Progress], None]


@dataclass
class RecordRequest:
    """One generation to record. None means: the model's default."""

    prompt: str
    out: Path
    model: str = defaults.DEFAULT_MODEL
    negative_prompt: str = ""
    seed: int = defaults.SEED
    steps: int | None = None
    guidance: float | None = None
    height: int | None = None
    width: int | None = None
    k: int = defaults.K
    dtype: str = defaults.DTYPE
    device: str | None = None
    offload: bool = False
    hidden_blocks: tuple[str, ...] = ()
    hidden_steps: tuple[int, ...] | None = None
    control_sets: tuple[str, ...] = ()
    overwrite: bool = False

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(self.model, self.dtype, self.device, self.offload)


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
    if request.k < 1:
        raise BadRequest(f"k must be at least 1, got {request.k}")
    unknown_sets = set(request.control_sets) - set(CONTROL_SETS)
    if unknown_sets:
        raise BadRequest(f"unknown control set(s) {', '.join(sorted(unknown_sets))}; use {', '.join(CONTROL_SETS)}")
    pipe = load_pipeline(request.spec)
    adapter = adapter_for(pipe.transformer)
    gen = resolve(
        pipe, request.model, request.prompt, request.negative_prompt, request.seed,
        request.steps, request.guidance, request.height, request.width,
    )
    streams = adapter.stream_blocks(pipe.transformer)
    unknown = sorted(set(request.hidden_blocks) - set(streams["image"]))
    if unknown:
        raise BadRequest(f"unknown block(s) {', '.join(unknown)}; blocks are {streams['image'][0]} ... {streams['image'][-1]}")
    width = transformer_width(pipe.transformer)
    layout = Layout(
        blocks=streams,
        channels={stream: width for stream in streams},
        grid=adapter.grid(pipe, gen.height, gen.width),
        hidden_blocks=tuple(request.hidden_blocks),
        hidden_steps=tuple(range(gen.steps)) if request.hidden_steps is None else tuple(request.hidden_steps),
        control_sets=tuple(request.control_sets),
    )
    info = run_info(pipe, request, gen, kind, extra)
    with SessionWriter(request.out, info, layout, overwrite=request.overwrite) as writer:
        recorder = Recorder(writer, request.k, seed=gen.seed)
        image = generate(pipe, adapter, gen, [*observers, recorder], cancel, progress, call_overrides)
        writer.finish(to_uint8(image))
    return Path(request.out)


def transformer_width(transformer) -> int:
    config = transformer.config
    return int(config.num_attention_heads * config.attention_head_dim)


def run_info(pipe, request: RecordRequest, gen: Generation, kind: str = "record", extra: dict | None = None) -> RunInfo:
    return RunInfo(
        model=request.model,
        pipeline_class=type(pipe).__name__,
        transformer_class=type(pipe.transformer).__name__,
        dtype=request.dtype,
        device=str(pipe.device),
        prompt=gen.prompt,
        negative_prompt=gen.negative_prompt,
        seed=gen.seed,
        steps=gen.steps,
        guidance=gen.guidance,
        height=gen.height,
        width=gen.width,
        k=request.k,
        scheduler=type(pipe.scheduler).__name__,
        kind=kind,
        transformer_config=dict(pipe.transformer.config),
        scheduler_config=dict(pipe.scheduler.config),
        versions=dict(library_versions()),
        extra=extra or {},
    )


@functools.cache
def library_versions() -> dict[str, str]:
    """Looked up once per process: package metadata scans cost milliseconds per call in a batch."""
    out = {}
    for name in ("massivelens", "torch", "diffusers", "transformers", "accelerate", "h5py", "numpy"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
