"""Recording on every supported architecture: non-interference, streams, branches, planted channels."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from massivelens.engine.core.architectures import ADAPTERS, adapter_for
from massivelens.engine.generation import Generation, call_kwargs, generate, to_uint8
from massivelens.engine.jobs import RecordRequest, record
from massivelens.engine.loading import ModelSpec, load_pipeline
from massivelens.sessions.massive import summarize
from massivelens.sessions.reader import open_session
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
    # FLUX.2-klein takes no negative prompt: there, switching guidance off removes the uncond branch.
    other = generation(arch, guidance=1.0) if arch == "flux2" else generation(arch, negative_prompt="a green triangle")
    second = record(request(arch, folder, tmp_path / "b.h5", other))
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


def test_bf16_runs_record_float32_statistics(tiny_pipelines, tmp_path):
    gen = generation("flux")
    path = record(request("flux", tiny_pipelines("flux"), tmp_path / "bf16.h5", gen, dtype="bf16"))
    with open_session(path) as s:
        assert s.info["dtype"] == "bf16" and s.complete
        assert s.mean_abs("image").dtype == np.float32 and np.isfinite(s.mean_abs("image")).all()


def test_full_hidden_states_for_chosen_blocks_and_steps(tiny_pipelines, tmp_path):
    gen = generation("flux", steps=3)
    path = record(request("flux", tiny_pipelines("flux"), tmp_path / "h.h5", gen, hidden_blocks=("single.0",), hidden_steps=(1,)))
    with open_session(path) as s:
        ds, steps = s.hidden("image", "single.0")
        h, w = s.grid
        assert steps == [1] and ds.shape == (1, h * w, s.channels("image"))
        block = s.blocks("image").index("single.0")
        top = int(s.top_channels(1)[block][0])
        np.testing.assert_array_equal(ds[0][:, top].reshape(h, w), s.top_maps(1, block)[0])
        np.testing.assert_allclose(np.abs(ds[0]).mean(axis=0), s.mean_abs("image", 1)[block], rtol=1e-5)
        assert s.hidden("image", "double.0") is None


def test_cancelled_record_keeps_finished_steps(tiny_pipelines, tmp_path):
    from massivelens.engine.cancel import CancelToken
    from massivelens.engine.errors import Cancelled

    token = CancelToken()

    def progress(p):
        if p.step == 2:
            token.cancel()

    gen = generation("flux", steps=5)
    with pytest.raises(Cancelled):
        record(request("flux", tiny_pipelines("flux"), tmp_path / "c.h5", gen), progress, token)
    with open_session(tmp_path / "c.h5") as s:
        assert not s.complete and s.steps_done == 2 and s.image() is None


def test_control_channel_sets_are_recorded_on_request(tiny_pipelines, tmp_path):
    gen = generation("flux", steps=2)
    path = record(request("flux", tiny_pipelines("flux"), tmp_path / "c.h5", gen, control_sets=("bottom", "random")))
    with open_session(path) as s:
        assert s.channel_sets == ("top", "bottom", "random")
        mean = s.mean_abs("image", 1)
        bottom = s.set_channels("bottom", 1)
        np.testing.assert_array_equal(bottom[:, 0], mean.argmin(axis=1))
        random = s.set_channels("random")
        np.testing.assert_array_equal(random[0], random[1])  # drawn once per block, fixed over steps
        assert len(set(map(tuple, random[0]))) > 1  # but different between blocks
        block = 2
        c = int(bottom[block][1])
        ds_map = s.set_maps("bottom", 1, block)[1]
        assert ds_map.shape == s.grid
        assert np.isclose(np.abs(ds_map).mean(), mean[block, c], rtol=1e-5)


def test_median_is_exact_on_small_states_and_a_sampled_estimate_at_flux_size():
    from massivelens.engine.core.recording import median_stride, reduce_tokens

    assert median_stride(64, 128, 8) == 1  # the embedded model: exact
    stride = median_stride(4096, 3072, 64)  # FLUX at 1024 px
    assert stride == 49 and {(i * stride) % 64 for i in range(4096 // stride)} == set(range(64))
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4096, 3072, generator=generator) * torch.rand(3072, generator=generator) * 4
    x[:, 7] = 3000.0  # a massive channel does not move the median
    _, peak, sampled = reduce_tokens(x, stride)
    exact = x.abs().median()
    assert abs(float(sampled) / float(exact) - 1) < 0.02 and float(peak[7]) == 3000.0
