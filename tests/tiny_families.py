"""Tiny random-weight pipelines of the transformer families beyond tests/tiny_pipelines.py, built
fully offline with its tokenizer helpers and saved, so tests load them as a user loads a model.

Every family here is one `Family`: how to build it, the call that runs it with guidance active (2
steps, a small non-square image whose token count differs from the prompt's), and the modules that
embed its image and text tokens (a value planted there reaches every block through the residual
stream). Configs are the smallest the classes accept: width 32, two blocks per list.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import (
    AdaptiveProjectedMixGuidance,
    AuraFlowPipeline,
    AuraFlowTransformer2DModel,
    AutoencoderKL,
    AutoencoderKLFlux2,
    AutoencoderKLHunyuanImage,
    AutoencoderKLQwenImage,
    AutoencoderKLWan,
    BriaFiboPipeline,
    BriaFiboTransformer2DModel,
    BriaPipeline,
    BriaTransformer2DModel,
    ChromaPipeline,
    ChromaTransformer2DModel,
    CogVideoXDDIMScheduler,
    CogView3PlusPipeline,
    CogView3PlusTransformer2DModel,
    CogView4Pipeline,
    CogView4Transformer2DModel,
    DiffusionPipeline,
    DiTPipeline,
    DiTTransformer2DModel,
    DPMSolverMultistepScheduler,
    ErnieImagePipeline,
    ErnieImageTransformer2DModel,
    FlowMatchEulerDiscreteScheduler,
    HiDreamImagePipeline,
    HiDreamImageTransformer2DModel,
    HunyuanImagePipeline,
    HunyuanImageTransformer2DModel,
    Krea2Pipeline,
    Krea2Transformer2DModel,
    LongCatImagePipeline,
    LongCatImageTransformer2DModel,
    Lumina2Pipeline,
    Lumina2Transformer2DModel,
    OvisImagePipeline,
    OvisImageTransformer2DModel,
    PRXPipeline,
    PRXTransformer2DModel,
    ZImagePipeline,
    ZImageTransformer2DModel,
)
from transformers import (
    ByT5Tokenizer,
    CLIPTextModelWithProjection,
    Gemma2Config,
    Gemma2Model,
    GlmConfig,
    GlmModel,
    LlamaConfig,
    LlamaForCausalLM,
    Mistral3Config,
    Mistral3Model,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen3Config,
    Qwen3ForCausalLM,
    Qwen3Model,
    Qwen3VLConfig,
    Qwen3VLModel,
    SmolLM3Config,
    SmolLM3ForCausalLM,
    T5GemmaConfig,
    T5GemmaEncoderModel,
    UMT5EncoderModel,
)

from tests.tiny_pipelines import (
    _QWEN3_CHAT_TEMPLATE,
    _QWEN_CHAT_TOKENS,
    NEGATIVE_PROMPT,
    PROMPT,
    _clip_config,
    _clip_tokenizer,
    _gemma_tokenizer,
    _qwen_tokenizer,
    _t5_encoder,
    _t5_tokenizer,
    _vae_kl,
)


@dataclass(frozen=True)
class Family:
    """One tiny pipeline: its builder, a guided call, and where its image and text tokens are embedded."""

    build: Callable[[], DiffusionPipeline]
    call: dict
    image_embedder: str
    text_embedder: str | None = None
    load: dict = field(default_factory=dict)  # from_pretrained arguments: components left out (no processor offline)
    embed: Callable[[DiffusionPipeline], dict] | None = None  # prompt embeddings made with the pipeline's own encoder

    def kwargs(self, pipe: DiffusionPipeline) -> dict:
        """The call's arguments for a loaded pipeline (without a generator)."""
        return {**self.call, **(self.embed(pipe) if self.embed else {})}


def _qwen3(tokenizer, hidden: int = 16, layers: int = 2, causal_lm: bool = True):
    config = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=2, num_key_value_heads=1, head_dim=8, max_position_embeddings=1024,
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    return Qwen3ForCausalLM(config) if causal_lm else Qwen3Model(config)


def _flow(**kwargs) -> FlowMatchEulerDiscreteScheduler:
    return FlowMatchEulerDiscreteScheduler(shift=3.0, **kwargs)


def _chroma() -> ChromaPipeline:
    tokenizer = _t5_tokenizer()
    transformer = ChromaTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=2, num_single_layers=2, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, axes_dims_rope=(4, 6, 6), approximator_num_channels=16, approximator_hidden_dim=32,
        approximator_layers=1,
    )
    return ChromaPipeline(
        scheduler=_flow(), vae=_vae_kl(0.3611, 0.1159), text_encoder=_t5_encoder(tokenizer, 32), tokenizer=tokenizer,
        transformer=transformer, image_encoder=None, feature_extractor=None,
    )


