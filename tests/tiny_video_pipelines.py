"""Tiny random-weight diffusers text-to-video pipelines, built fully offline.

As in `tests/tiny_pipelines.py`: the real pipeline classes (Wan 2.1, LTX-Video, HunyuanVideo,
CogVideoX) with width-32 transformers of two blocks per block list, VAEs with the real spatial and
temporal compression factors (so `num_frames` maps to latent frames as in the real models) and
tokenizers trained on a short corpus, `save_pretrained`ed and loaded back by callers with
`DiffusionPipeline.from_pretrained(folder)`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKLCogVideoX,
    AutoencoderKLHunyuanVideo,
    AutoencoderKLLTXVideo,
    AutoencoderKLWan,
    CogVideoXDDIMScheduler,
    CogVideoXPipeline,
    CogVideoXTransformer3DModel,
    DiffusionPipeline,
    FlowMatchEulerDiscreteScheduler,
    HunyuanVideoPipeline,
    HunyuanVideoTransformer3DModel,
    LTXPipeline,
    LTXVideoTransformer3DModel,
    WanPipeline,
    WanTransformer3DModel,
)
from tokenizers import Tokenizer, normalizers, pre_tokenizers, trainers
from tokenizers.models import BPE
from transformers import CLIPTextModel, LlamaConfig, LlamaModel, LlamaTokenizer, UMT5Config, UMT5EncoderModel

from tests.tiny_pipelines import NEGATIVE_PROMPT, PROMPT, _clip_config, _clip_tokenizer, _t5_encoder, _t5_tokenizer

VIDEO_ARCHITECTURES: tuple[str, ...] = ("wan", "ltx", "hunyuanvideo", "cogvideox")  # also built: "wan2.2" (two experts)
# Pixels per latent token: spatial VAE factor x transformer patch, and frames per latent frame.
SPATIAL = {"wan": 16, "wan2.2": 16, "ltx": 32, "hunyuanvideo": 16, "cogvideox": 16}
TEMPORAL = {"wan": 4, "wan2.2": 4, "ltx": 8, "hunyuanvideo": 4, "cogvideox": 4}

# Words of HunyuanVideo's prompt template and the tiny prompts, so the Llama tokenizer splits them into words.
_LLAMA_CORPUS = [
    "Describe the video by detailing the following aspects: 1. The main content and theme of the video.",
    "2. The color, shape, size, texture, quantity, text, and spatial relationships of the objects.",
    "3. Actions, events, behaviors temporal relationships, physical movement changes of the objects.",
    "4. background environment, light, style and atmosphere.",
    "5. camera angles, movements, and transitions used in the video:",
    "system",
    "user",
    PROMPT,
    NEGATIVE_PROMPT,
]
_LLAMA_SPECIAL = ["<unk>", "<s>", "</s>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]


def _llama_tokenizer() -> LlamaTokenizer:
    """A byte-fallback BPE like Llama's, with the chat-header tokens of HunyuanVideo's template.

    Words, punctuation and digits are separate tokens and "\\n\\n" is one, as in Llama 3's vocabulary, so the
    template's prefix is the 95 tokens (with the BOS token) that HunyuanVideoPipeline crops: the prompt,
    not the template, reaches the transformer."""
    backend = Tokenizer(BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    backend.normalizer = normalizers.Replace(" ", "▁")
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split("▁", behavior="merged_with_next"), pre_tokenizers.Punctuation("isolated"),
         pre_tokenizers.Digits(individual_digits=True)]
    )
    byte_tokens = [f"<0x{code:02X}>" for code in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=[*_LLAMA_SPECIAL, *byte_tokens], show_progress=False)
    backend.train_from_iterator(_LLAMA_CORPUS, trainer)
    state = json.loads(backend.to_str())["model"]
    tokenizer = LlamaTokenizer(vocab=state["vocab"], merges=[tuple(m) for m in state["merges"]], pad_token="<unk>",
                               add_bos_token=True)
    tokenizer.add_special_tokens({"additional_special_tokens": _LLAMA_SPECIAL[3:]})
    tokenizer.add_tokens(["\n\n"])
    return tokenizer


def _wan(two_experts: bool = False) -> WanPipeline:
    """Wan 2.1; with `two_experts`, Wan 2.2 A14B's layout: a second transformer for the low-noise steps
    (timesteps below 0.875 x 1000, Wan 2.2 T2V's boundary)."""
    tokenizer = _t5_tokenizer()
    text_encoder = UMT5EncoderModel(
        UMT5Config(vocab_size=len(tokenizer), d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2,
                   relative_attention_num_buckets=8, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    )
    config = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4,
                  text_dim=32, freq_dim=32, ffn_dim=64, num_layers=2, rope_max_seq_len=32)
    transformer = WanTransformer3DModel(**config)
    experts = {"transformer_2": WanTransformer3DModel(**config), "boundary_ratio": 0.875} if two_experts else {}
    # Three levels with two temporal downsamples, as in Wan 2.1's VAE: 8x spatial, 4x temporal.
    vae = AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True],
                           latents_mean=[0.0] * 4, latents_std=[1.0] * 4)
    return WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
                       scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), **experts)


