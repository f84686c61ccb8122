"""Tiny random-weight transformers of the families whose pipelines cannot run offline here, each with the
inputs its pipeline would pass for one call (one row, a 4 x 6 token grid), and the modules that embed its
image, text and reference tokens.

Why not the pipeline: OmniGen's processor and the Qwen-VL processors of NucleusMoE-Image, Qwen-Image 2.1,
Bria FIBO 2 and Qwen-Image-Edit need torchvision (not installed); GLM-Image's prompt goes through an
autoregressive vision-language model; FLUX.3 has a modular pipeline only; Ideogram 4 needs its own LLM's
features, whose tiny stand-in was not built.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from diffusers import (
    BriaFibo2Transformer2DModel,
    Flux3Transformer2DModel,
    GlmImageTransformer2DModel,
    Ideogram4Transformer2DModel,
    NucleusMoEImageTransformer2DModel,
    OmniGenTransformer2DModel,
    QwenImage21Transformer2DModel,
    QwenImageTransformer2DModel,
)

H, W, T = 4, 6, 10  # token grid and text tokens of every call here
N = H * W


@dataclass(frozen=True)
class TinyTransformer:
    """A transformer builder, the inputs of one call, and its embedders per stream (module paths)."""

    build: Callable[[], torch.nn.Module]
    inputs: Callable[[torch.nn.Module], dict]
    embedders: dict[str, str]


def _grid_ids(h: int, w: int, first: float, axes: int = 3) -> torch.Tensor:
    """(h*w, axes) position ids (first, row, col[, 0])."""
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    ids = [torch.full((h * w,), first), rows.flatten().float(), cols.flatten().float()]
    ids += [torch.zeros(h * w)] * (axes - 3)
    return torch.stack(ids, dim=1)


def _omnigen() -> OmniGenTransformer2DModel:
    return OmniGenTransformer2DModel(
        in_channels=4, patch_size=2, hidden_size=32, num_attention_heads=2, num_key_value_heads=2, intermediate_size=64,
        num_layers=2, pad_token_id=0, vocab_size=64, pos_embed_max_size=32, time_step_dim=32,
        rope_scaling={"short_factor": [1.0] * 8, "long_factor": [1.0] * 8},
    )


def _omnigen_inputs(model) -> dict:
    length = T + 1 + N  # [prompt; time token; image], as OmniGen's processor lays it out
    return {"hidden_states": torch.randn(1, 4, 2 * H, 2 * W), "timestep": torch.tensor([0.5]),
            "input_ids": torch.randint(1, 64, (1, T)), "input_img_latents": [], "input_image_sizes": {},
            "attention_mask": torch.ones(1, length, length), "position_ids": torch.arange(length)[None]}


def _flux3() -> Flux3Transformer2DModel:
    return Flux3Transformer2DModel(
        in_channels=16, cond_in_channels=16, num_layers=2, num_single_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, timestep_channels=32, axes_dims_rope=(4, 4, 4, 4),
    )


def _flux3_inputs(model) -> dict:
    """With a 2 x 4 reference image, passed apart as image_cond_* (as FLUX.3's modular pipeline does)."""
    return {"hidden_states": torch.randn(1, N, 16), "encoder_hidden_states": torch.randn(1, T, 32),
            "timestep": torch.tensor([0.5]), "img_ids": _grid_ids(H, W, 0, 4), "txt_ids": torch.zeros(T, 4),
            "image_cond_hidden_states": torch.randn(1, 8, 16), "image_cond_ids": _grid_ids(2, 4, 1, 4)}


def _glm() -> GlmImageTransformer2DModel:
    return GlmImageTransformer2DModel(
        patch_size=2, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=2,
        text_embed_dim=16, time_embed_dim=32, condition_dim=8, prior_vq_quantizer_codebook_size=64,
    )


def _glm_inputs(model) -> dict:
    return {"hidden_states": torch.randn(1, 4, 2 * H, 2 * W), "encoder_hidden_states": torch.randn(1, T, 16),
            "prior_token_id": torch.randint(0, 64, (1, N)), "prior_token_drop": torch.zeros(1, N, dtype=torch.bool),
            "timestep": torch.tensor([500.0]), "target_size": torch.tensor([[64.0, 96.0]]),
            "crop_coords": torch.zeros(1, 2)}


def _nucleus() -> NucleusMoEImageTransformer2DModel:
    return NucleusMoEImageTransformer2DModel(
        patch_size=2, in_channels=16, num_layers=2, attention_head_dim=16, num_attention_heads=2, joint_attention_dim=16,
        axes_dims_rope=(4, 6, 6), moe_enabled=False,
    )


def _nucleus_inputs(model) -> dict:
    return {"hidden_states": torch.randn(1, N, 16), "img_shapes": [(1, H, W)], "encoder_hidden_states": torch.randn(1, T, 16),
            "encoder_hidden_states_mask": torch.ones(1, T, dtype=torch.long), "timestep": torch.tensor([0.5])}


def _qwenimage21() -> QwenImage21Transformer2DModel:
    return QwenImage21Transformer2DModel(
        patch_size=1, in_channels=16, out_channels=16, num_layers=2, attention_head_dim=16, num_attention_heads=2,
        context_in_dim=16, axes_dims_rope=(4, 6, 6),
    )


def _qwenimage21_inputs(model) -> dict:
    """Text then the target image's slots of 2 x 2 tokens, as Qwen-Image 2.1's pipeline lays out a prompt."""
    slots = torch.cat([torch.zeros(1, T, dtype=torch.bool), torch.ones(1, N // 4, dtype=torch.bool)], dim=1)
    return {"hidden_states": torch.randn(1, N, 16), "encoder_hidden_states": torch.randn(1, T, 16),
            "timestep": torch.tensor([0.5]), "img_shapes": [[(1, H, W)]], "img_mask": slots,
            "encoder_hidden_states_mask": torch.ones(1, T, dtype=torch.long)}


def _briafibo2() -> BriaFibo2Transformer2DModel:
    return BriaFibo2Transformer2DModel(
        in_channels=4, patch_size=2, dim=32, n_layers=2, n_refiner_layers=2, n_heads=2, cap_feat_dim=16,
        injection_layer_ids=(1,), perceiver_num_layers=1, min_num_gist_tokens=4, max_num_gist_tokens=8, gist_step=4,
        gist_min_text_len=4, gist_max_text_len=32, axes_dims=(4, 6, 6), axes_lens=(64, 64, 64),
    )


def _briafibo2_inputs(model) -> dict:
    """The text encoder's stacked layers: the perceiver's, then one per injection layer."""
    return {"hidden_states": torch.randn(1, 4, 2 * H, 2 * W), "timestep": torch.tensor([0.5]),
            "encoder_hidden_states": torch.randn(1, 2, T, 16), "encoder_attention_mask": torch.ones(1, T, dtype=torch.bool)}


def _ideogram4() -> Ideogram4Transformer2DModel:
    return Ideogram4Transformer2DModel(
        in_channels=16, num_layers=2, attention_head_dim=16, num_attention_heads=2, intermediate_size=64, adaln_dim=16,
        llm_features_dim=16, mrope_section=(4, 2, 2),
    )


def _ideogram4_inputs(model) -> dict:
    """[left padding; text; image], as Ideogram 4's pipeline packs its conditional call."""
    from diffusers.models.transformers.transformer_ideogram4 import LLM_TOKEN_INDICATOR, OUTPUT_IMAGE_INDICATOR

    pad = 2
    indicator = torch.tensor([0] * pad + [LLM_TOKEN_INDICATOR] * T + [OUTPUT_IMAGE_INDICATOR] * N)[None]
    positions = torch.zeros(1, pad + T + N, 3, dtype=torch.long)
    positions[0, pad : pad + T] = torch.arange(T)[:, None]
    positions[0, pad + T :] = _grid_ids(H, W, 0).long() + 64
    segments = torch.ones(1, pad + T + N, dtype=torch.long)
    segments[0, :pad] = -1
    return {"hidden_states": torch.randn(1, pad + T + N, 16), "timestep": torch.tensor([0.5]),
            "encoder_hidden_states": torch.randn(1, pad + T + N, 16), "position_ids": positions,
            "segment_ids": segments, "indicator": indicator}


def _qwen_edit() -> QwenImageTransformer2DModel:
    return QwenImageTransformer2DModel(
        patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=16, axes_dims_rope=(4, 6, 6),
    )


def _qwen_edit_inputs(model) -> dict:
    """Qwen-Image-Edit's call: the generated image's tokens, then a 2 x 4 reference image's."""
    return {"hidden_states": torch.randn(1, N + 8, 16), "encoder_hidden_states": torch.randn(1, T, 16),
            "encoder_hidden_states_mask": torch.ones(1, T, dtype=torch.long), "timestep": torch.tensor([0.5]),
            "img_shapes": [[(1, H, W), (1, 2, 4)]]}


TRANSFORMERS: dict[str, TinyTransformer] = {
    "omnigen": TinyTransformer(_omnigen, _omnigen_inputs, {"image": "patch_embedding", "text": "embed_tokens"}),
    "flux3": TinyTransformer(_flux3, _flux3_inputs, {"image": "x_embedders.image", "text": "context_embedder",
                                                     "reference": "x_embedders.image_cond"}),
    "glm": TinyTransformer(_glm, _glm_inputs, {"image": "image_projector", "text": "glyph_projector"}),
    "nucleus": TinyTransformer(_nucleus, _nucleus_inputs, {"image": "img_in"}),
    "qwenimage21": TinyTransformer(_qwenimage21, _qwenimage21_inputs, {"image": "img_in", "text": "txt_in"}),
    "briafibo2": TinyTransformer(_briafibo2, _briafibo2_inputs, {"image": "x_embedder", "text": "perceiver.layers.0"}),
    "ideogram4": TinyTransformer(_ideogram4, _ideogram4_inputs, {"image": "input_proj", "text": "llm_cond_proj"}),
    "qwen_edit": TinyTransformer(_qwen_edit, _qwen_edit_inputs, {"image": "img_in", "text": "txt_in", "reference": "img_in"}),
}
