"""Tiny random-weight diffusers text-to-image pipelines, built fully offline.

The machine has no model-hub access, so tests and benchmarks cannot download even
the hub's "tiny-random" checkpoints.  Each builder here assembles the real pipeline
class from small configs (hidden size 32, two blocks per block list, real VAE
downsampling factors) and tokenizers trained locally on a short corpus, then
`save_pretrained`s it, so callers load it exactly as a user loads FLUX:
`DiffusionPipeline.from_pretrained(folder, dtype=torch.float32)`.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable
from pathlib import Path

import torch
from diffusers import (
    AutoencoderDC,
    AutoencoderKL,
    AutoencoderKLFlux2,
    AutoencoderKLQwenImage,
    DiffusionPipeline,
    DPMSolverMultistepScheduler,
    FlowMatchEulerDiscreteScheduler,
    Flux2KleinPipeline,
    Flux2Transformer2DModel,
    FluxPipeline,
    FluxTransformer2DModel,
    PixArtSigmaPipeline,
    PixArtTransformer2DModel,
    QwenImagePipeline,
    QwenImageTransformer2DModel,
    SanaPipeline,
    SanaTransformer2DModel,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
)
from tokenizers import Tokenizer, normalizers, pre_tokenizers, trainers
from tokenizers.models import BPE
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    Gemma2Config,
    Gemma2Model,
    GemmaTokenizer,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2Tokenizer,
    Qwen3Config,
    Qwen3ForCausalLM,
    T5Config,
    T5EncoderModel,
    T5Tokenizer,
)

ARCHITECTURES: tuple[str, ...] = ("flux", "flux2", "sd3", "pixart", "sana", "qwenimage")

PROMPT = "a red circle"
NEGATIVE_PROMPT = "blurry, low quality"

# Every word the pipelines' own prompt templates use, plus typical prompt words, so
# that templates tokenize word by word as with the real vocabularies (QwenImage
# drops exactly 34 template tokens, the count its real tokenizer gives).
_CORPUS: list[str] = [
    "a red circle on a white background",
    "a blue square and a green triangle in the middle of a black room",
    "a photo of a cat sitting next to a small dog, digital art, high quality",
    "a painting of a squirrel eating a burger at sunset",
    "blurry, low quality, bad anatomy, worst quality, ugly, text, watermark",
    # Chat roles follow "<|im_start|>" directly, without a leading space.
    "system",
    "user",
    "assistant",
    "Describe the image by detailing the color, shape, size, texture, quantity, text, "
    "spatial relationships of the objects and background:",
    *inspect.signature(SanaPipeline.__call__).parameters["complex_human_instruction"].default,
]

_QWEN_CHAT_TOKENS = ["<|im_start|>", "<|im_end|>"]

# Qwen3's chat template reduced to what Flux2KleinPipeline renders: user turns plus
# the empty think block that enable_thinking=False appends after the generation prompt.
_QWEN3_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% if enable_thinking is defined and enable_thinking is false %}"
    "{{ '<think>\n\n</think>\n\n' }}{% endif %}{% endif %}"
)


def _bpe_vocab_and_merges(
    backend: Tokenizer, special_tokens: list[str], **trainer_kwargs: object
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Trains `backend` (normalizer and pre-tokenizer already set) on the corpus.

    Returning plain vocab/merges lets the transformers class rebuild its own pipeline
    from them, which is also what it does when reloading the saved tokenizer.json.
    """
    trainer = trainers.BpeTrainer(
        vocab_size=4000, special_tokens=special_tokens, show_progress=False, **trainer_kwargs
    )
    backend.train_from_iterator(_CORPUS, trainer)
    model = json.loads(backend.to_str())["model"]
    return model["vocab"], [tuple(merge) for merge in model["merges"]]