def _bria() -> BriaPipeline:
    tokenizer = _t5_tokenizer()
    transformer = BriaTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=2, num_single_layers=2, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, axes_dims_rope=[4, 6, 6],
    )
    return BriaPipeline(
        transformer=transformer, scheduler=_flow(), vae=_vae_kl(0.3611, 0.1159),
        text_encoder=_t5_encoder(tokenizer, 32), tokenizer=tokenizer, image_encoder=None, feature_extractor=None,
    )


def _auraflow() -> AuraFlowPipeline:
    tokenizer = _t5_tokenizer()
    t5 = _t5_encoder(tokenizer, 32)
    text_encoder = UMT5EncoderModel(t5.config)
    transformer = AuraFlowTransformer2DModel(
        sample_size=16, patch_size=2, in_channels=4, num_mmdit_layers=2, num_single_dit_layers=2,
        attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32, caption_projection_dim=32,
        out_channels=4, pos_embed_max_size=64,
    )
    return AuraFlowPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=_vae_kl(0.13025, 0.0), transformer=transformer,
        scheduler=_flow(),
    )


def _cogview3plus() -> CogView3PlusPipeline:
    tokenizer = _t5_tokenizer()
    transformer = CogView3PlusTransformer2DModel(
        patch_size=2, in_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=2, out_channels=4,
        text_embed_dim=32, time_embed_dim=32, condition_dim=8, pos_embed_max_size=32, sample_size=16,
    )
    return CogView3PlusPipeline(
        tokenizer=tokenizer, text_encoder=_t5_encoder(tokenizer, 32), vae=_vae_kl(1.0, 0.0), transformer=transformer,
        scheduler=CogVideoXDDIMScheduler(prediction_type="v_prediction", timestep_spacing="trailing"),
    )


def _dit() -> DiTPipeline:
    transformer = DiTTransformer2DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=8, num_layers=2, norm_num_groups=4,
        sample_size=8, patch_size=2,
    )
    return DiTPipeline(
        transformer=transformer, vae=_vae_kl(0.18215, 0.0), scheduler=DPMSolverMultistepScheduler(),
        id2label={0: "tench", 1: "goldfish", 2: "great white shark"},
    )


def _lumina2() -> Lumina2Pipeline:
    tokenizer = _gemma_tokenizer()
    text_encoder = Gemma2Model(
        Gemma2Config(
            vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=1, head_dim=8, query_pre_attn_scalar=8, max_position_embeddings=1024,
            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        )
    )
    transformer = Lumina2Transformer2DModel(
        sample_size=16, patch_size=2, in_channels=4, hidden_size=32, num_layers=2, num_refiner_layers=2,
        num_attention_heads=2, num_kv_heads=1, multiple_of=16, axes_dim_rope=(4, 6, 6), axes_lens=(300, 64, 64),
        cap_feat_dim=16,
    )
    return Lumina2Pipeline(
        transformer=transformer, scheduler=_flow(), vae=_vae_kl(0.3611, 0.1159), text_encoder=text_encoder,
        tokenizer=tokenizer,
    )


def _ovis() -> OvisImagePipeline:
    tokenizer = _qwen_tokenizer([*_QWEN_CHAT_TOKENS, "<think>", "</think>"], _QWEN3_CHAT_TEMPLATE)
    transformer = OvisImageTransformer2DModel(
        patch_size=1, in_channels=16, out_channels=16, num_layers=2, num_single_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=16, axes_dims_rope=(4, 6, 6),
    )
    return OvisImagePipeline(
        scheduler=_flow(use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15), vae=_vae_kl(0.3611, 0.1159),
        text_encoder=_qwen3(tokenizer, causal_lm=False), tokenizer=tokenizer, transformer=transformer,
    )


def _zimage() -> ZImagePipeline:
    tokenizer = _qwen_tokenizer([*_QWEN_CHAT_TOKENS, "<think>", "</think>"], _QWEN3_CHAT_TEMPLATE)
    transformer = ZImageTransformer2DModel(
        all_patch_size=(2,), all_f_patch_size=(1,), in_channels=4, dim=32, n_layers=2, n_refiner_layers=2, n_heads=2,
        n_kv_heads=2, cap_feat_dim=16, axes_dims=[4, 6, 6], axes_lens=[256, 64, 64],
    )
    return ZImagePipeline(
        scheduler=_flow(), vae=_vae_kl(0.3611, 0.1159), text_encoder=_qwen3(tokenizer), tokenizer=tokenizer,
        transformer=transformer,
    )


