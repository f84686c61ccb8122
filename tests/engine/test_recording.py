"""Recording on every supported architecture through the public API: the pipeline's own output
unchanged, streams, branches, planted channels, hidden states, control sets, cancel."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline

import massivelens
from massivelens.engine.core.architectures import ADAPTERS, adapter_for
from massivelens.engine.core.calls import to_uint8
from massivelens.engine.jobs import RecordRequest, record
from massivelens.sessions.massive import summarize
from tests.hooked import generation, plant, seeded
from tests.tiny_pipelines import ARCHITECTURES, PROMPT

# Test-only: the modules that embed image and text tokens as (batch, tokens, channels); a value
# planted there reaches every block through the residual stream.
IMAGE_EMBEDDER = {"flux": "x_embedder", "flux2": "x_embedder", "qwenimage": "img_in",
                  "sd3": "pos_embed", "pixart": "pos_embed", "sana": "patch_embed"}
TEXT_EMBEDDER = {"flux": "context_embedder", "flux2": "context_embedder", "qwenimage": "txt_in", "sd3": "context_embedder"}
PLANTED_IMAGE, PLANTED_TEXT = 5, 9


def load(folder) -> DiffusionPipeline:
    """A tiny pipeline loaded as a user loads FLUX."""
    pipe = DiffusionPipeline.from_pretrained(folder, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def request(folder, out, **settings) -> RecordRequest:
    """A record job on the tiny FLUX pipeline at its test size."""
    kw = generation("flux")
    base = RecordRequest(prompt=PROMPT, out=out, model=str(folder), steps=kw["num_inference_steps"],
                         height=kw["height"], width=kw["width"], k=4)
    return replace(base, **settings)


def test_adapter_table_covers_the_required_classes():
    required = {"FluxTransformer2DModel", "Flux2Transformer2DModel", "SD3Transformer2DModel", "PixArtTransformer2DModel", "SanaTransformer2DModel", "QwenImageTransformer2DModel"}
    assert required <= set(ADAPTERS)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_record_returns_the_plain_output_bit_identical(arch, tiny_pipelines, tmp_path):
    pipe = load(tiny_pipelines(arch))
    kw = generation(arch)
    plain = pipe(**seeded(kw), output_type="np").images
    cls = type(pipe)
    output = massivelens.record(pipe, tmp_path / "s.h5", k=4, **seeded(kw), output_type="np")
    assert type(pipe) is cls  # the object is left as it was
    np.testing.assert_array_equal(output.images, plain)
    adapter = adapter_for(pipe.transformer)
    with massivelens.open_session(tmp_path / "s.h5") as s:
        assert s.complete and s.steps_done == kw["num_inference_steps"]
        np.testing.assert_array_equal(s.image, to_uint8(plain[0]))
        assert s.blocks("image") == adapter.block_names(pipe.transformer)
        h, w = s.grid
        assert s.top_maps(0, 0).shape == (4, h, w)
        assert s.top_maps().shape == (kw["num_inference_steps"], len(s.blocks("image")), 4, h, w)
        for stream in s.streams:
            assert np.isfinite(s.mean_abs(stream, 0)[0]).all()
        assert np.isfinite(s.timesteps).all()
        assert s.info["transformer_class"] == type(pipe.transformer).__name__
        assert s.call["kwargs"]["prompt"] == PROMPT and s.call["generator"] == {"device": "cpu", "seed": 0, "fresh": True}


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_conditional_branch_is_the_one_recorded(arch, tiny_pipelines, tmp_path):
    """At step 0 both branches see the same latents. Changing the negative prompt changes the
    unconditional branch only, so what is recorded (the conditional branch) must not move."""
    pipe = load(tiny_pipelines(arch))
    massivelens.record(pipe, tmp_path / "a.h5", **seeded(generation(arch)))
    # FLUX.2-klein takes no negative prompt: there, switching guidance off removes the uncond branch.
    other = generation(arch, guidance_scale=1.0) if arch == "flux2" else generation(arch, negative_prompt="a green triangle")
    massivelens.record(pipe, tmp_path / "b.h5", **seeded(other))
    with massivelens.open_session(tmp_path / "a.h5") as a, massivelens.open_session(tmp_path / "b.h5") as b:
        for stream in a.streams:
            np.testing.assert_allclose(a.mean_abs(stream, 0), b.mean_abs(stream, 0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_planted_channels_are_found_in_their_stream(arch, tiny_pipelines, tmp_path):
    pipe = load(tiny_pipelines(arch))
    transformer = pipe.transformer
    handles = [plant(transformer.get_submodule(IMAGE_EMBEDDER[arch]), PLANTED_IMAGE)]
    if arch in TEXT_EMBEDDER:
        handles.append(plant(transformer.get_submodule(TEXT_EMBEDDER[arch]), PLANTED_TEXT))
    try:
        massivelens.record(pipe, tmp_path / "s.h5", **seeded(generation(arch)))
    finally:
        for handle in handles:
            handle.remove()
    with massivelens.open_session(tmp_path / "s.h5") as s:
        rows = summarize(s)
    for row in rows:
        if row.stream == "text" and arch not in TEXT_EMBEDDER:
            continue
        expected = PLANTED_IMAGE if row.stream == "image" else PLANTED_TEXT
        assert row.top_channels[0] == expected, (row.block, row.stream)
        assert expected in row.sun_channels and row.max_over_median > 1000


def test_bf16_runs_record_float32_statistics(tiny_pipelines, tmp_path):
    path = record(request(tiny_pipelines("flux"), tmp_path / "bf16.h5", dtype="bf16"))
    with massivelens.open_session(path) as s:
        assert s.info["dtype"] == "bf16" and s.complete
        assert s.mean_abs("image").dtype == np.float32 and np.isfinite(s.mean_abs("image")).all()


def test_full_hidden_states_for_chosen_blocks_and_steps(tiny_pipelines, tmp_path):
    path = record(request(tiny_pipelines("flux"), tmp_path / "h.h5", steps=3, hidden_blocks=("single.0",), hidden_steps=(1,)))
    with massivelens.open_session(path) as s:
        ds, steps = s.hidden("image", "single.0")
        h, w = s.grid
        assert steps == [1] and ds.shape == (1, h * w, s.channels("image"))
        block = s.blocks("image").index("single.0")
        top = int(s.top_channels(1)[block][0])
        exact = ds[0][:, top].reshape(h, w)  # the full hidden state is stored exactly; maps in 16 bits
        np.testing.assert_allclose(s.top_maps(1, block)[0], exact, rtol=0, atol=np.abs(exact).max() / 65534 * 1.001)
        np.testing.assert_allclose(np.abs(ds[0]).mean(axis=0), s.mean_abs("image", 1)[block], rtol=2**-11)  # float16 statistics
        assert s.hidden("image", "double.0") is None


def test_cancelled_record_keeps_finished_steps(tiny_pipelines, tmp_path):
    from massivelens.engine.cancel import CancelToken
    from massivelens.engine.errors import Cancelled

    token = CancelToken()

    def progress(p):
        if p.step == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        record(request(tiny_pipelines("flux"), tmp_path / "c.h5", steps=5), progress, token)
    with massivelens.open_session(tmp_path / "c.h5") as s:
        assert not s.complete and s.steps_done == 2 and s.image is None


def test_control_channel_sets_are_recorded_on_request(tiny_pipelines, tmp_path):
    path = record(request(tiny_pipelines("flux"), tmp_path / "c.h5", control_sets=("bottom", "random")))
    with massivelens.open_session(path) as s:
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
        assert np.isclose(np.abs(ds_map).mean(), mean[block, c], rtol=2e-3)  # 16-bit maps and statistics


def test_median_is_exact_on_small_states_and_a_sampled_estimate_at_flux_size():
    from massivelens.engine.core.recording import median_stride, reduce_tokens

    assert median_stride(64, 128, 8) == 1  # the embedded model: exact
    stride = median_stride(4096, 3072, 64)  # FLUX at 1024 px
    assert stride == 49 and {(i * stride) % 64 for i in range(4096 // stride)} == set(range(64))
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4096, 3072, generator=generator) * torch.rand(3072, generator=generator) * 4
    x[:, 7] = 3000.0  # a massive channel does not move the median
    _, peak, sampled = reduce_tokens(x[None], stride)
    exact = x.abs().median()
    assert abs(float(sampled[0]) / float(exact) - 1) < 0.02 and float(peak[0, 7]) == 3000.0