def _clip_tokenizer() -> CLIPTokenizer:
    backend = CLIPTokenizer().backend_tokenizer
    # Like the real CLIP vocab, hold every byte both inside and at the end of a word, so
    # unseen words split into characters instead of collapsing to <|endoftext|>.  Listing
    # them up front also fixes their ids: the trainer would otherwise number the
    # end-of-word symbols in hash order, changing token ids from build to build.
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab, merges = _bpe_vocab_and_merges(
        backend,
        ["<|startoftext|>", "<|endoftext|>", *alphabet, *(symbol + "</w>" for symbol in alphabet)],
        end_of_word_suffix="</w>",
    )
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def _t5_tokenizer() -> T5Tokenizer:
    """Unigram vocab built by hand: whole corpus words score above single characters.

    The unigram trainer keeps only characters on a corpus this small; a WordLevel
    T5 tokenizer saves but does not reload (T5 always reloads as Unigram).
    """
    words = sorted({word for line in _CORPUS for word in line.split()})
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -8.0)]
    pieces += [("▁" + word, -5.0) for word in words]
    pieces += [(chr(code), -10.0) for code in range(33, 127)]
    return T5Tokenizer(vocab=pieces, extra_ids=0)


def _qwen_tokenizer(extra_special_tokens: list[str], chat_template: str | None = None) -> Qwen2Tokenizer:
    backend = Qwen2Tokenizer().backend_tokenizer
    vocab, merges = _bpe_vocab_and_merges(
        backend,
        ["<|endoftext|>", *extra_special_tokens],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    return Qwen2Tokenizer(
        vocab=vocab, merges=merges, extra_special_tokens=extra_special_tokens, chat_template=chat_template
    )


def _gemma_tokenizer() -> GemmaTokenizer:
    backend = Tokenizer(BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    backend.normalizer = normalizers.Replace(" ", "▁")
    backend.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    byte_tokens = [f"<0x{code:02X}>" for code in range(256)]
    vocab, merges = _bpe_vocab_and_merges(
        backend, ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", *byte_tokens]
    )
    return GemmaTokenizer(vocab=vocab, merges=merges, add_bos_token=True)


def _clip_config(tokenizer: CLIPTokenizer, hidden: int) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        projection_dim=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def _t5_encoder(tokenizer: T5Tokenizer, d_model: int) -> T5EncoderModel:
    return T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer),
            d_model=d_model,
            d_kv=16,
            d_ff=2 * d_model,
            num_layers=2,
            num_heads=d_model // 16,
            relative_attention_num_buckets=8,
            feed_forward_proj="gated-gelu",
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.pad_token_id,
        )
    )


def _vae_kl(scaling_factor: float, shift_factor: float) -> AutoencoderKL:
    """Four levels like the real SD/Flux VAEs, so vae_scale_factor is 8."""
    return AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=64,
        scaling_factor=scaling_factor,
        shift_factor=shift_factor,
    )


def _flux() -> FluxPipeline:
    clip_tokenizer, t5_tokenizer = _clip_tokenizer(), _t5_tokenizer()
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,  # 4 latent channels packed 2x2
        num_layers=2,
        num_single_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        guidance_embeds=True,  # as in FLUX.1-dev
        axes_dims_rope=(4, 6, 6),
    )
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15
    )
    return FluxPipeline(
        scheduler=scheduler,
        vae=_vae_kl(scaling_factor=0.3611, shift_factor=0.1159),
        text_encoder=CLIPTextModel(_clip_config(clip_tokenizer, 32)),
        tokenizer=clip_tokenizer,
        text_encoder_2=_t5_encoder(t5_tokenizer, 32),
        tokenizer_2=t5_tokenizer,
        transformer=transformer,
    )


def _flux2() -> Flux2KleinPipeline:
    tokenizer = _qwen_tokenizer([*_QWEN_CHAT_TOKENS, "<think>", "</think>"], _QWEN3_CHAT_TEMPLATE)
    # 28 layers because the pipeline stacks hidden states 9, 18 and 27 by default.
    text_encoder = Qwen3ForCausalLM(
        Qwen3Config(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=28,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=8,
            max_position_embeddings=1024,
            tie_word_embeddings=True,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    )
    transformer = Flux2Transformer2DModel(
        patch_size=1,
        in_channels=16,  # 4 latent channels patchified 2x2
        num_layers=2,
        num_single_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=3 * 16,  # three stacked Qwen3 hidden states
        timestep_guidance_channels=32,
        axes_dims_rope=(4, 4, 4, 4),
        guidance_embeds=False,
    )
    vae = AutoencoderKLFlux2(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=64,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15, time_shift_type="exponential"
    )
    # is_distilled=False: the "base" Klein variant, which runs classifier-free guidance.
    return Flux2KleinPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
        is_distilled=False,
    )


