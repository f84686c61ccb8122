"""Test helpers: a tiny pipeline's call, and that call run once with block hooks and observers, as the
probe and transport jobs run it."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from massivelens.engine.cancel import CancelToken
from massivelens.engine.core.hooks import BlockHooks, Observer
from tests.tiny_pipelines import tiny_call_kwargs


def generation(arch: str, **changes) -> dict:
    """The tiny pipeline's call arguments (without a generator: each call needs a fresh one)."""
    return {**tiny_call_kwargs(arch), **changes}


def seeded(kwargs: dict, seed: int = 0) -> dict:
    return {**kwargs, "generator": torch.Generator("cpu").manual_seed(seed)}


def generate(
    pipe,
    kwargs: dict,
    observers: Sequence[Observer] = (),
    cancel: CancelToken | None = None,
    progress=None,
    seed: int = 0,
) -> np.ndarray:
    """One seeded call with hooks and observers; the float image (H, W, 3) in [0, 1]."""
    with BlockHooks(pipe, observers, cancel, progress, images=1):
        return np.asarray(pipe(**seeded(kwargs, seed), output_type="np").images[0])


def plain(pipe, kwargs: dict, seed: int = 0) -> np.ndarray:
    """The same call in plain diffusers, no hooks."""
    return np.asarray(pipe(**seeded(kwargs, seed), output_type="np").images[0])


# The argument each tiny pipeline's guidance goes to (FLUX.1 here is guidance-distilled; Qwen-Image
# runs true CFG), as a user would write the call.
GUIDANCE_ARGUMENT = {"flux": "guidance_scale", "flux2": "guidance_scale", "sd3": "guidance_scale",
                     "pixart": "guidance_scale", "sana": "guidance_scale", "qwenimage": "true_cfg_scale"}


def job_call(arch: str, **changes) -> dict:
    """A plain diffusers call with the tiny pipeline's prompt, steps, size, negative prompt and guidance:
    what a record job given those settings must make (no generator: see `seeded`)."""
    kw = tiny_call_kwargs(arch)
    call = {name: kw[name] for name in ("prompt", "num_inference_steps", "height", "width")}
    if "negative_prompt" in kw:
        call["negative_prompt"] = kw["negative_prompt"]
    call[GUIDANCE_ARGUMENT[arch]] = kw.get("true_cfg_scale", kw.get("guidance_scale"))
    return {**call, **changes}


def job_settings(arch: str, **changes) -> dict:
    """The same settings as a record, probe or transport request takes them."""
    call = job_call(arch, **changes)
    return dict(prompt=call["prompt"], negative_prompt=call.get("negative_prompt"), steps=call["num_inference_steps"],
                guidance=call[GUIDANCE_ARGUMENT[arch]], height=call["height"], width=call["width"])


def plant(module: torch.nn.Module, channel: int) -> torch.utils.hooks.RemovableHandle:
    """Adds 1e5 to one channel of a module's output: a massive channel planted on purpose, which the
    residual stream carries to every block after it."""

    def hook(mod, args, output):
        output = output.clone()
        output[..., channel] += 1e5
        return output

    return module.register_forward_hook(hook)