def _llm_config(tokenizer, hidden: int = 16, layers: int = 2) -> dict:
    """The shared fields of a tiny decoder-only text encoder's config."""
    return dict(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=2, num_key_value_heads=1, head_dim=8, max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
    )


def _hidream() -> HiDreamImagePipeline:
    clip, t5_tokenizer = _clip_tokenizer(), _t5_tokenizer()
    llama_tokenizer = _qwen_tokenizer([])
    # The pipeline stacks every Llama layer's hidden state; blocks read those named by llama_layers, one per block.
    llama = LlamaForCausalLM(LlamaConfig(**_llm_config(llama_tokenizer)))
    transformer = HiDreamImageTransformer2DModel(
        # The pipeline asks for (128 / patch)^2 tokens whatever the size.
        patch_size=8, in_channels=4, out_channels=4, num_layers=2, num_single_layers=2, attention_head_dim=16,
        num_attention_heads=2, caption_channels=[32, 16], text_emb_dim=64, num_routed_experts=2,
        num_activated_experts=1, axes_dims_rope=(8, 4, 4), max_resolution=(128, 160), llama_layers=[0, 1, 1, 0],
    )
    # The pipeline scales every request to (128 x vae_scale_factor)^2 pixels: a two-level VAE keeps that at 256^2.
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 8),
        layers_per_block=1, latent_channels=4, norm_num_groups=4, sample_size=64, scaling_factor=0.3611, shift_factor=0.1159,
    )
    return HiDreamImagePipeline(
        scheduler=_flow(), vae=vae,
        text_encoder=CLIPTextModelWithProjection(_clip_config(clip, 32)), tokenizer=clip,
        text_encoder_2=CLIPTextModelWithProjection(_clip_config(clip, 32)), tokenizer_2=clip,
        text_encoder_3=_t5_encoder(t5_tokenizer, 32), tokenizer_3=t5_tokenizer,
        text_encoder_4=llama, tokenizer_4=llama_tokenizer, transformer=transformer,
    )


def _cogview4() -> CogView4Pipeline:
    tokenizer = _qwen_tokenizer([])
    transformer = CogView4Transformer2DModel(
        patch_size=2, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=2,
        text_embed_dim=16, time_embed_dim=32, condition_dim=8, pos_embed_max_size=32, sample_size=16, rope_axes_dim=(8, 8),
    )
    return CogView4Pipeline(
        tokenizer=tokenizer, text_encoder=GlmModel(GlmConfig(**_llm_config(tokenizer))), vae=_vae_kl(1.0, 0.0),
        transformer=transformer, scheduler=_flow(use_dynamic_shifting=True, base_shift=0.25, max_shift=0.75),
    )


def _krea2() -> Krea2Pipeline:
    tokenizer = _qwen_tokenizer([*_QWEN_CHAT_TOKENS])
    text = {**_llm_config(tokenizer), "rope_parameters": {"rope_type": "default", "mrope_section": [1, 1, 2]}}
    vision = {"depth": 1, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16,
              "deepstack_visual_indexes": []}
    text_encoder = Qwen3VLModel(Qwen3VLConfig(text_config=text, vision_config=vision))
    transformer = Krea2Transformer2DModel(
        in_channels=16, num_layers=2, attention_head_dim=16, num_attention_heads=2, num_key_value_heads=1,
        intermediate_size=64, timestep_embed_dim=32, text_hidden_dim=16, num_text_layers=2, text_num_attention_heads=2,
        text_num_key_value_heads=1, text_intermediate_size=32, num_layerwise_text_blocks=1, num_refiner_text_blocks=1,
        axes_dims_rope=(4, 6, 6),
    )
    vae = AutoencoderKLQwenImage(
        base_dim=8, z_dim=4, dim_mult=[1, 2, 4, 4], num_res_blocks=1, temperal_downsample=[False, True, True],
        latents_mean=[0.0] * 4, latents_std=[1.0] * 4,
    )
    return Krea2Pipeline(
        scheduler=_flow(use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15), vae=vae, text_encoder=text_encoder,
        tokenizer=tokenizer, transformer=transformer, text_encoder_select_layers=(1, 2), patch_size=2,
    )


