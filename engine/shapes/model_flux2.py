"""The second embedded model: a tiny but genuine diffusers Flux2KleinPipeline for the shapes world.

FLUX.2-klein's architecture: a Flux2Transformer2DModel (double- and single-stream blocks, no pooled-text
modulation: the image tokens learn every attribute from the text tokens), a Qwen3 causal LM whose hidden
states 9, 18 and 27 are stacked into the text embedding (the pipeline's default `text_encoder_out_layers`,
hence 27 layers), an AutoencoderKLFlux2 whose latents are patchified 2x2 and normalised by its batch-norm
running statistics. Every component is a stock diffusers/transformers class, so the folder loads with
``DiffusionPipeline.from_pretrained`` and runs through the unmodified ``Flux2KleinPipeline.__call__``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import torch
from diffusers import (
    AutoencoderKLFlux2,
    FlowMatchEulerDiscreteScheduler,
    Flux2KleinPipeline,
    Flux2Transformer2DModel,
)
from tokenizers import pre_tokenizers, trainers
from transformers import Qwen2TokenizerFast, Qwen3Config, Qwen3ForCausalLM

from .model import CFG, STEPS
from .world import SIZE, all_attributes

NEGATIVE_PROMPT = ""  # Flux2KleinPipeline always guides against the empty prompt
CHAT_TOKENS = ("<|im_start|>", "<|im_end|>")
OUT_LAYERS = (9, 18, 27)  # Flux2KleinPipeline's default text_encoder_out_layers

# Qwen3's chat template reduced to what Flux2KleinPipeline renders: user turns and the generation prompt.
# Qwen3's empty think block (which enable_thinking=False would append) is left out: it would add the same
# 6 tokens to every prompt, and each text token costs DiT compute on this CPU budget.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def generation_defaults(max_tokens: int) -> dict:
    """massivelens.json for the folder: Flux2KleinPipeline's own defaults (1024 px, 512 tokens) do not fit.
    The pipeline takes no negative prompt (it guides against "" itself), hence none here."""
    return {"world": "shapes", "steps": STEPS, "guidance": CFG, "height": SIZE, "width": SIZE,
            "max_sequence_length": max_tokens}


@dataclass(frozen=True)
class Flux2Config:
    """Sizes of every component; the defaults are the trained model (width 128 like shapes-dit)."""

    max_tokens: int = 20  # the chat-templated caption is 19 tokens at most
    text_dim: int = 32
    text_layers: int = 27  # hidden states 9, 18, 27 are stacked (3 x text_dim into the DiT)
    text_heads: int = 2
    # Qwen3's own init (0.02) makes each token's embedding small beside what 27 random layers add: at init
    # the hidden states blur a word into its prefix (a changed word moves its token's state by ~0.5 of its
    # norm, not ~1.4). Unit-variance embeddings keep every word's identity in hidden states 9, 18 and 27.
    text_embedding_std: float = 1.0
    vae_channels: tuple[int, ...] = (16, 32, 32)  # as shapes-dit's, so its trained VAE can be reused
    latent_channels: int = 4
    dit_heads: int = 4
    dit_head_dim: int = 32
    dit_double_layers: int = 2
    dit_single_layers: int = 4
    mlp_ratio: float = 3.0
    rope_axes: tuple[int, int, int, int] = (8, 8, 8, 8)  # (T, H, W, L) as FLUX.2's (32, 32, 32, 32), scaled
    timestep_channels: int = 256
    scheduler_shift: float = 1.0


TINY = Flux2Config(text_dim=16, text_heads=2, vae_channels=(8, 16, 16), dit_heads=2, dit_head_dim=16,
                   dit_double_layers=1, dit_single_layers=1, rope_axes=(4, 4, 4, 4), timestep_channels=32)


def tokenizer_corpus() -> list[str]:
    """Every string the pipeline will tokenise: each caption (and the empty one) in the chat template."""
    captions = [NEGATIVE_PROMPT] + [a.caption for a in all_attributes()]
    return [_render(c) for c in captions]


def _render(caption: str) -> str:
    return f"<|im_start|>user\n{caption}<|im_end|>\n<|im_start|>assistant\n"


def build_qwen_tokenizer(max_tokens: int) -> Qwen2TokenizerFast:
    """A byte-level BPE Qwen2 tokenizer trained on the world's captions: every word is a single token.

    Qwen's own pre-tokenizer (regex split + byte level) is kept, so the saved tokenizer.json reloads as the
    same Qwen2TokenizerFast; the byte alphabet is listed up front so token ids do not depend on hash order.
    """
    backend = Qwen2TokenizerFast().backend_tokenizer
    trainer = trainers.BpeTrainer(
        vocab_size=2000, special_tokens=["<|endoftext|>", *CHAT_TOKENS], show_progress=False,
        initial_alphabet=sorted(pre_tokenizers.ByteLevel.alphabet()),
    )
    backend.train_from_iterator(tokenizer_corpus(), trainer)
    model = json.loads(backend.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return Qwen2TokenizerFast(vocab=model["vocab"], merges=merges, extra_special_tokens=list(CHAT_TOKENS),
                              chat_template=CHAT_TEMPLATE, model_max_length=max_tokens)


def _qwen3(tokenizer: Qwen2TokenizerFast, config: Flux2Config) -> Qwen3ForCausalLM:
    model = Qwen3ForCausalLM(
        Qwen3Config(
            vocab_size=len(tokenizer), hidden_size=config.text_dim, intermediate_size=2 * config.text_dim,
            num_hidden_layers=config.text_layers, num_attention_heads=config.text_heads, num_key_value_heads=1,
            head_dim=config.text_dim // config.text_heads, max_position_embeddings=max(64, config.max_tokens),
            tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        )
    )
    with torch.no_grad():
        model.get_input_embeddings().weight.normal_(0.0, config.text_embedding_std)
    return model


def build_pipeline(config: Flux2Config = Flux2Config(), seed: int = 0) -> Flux2KleinPipeline:
    """A freshly initialised Flux2KleinPipeline (text encoder, VAE and transformer all random)."""
    torch.manual_seed(seed)
    tokenizer = build_qwen_tokenizer(config.max_tokens)
    text_encoder = _qwen3(tokenizer, config)
    blocks = len(config.vae_channels)
    vae = AutoencoderKLFlux2(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks, block_out_channels=config.vae_channels,
        layers_per_block=1, latent_channels=config.latent_channels, norm_num_groups=min(8, config.vae_channels[0]),
        sample_size=SIZE, mid_block_add_attention=False,
    )
    transformer = Flux2Transformer2DModel(
        patch_size=1, in_channels=4 * config.latent_channels, num_layers=config.dit_double_layers,
        num_single_layers=config.dit_single_layers, attention_head_dim=config.dit_head_dim,
        num_attention_heads=config.dit_heads, joint_attention_dim=len(OUT_LAYERS) * config.text_dim,
        timestep_guidance_channels=config.timestep_channels, mlp_ratio=config.mlp_ratio,
        axes_dims_rope=config.rope_axes, guidance_embeds=False,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000, shift=config.scheduler_shift, use_dynamic_shifting=False
    )
    # is_distilled=False: the "base" klein variant, which runs classifier-free guidance.
    return Flux2KleinPipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                              transformer=transformer, is_distilled=False)


def config_dict(config: Flux2Config) -> dict:
    return asdict(config)


def parameter_counts(pipe: Flux2KleinPipeline) -> dict[str, int]:
    parts = {"transformer": pipe.transformer, "vae": pipe.vae, "text_encoder": pipe.text_encoder}
    return {name: sum(p.numel() for p in module.parameters()) for name, module in parts.items()}
