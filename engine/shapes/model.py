"""The embedded model: a tiny but genuine diffusers FluxPipeline for the shapes world.

Every component is a stock diffusers/transformers class so the pipeline loads
with ``DiffusionPipeline.from_pretrained`` and behaves like a real Flux model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from diffusers import (
    AutoencoderKL,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
)
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTokenizer,
    T5Config,
    T5EncoderModel,
    T5Tokenizer,
)

from .world import SIZE, vocabulary

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
NEGATIVE_PROMPT = ""  # captions are dropped to this during training, so CFG uses it
STEPS = 20  # default denoising steps
CFG = 4.0  # default true-CFG scale against NEGATIVE_PROMPT


def generation_defaults(max_tokens: int) -> dict:
    """What MassiveLens reads from the pipeline folder's massivelens.json (engine.defaults.model_defaults):
    FluxPipeline's own defaults (512 px, 512 text tokens) do not fit this model."""
    from .world import SIZE

    return {"world": "shapes", "steps": STEPS, "guidance": CFG, "negative_prompt": NEGATIVE_PROMPT, "height": SIZE,
            "width": SIZE, "max_sequence_length": max_tokens}


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of every component; the defaults are the shipped embedded model."""

    max_tokens: int = 16
    text_dim: int = 64
    text_layers: int = 2
    text_heads: int = 2
    vae_channels: tuple[int, ...] = (16, 32, 32)
    latent_channels: int = 4
    dit_heads: int = 4
    dit_head_dim: int = 32
    dit_double_layers: int = 2
    dit_single_layers: int = 4
    rope_axes: tuple[int, int, int] = (8, 12, 12)
    scheduler_shift: float = 1.0


TINY = ModelConfig(
    text_dim=32, text_layers=1, vae_channels=(8, 16, 16), dit_heads=2, dit_head_dim=16,
    dit_double_layers=1, dit_single_layers=1, rope_axes=(4, 6, 6),
)


def _bpe_merges(words: list[str], vocab: dict[str, int]) -> list[tuple[str, str]]:
    """Merges that turn every word into one CLIP token, fixed up until BPE ranking cannot split a word."""
    merges: list[tuple[str, str]] = []
    for _ in range(10):
        tokenizer = CLIPTokenizer(vocab=dict(vocab), merges=list(merges), model_max_length=16)
        broken = [w for w in words if len(tokenizer.tokenize(w)) != 1]
        if not broken:
            return merges
        for word in broken:
            pieces = tokenizer.tokenize(word)
            while len(pieces) > 1:
                pair = (pieces[0], pieces[1])
                if pair not in merges:
                    merges.append(pair)
                pieces = [pieces[0] + pieces[1], *pieces[2:]]
                vocab.setdefault(pieces[0], len(vocab))
    raise RuntimeError("could not build BPE merges for the vocabulary")


def build_clip_tokenizer(max_tokens: int) -> CLIPTokenizer:
    """A CLIP BPE tokenizer whose every vocabulary word is a single token."""
    words = vocabulary()
    chars = sorted({c for w in words for c in w})
    vocab: dict[str, int] = {BOS: 0, EOS: 1}
    for token in chars + [c + "</w>" for c in chars] + [w + "</w>" for w in words]:
        vocab.setdefault(token, len(vocab))
    merges = _bpe_merges(words, vocab)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_tokens)


def build_t5_tokenizer(max_tokens: int) -> T5Tokenizer:
    """A Unigram (sentencepiece-style) T5 tokenizer with one piece per vocabulary word."""
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -10.0)]
    pieces += [("▁" + w, -1.0) for w in vocabulary()]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=max_tokens)


def build_pipeline(config: ModelConfig = ModelConfig(), seed: int = 0) -> FluxPipeline:
    """A freshly initialised FluxPipeline (text encoders, VAE and transformer all random)."""
    torch.manual_seed(seed)
    tokenizer = build_clip_tokenizer(config.max_tokens)
    tokenizer_2 = build_t5_tokenizer(config.max_tokens)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=config.text_dim, intermediate_size=2 * config.text_dim,
            num_hidden_layers=config.text_layers, num_attention_heads=config.text_heads,
            max_position_embeddings=config.max_tokens, projection_dim=config.text_dim,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    text_encoder_2 = T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer_2), d_model=config.text_dim, d_kv=config.text_dim // config.text_heads,
            d_ff=2 * config.text_dim, num_layers=config.text_layers, num_heads=config.text_heads,
            relative_attention_num_buckets=8, relative_attention_max_distance=config.max_tokens,
            pad_token_id=tokenizer_2.pad_token_id, eos_token_id=tokenizer_2.eos_token_id,
            decoder_start_token_id=tokenizer_2.pad_token_id,
        )
    )
    blocks = len(config.vae_channels)
    groups = min(8, config.vae_channels[0])
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks, block_out_channels=config.vae_channels,
        layers_per_block=1, latent_channels=config.latent_channels, norm_num_groups=groups,
        sample_size=SIZE, scaling_factor=1.0, shift_factor=0.0, mid_block_add_attention=False,
    )
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=4 * config.latent_channels, num_layers=config.dit_double_layers,
        num_single_layers=config.dit_single_layers, attention_head_dim=config.dit_head_dim,
        num_attention_heads=config.dit_heads, joint_attention_dim=config.text_dim,
        pooled_projection_dim=config.text_dim, guidance_embeds=False, axes_dims_rope=config.rope_axes,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000, shift=config.scheduler_shift, use_dynamic_shifting=False
    )
    return FluxPipeline(
        scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
        text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2, transformer=transformer,
    )


def config_dict(config: ModelConfig) -> dict:
    """The config as plain JSON-able data (for logs and the model card)."""
    return asdict(config)


def parameter_counts(pipe: FluxPipeline) -> dict[str, int]:
    """Parameter count of each trainable component."""
    parts = {"transformer": pipe.transformer, "vae": pipe.vae, "text_encoder": pipe.text_encoder,
             "text_encoder_2": pipe.text_encoder_2}
    return {name: sum(p.numel() for p in module.parameters()) for name, module in parts.items()}