def _ernie() -> ErnieImagePipeline:
    tokenizer = _qwen_tokenizer([])
    text = {**_llm_config(tokenizer), "model_type": "mistral"}
    vision = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "head_dim": 8,
              "image_size": 32, "patch_size": 8}
    text_encoder = Mistral3Model(Mistral3Config(text_config=text, vision_config=vision, spatial_merge_size=1))
    transformer = ErnieImageTransformer2DModel(
        hidden_size=32, num_attention_heads=2, num_layers=2, ffn_hidden_size=64, in_channels=16, out_channels=16,
        patch_size=1, text_in_dim=16, rope_axes_dim=(4, 6, 6),
    )
    vae = AutoencoderKLFlux2(
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 8, 8), layers_per_block=1, latent_channels=4, norm_num_groups=4, sample_size=64,
    )
    return ErnieImagePipeline(
        transformer=transformer, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=_flow(),
        pe=None, pe_tokenizer=None,
    )


_VISION_TOKENS = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]


def _qwen25_vl(tokenizer) -> Qwen2_5_VLForConditionalGeneration:
    """A Qwen2.5-VL of width 16 (its vision tower included, as the pipelines load it)."""
    start, end, image, video = tokenizer.convert_tokens_to_ids(_VISION_TOKENS)
    text = {**_llm_config(tokenizer), "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [1, 1, 2]},
            "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>")}
    text.pop("head_dim")
    vision = {"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16,
              "fullatt_block_indexes": [1]}
    config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, vision_start_token_id=start,
                              vision_end_token_id=end, image_token_id=image, video_token_id=video)
    return Qwen2_5_VLForConditionalGeneration(config).eval()


def _prx() -> PRXPipeline:
    tokenizer = _gemma_tokenizer()
    module = {**_llm_config(tokenizer), "query_pre_attn_scalar": 8}
    text_encoder = T5GemmaEncoderModel(T5GemmaConfig(encoder=module, decoder=module, is_encoder_decoder=False))
    transformer = PRXTransformer2DModel(
        in_channels=4, patch_size=2, context_in_dim=16, hidden_size=32, mlp_ratio=2.0, num_heads=2, depth=2,
        axes_dim=[8, 8],
    )
    return PRXPipeline(
        transformer=transformer, scheduler=_flow(), text_encoder=text_encoder, tokenizer=tokenizer,
        vae=_vae_kl(0.3611, 0.1159), default_sample_size=64,
    )


def _prx_embeddings(pipe: PRXPipeline) -> dict:
    """What PRXPipeline's own encoding makes, minus its text cleaning (which needs ftfy, not installed here)."""
    tokens = pipe.tokenizer([NEGATIVE_PROMPT, PROMPT], padding="max_length", max_length=16, truncation=True,
                            return_tensors="pt")
    mask = tokens.attention_mask.bool()
    with torch.no_grad():
        embeds = pipe.text_encoder(input_ids=tokens.input_ids, attention_mask=mask)["last_hidden_state"]
    return {"prompt_embeds": embeds[1:], "negative_prompt_embeds": embeds[:1], "prompt_attention_mask": mask[1:],
            "negative_prompt_attention_mask": mask[:1]}


def _longcat() -> LongCatImagePipeline:
    tokenizer = _qwen_tokenizer([*_QWEN_CHAT_TOKENS, *_VISION_TOKENS])
    transformer = LongCatImageTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=2, num_single_layers=2, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=16, pooled_projection_dim=16, axes_dims_rope=[4, 6, 6],
    )
    vae = AutoencoderKL(  # the pipeline takes 16 latent channels for granted
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(16,) * 4,
        layers_per_block=1, latent_channels=16, norm_num_groups=4, sample_size=64, scaling_factor=0.3611, shift_factor=0.1159,
    )
    return LongCatImagePipeline(
        scheduler=_flow(use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15), vae=vae,
        text_encoder=_qwen25_vl(tokenizer), tokenizer=tokenizer, text_processor=None, transformer=transformer,
    )


def _briafibo() -> BriaFiboPipeline:
    tokenizer = _qwen_tokenizer([])
    text_encoder = SmolLM3ForCausalLM(SmolLM3Config(**{**_llm_config(tokenizer), "head_dim": 8}))
    transformer = BriaFiboTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=2, num_single_layers=2, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, axes_dims_rope=[4, 6, 6], text_encoder_dim=16,
    )
    vae = AutoencoderKLWan(base_dim=8, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=1, latents_mean=[0.0] * 16,
                           latents_std=[1.0] * 16)
    return BriaFiboPipeline(transformer=transformer, scheduler=_flow(), vae=vae, text_encoder=text_encoder,
                            tokenizer=tokenizer)


