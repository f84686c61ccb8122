"""Recording on every supported architecture: non-interference, streams, branches, planted channels."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.architectures import ADAPTERS, adapter_for
from engine.generation import Generation, call_kwargs, generate, to_uint8
from engine.jobs import RecordRequest, record
from engine.loading import ModelSpec, load_pipeline
from sessions.massive import summarize
from sessions.reader import open_session
from tests.tiny_pipelines import ARCHITECTURES, PROMPT, tiny_call_kwargs

# Test-only: the modules that embed image and text tokens as (batch, tokens, channels); a value
# planted there reaches every block through the residual stream.
IMAGE_EMBEDDER = {"flux": "x_embedder", "flux2": "x_embedder", "qwenimage": "img_in",
                  "sd3": "pos_embed", "pixart": "pos_embed", "sana": "patch_embed"}
TEXT_EMBEDDER = {"flux": "context_embedder", "flux2": "context_embedder", "qwenimage": "txt_in", "sd3": "context_embedder"}
PLANTED_IMAGE, PLANTED_TEXT = 5, 9


def generation(arch: str, **changes) -> Generation:
    kw = tiny_call_kwargs(arch)
    values = dict(
        prompt=PROMPT,
        negative_prompt=kw.get("negative_prompt", ""),
        seed=0,
        steps=kw["num_inference_steps"],
        guidance=kw.get("true_cfg_scale", kw.get("guidance_scale")),
        height=kw["height"],
        width=kw["width"],
    )
    values.update(changes)
    return Generation(**values)


def request(arch: str, folder, out, gen: Generation, **extra) -> RecordRequest:
    return RecordRequest(
        prompt=gen.prompt, out=out, model=str(folder), negative_prompt=gen.negative_prompt, seed=gen.seed,
        steps=gen.steps, guidance=gen.guidance, height=gen.height, width=gen.width, k=4, **extra,
    )


def test_adapter_table_covers_the_required_classes():
    required = {"FluxTransformer2DModel", "Flux2Transformer2DModel", "SD3Transformer2DModel", "PixArtTransformer2DModel", "SanaTransformer2DModel", "QwenImageTransformer2DModel"}
    assert required <= set(ADAPTERS)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_recording_leaves_the_image_bit_identical(arch, tiny_pipelines, tmp_path):
    folder = tiny_pipelines(arch)
    pipe = load_pipeline(ModelSpec(str(folder)))
    adapter = adapter_for(pipe.transformer)
    gen = generation(arch)
    with torch.inference_mode():
        plain = pipe(**call_kwargs(pipe, adapter, gen)).images[0]
    path = record(request(arch, folder, tmp_path / "s.h5", gen))
    with open_session(path) as s:
        assert s.complete and s.steps_done == gen.steps
        np.testing.assert_array_equal(s.image(), to_uint8(plain))
        assert s.blocks("image") == [name for name, _, _ in adapter.blocks(pipe.transformer)]
        h, w = s.grid
        assert s.top_maps(0, 0).shape == (4, h, w)
        for stream in s.streams:
            assert np.isfinite(s.mean_abs(stream, 0)[0]).all()
        assert np.isfinite(s.timesteps).all()
        assert s.info["transformer_class"] == type(pipe.transformer).__name__
    # A second hooked run through the engine gives the same float image as the plain call.
    np.testing.assert_array_equal(generate(pipe, adapter, gen), plain)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_conditional_branch_is_the_one_recorded(arch, tiny_pipelines, tmp_path):
    """At step 0 both branches see the same latents. Changing the negative prompt changes the
    unconditional branch only, so what is recorded (the conditional branch) must not move."""
    folder = tiny_pipelines(arch)
    first = record(request(arch, folder, tmp_path / "a.h5", generation(arch)))
    second = record(request(arch, folder, tmp_path / "b.h5", generation(arch, negative_prompt="a green triangle")))
    with open_session(first) as a, open_session(second) as b:
        for stream in a.streams:
            np.testing.assert_allclose(a.mean_abs(stream, 0), b.mean_abs(stream, 0), rtol=1e-5, atol=1e-6)


def _plant(module: torch.nn.Module, channel: int):
    def hook(mod, args, output):
        output = output.clone()
        output[..., channel] += 1e5
        return output

    return module.register_forward_hook(hook)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_planted_channels_are_found_in_their_stream(arch, tiny_pipelines, tmp_path):
    folder = tiny_pipelines(arch)
    pipe = load_pipeline(ModelSpec(str(folder)))
    transformer = pipe.transformer
    handles = [_plant(transformer.get_submodule(IMAGE_EMBEDDER[arch]), PLANTED_IMAGE)]
    if arch in TEXT_EMBEDDER:
        handles.append(_plant(transformer.get_submodule(TEXT_EMBEDDER[arch]), PLANTED_TEXT))
    try:
        path = record(request(arch, folder, tmp_path / "s.h5", generation(arch)))
    finally:
        for handle in handles:
            handle.remove()
    with open_session(path) as s:
        rows = summarize(s)
    for row in rows:
        if row.stream == "text" and arch not in TEXT_EMBEDDER:
            continue
        expected = PLANTED_IMAGE if row.stream == "image" else PLANTED_TEXT
        assert row.top_channels[0] == expected, (row.block, row.stream)
        assert expected in row.sun_channels and row.max_over_median > 1000
