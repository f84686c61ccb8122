"""A reference image turned into a source trajectory for transport (subject-driven generation).

Two ways, both through the pipeline's own call so no model forward is copied:
- "euler": rectified-flow inversion by inverse Euler. The pipeline is called on the encoded
  reference with the generation's sigmas in ascending order, so the scheduler's Euler step
  integrates from the image (sigma 0) back to noise (sigma 1); a step-end callback keeps the
  latents and stops the loop. The source trajectory then starts at that noise (`latents=`).
- "noise": the cheap baseline. The source run starts at the seed's noise and, after every step,
  a callback puts the latents back on the straight line x_t = (1 - sigma_t) x0 + sigma_t noise,
  so the transformer sees the forward-noised reference at every step.

Supported: FluxPipeline (FLUX.1, shapes-dit) and Flux2KleinPipeline (FLUX.2-klein, shapes-flux2), whose
default schedule is `linspace(1, 1/N, N)` before the scheduler's shift. They differ only in the latents:
FluxPipeline takes `latents=` already packed; Flux2KleinPipeline takes them patchified (B, 4C, h, w),
normalised by the VAE's batch-norm statistics, and packs them itself. `LATENT_FORMS` holds that difference.
"""
from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class LatentForm:
    """How one pipeline class takes `latents=` and how its step-end callbacks see them (packed tokens)."""

    encode: Callable  # (pipe, pixels) -> clean latents in the form `latents=` takes
    to_loop: Callable  # `latents=` form -> the packed (B, tokens, channels) form of the denoising loop
    from_loop: Callable  # packed -> `latents=` form (shaped like a given `latents=` tensor)


def _flux_encode(pipe, pixels: torch.Tensor) -> torch.Tensor:
    latents = pipe.vae.encode(pixels).latent_dist.mode()
    latents = (latents - pipe.vae.config.shift_factor) * pipe.vae.config.scaling_factor
    b, c, h, w = latents.shape
    return pipe._pack_latents(latents, b, c, h, w)


def _unpack_tokens(packed: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B, h*w, C) row-major tokens -> (B, C, h, w), the inverse of Flux2's `_pack_latents`."""
    b, c, h, w = like.shape
    return packed.permute(0, 2, 1).reshape(b, c, h, w)


def _flux2_encode(pipe, pixels: torch.Tensor) -> torch.Tensor:
    return pipe._encode_vae_image(pixels, generator=None)


def _same(latents: torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
    return latents


def _latent_forms() -> dict[type, LatentForm]:
    from diffusers import Flux2KleinPipeline, FluxPipeline

    return {
        FluxPipeline: LatentForm(_flux_encode, _same, _same),
        Flux2KleinPipeline: LatentForm(_flux2_encode, lambda x: Flux2KleinPipeline._pack_latents(x), _unpack_tokens),
    }


def latent_form(pipe) -> LatentForm:
    """The pipeline's latent form; image sources are refused (one clear message) for any other pipeline."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    form = next((f for cls, f in _latent_forms().items() if isinstance(pipe, cls)), None)
    if form is None:
        raise BadRequest("image sources need a FluxPipeline (FLUX.1, shapes-dit) or a Flux2KleinPipeline (FLUX.2-klein, "
                         f"shapes-flux2); {type(pipe).__name__} is not supported")
    config = pipe.scheduler.config
    stretched = config.get("shift_terminal") or config.get("use_karras_sigmas") or config.get("use_exponential_sigmas") or config.get("use_beta_sigmas")
    if not isinstance(pipe.scheduler, FlowMatchEulerDiscreteScheduler) or stretched or config.get("invert_sigmas") or config.get("stochastic_sampling"):
        raise BadRequest("image sources need the pipeline's stock FlowMatchEulerDiscreteScheduler (no terminal shift, karras, stochastic or inverted sigmas)")
    return form


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
    """Clean latents x0 of an image as the pipeline's VAE sees them, in the form `latents=` takes."""
    from PIL import Image

    device = pipe._execution_device
    pixels = pipe.image_processor.preprocess(Image.fromarray(image)).to(device=device, dtype=pipe.vae.dtype)
    with torch.inference_mode():
        return latent_form(pipe).encode(pipe, pixels).to(pipe.transformer.dtype)


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
    """Inverse Euler from clean latents x0 to the noise the generation would start from (both in the
    form `latents=` takes)."""
    kept: dict[str, torch.Tensor] = {}
    form = latent_form(pipe)

    def keep_and_stop(pipeline, step: int, timestep, tensors: dict) -> dict:
        if step == gen.steps - 1:
            kept["noise"] = form.from_loop(tensors["latents"].clone(), x0)
            pipeline._interrupt = True  # diffusers' own way to end the loop from a callback
        return {}

    overrides = dict(latents=x0, sigmas=ascending_sigmas(gen.steps), callback_on_step_end=keep_and_stop,
                     callback_on_step_end_tensor_inputs=["latents"])
    with np.errstate(divide="ignore"), BlockHooks(pipe, cancel=cancel, progress=progress, adapter=adapter):
        run(pipe, {**call_kwargs(pipe, gen), **overrides})  # the exponential time shift divides by sigma = 0 (and returns 0)
    return kept["noise"]


def seed_noise(pipe, gen: Generation, like: torch.Tensor) -> torch.Tensor:
    """The noise the pipeline itself draws for this seed, in the form `latents=` takes (shaped like `like`)."""
    channels = pipe.transformer.config.in_channels // 4
    generator = torch.Generator("cpu").manual_seed(gen.seed)
    noise, _ = pipe.prepare_latents(1, channels, gen.height, gen.width, like.dtype, like.device, generator)
    return latent_form(pipe).from_loop(noise, like)


def noising_overrides(pipe, gen: Generation, x0: torch.Tensor) -> dict:
    """Pipeline arguments for a source run on the forward-noised reference: the schedule starts at
    sigma 1 (pure noise), and after step i the latents are reset to the line at sigma_{i+1}."""
    form = latent_form(pipe)
    noise = seed_noise(pipe, gen, x0)
    x0_loop, noise_loop = form.to_loop(x0).float(), form.to_loop(noise).float()

    def renoise(pipeline, step: int, timestep, tensors: dict) -> dict:
        sigma = pipeline.scheduler.sigmas[step + 1].to(x0.device, torch.float32)
        return {"latents": ((1 - sigma) * x0_loop + sigma * noise_loop).to(x0.dtype)}

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
    x0 = encode(pipe, reference)
    if method == "noise":
        return noising_overrides(pipe, gen, x0)
    return {"latents": invert(pipe, adapter, gen, x0, cancel)}