def _sd3() -> StableDiffusion3Pipeline:
    clip_tokenizer, t5_tokenizer = _clip_tokenizer(), _t5_tokenizer()
    transformer = SD3Transformer2DModel(
        sample_size=8,
        patch_size=2,
        in_channels=4,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=64,
        caption_projection_dim=32,
        pooled_projection_dim=64,  # two CLIP projections of 32
        out_channels=4,
        pos_embed_max_size=16,
    )
    # The two CLIP hidden states (32 + 32) are zero-padded to the T5 width, so T5 is 64 wide.
    return StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=_vae_kl(scaling_factor=1.5305, shift_factor=0.0609),
        text_encoder=CLIPTextModelWithProjection(_clip_config(clip_tokenizer, 32)),
        tokenizer=clip_tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(_clip_config(clip_tokenizer, 32)),
        tokenizer_2=clip_tokenizer,
        text_encoder_3=_t5_encoder(t5_tokenizer, 64),
        tokenizer_3=t5_tokenizer,
    )


def _pixart() -> PixArtSigmaPipeline:
    tokenizer = _t5_tokenizer()
    transformer = PixArtTransformer2DModel(
        num_attention_heads=2,
        attention_head_dim=16,
        in_channels=4,
        out_channels=8,  # learned sigma, as in PixArt-Sigma
        num_layers=2,
        cross_attention_dim=32,
        caption_channels=32,
        sample_size=32,  # the smallest size with resolution bins (256 px), so the pipeline's default binning runs
        patch_size=2,
        use_additional_conditions=False,
    )
    return PixArtSigmaPipeline(
        tokenizer=tokenizer,
        text_encoder=_t5_encoder(tokenizer, 32),
        vae=_vae_kl(scaling_factor=0.13025, shift_factor=0.0),
        transformer=transformer,
        scheduler=DPMSolverMultistepScheduler(),
    )


def _sana() -> SanaPipeline:
    tokenizer = _gemma_tokenizer()
    text_encoder = Gemma2Model(
        Gemma2Config(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=8,
            query_pre_attn_scalar=8,
            max_position_embeddings=1024,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    )
    transformer = SanaTransformer2DModel(
        in_channels=4,
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=16,
        num_layers=2,
        num_cross_attention_heads=2,
        cross_attention_head_dim=16,
        cross_attention_dim=32,
        caption_channels=16,
        sample_size=16,  # the smallest size with resolution bins (512 px), so the pipeline's default binning runs
        patch_size=1,
    )
    # Six levels like DC-AE f32c32, so vae_scale_factor is 32.
    vae = AutoencoderDC(
        latent_channels=4,
        attention_head_dim=4,
        encoder_block_types=("ResBlock",) * 3 + ("EfficientViTBlock",) * 3,
        decoder_block_types=("ResBlock",) * 3 + ("EfficientViTBlock",) * 3,
        encoder_block_out_channels=(8,) * 6,
        decoder_block_out_channels=(8,) * 6,
        encoder_layers_per_block=(1,) * 6,
        decoder_layers_per_block=(1,) * 6,
        encoder_qkv_multiscales=((), (), (), (5,), (5,), (5,)),
        decoder_qkv_multiscales=((), (), (), (5,), (5,), (5,)),
        scaling_factor=0.41407,
    )
    scheduler = DPMSolverMultistepScheduler(
        flow_shift=3.0, use_flow_sigmas=True, prediction_type="flow_prediction"
    )
    return SanaPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler
    )