def _hunyuanimage() -> HunyuanImagePipeline:
    tokenizer = _qwen_tokenizer([*_QWEN_CHAT_TOKENS, *_VISION_TOKENS])
    byt5 = ByT5Tokenizer()
    transformer = HunyuanImageTransformer2DModel(
        in_channels=16, out_channels=16, num_attention_heads=2, attention_head_dim=16, num_layers=2, num_single_layers=2,
        num_refiner_layers=1, patch_size=(1, 1), text_embed_dim=16, text_embed_2_dim=32, rope_axes_dim=(8, 8),
    )
    vae = AutoencoderKLHunyuanImage(
        in_channels=3, out_channels=3, latent_channels=16, block_out_channels=(32,) * 5, layers_per_block=1,
        spatial_compression_ratio=16, sample_size=64, scaling_factor=1.0,
    )
    return HunyuanImagePipeline(
        scheduler=_flow(), vae=vae, text_encoder=_qwen25_vl(tokenizer), tokenizer=tokenizer,
        text_encoder_2=_t5_encoder(byt5, 32), tokenizer_2=byt5, transformer=transformer,
        guider=AdaptiveProjectedMixGuidance(guidance_scale=3.5), ocr_guider=None,
    )


_SIZE = {"height": 64, "width": 96, "num_inference_steps": 2}
_GUIDED = {"prompt": PROMPT, "negative_prompt": NEGATIVE_PROMPT, **_SIZE}

FAMILIES: dict[str, Family] = {
    "chroma": Family(_chroma, {**_GUIDED, "guidance_scale": 4.0, "max_sequence_length": 16}, "x_embedder", "context_embedder"),
    "bria": Family(_bria, {**_GUIDED, "guidance_scale": 5.0, "max_sequence_length": 16}, "x_embedder", "context_embedder"),
    "auraflow": Family(_auraflow, {**_GUIDED, "guidance_scale": 3.5, "max_sequence_length": 16}, "pos_embed", "context_embedder"),
    "cogview3plus": Family(_cogview3plus, {**_GUIDED, "guidance_scale": 5.0}, "patch_embed.proj", "patch_embed.text_proj"),
    "dit": Family(_dit, {"class_labels": [1], "guidance_scale": 4.0, "num_inference_steps": 2}, "pos_embed"),
    "lumina2": Family(_lumina2, {**_GUIDED, "guidance_scale": 4.0, "max_sequence_length": 16}, "x_embedder", "time_caption_embed.caption_embedder"),
    "ovis": Family(_ovis, {**_GUIDED, "guidance_scale": 5.0, "max_sequence_length": 16}, "x_embedder", "context_embedder"),
    "zimage": Family(_zimage, {**_GUIDED, "height": 128, "width": 96, "guidance_scale": 5.0, "max_sequence_length": 32},
                     "all_x_embedder.2-1", "cap_embedder"),
    # HiDream scales a request to 256^2 pixels here: 64 x 256 becomes 128 x 512 exactly, 8 x 32 tokens padded to 320.
    "hidream": Family(_hidream, {**_GUIDED, "height": 64, "width": 256, "guidance_scale": 5.0, "max_sequence_length": 16}, "x_embedder", "caption_projection.4"),
    "cogview4": Family(_cogview4, {**_GUIDED, "guidance_scale": 5.0, "max_sequence_length": 16}, "patch_embed.proj", "patch_embed.text_proj"),
    "krea2": Family(_krea2, {**_GUIDED, "guidance_scale": 4.5, "max_sequence_length": 16}, "img_in", "txt_in"),
    "ernie": Family(_ernie, {**_GUIDED, "guidance_scale": 4.0, "use_pe": False}, "x_embedder", "text_proj"),
    "prx": Family(_prx, {**_SIZE, "guidance_scale": 4.0, "use_resolution_binning": False}, "img_in",
                  embed=_prx_embeddings),
    "longcat": Family(_longcat, {**_GUIDED, "guidance_scale": 4.5, "enable_prompt_rewrite": False}, "x_embedder", "context_embedder",
                      load={"text_processor": None}),
    "briafibo": Family(_briafibo, {**_GUIDED, "guidance_scale": 5.0, "max_sequence_length": 16}, "x_embedder", "context_embedder"),
    "hunyuanimage": Family(_hunyuanimage, {**_GUIDED, "distilled_guidance_scale": None}, "x_embedder",
                           "context_embedder.proj_in"),
}


def build_family(name: str, folder: Path, seed: int = 0) -> Path:
    """Builds family `name` with random weights drawn after torch.manual_seed(seed) and saves it to `folder`."""
    torch.manual_seed(seed)
    FAMILIES[name].build().save_pretrained(folder)
    return Path(folder)
