"""What training needs to know about each embedded architecture, and nothing else.

Each class builds its pipeline, tokenises and encodes captions exactly as its pipeline's ``encode_prompt``
does, turns raw VAE latents into the transformer's token sequence (and back into position ids) exactly as
its ``__call__`` does, and calls the transformer with the arguments the pipeline passes. train.py runs the
same loop for both through this interface.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import DiffusionPipeline, FluxPipeline
from diffusers.pipelines.flux2.pipeline_flux2_klein import Flux2KleinPipeline

from . import model as flux1
from . import model_flux2 as flux2
from .world import all_attributes

TextBatch = tuple[torch.Tensor, ...]


class _Arch:
    name: str
    default_out: str
    trained: tuple[str, ...]  # modules the DiT phase trains (and keeps EMA copies of)

    def __init__(self) -> None:
        self.tokens: tuple[torch.Tensor, ...] = ()
        self.index: dict[str, int] = {}

    def prepare_text(self, pipe: DiffusionPipeline, max_tokens: int) -> None:
        """Tokenise every caption of the world plus the empty one once (as the pipeline would)."""
        captions = [flux1.NEGATIVE_PROMPT] + [a.caption for a in all_attributes()]
        self.index = {c: i for i, c in enumerate(captions)}
        self.tokens = self._tokenise(pipe, captions, max_tokens)

    def lookup(self, captions: list[str], device: torch.device) -> TextBatch:
        rows = torch.tensor([self.index[c] for c in captions])
        return tuple(t[rows].to(device) for t in self.tokens)

    def token_grid(self, pipe: DiffusionPipeline) -> tuple[int, int]:
        """Image tokens per side: 64 px / VAE factor / the 2x2 patches."""
        side = pipe.vae.config.sample_size // (2 ** (len(pipe.vae.config.block_out_channels) - 1)) // 2
        return side, side


class Flux1(_Arch):
    """FluxPipeline: CLIP pooled embedding + T5 sequence, VAE shift/scale, 2x2 packing, 3-axis ids."""

    name, default_out = "flux", "resources/shapes-dit"
    trained = ("transformer", "text_encoder", "text_encoder_2")
    Config = flux1.ModelConfig

    def build(self, config, seed: int) -> FluxPipeline:
        return flux1.build_pipeline(config, seed=seed)

    def config(self, dit_heads: int, dit_single_layers: int):
        return flux1.ModelConfig(dit_heads=dit_heads, dit_single_layers=dit_single_layers)

    def _tokenise(self, pipe, captions, max_tokens):
        kwargs = dict(padding="max_length", max_length=max_tokens, truncation=True, return_tensors="pt")
        return pipe.tokenizer(captions, **kwargs).input_ids, pipe.tokenizer_2(captions, **kwargs).input_ids

    def max_tokens(self, pipe) -> int:
        return pipe.tokenizer_2.model_max_length

    def calibrate(self, pipe, latents: torch.Tensor) -> None:
        """shift/scaling so DiT targets have zero mean and unit variance (Flux's convention)."""
        pipe.vae.register_to_config(shift_factor=float(latents.mean()), scaling_factor=float(1.0 / latents.std()))

    def to_tokens(self, pipe, latents: torch.Tensor) -> torch.Tensor:
        """Raw (B, C, H, W) VAE latents -> FluxPipeline's normalised 2x2-packed sequence (B, H/2 * W/2, 4C)."""
        x = (latents - pipe.vae.config.shift_factor) * pipe.vae.config.scaling_factor
        b, c, h, w = x.shape
        return FluxPipeline._pack_latents(x, b, c, h, w)

    def img_ids(self, pipe, device) -> torch.Tensor:
        h, w = self.token_grid(pipe)
        return FluxPipeline._prepare_latent_image_ids(1, h, w, device, torch.float32)

    def encode(self, modules, text: TextBatch) -> dict:
        clip_ids, t5_ids = text
        pooled = modules["text_encoder"](clip_ids, output_hidden_states=False).pooler_output
        embeds = modules["text_encoder_2"](t5_ids, output_hidden_states=False)[0]
        txt_ids = torch.zeros(embeds.shape[1], 3, device=embeds.device, dtype=embeds.dtype)
        return {"pooled_projections": pooled, "encoder_hidden_states": embeds, "txt_ids": txt_ids}

    def predict(self, modules, x_t, t, text: TextBatch, img_ids) -> torch.Tensor:
        """One transformer call as FluxPipeline makes it (timestep in [0, 1], no guidance embedding)."""
        return modules["transformer"](hidden_states=x_t, timestep=t, guidance=None, img_ids=img_ids,
                                      return_dict=False, **self.encode(modules, text))[0]

    def assemble(self, pipe, modules) -> FluxPipeline:
        return FluxPipeline(scheduler=pipe.scheduler, vae=pipe.vae, tokenizer=pipe.tokenizer,
                            tokenizer_2=pipe.tokenizer_2, **modules)

    def generation_defaults(self, pipe) -> dict:
        return flux1.generation_defaults(self.max_tokens(pipe))

    def parameter_counts(self, pipe) -> dict[str, int]:
        return flux1.parameter_counts(pipe)

    def config_dict(self, config) -> dict:
        return flux1.config_dict(config)


class Flux2(_Arch):
    """Flux2KleinPipeline: chat-templated Qwen3 hidden states 9/18/27 stacked, 2x2 patchify + VAE batch-norm
    statistics, 4-axis (T, H, W, L) ids, no pooled text."""

    name, default_out = "flux2", "resources/shapes-flux2"
    trained = ("transformer", "text_encoder")
    Config = flux2.Flux2Config

    def build(self, config, seed: int) -> Flux2KleinPipeline:
        return flux2.build_pipeline(config, seed=seed)

    def config(self, dit_heads: int, dit_single_layers: int):
        return flux2.Flux2Config(dit_heads=dit_heads, dit_single_layers=dit_single_layers)

    def _tokenise(self, pipe, captions, max_tokens):
        """Flux2KleinPipeline._get_qwen3_prompt_embeds' tokenisation: chat template, then pad to max_length."""
        ids, masks = [], []
        for caption in captions:
            text = pipe.tokenizer.apply_chat_template([{"role": "user", "content": caption}], tokenize=False,
                                                      add_generation_prompt=True, enable_thinking=False)
            inputs = pipe.tokenizer(text, return_tensors="pt", padding="max_length", truncation=True,
                                    max_length=max_tokens)
            ids.append(inputs["input_ids"])
            masks.append(inputs["attention_mask"])
        return torch.cat(ids), torch.cat(masks)

    def max_tokens(self, pipe) -> int:
        return pipe.tokenizer.model_max_length

    def calibrate(self, pipe, latents: torch.Tensor) -> None:
        """The VAE's batch-norm running statistics over patchified latents (what the pipeline normalises by)."""
        x = Flux2KleinPipeline._patchify_latents(latents)
        bn = pipe.vae.bn
        bn.running_mean.copy_(x.mean(dim=(0, 2, 3)))
        bn.running_var.copy_(x.var(dim=(0, 2, 3)))
        bn.num_batches_tracked.fill_(1)

    def to_tokens(self, pipe, latents: torch.Tensor) -> torch.Tensor:
        """Raw (B, C, H, W) latents -> patchify 2x2, batch-norm normalise, pack (as _encode_vae_image + packing)."""
        x = Flux2KleinPipeline._patchify_latents(latents)
        bn = pipe.vae.bn
        mean = bn.running_mean.view(1, -1, 1, 1).to(x)
        std = torch.sqrt(bn.running_var.view(1, -1, 1, 1) + pipe.vae.config.batch_norm_eps).to(x)
        return Flux2KleinPipeline._pack_latents((x - mean) / std)

    def img_ids(self, pipe, device) -> torch.Tensor:
        h, w = self.token_grid(pipe)
        return Flux2KleinPipeline._prepare_latent_ids(torch.zeros(1, 1, h, w)).to(device)

    def freeze_text(self) -> None:
        """Train the transformer alone against a fixed text encoder, as FLUX.2-klein was trained on a frozen
        Qwen3: every caption is embedded once (prepare_text), so a step skips the 27-layer encoder."""
        self.trained = ("transformer",)
        self.frozen_text = True

    def prepare_text(self, pipe: DiffusionPipeline, max_tokens: int) -> None:
        super().prepare_text(pipe, max_tokens)
        if getattr(self, "frozen_text", False):
            with torch.no_grad():
                self.tokens = (torch.cat([self._embed(pipe.text_encoder, ids, mask) for ids, mask
                                          in zip(*(torch.split(t, 256) for t in self.tokens))]),)

    @staticmethod
    def _embed(text_encoder, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Flux2KleinPipeline._get_qwen3_prompt_embeds after tokenisation."""
        output = text_encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True,
                              use_cache=False)
        out = torch.stack([output.hidden_states[k] for k in flux2.OUT_LAYERS], dim=1)
        b, n, seq, dim = out.shape
        return out.permute(0, 2, 1, 3).reshape(b, seq, n * dim)

    def encode(self, modules, text: TextBatch) -> dict:
        """The prompt embeddings (from the cache when the encoder is frozen) and their text ids."""
        embeds = text[0] if getattr(self, "frozen_text", False) else self._embed(modules["text_encoder"], *text)
        txt_ids = Flux2KleinPipeline._prepare_text_ids(embeds).to(embeds.device)
        return {"encoder_hidden_states": embeds, "txt_ids": txt_ids}

    def predict(self, modules, x_t, t, text: TextBatch, img_ids) -> torch.Tensor:
        """One transformer call as Flux2KleinPipeline makes it (timestep / 1000 = sigma, guidance None)."""
        return modules["transformer"](hidden_states=x_t, timestep=t, guidance=None, img_ids=img_ids,
                                      return_dict=False, **self.encode(modules, text))[0]

    def assemble(self, pipe, modules) -> Flux2KleinPipeline:
        modules = {"text_encoder": pipe.text_encoder, **modules}  # the frozen encoder is not among the trained
        return Flux2KleinPipeline(scheduler=pipe.scheduler, vae=pipe.vae, tokenizer=pipe.tokenizer,
                                  is_distilled=False, **modules)

    def generation_defaults(self, pipe) -> dict:
        return flux2.generation_defaults(self.max_tokens(pipe))

    def parameter_counts(self, pipe) -> dict[str, int]:
        return flux2.parameter_counts(pipe)

    def config_dict(self, config) -> dict:
        return flux2.config_dict(config)


ARCHES = {"flux": Flux1, "flux2": Flux2}


def arch_of(pipe: DiffusionPipeline) -> _Arch:
    """The interface for a loaded pipeline (for --resume and the snapshot reader)."""
    return Flux2() if isinstance(pipe, Flux2KleinPipeline) else Flux1()


def load_vae_weights(pipe: DiffusionPipeline, folder: Path) -> None:
    """Initialise pipe.vae from another embedded model's trained VAE (same encoder/decoder layout).

    AutoencoderKLFlux2 and AutoencoderKL share encoder, decoder, quant_conv and post_quant_conv; only the
    batch-norm statistics are new (set by calibrate)."""
    source = DiffusionPipeline.from_pretrained(folder).vae
    keys = ("block_out_channels", "latent_channels", "layers_per_block", "norm_num_groups", "mid_block_add_attention")
    mismatch = {k: (source.config[k], pipe.vae.config[k]) for k in keys
                if list(_seq(source.config[k])) != list(_seq(pipe.vae.config[k]))}
    if mismatch:
        raise ValueError(f"VAE layouts differ: {mismatch}")
    missing, unexpected = pipe.vae.load_state_dict(source.state_dict(), strict=False)
    if unexpected or any(not k.startswith("bn.") for k in missing):
        raise ValueError(f"VAE weights do not match: missing {missing}, unexpected {unexpected}")


def _seq(value):
    return value if isinstance(value, (list, tuple)) else [value]

