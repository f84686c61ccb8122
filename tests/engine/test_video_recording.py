"""Recording video DiTs (Wan 2.1/2.2, LTX-Video, HunyuanVideo, CogVideoX) through the public API: every
frame of the pipeline's own output unchanged, the latent-token grid, the conditional branch, planted
channels found, per-frame statistics, and Wan 2.2's second expert."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline

import massivelens
from massivelens.engine.core.architectures import ADAPTERS, adapter_for
from massivelens.engine.core.calls import to_uint8
from tests.hooked import seeded
from tests.tiny_video_pipelines import VIDEO_ARCHITECTURES, tiny_video_call_kwargs, token_grid

PLANTED_IMAGE, PLANTED_TEXT = 5, 9
TEXT_TOKENS = 16  # max_sequence_length of the tiny calls


def load(folder) -> DiffusionPipeline:
    pipe = DiffusionPipeline.from_pretrained(folder, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_adapter_table_covers_the_video_classes():
    assert {"WanTransformer3DModel", "LTXVideoTransformer3DModel", "HunyuanVideoTransformer3DModel",
            "CogVideoXTransformer3DModel"} <= set(ADAPTERS)


@pytest.mark.parametrize("arch", VIDEO_ARCHITECTURES)
def test_record_returns_every_frame_bit_identical(arch, tiny_video_pipelines, tmp_path):
    pipe = load(tiny_video_pipelines(arch))
    kw = tiny_video_call_kwargs(arch)
    plain = pipe(**seeded(kw), output_type="np").frames
    output = massivelens.record(pipe, tmp_path / "s.h5", k=4, **seeded(kw), output_type="np")
    np.testing.assert_array_equal(output.frames, plain)
    frames, h, w = token_grid(arch, kw["num_frames"], kw["height"], kw["width"])
    with massivelens.open_session(tmp_path / "s.h5") as s:
        assert s.complete and s.steps_done == kw["num_inference_steps"] and s.is_video
        np.testing.assert_array_equal(s.frames, to_uint8(plain[0]))
        assert s.frames.shape == (kw["num_frames"], kw["height"], kw["width"], 3)
        np.testing.assert_array_equal(s.image, s.frames[0])
        assert s.grid == (frames, h, w) and s.latent_frames == frames
        assert s.blocks("image") == adapter_for(pipe.transformer).block_names(pipe.transformer)
        blocks = len(s.blocks("image"))
        assert s.top_maps().shape == (kw["num_inference_steps"], blocks, 4, frames, h, w)
        assert s.info["height"] == kw["height"] and s.info["width"] == kw["width"]
        assert s.call["kwargs"]["num_frames"] == kw["num_frames"]


@pytest.mark.parametrize("output_type", ["pil", "pt"])
def test_frames_are_stored_whatever_the_output_type(output_type, tiny_video_pipelines, tmp_path):
    pipe = load(tiny_video_pipelines("ltx"))
    kw = tiny_video_call_kwargs("ltx")
    expected = to_uint8(pipe(**seeded(kw), output_type="np").frames[0])
    massivelens.record(pipe, tmp_path / "s.h5", **seeded(kw), output_type=output_type)
    with massivelens.open_session(tmp_path / "s.h5") as s:
        np.testing.assert_array_equal(s.frames, expected)


@pytest.mark.parametrize("arch", VIDEO_ARCHITECTURES)
def test_conditional_branch_is_the_one_recorded(arch, tiny_video_pipelines, tmp_path):
    """At step 0 both branches see the same latents; another negative prompt moves the unconditional one only."""
    pipe = load(tiny_video_pipelines(arch))
    kw = tiny_video_call_kwargs(arch)
    massivelens.record(pipe, tmp_path / "a.h5", **seeded(kw), output_type="latent")
    massivelens.record(pipe, tmp_path / "b.h5", **seeded({**kw, "negative_prompt": "a green triangle"}), output_type="latent")
    with massivelens.open_session(tmp_path / "a.h5") as a, massivelens.open_session(tmp_path / "b.h5") as b:
        assert a.frames is None  # the call returned latents
        for stream in a.streams:
            np.testing.assert_allclose(a.mean_abs(stream, 0), b.mean_abs(stream, 0), rtol=1e-5, atol=1e-6)
        assert not np.allclose(a.mean_abs("image", 1), b.mean_abs("image", 1), rtol=1e-5, atol=1e-6)


def _first_frame_plant(arch: str, frame_tokens: int):
    """A forward hook on the module embedding the video tokens that adds 1e5 to one channel of the first
    latent frame's tokens (and, where the same module embeds the text, to another channel of the text)."""

    def hook(module, args, output):
        output = output.clone()
        if arch.startswith("wan"):  # Conv3d output (B, C, F, H, W)
            output[:, PLANTED_IMAGE, 0] += 1e5
        elif arch == "cogvideox":  # [text tokens; video tokens], (B, tokens, C)
            output[:, TEXT_TOKENS:TEXT_TOKENS + frame_tokens, PLANTED_IMAGE] += 1e5
            output[:, :TEXT_TOKENS, PLANTED_TEXT] += 1e5
        else:  # (B, tokens, C), frame-major
            output[:, :frame_tokens, PLANTED_IMAGE] += 1e5
        return output

    return hook


