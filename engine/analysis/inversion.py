"""A reference image turned into a source trajectory for transport (subject-driven generation).

Two ways, both through the pipeline's own call so no model forward is copied:
- "euler": rectified-flow inversion by inverse Euler. The pipeline is called on the encoded
  reference with the generation's sigmas in ascending order, so the scheduler's Euler step
  integrates from the image (sigma 0) back to noise (sigma 1); a step-end callback keeps the
  latents and stops the loop. The source trajectory then starts at that noise (`latents=`).
- "noise": the cheap baseline. The source run starts at the seed's noise and, after every step,
  a callback puts the latents back on the straight line x_t = (1 - sigma_t) x0 + sigma_t noise,
  so the transformer sees the forward-noised reference at every step.

Only FluxPipeline (FLUX.1 and the embedded model) is supported: its latents are packed 2x2
and its default schedule is `linspace(1, 1/N, N)` before the scheduler's shift.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..cancel import CancelToken
from ..core.architectures import Adapter
from ..core.hooks import BlockHooks
from ..defaults import INVERSIONS
from ..errors import BadRequest
from ..generation import Generation, call_kwargs
from ..jobs import run
from ..progress import Progress


def check_supported(pipe) -> None:
    """Image sources need Flux's packed latents and a plain flow-matching Euler schedule."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline

    if not isinstance(pipe, FluxPipeline):
        raise BadRequest(f"image sources need a FluxPipeline (FLUX.1 or the embedded model); {type(pipe).__name__} is not supported")
    config = pipe.scheduler.config
    stretched = config.get("shift_terminal") or config.get("use_karras_sigmas") or config.get("use_exponential_sigmas") or config.get("use_beta_sigmas")
    if not isinstance(pipe.scheduler, FlowMatchEulerDiscreteScheduler) or stretched or config.get("invert_sigmas") or config.get("stochastic_sampling"):
        raise BadRequest("image sources need FluxPipeline's stock FlowMatchEulerDiscreteScheduler (no terminal shift, karras, stochastic or inverted sigmas)")


def load_reference(path: Path, height: int, width: int) -> np.ndarray:
    """The reference as uint8 (height, width, 3), resized to the generation size if needed."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.LANCZOS)
            return np.asarray(image).copy()
    except (OSError, UnidentifiedImageError) as exc:
        raise BadRequest(f"cannot read reference image {path}: {exc}") from None


def encode(pipe, image: np.ndarray) -> torch.Tensor:
    """Packed clean latents x0 (1, tokens, channels) of an image, as the pipeline's VAE sees them."""
    from PIL import Image

    device = pipe._execution_device
    pixels = pipe.image_processor.preprocess(Image.fromarray(image)).to(device=device, dtype=pipe.vae.dtype)
    with torch.inference_mode():
        latents = pipe.vae.encode(pixels).latent_dist.mode()
    latents = (latents - pipe.vae.config.shift_factor) * pipe.vae.config.scaling_factor
    b, c, h, w = latents.shape
    return pipe._pack_latents(latents, b, c, h, w).to(pipe.transformer.dtype)


def ascending_sigmas(steps: int) -> np.ndarray:
    """FluxPipeline's default sigmas reversed, with 0 first: N + 1 values the scheduler shifts exactly
    like the forward ones, so inversion visits the forward schedule backwards (its last step, back
    to 0, is never taken)."""
    forward = np.linspace(1.0, 1 / steps, steps)
    return np.concatenate([[0.0], forward[::-1]])


def invert(
    pipe,
    adapter: Adapter,
    gen: Generation,
    x0: torch.Tensor,
    cancel: CancelToken | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> torch.Tensor:
    """Inverse Euler from clean latents x0 to the noise the generation would start from."""
    kept: dict[str, torch.Tensor] = {}

    def keep_and_stop(pipeline, step: int, timestep, tensors: dict) -> dict:
        if step == gen.steps - 1:
            kept["noise"] = tensors["latents"].clone()
            pipeline._interrupt = True  # diffusers' own way to end the loop from a callback
        return {}

    overrides = dict(latents=x0, sigmas=ascending_sigmas(gen.steps), callback_on_step_end=keep_and_stop,
                     callback_on_step_end_tensor_inputs=["latents"])
    with np.errstate(divide="ignore"), BlockHooks(pipe, cancel=cancel, progress=progress, adapter=adapter):
        run(pipe, {**call_kwargs(pipe, gen), **overrides})  # the exponential time shift divides by sigma = 0 (and returns 0)
    return kept["noise"]


def seed_noise(pipe, gen: Generation, like: torch.Tensor) -> torch.Tensor:
    """The packed noise the pipeline itself draws for this seed."""
    channels = pipe.transformer.config.in_channels // 4
    generator = torch.Generator("cpu").manual_seed(gen.seed)
    noise, _ = pipe.prepare_latents(1, channels, gen.height, gen.width, like.dtype, like.device, generator)
    return noise


def noising_overrides(pipe, gen: Generation, x0: torch.Tensor) -> dict:
    """Pipeline arguments for a source run on the forward-noised reference: FluxPipeline's schedule
    starts at sigma 1 (pure noise), and after step i the latents are reset to the line at sigma_{i+1}."""
    noise = seed_noise(pipe, gen, x0)

    def renoise(pipeline, step: int, timestep, tensors: dict) -> dict:
        sigma = pipeline.scheduler.sigmas[step + 1].to(x0.device, torch.float32)
        return {"latents": ((1 - sigma) * x0.float() + sigma * noise.float()).to(x0.dtype)}

    return dict(latents=noise, callback_on_step_end=renoise, callback_on_step_end_tensor_inputs=["latents"])


def source_overrides(
    pipe,
    adapter: Adapter,
    gen: Generation,
    reference: np.ndarray,
    method: str,
    cancel: CancelToken | None = None,
) -> dict:
    """Pipeline arguments that make a generation the reference's trajectory, by either method."""
    if method not in INVERSIONS:
        raise BadRequest(f"unknown inversion {method!r}; use {' or '.join(INVERSIONS)}")
    check_supported(pipe)
    x0 = encode(pipe, reference)
    if method == "noise":
        return noising_overrides(pipe, gen, x0)
    return {"latents": invert(pipe, adapter, gen, x0, cancel)}
