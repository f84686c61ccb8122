"""The offline tiny pipelines load like hub checkpoints and generate reproducibly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline

from tests.tiny_pipelines import ARCHITECTURES, tiny_call_kwargs

EXPECTED_CLASSES = {
    "flux": ("FluxPipeline", "FluxTransformer2DModel"),
    "flux2": ("Flux2KleinPipeline", "Flux2Transformer2DModel"),
    "sd3": ("StableDiffusion3Pipeline", "SD3Transformer2DModel"),
    "pixart": ("PixArtSigmaPipeline", "PixArtTransformer2DModel"),
    "sana": ("SanaPipeline", "SanaTransformer2DModel"),
    "qwenimage": ("QwenImagePipeline", "QwenImageTransformer2DModel"),
}


def _generate(pipe: DiffusionPipeline, arch: str) -> np.ndarray:
    generator = torch.Generator("cpu").manual_seed(0)
    return pipe(**tiny_call_kwargs(arch), generator=generator, output_type="np").images


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_tiny_pipeline_loads_and_generates_reproducibly(arch: str, tiny_pipelines: Callable[[str], Path]) -> None:
    folder = tiny_pipelines(arch)
    assert sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) < 10 * 2**20

    pipe = DiffusionPipeline.from_pretrained(folder, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    assert (type(pipe).__name__, type(pipe.transformer).__name__) == EXPECTED_CLASSES[arch]

    first, second = _generate(pipe, arch), _generate(pipe, arch)
    kwargs = tiny_call_kwargs(arch)
    assert first.shape == (1, kwargs["height"], kwargs["width"], 3)
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, second)


def test_qwenimage_template_prefix_is_exactly_the_dropped_tokens(tiny_pipelines: Callable[[str], Path]) -> None:
    """QwenImagePipeline drops a fixed 34 leading tokens; with fewer, template text would leak into the prompt."""
    pipe = DiffusionPipeline.from_pretrained(tiny_pipelines("qwenimage"), dtype=torch.float32)
    prefix = pipe.prompt_template_encode.split("{}")[0]
    assert len(pipe.tokenizer(prefix).input_ids) == pipe.prompt_template_encode_start_idx