EMBEDDER = {"wan": "patch_embedding", "wan2.2": "patch_embedding", "ltx": "proj_in", "hunyuanvideo": "x_embedder",
            "cogvideox": "patch_embed"}


def _plant(transformer, arch: str, kw: dict):
    _, h, w = token_grid(arch, kw["num_frames"], kw["height"], kw["width"])
    handles = [transformer.get_submodule(EMBEDDER[arch]).register_forward_hook(_first_frame_plant(arch, h * w))]
    if arch == "hunyuanvideo":
        def text(module, args, output):
            output = output.clone()
            output[..., PLANTED_TEXT] += 1e5
            return output
        handles.append(transformer.context_embedder.register_forward_hook(text))
    return handles


@pytest.mark.parametrize("arch", VIDEO_ARCHITECTURES)
def test_planted_first_frame_channel_is_top_1_and_dominates_the_first_frame(arch, tiny_video_pipelines, tmp_path):
    pipe = load(tiny_video_pipelines(arch))
    kw = tiny_video_call_kwargs(arch)
    handles = _plant(pipe.transformer, arch, kw)
    try:
        massivelens.record(pipe, tmp_path / "s.h5", k=4, **seeded(kw), output_type="latent")
    finally:
        for handle in handles:
            handle.remove()
    with massivelens.open_session(tmp_path / "s.h5") as s:
        top = s.top_channels()
        assert (top[:, :, 0] == PLANTED_IMAGE).all()
        per_frame = s.top_frame_mean_abs()  # (steps, blocks, k, frames)
        assert per_frame.shape == (*top.shape, s.latent_frames)
        assert (per_frame[:, :, 0, 0] > 100 * per_frame[:, :, 0, 1:].max(axis=-1)).all()
        np.testing.assert_allclose(per_frame, np.abs(s.top_maps()).mean(axis=(-2, -1)), rtol=1e-4)  # maps are 16-bit
        np.testing.assert_array_equal(s.frame_maps("top", 1, 0, 1), s.top_maps(1, 0)[:, 1])
        if "text" in s.streams:
            assert (s.mean_abs("text").argmax(axis=-1) == PLANTED_TEXT).all()


def test_wan22_low_noise_steps_are_recorded_from_the_second_expert(tiny_video_pipelines, tmp_path):
    """Wan 2.2 A14B switches to `transformer_2` below its boundary timestep: a channel planted in that expert
    alone is top-1 at the low-noise step and leaves the high-noise step as it was; the call still returns
    its plain frames."""
    pipe = load(tiny_video_pipelines("wan2.2"))
    kw = tiny_video_call_kwargs("wan2.2")
    plain = pipe(**seeded(kw)).frames
    handles = _plant(pipe.transformer_2, "wan2.2", kw)
    try:
        massivelens.record(pipe, tmp_path / "planted.h5", k=4, **seeded(kw))
    finally:
        for handle in handles:
            handle.remove()
    output = massivelens.record(pipe, tmp_path / "plain.h5", k=4, **seeded(kw))
    np.testing.assert_array_equal(output.frames, plain)
    with massivelens.open_session(tmp_path / "planted.h5") as s, massivelens.open_session(tmp_path / "plain.h5") as p:
        assert s.timesteps[0] >= 875 > s.timesteps[1]
        assert (s.top_channels(1)[:, 0] == PLANTED_IMAGE).all()
        np.testing.assert_array_equal(s.mean_abs("image", 0), p.mean_abs("image", 0))
        assert not (p.top_channels(1)[:, 0] == PLANTED_IMAGE).all()


def test_image_to_video_steps_are_told_apart_by_the_generated_frames(tiny_video_pipelines, tmp_path):
    """LTX image-to-video gives the conditioning frame's tokens timestep 0 at every step: steps must be
    told apart by the other tokens' timestep."""
    from diffusers import LTXImageToVideoPipeline
    from PIL import Image

    pipe = LTXImageToVideoPipeline.from_pretrained(tiny_video_pipelines("ltx"), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    kw = {**tiny_video_call_kwargs("ltx"), "num_inference_steps": 3,
          "image": Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8))}
    plain = pipe(**seeded(kw), output_type="np").frames
    output = massivelens.record(pipe, tmp_path / "s.h5", **seeded(kw), output_type="np")
    np.testing.assert_array_equal(output.frames, plain)
    with massivelens.open_session(tmp_path / "s.h5") as s:
        assert s.steps_done == 3 and np.all(np.diff(s.timesteps) < 0)
        assert s.call["inputs"] == ["image"]


@pytest.mark.parametrize("arch", ["ltx", "wan"])
def test_several_videos_per_call_write_one_session_each(arch, tiny_video_pipelines, tmp_path):
    pipe = load(tiny_video_pipelines(arch))
    kw = {**tiny_video_call_kwargs(arch), "num_videos_per_prompt": 2}
    plain = pipe(**seeded(kw), output_type="np").frames
    with massivelens.recording(pipe, tmp_path / "v.h5") as rec:
        pipe(**seeded(kw), output_type="np")
    assert [p.name for p in rec.paths] == ["v-0.h5", "v-1.h5"]
    for i, path in enumerate(rec.paths):
        with massivelens.open_session(path) as s:
            np.testing.assert_array_equal(s.frames, to_uint8(plain[i]))
            assert s.image_index == i and s.images_in_call == 2
