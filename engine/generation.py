"""One hooked pipeline call: resolving settings, building the pipeline's arguments, generating.

Every job (record, probe, transport) generates through `generate`, so settings mean the same
thing everywhere: the seed is `torch.Generator("cpu").manual_seed(seed)`, exactly what a user
passes to plain diffusers to get the same image.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from . import defaults
from .cancel import CancelToken
from .core.architectures import Adapter
from .core.hooks import BlockHooks, Observer
from .errors import BadRequest, OutOfMemory
from .progress import Progress


@dataclass(frozen=True)
class Generation:
    """Fully resolved settings of one generation (no None left)."""

    prompt: str
    negative_prompt: str
    seed: int
    steps: int
    guidance: float
    height: int
    width: int
    max_sequence_length: int | None = None  # text tokens, when the model folder asks for a length


def resolve(
    pipe,
    model: str,
    prompt: str,
    negative_prompt: str = "",
    seed: int = defaults.SEED,
    steps: int | None = None,
    guidance: float | None = None,
    height: int | None = None,
    width: int | None = None,
) -> Generation:
    """Fill unset values from the model folder's defaults, then the pipeline's, then ours."""
    if not prompt or not prompt.strip():
        raise BadRequest("the prompt is empty")
    own = defaults.model_defaults(model)
    size = _pipeline_size(pipe)
    gen = Generation(
        prompt=prompt,
        negative_prompt=negative_prompt or "",
        seed=int(seed),
        steps=int(steps or own.get("steps", defaults.STEPS)),
        guidance=float(guidance if guidance is not None else own.get("guidance", defaults.GUIDANCE)),
        height=int(height or own.get("height", size)),
        width=int(width or own.get("width", size)),
        max_sequence_length=own.get("max_sequence_length"),
    )
    if gen.steps < 1:
        raise BadRequest(f"steps must be at least 1, got {gen.steps}")
    if gen.seed < 0:
        raise BadRequest(f"seed must be non-negative, got {gen.seed}")
    return gen


def _pipeline_size(pipe) -> int:
    sample = getattr(pipe, "default_sample_size", None) or pipe.transformer.config.sample_size
    return int(sample) * int(pipe.vae_scale_factor)


def call_kwargs(pipe, adapter: Adapter, gen: Generation) -> dict:
    """Arguments for `pipe(...)`. Guidance means CFG scale; for guidance-distilled FLUX-type
    transformers it is the embedded guidance, and sequential CFG uses `true_cfg_scale`."""
    params = inspect.signature(pipe.__call__).parameters
    kwargs = dict(
        prompt=gen.prompt,
        num_inference_steps=gen.steps,
        height=gen.height,
        width=gen.width,
        generator=torch.Generator("cpu").manual_seed(gen.seed),
        output_type="np",
    )
    distilled = bool(getattr(pipe.transformer.config, "guidance_embeds", False))
    if adapter.cfg == "sequential" and "true_cfg_scale" in params and not distilled:
        kwargs["true_cfg_scale"] = gen.guidance
    else:
        kwargs["guidance_scale"] = gen.guidance
    if "negative_prompt" in params:
        kwargs["negative_prompt"] = gen.negative_prompt
    elif gen.negative_prompt:
        raise BadRequest(f"{type(pipe).__name__} takes no negative prompt")
    if gen.max_sequence_length is not None and "max_sequence_length" in params:
        kwargs["max_sequence_length"] = gen.max_sequence_length
    if "use_resolution_binning" in params:  # PixArt/Sana would generate at a binned size, not the token grid asked for
        kwargs["use_resolution_binning"] = False
    return kwargs


def to_uint8(image: np.ndarray) -> np.ndarray:
    """The conversion diffusers' numpy_to_pil uses, so saved PNGs match plain diffusers output."""
    return (np.asarray(image) * 255).round().astype(np.uint8)


def generate(
    pipe,
    adapter: Adapter,
    gen: Generation,
    observers: Sequence[Observer] = (),
    cancel: CancelToken | None = None,
    progress: Callable[[Progress], None] | None = None,
    call_overrides: dict | None = None,
) -> np.ndarray:
    """Run the pipeline once with hooks; returns the image as float (H, W, 3) in [0, 1]."""
    grid = adapter.grid(pipe, gen.height, gen.width)
    kwargs = {**call_kwargs(pipe, adapter, gen), **(call_overrides or {})}
    try:
        with torch.inference_mode(), BlockHooks(pipe, adapter, grid, observers, cancel, progress, gen.steps):
            output = pipe(**kwargs)
    except torch.OutOfMemoryError as exc:
        raise OutOfMemory(f"out of memory on {pipe.device}: try a smaller size, bf16, or --offload") from exc
    return np.asarray(output.images[0])