def _qwenimage() -> QwenImagePipeline:
    vision_tokens = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
    tokenizer = _qwen_tokenizer([*_QWEN_CHAT_TOKENS, *vision_tokens])
    vision_start, vision_end, image_pad, video_pad = tokenizer.convert_tokens_to_ids(vision_tokens)
    text_encoder = Qwen2_5_VLForConditionalGeneration(
        Qwen2_5_VLConfig(
            text_config={
                "vocab_size": len(tokenizer),
                "hidden_size": 16,
                "intermediate_size": 32,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "num_key_value_heads": 1,
                "max_position_embeddings": 2048,
                "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [1, 1, 2]},
                "bos_token_id": tokenizer.pad_token_id,
                "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
                "pad_token_id": tokenizer.pad_token_id,
            },
            vision_config={
                "depth": 2,
                "hidden_size": 16,
                "intermediate_size": 16,
                "num_heads": 2,
                "out_hidden_size": 16,
                "fullatt_block_indexes": [1],
            },
            vision_start_token_id=vision_start,
            vision_end_token_id=vision_end,
            image_token_id=image_pad,
            video_token_id=video_pad,
        )
    ).eval()
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=16,  # 4 latent channels packed 2x2
        out_channels=4,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=16,
        guidance_embeds=False,
        axes_dims_rope=(4, 6, 6),
    )
    # Three temporal-downsample flags like the real VAE, so vae_scale_factor is 8.
    vae = AutoencoderKLQwenImage(
        base_dim=8,
        z_dim=4,
        dim_mult=[1, 2, 4, 4],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
        latents_mean=[0.0] * 4,
        latents_std=[1.0] * 4,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=1.0,
        use_dynamic_shifting=True,
        base_shift=math.log(3),
        max_shift=math.log(3),
        max_image_seq_len=8192,
        shift_terminal=0.02,
        time_shift_type="exponential",
    )
    return QwenImagePipeline(
        scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer
    )


_BUILDERS: dict[str, Callable[[], DiffusionPipeline]] = {
    "flux": _flux,
    "flux2": _flux2,
    "sd3": _sd3,
    "pixart": _pixart,
    "sana": _sana,
    "qwenimage": _qwenimage,
}


def build_tiny_pipeline(arch: str, folder: Path, seed: int = 0) -> Path:
    """Builds `arch` with random weights drawn after torch.manual_seed(seed) and saves it to `folder`."""
    torch.manual_seed(seed)
    pipeline = _BUILDERS[arch]()
    pipeline.save_pretrained(folder)
    return Path(folder)


def tiny_call_kwargs(arch: str) -> dict:
    """Pipeline __call__ kwargs for a fast run with classifier-free guidance active.

    Add `generator` and `output_type` per call.  The image is not square (and its
    token count differs from the text length) so that height/width or text/image
    mix-ups show up in shapes.  Resolution binning is off for PixArt and Sana
    because it would resize the request to the nearest ~1024 px bucket.
    """
    common = {"prompt": PROMPT, "height": 64, "width": 96, "num_inference_steps": 2}
    negative = {"negative_prompt": NEGATIVE_PROMPT}
    per_arch: dict[str, dict] = {
        "flux": {"guidance_scale": 3.5, "true_cfg_scale": 2.0, **negative, "max_sequence_length": 16},
        "flux2": {"guidance_scale": 4.0, "max_sequence_length": 32},
        "sd3": {"guidance_scale": 5.0, **negative, "max_sequence_length": 16},
        "pixart": {
            "guidance_scale": 4.5,
            **negative,
            "max_sequence_length": 16,
            "use_resolution_binning": False,
            "clean_caption": False,  # True needs bs4 and ftfy, and only warns without them
        },
        "sana": {
            "height": 128,  # vae_scale_factor is 32
            "width": 192,
            "guidance_scale": 4.5,
            **negative,
            "max_sequence_length": 16,
            "use_resolution_binning": False,
        },
        "qwenimage": {"true_cfg_scale": 4.0, **negative, "max_sequence_length": 32},
    }
    return {**common, **per_arch[arch]}


def build_tiny_clip(folder: Path) -> Path:
    """A random-weight CLIP (model and processor) saved locally, loaded like any CLIP folder or hub id."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tokenizer = _clip_tokenizer()
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8),
        projection_dim=8,
    )
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return Path(folder)