def _ltx() -> LTXPipeline:
    tokenizer = _t5_tokenizer()
    transformer = LTXVideoTransformer3DModel(
        in_channels=4, out_channels=4, patch_size=1, patch_size_t=1, num_attention_heads=2, attention_head_dim=16,
        cross_attention_dim=32, num_layers=2, caption_channels=32,
    )
    # Patch size 4 and three spatio-temporal downsamples, as in LTX-Video's VAE: 32x spatial, 8x temporal.
    vae = AutoencoderKLLTXVideo(
        latent_channels=4, block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, False), decoder_spatio_temporal_scaling=(True, True, True, False),
        decoder_inject_noise=(False,) * 5, upsample_residual=(False,) * 4, upsample_factor=(1,) * 4,
        patch_size=4, patch_size_t=1,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05,
                                                base_image_seq_len=1024, max_image_seq_len=4096, shift_terminal=0.1)
    return LTXPipeline(scheduler=scheduler, vae=vae, text_encoder=_t5_encoder(tokenizer, 32), tokenizer=tokenizer,
                       transformer=transformer)


def _hunyuanvideo() -> HunyuanVideoPipeline:
    tokenizer, clip_tokenizer = _llama_tokenizer(), _clip_tokenizer()
    text_encoder = LlamaModel(
        LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=3,
                    num_attention_heads=2, num_key_value_heads=1, head_dim=8, max_position_embeddings=256,
                    pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    )
    transformer = HunyuanVideoTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=16, num_layers=2, num_single_layers=2,
        num_refiner_layers=1, patch_size=2, patch_size_t=1, guidance_embeds=True, text_embed_dim=16,
        pooled_projection_dim=32, rope_axes_dim=(4, 6, 6),
    )
    vae = AutoencoderKLHunyuanVideo(latent_channels=4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
                                    norm_num_groups=4, spatial_compression_ratio=8, temporal_compression_ratio=4)
    return HunyuanVideoPipeline(
        text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer, vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        text_encoder_2=CLIPTextModel(_clip_config(clip_tokenizer, 32)), tokenizer_2=clip_tokenizer,
    )


def _cogvideox() -> CogVideoXPipeline:
    tokenizer = _t5_tokenizer()
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4, time_embed_dim=32,
        text_embed_dim=32, num_layers=2, sample_width=8, sample_height=4, sample_frames=9, patch_size=2,
        temporal_compression_ratio=4, max_text_seq_length=16, use_rotary_positional_embeddings=True,
    )
    vae = AutoencoderKLCogVideoX(block_out_channels=(8, 8, 8, 8), latent_channels=4, layers_per_block=1,
                                 norm_num_groups=2, temporal_compression_ratio=4)
    return CogVideoXPipeline(tokenizer=tokenizer, text_encoder=_t5_encoder(tokenizer, 32), vae=vae,
                             transformer=transformer, scheduler=CogVideoXDDIMScheduler(timestep_spacing="trailing"))


_BUILDERS: dict[str, Callable[[], DiffusionPipeline]] = {
    "wan": _wan,
    "wan2.2": lambda: _wan(two_experts=True),
    "ltx": _ltx,
    "hunyuanvideo": _hunyuanvideo,
    "cogvideox": _cogvideox,
}


def build_tiny_video_pipeline(arch: str, folder: Path, seed: int = 0) -> Path:
    """Builds `arch` with random weights drawn after torch.manual_seed(seed) and saves it to `folder`."""
    torch.manual_seed(seed)
    pipeline = _BUILDERS[arch]()
    pipeline.save_pretrained(folder)
    return Path(folder)


def token_grid(arch: str, num_frames: int, height: int, width: int) -> tuple[int, int, int]:
    """The (frames, h, w) latent-token grid the real model family makes of a request."""
    return (num_frames - 1) // TEMPORAL[arch] + 1, height // SPATIAL[arch], width // SPATIAL[arch]


def tiny_video_call_kwargs(arch: str) -> dict:
    """Pipeline __call__ kwargs for a fast run with classifier-free guidance active (add `generator`).

    9 frames make 3 latent frames at 4x temporal compression (2 for LTX's 8x); frames are not square."""
    common = {"prompt": PROMPT, "negative_prompt": NEGATIVE_PROMPT, "height": 32, "width": 64, "num_frames": 9,
              "num_inference_steps": 2, "max_sequence_length": 16}
    per_arch: dict[str, dict] = {
        "wan": {"guidance_scale": 5.0},
        "wan2.2": {"guidance_scale": 5.0},
        "ltx": {"height": 64, "width": 96, "guidance_scale": 3.0},
        "hunyuanvideo": {"true_cfg_scale": 2.0, "guidance_scale": 6.0},
        "cogvideox": {"guidance_scale": 6.0},
    }
    return {**common, **per_arch[arch]}
