"""Edit pipelines that put reference-image tokens beside the generated ones (FLUX.1 Kontext, FLUX.2 with an
image): the image stream is the generated image's tokens, the reference tokens are a stream
of their own, the session says which is which, and interventions leave the reference tokens alone."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline, Flux2KleinPipeline, FluxKontextPipeline
from PIL import Image

import massivelens
from massivelens.engine.core.architectures import adapter_for
from massivelens.sessions.massive import summarize
from tests.hooked import plant
from tests.tiny_pipelines import PROMPT

REFERENCE = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 128, 3), dtype=np.uint8))
EDITS = {
    # pipeline class, tiny pipeline it loads, its image embedder, call
    "kontext": (FluxKontextPipeline, "flux", "x_embedder",
                {"guidance_scale": 3.5, "max_sequence_length": 16, "_auto_resize": False, "max_area": 64 * 96}),
    "flux2": (Flux2KleinPipeline, "flux2", "x_embedder", {"guidance_scale": 4.0, "max_sequence_length": 32}),
}
# The reference's token count and grid: 64 x 128 px at 16 px per token.
REFERENCE_TOKENS = {"kontext": (32, [4, 8]), "flux2": (32, [4, 8])}
SIZE = {"height": 64, "width": 96, "num_inference_steps": 2}

pytestmark = pytest.mark.slow


def _edit_pipeline(name: str, tiny_pipelines) -> tuple[DiffusionPipeline, dict]:
    """The edit pipeline loaded from its text-to-image sibling's folder, and its call with a reference image.
    (Qwen-Image-Edit resizes any reference to 1024^2 px, too slow here: tests/engine/test_transformer_level.py
    covers Qwen-Image's reference tokens on the transformer.)"""
    cls, arch, _, call = EDITS[name]
    pipe = cls.from_pretrained(tiny_pipelines(arch), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe, {**SIZE, **call, "image": REFERENCE, "prompt": PROMPT}


def _seeded(kwargs: dict) -> dict:
    return {**kwargs, "generator": torch.Generator("cpu").manual_seed(0), "output_type": "np"}


@pytest.mark.parametrize("name", list(EDITS))
def test_reference_tokens_are_their_own_stream(name, tiny_pipelines, tmp_path):
    pipe, call = _edit_pipeline(name, tiny_pipelines)
    plain = pipe(**_seeded(call)).images
    handle = plant(pipe.transformer.get_submodule(EDITS[name][2]), 5)
    try:
        massivelens.record(pipe, tmp_path / "planted.h5", **_seeded(call))
    finally:
        handle.remove()
    output = massivelens.record(pipe, tmp_path / "s.h5", **_seeded(call))
    np.testing.assert_array_equal(output.images, plain)
    with massivelens.open_session(tmp_path / "s.h5") as s:
        image_blocks = adapter_for(pipe.transformer).stream_blocks(pipe.transformer)["image"]
        assert s.blocks("image") == s.blocks("reference") == image_blocks
        h, w = s.grid
        roles = [(part["role"], part["start"], part["count"], part.get("grid")) for part in s.info["tokens"]["image_sequence"]]
        assert roles == [("generated", 0, h * w, [h, w]), ("reference", h * w, *REFERENCE_TOKENS[name])]
        assert (h, w) == (4, 6) and s.top_maps(0, 0).shape[-2:] == (4, 6)
    with massivelens.open_session(tmp_path / "planted.h5") as s:
        rows = summarize(s)
    assert {row.stream for row in rows} >= {"image", "reference"}
    for row in rows:
        if row.stream != "text":
            assert row.top_channels[0] == 5, (row.block, row.stream)


@pytest.mark.parametrize("name", list(EDITS))
def test_zeroing_channels_changes_generated_tokens_only(name, tiny_pipelines):
    pipe, call = _edit_pipeline(name, tiny_pipelines)
    block = pipe.transformer.transformer_blocks[0]
    seen = []
    with massivelens.zero_channels(pipe, {"double.0": [3]}):
        handle = block.register_forward_hook(lambda module, args, output: seen.append(output[1].clone()))
        try:
            pipe(**_seeded(call))
        finally:
            handle.remove()
    generated, reference = seen[0][:, :24, 3], seen[0][:, 24:, 3]
    assert reference.shape[1] == REFERENCE_TOKENS[name][0]
    assert torch.all(generated == 0) and torch.all(reference != 0)
