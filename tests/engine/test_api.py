"""The Python API on a user's own pipeline object: one call per recording block, every image of a call,
user callbacks, latents, swapped schedulers, LoRA, offload, quantization, output types, zero_channels."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline, FluxTransformer2DModel, UniPCMultistepScheduler

import massivelens
from massivelens.engine.core.calls import to_uint8
from tests.hooked import generation, seeded


def load(folder) -> DiffusionPipeline:
    pipe = DiffusionPipeline.from_pretrained(folder, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def hook_count(pipe) -> int:
    modules = [pipe.transformer, *pipe.transformer.modules()]
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in modules)


@pytest.fixture
def flux(tiny_pipelines):
    return load(tiny_pipelines("flux"))


def test_a_recording_block_records_its_one_call_and_refuses_a_second(flux, tmp_path):
    kw = generation("flux")
    prompt = kw.pop("prompt")
    with massivelens.recording(flux, tmp_path / "s.h5", k=3) as rec:
        output = flux(prompt, **seeded(kw), output_type="np")  # the prompt given positionally
        with pytest.raises(massivelens.RecordingError, match="already recorded one pipeline call"):
            flux(prompt, **seeded(kw))
    assert rec.paths == [tmp_path / "s.h5"] and hook_count(flux) == 0
    with massivelens.open_session(tmp_path / "s.h5") as s:
        assert s.complete and s.k == 3 and s.call["kwargs"]["prompt"] == prompt
        np.testing.assert_array_equal(s.image, to_uint8(output.images[0]))


def test_a_block_left_without_a_call_leaves_no_file(flux, tmp_path):
    with massivelens.recording(flux, tmp_path / "none.h5"):
        pass
    assert not (tmp_path / "none.h5").exists()
    cls = type(flux)
    with pytest.raises(RuntimeError, match="inside"):
        with massivelens.recording(flux, tmp_path / "err.h5"):
            raise RuntimeError("an error inside the block")
    assert type(flux) is cls and not (tmp_path / "err.h5").exists()


@pytest.mark.parametrize("arch", ["flux", "sd3"])  # sequential and batched guidance
def test_every_image_of_a_call_gets_its_own_session(arch, tiny_pipelines, tmp_path):
    pipe = load(tiny_pipelines(arch))
    kw = generation(arch, prompt=["a red circle", "a blue square"], num_images_per_prompt=2)
    kw["negative_prompt"] = [kw["negative_prompt"]] * 2  # FluxPipeline's true CFG needs one per prompt
    output = massivelens.record(pipe, tmp_path / "batch.h5", k=3, **seeded(kw), output_type="np")
    single = generation(arch)
    massivelens.record(pipe, tmp_path / "one.h5", k=3, **seeded(single), output_type="np")
    paths = [tmp_path / f"batch-{i}.h5" for i in range(4)]
    sessions = [massivelens.open_session(p) for p in paths]
    try:
        for i, s in enumerate(sessions):
            assert (s.image_index, s.images_in_call) == (i, 4)
            assert s.info["prompt"] == kw["prompt"][i // 2]
            np.testing.assert_array_equal(s.image, to_uint8(output.images[i]))
        assert not np.allclose(sessions[0].mean_abs("image"), sessions[2].mean_abs("image"))
        with massivelens.open_session(tmp_path / "one.h5") as one:  # image 0 of the batch is the single call's image
            np.testing.assert_allclose(sessions[0].mean_abs("image"), one.mean_abs("image"), rtol=1e-3, atol=1e-5)
    finally:
        for s in sessions:
            s.close()


def test_user_callback_latents_and_a_swapped_scheduler_keep_the_output(tiny_pipelines, tmp_path):
    pipe = load(tiny_pipelines("sd3"))
    pipe.scheduler = UniPCMultistepScheduler(use_flow_sigmas=True, prediction_type="flow_prediction", flow_shift=3.0)
    kw = generation("sd3", num_inference_steps=3)
    latents = torch.randn(1, 4, kw["height"] // 8, kw["width"] // 8, generator=torch.Generator().manual_seed(5))
    seen: list[list[int]] = [[], []]

    def callback(index: int):
        def on_step_end(pipeline, step, timestep, tensors):
            seen[index].append(step)
            return {}
        return on_step_end

    plain = pipe(**kw, latents=latents, callback_on_step_end=callback(0), output_type="np").images
    recorded = massivelens.record(pipe, tmp_path / "s.h5", **kw, latents=latents, callback_on_step_end=callback(1),
                                  output_type="np").images
    np.testing.assert_array_equal(recorded, plain)
    assert seen[0] == seen[1] == [0, 1, 2]
    with massivelens.open_session(tmp_path / "s.h5") as s:
        assert s.info["scheduler"] == "UniPCMultistepScheduler" and s.steps_done == 3
        values, kind, dtype = s.call_inputs()["latents"]
        assert kind == "tensor" and dtype == "float32"
        np.testing.assert_array_equal(values, latents.numpy())
        assert "callback_on_step_end" in s.call["not_stored"] and s.call["generator"] is None


@pytest.mark.parametrize("output_type", ["pil", "pt", "latent"])
def test_every_output_type_and_return_dict_false(flux, tmp_path, output_type):
    kw = generation("flux")
    plain = flux(**seeded(kw), output_type=output_type, return_dict=False)[0]
    recorded = massivelens.record(flux, tmp_path / "s.h5", **seeded(kw), output_type=output_type, return_dict=False)[0]
    with massivelens.open_session(tmp_path / "s.h5") as s:
        assert s.complete
        if output_type == "latent":
            torch.testing.assert_close(recorded, plain, rtol=0, atol=0)
            assert s.image is None
        elif output_type == "pt":
            torch.testing.assert_close(recorded, plain, rtol=0, atol=0)
            np.testing.assert_array_equal(s.image, to_uint8(plain[0].permute(1, 2, 0).numpy()))
        else:
            np.testing.assert_array_equal(np.asarray(recorded[0]), np.asarray(plain[0]))
            np.testing.assert_array_equal(s.image, np.asarray(plain[0]))


def test_peft_lora_loaded_into_the_pipeline_records_and_matches(tiny_pipelines, tmp_path):
    peft = pytest.importorskip("peft")
    from diffusers import FluxPipeline

    donor = load(tiny_pipelines("flux"))
    torch.manual_seed(1)
    donor.transformer.add_adapter(peft.LoraConfig(r=4, lora_alpha=8, target_modules=["to_q", "to_k", "to_v"], init_lora_weights=False))
    FluxPipeline.save_lora_weights(tmp_path / "lora", transformer_lora_layers=peft.get_peft_model_state_dict(donor.transformer))
    pipe = load(tiny_pipelines("flux"))
    base = pipe(**seeded(generation("flux")), output_type="np").images
    pipe.load_lora_weights(tmp_path / "lora", adapter_name="style")
    plain = pipe(**seeded(generation("flux")), output_type="np").images
    assert not np.array_equal(plain, base), "the LoRA must change the image"
    recorded = massivelens.record(pipe, tmp_path / "s.h5", **seeded(generation("flux")), output_type="np").images
    np.testing.assert_array_equal(recorded, plain)
    with massivelens.open_session(tmp_path / "s.h5") as s:
        assert s.call["pipeline"]["lora_adapters"] == {"transformer": ["style"]}


def test_model_cpu_offload_records_and_matches(flux, tmp_path):
    flux.enable_model_cpu_offload(device="cpu")  # accelerate's hooks on every model, as on a GPU machine
    plain = flux(**seeded(generation("flux")), output_type="np").images
    recorded = massivelens.record(flux, tmp_path / "s.h5", **seeded(generation("flux")), output_type="np").images
    np.testing.assert_array_equal(recorded, plain)
    with massivelens.open_session(tmp_path / "s.h5") as s:
        assert s.call["pipeline"]["offload"] == "model" and s.complete


def test_torchao_int8_weight_only_transformer_records_and_matches(flux, tmp_path):
    quantization = pytest.importorskip("torchao.quantization", reason="torchao is optional (not in the test extra)")
    quantization.quantize_(flux.transformer, quantization.Int8WeightOnlyConfig())
    plain = flux(**seeded(generation("flux")), output_type="np").images
    recorded = massivelens.record(flux, tmp_path / "s.h5", **seeded(generation("flux")), output_type="np").images
    np.testing.assert_array_equal(recorded, plain)
    with massivelens.open_session(tmp_path / "s.h5") as s:
        assert s.call["pipeline"]["quantized_weights"]


def test_zero_channels_equals_zeroing_the_same_channels_by_hand(flux):
    """FLUX blocks return (text, image) tuples: the hand-written hook zeroes the image part."""
    channels = {"double.1": [0, 5], "single.0": [3]}
    kw = generation("flux")

    def zero(indices):
        def hook(module, args, output):
            text, image = output
            image = image.clone()
            image[..., indices] = 0
            return text, image
        return hook

    modules = {"double.1": flux.transformer.transformer_blocks[1], "single.0": flux.transformer.single_transformer_blocks[0]}
    handles = [modules[name].register_forward_hook(zero(ids)) for name, ids in channels.items()]
    try:
        by_hand = flux(**seeded(kw), output_type="np").images
    finally:
        for handle in handles:
            handle.remove()
    with massivelens.zero_channels(flux, channels):
        zeroed = flux(**seeded(kw), output_type="np").images
    np.testing.assert_array_equal(zeroed, by_hand)
    assert not np.array_equal(zeroed, flux(**seeded(kw), output_type="np").images)
    with pytest.raises(ValueError, match="inside"):
        with massivelens.zero_channels(flux, channels):
            raise ValueError("an error inside the block")
    assert hook_count(flux) == 0


def test_a_transformer_class_the_table_lacks_is_recorded_with_an_inferred_adapter(flux, tmp_path):
    """(Classes that cannot be inferred are refused in one line: tests/engine/test_inference.py.)"""
    class MyTransformer(FluxTransformer2DModel):
        pass

    flux.transformer.__class__ = MyTransformer
    massivelens.record(flux, tmp_path / "s.h5", **seeded(generation("flux")))
    with massivelens.open_session(tmp_path / "s.h5") as s:
        assert s.complete and s.call["notes"][-1].startswith("adapter inferred for MyTransformer: ")
