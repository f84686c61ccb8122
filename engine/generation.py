"""Generation settings as the CLI and the app take them, and the pipeline call they mean.

A setting left unset is not passed, so the pipeline's own default applies exactly as in a plain
diffusers call (PixArt and Sana keep resolution binning; Qwen-Image runs true CFG only with a
negative prompt). A model folder's `massivelens.json` may set values of its own (the embedded model:
64x64, 20 steps, true CFG 4 against the empty caption); those are passed and stored with the call.
The seed means `torch.Generator("cpu").manual_seed(seed)`, what a user passes to plain diffusers.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch

from . import defaults
from .core.architectures import adapter_for
from .core.pipeline_info import guidance_argument
from .errors import BadRequest


@dataclass(frozen=True)
class Generation:
    """Settings of one generation; None means the pipeline's default."""

    prompt: str
    seed: int = defaults.SEED
    negative_prompt: str | None = None
    steps: int | None = None
    guidance: float | None = None
    height: int | None = None
    width: int | None = None
    max_sequence_length: int | None = None  # text tokens, when the model folder asks for a length
    frames: int | None = None  # a video pipeline's num_frames


def resolve(
    model: str,
    prompt: str,
    negative_prompt: str | None = None,
    seed: int = defaults.SEED,
    steps: int | None = None,
    guidance: float | None = None,
    height: int | None = None,
    width: int | None = None,
    frames: int | None = None,
) -> Generation:
    """Explicit values first, then the model folder's own defaults; checked for obvious mistakes."""
    if not prompt or not prompt.strip():
        raise BadRequest("the prompt is empty")
    own = defaults.model_defaults(model)
    gen = Generation(
        prompt=prompt,
        seed=int(seed),
        negative_prompt=negative_prompt if negative_prompt else own.get("negative_prompt"),
        steps=steps or own.get("steps"),
        guidance=guidance if guidance is not None else own.get("guidance"),
        height=height or own.get("height"),
        width=width or own.get("width"),
        max_sequence_length=own.get("max_sequence_length"),
        frames=frames if frames is not None else own.get("frames"),
    )
    if gen.steps is not None and gen.steps < 1:
        raise BadRequest(f"steps must be at least 1, got {gen.steps}")
    if gen.frames is not None and gen.frames < 1:
        raise BadRequest(f"frames must be at least 1, got {gen.frames}")
    if gen.seed < 0:
        raise BadRequest(f"seed must be non-negative, got {gen.seed}")
    return gen


def call_kwargs(pipe, gen: Generation) -> dict:
    """Arguments for `pipe(...)`: the prompt, the seed's generator and every setting that was given."""
    params = inspect.signature(pipe.__call__).parameters
    kwargs: dict = {"prompt": gen.prompt, "generator": torch.Generator("cpu").manual_seed(gen.seed)}
    optional = {"num_inference_steps": gen.steps, "height": gen.height, "width": gen.width}
    if gen.guidance is not None:
        optional[guidance_argument(pipe, adapter_for(pipe.transformer).cfg)] = gen.guidance
    if gen.max_sequence_length is not None and "max_sequence_length" in params:
        optional["max_sequence_length"] = gen.max_sequence_length
    if gen.frames is not None:
        if "num_frames" not in params:
            raise BadRequest(f"{type(pipe).__name__} makes images; frames need a video pipeline")
        optional["num_frames"] = gen.frames
    if gen.negative_prompt is not None:
        if "negative_prompt" not in params:
            if gen.negative_prompt:
                raise BadRequest(f"{type(pipe).__name__} takes no negative prompt")
        else:
            optional["negative_prompt"] = gen.negative_prompt
    kwargs.update({name: value for name, value in optional.items() if value is not None})
    return kwargs


def default_steps(pipe, gen: Generation) -> int:
    """The number of denoising steps the call will run."""
    return int(gen.steps or inspect.signature(pipe.__call__).parameters["num_inference_steps"].default)


def default_size(pipe, gen: Generation) -> tuple[int, int]:
    """(height, width) the call asks for: given, or the pipeline's default sample size."""
    if gen.height and gen.width:
        return int(gen.height), int(gen.width)
    sample = getattr(pipe, "default_sample_size", None) or getattr(pipe.transformer.config, "sample_size", None)
    if sample is None:
        raise BadRequest(f"{type(pipe).__name__} names no default image size: give the height and width")
    size = int(sample) * int(pipe.vae_scale_factor)
    return int(gen.height or size), int(gen.width or size)
