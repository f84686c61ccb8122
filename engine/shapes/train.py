"""Train the embedded shapes model from scratch: VAE first, then DiT + text encoders.

    python -m massivelens.engine.shapes.train --out resources/shapes-dit --seed 0

The recipe is counted in optimiser steps (VAE, DiT, decoder refinement), so the
same command gives the same model on a CPU or a GPU; --dit-minutes optionally caps
the DiT phase by wall time instead. Rectified flow as FluxPipeline samples it: x_t = (1 - t) x0 + t noise and the
transformer predicts noise - x0 (the Euler step adds (sigma_next - sigma) * pred).
The pipeline folder (EMA weights) is rewritten every --save-minutes and at the end.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline, FluxPipeline

from ..defaults import MODEL_DEFAULTS_FILE
from .model import (
    NEGATIVE_PROMPT,
    ModelConfig,
    build_pipeline,
    config_dict,
    generation_defaults,
    parameter_counts,
)
from .reader import score
from .world import HELDOUT_SEED_BASE, all_attributes, heldout_seeds, sample

LOG_NAME = "train_log.csv"
VAE_LR = 1e-3  # 2e-3 diverged after ~800 steps
VAE_STEPS, DIT_STEPS, DECODER_STEPS = 2000, 6500, 2000  # the shipped recipe: ~95 min on 2 CPU threads


def images_to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    """uint8 HxWx3 images -> float NCHW in [-1, 1] (the VAE's input range)."""
    array = np.stack(images).astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


def world_batch(seeds: np.ndarray) -> tuple[list[str], torch.Tensor]:
    """Captions and image tensor for a batch of world seeds."""
    triples = [sample(int(s)) for s in seeds]
    return [c for c, _, _ in triples], images_to_tensor([im for _, im, _ in triples])


class Logger:
    """Append-only CSV loss log (kept next to the weights for the model card).

    In the last "vae"/"decoder" row heldout_loss is the reader's all-five error on held-out reconstructions.
    """

    def __init__(self, path: Path, resume: bool) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if not (resume and path.exists()):
            path.write_text("phase,step,elapsed_s,loss,heldout_loss,lr\n")
        self.start = time.time()

    def log(self, phase: str, step: int, loss: float, heldout: float | None = None, lr: float = 0.0) -> None:
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([phase, step, f"{time.time() - self.start:.1f}", f"{loss:.5f}",
                                    "" if heldout is None else f"{heldout:.5f}", f"{lr:.2e}"])
        print(f"[{phase}] step {step} t={time.time() - self.start:.0f}s loss {loss:.4f}"
              + ("" if heldout is None else f" heldout {heldout:.4f}"), flush=True)


def train_vae(pipe: FluxPipeline, rng: np.random.Generator, steps: int, batch: int, device: torch.device,
              logger: Logger, decoder_only: bool = False) -> None:
    """Fit the autoencoder to world images (L1 + MSE for crisp flat colours, a small KL keeps latents smooth).

    decoder_only refines the decoder after the DiT is trained: the encoder, hence the latent space the DiT
    learned, stays fixed, so the extra decoder training is free quality for the shipped pipeline.
    """
    vae = pipe.vae.to(device).train()
    phase = "decoder" if decoder_only else "vae"
    trained = [*vae.decoder.parameters(), *vae.post_quant_conv.parameters()] if decoder_only else list(vae.parameters())
    vae.requires_grad_(False)
    for p in trained:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(trained, lr=VAE_LR, weight_decay=0.0)
    for step in range(steps):
        progress = step / steps
        lr = VAE_LR * min(1.0, (step + 1) / 50) * (0.525 + 0.475 * math.cos(math.pi * progress))
        for group in opt.param_groups:
            group["lr"] = lr
        _, x = world_batch(rng.integers(0, HELDOUT_SEED_BASE, batch))
        x = x.to(device)
        with torch.set_grad_enabled(not decoder_only):
            posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample()).sample
        kl = posterior.kl().mean() / posterior.mean[0].numel()
        loss = F.l1_loss(recon, x) + F.mse_loss(recon, x) + (0.0 if decoder_only else 1e-4 * kl)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        opt.step()
        if (step + 1) % 25 == 0:
            logger.log(phase, step + 1, loss.item(), lr=lr)
    vae.eval().requires_grad_(False)
    logger.log(phase, steps, loss.item(), heldout=1.0 - vae_reader_accuracy(pipe, device), lr=lr)


@torch.no_grad()
def vae_reader_accuracy(pipe: FluxPipeline, device: torch.device, n: int = 100) -> float:
    """All-five reader accuracy on VAE reconstructions: an upper bound for what the DiT can reach."""
    captions, x = world_batch(np.array(heldout_seeds(n)))
    recon = pipe.vae.decode(pipe.vae.encode(x.to(device)).latent_dist.mode()).sample.cpu()
    images = ((recon.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return score(list(zip(captions, images)))["all_five"]


@torch.no_grad()
def encode_latents(pipe: FluxPipeline, seeds: np.ndarray, device: torch.device) -> tuple[torch.Tensor, list[str]]:
    """Raw VAE posterior means and captions for the given world seeds."""
    latents, captions = [], []
    for chunk in np.array_split(seeds, max(1, len(seeds) // 256)):
        caps, x = world_batch(chunk)
        latents.append(pipe.vae.encode(x.to(device)).latent_dist.mode().cpu())
        captions += caps
    return torch.cat(latents), captions


def calibrate_vae(pipe: FluxPipeline, latents: torch.Tensor) -> None:
    """Set shift/scaling so DiT targets have zero mean and unit variance (Flux's convention)."""
    pipe.vae.register_to_config(shift_factor=float(latents.mean()), scaling_factor=float(1.0 / latents.std()))


def normalise(pipe: FluxPipeline, latents: torch.Tensor) -> torch.Tensor:
    return (latents - pipe.vae.config.shift_factor) * pipe.vae.config.scaling_factor


class TextIds:
    """Token ids for every caption of the world plus the empty caption, tokenised as FluxPipeline does."""

    def __init__(self, pipe: FluxPipeline, max_tokens: int) -> None:
        captions = [NEGATIVE_PROMPT] + [a.caption for a in all_attributes()]
        self.index = {c: i for i, c in enumerate(captions)}
        kwargs = dict(padding="max_length", max_length=max_tokens, truncation=True, return_tensors="pt")
        self.clip = pipe.tokenizer(captions, **kwargs).input_ids
        self.t5 = pipe.tokenizer_2(captions, **kwargs).input_ids

    def lookup(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.tensor([self.index[c] for c in captions])
        return self.clip[rows], self.t5[rows]


def predict(modules: dict[str, torch.nn.Module], x_t: torch.Tensor, t: torch.Tensor, clip_ids: torch.Tensor,
            t5_ids: torch.Tensor, img_ids: torch.Tensor) -> torch.Tensor:
    """One transformer call exactly as FluxPipeline makes it (timestep in [0, 1], no guidance embedding)."""
    pooled = modules["text_encoder"](clip_ids, output_hidden_states=False).pooler_output
    embeds = modules["text_encoder_2"](t5_ids, output_hidden_states=False)[0]
    txt_ids = torch.zeros(embeds.shape[1], 3, device=x_t.device, dtype=x_t.dtype)
    return modules["transformer"](hidden_states=x_t, timestep=t, guidance=None, pooled_projections=pooled,
                                  encoder_hidden_states=embeds, txt_ids=txt_ids, img_ids=img_ids,
                                  return_dict=False)[0]


def flow_loss(modules: dict[str, torch.nn.Module], x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
              clip_ids: torch.Tensor, t5_ids: torch.Tensor, img_ids: torch.Tensor) -> torch.Tensor:
    """Rectified-flow loss on packed latents x0 (B, tokens, channels)."""
    tt = t[:, None, None]
    x_t = (1.0 - tt) * x0 + tt * noise
    return F.mse_loss(predict(modules, x_t, t, clip_ids, t5_ids, img_ids), noise - x0)


def pack(latents: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) latents -> Flux's 2x2-patch token sequence (B, H/2 * W/2, 4C)."""
    b, c, h, w = latents.shape
    return FluxPipeline._pack_latents(latents, b, c, h, w)


def save(pipe: FluxPipeline, ema: dict[str, torch.nn.Module], out: Path, logger: Logger, meta: dict) -> None:
    """Write the pipeline (EMA weights) to a sibling folder, then swap it in so a stop never leaves half a model."""
    to_save = FluxPipeline(scheduler=pipe.scheduler, vae=pipe.vae, tokenizer=pipe.tokenizer,
                           tokenizer_2=pipe.tokenizer_2, **ema)
    tmp = out.with_name(out.name + ".saving")
    shutil.rmtree(tmp, ignore_errors=True)
    to_save.save_pretrained(tmp)
    shutil.copy(logger.path, tmp / LOG_NAME)
    (tmp / "train_config.json").write_text(json.dumps(meta, indent=2))
    (tmp / MODEL_DEFAULTS_FILE).write_text(json.dumps(generation_defaults(pipe.tokenizer_2.model_max_length), indent=2))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    print(f"saved {out} at step {meta.get('dit_steps')}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("resources/shapes-dit"))
    parser.add_argument("--log", type=Path, default=Path("runs/shapes-dit/train_log.csv"))
    parser.add_argument("--vae-steps", type=int, default=VAE_STEPS)
    parser.add_argument("--steps", type=int, default=DIT_STEPS, help="DiT steps")
    parser.add_argument("--decoder-steps", type=int, default=DECODER_STEPS, help="decoder refinement at the end")
    parser.add_argument("--dit-minutes", type=float, default=None, help="optional wall-time cap on the DiT phase")
    parser.add_argument("--save-minutes", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=8e-4)
    parser.add_argument("--cache", type=int, default=24000, help="pre-encoded training images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--resume", action="store_true", help="continue from the pipeline in --out")
    parser.add_argument("--dit-heads", type=int, default=ModelConfig.dit_heads, help="DiT width in 32-wide heads")
    parser.add_argument("--dit-single-layers", type=int, default=ModelConfig.dit_single_layers)
    args = parser.parse_args(argv)
    if not args.resume and args.vae_steps < 1:
        parser.error("--vae-steps must be at least 1 for a fresh model")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = ModelConfig(dit_heads=args.dit_heads, dit_single_layers=args.dit_single_layers)
    logger = Logger(args.log, args.resume)

    previous_steps = 0
    if args.resume:
        previous_steps = json.loads((args.out / "train_config.json").read_text()).get("dit_steps", 0)
        pipe = DiffusionPipeline.from_pretrained(args.out)
        pipe.vae.to(device).eval().requires_grad_(False)
    else:
        pipe = build_pipeline(config, seed=args.seed)
        train_vae(pipe, rng, args.vae_steps, 16, device, logger)
    print("parameters", parameter_counts(pipe), flush=True)

    latents, captions = encode_latents(pipe, rng.integers(0, HELDOUT_SEED_BASE, args.cache), device)
    if not args.resume:
        calibrate_vae(pipe, latents)
    latents = pack(normalise(pipe, latents))
    held_latents, held_captions = encode_latents(pipe, np.array(heldout_seeds(256)), device)
    held_latents = pack(normalise(pipe, held_latents))
    h = w = pipe.vae.config.sample_size // (2 ** (len(pipe.vae.config.block_out_channels) - 1))
    img_ids = FluxPipeline._prepare_latent_image_ids(1, h // 2, w // 2, device, torch.float32)
    text = TextIds(pipe, config.max_tokens)
    held_gen = torch.Generator().manual_seed(12345)
    held_noise = torch.randn(held_latents.shape, generator=held_gen)
    held_t = torch.linspace(0.02, 0.98, len(held_latents))

    names = ("transformer", "text_encoder", "text_encoder_2")
    modules = {n: getattr(pipe, n).to(device).train().requires_grad_(True) for n in names}
    ema = {n: copy.deepcopy(m).eval().requires_grad_(False) for n, m in modules.items()}
    params = [p for m in modules.values() for p in m.parameters()]
    ema_params = [p for m in ema.values() for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    warmup = 0 if args.resume else 300
    meta = {"config": config_dict(config), "args": {k: str(v) for k, v in vars(args).items()},
            "parameters": parameter_counts(pipe), "dit_steps": 0, "token_grid": [h // 2, w // 2]}

    @torch.no_grad()
    def heldout_loss() -> float:
        losses = []
        for sl in torch.split(torch.arange(len(held_latents)), 64):
            clip_ids, t5_ids = text.lookup([held_captions[i] for i in sl])
            losses.append(flow_loss(ema, held_latents[sl].to(device), held_t[sl].to(device),
                                    held_noise[sl].to(device), clip_ids.to(device), t5_ids.to(device), img_ids))
        return float(torch.stack(losses).mean())

    step, last_save = 0, time.time()
    dit_start = last_save
    deadline = math.inf if args.dit_minutes is None else dit_start + 60.0 * args.dit_minutes
    while step < args.steps and time.time() < deadline:
        rows = torch.from_numpy(rng.integers(0, len(latents), args.batch))
        x0 = latents[rows].to(device)
        batch_captions = [NEGATIVE_PROMPT if rng.random() < 0.1 else captions[i] for i in rows.tolist()]
        clip_ids, t5_ids = text.lookup(batch_captions)
        t = torch.sigmoid(torch.randn(args.batch, device=device))
        progress = max(step / args.steps, (time.time() - dit_start) / (deadline - dit_start))
        lr = args.lr * min(1.0, (step + 1) / warmup if warmup else 1.0) * (0.55 + 0.45 * math.cos(math.pi * progress))
        for group in opt.param_groups:
            group["lr"] = lr
        loss = flow_loss(modules, x0, t, torch.randn_like(x0), clip_ids.to(device), t5_ids.to(device), img_ids)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        decay = min(0.999, (1.0 + step) / (10.0 + step))
        with torch.no_grad():
            torch._foreach_lerp_(ema_params, params, 1.0 - decay)
        if step % 50 == 0:
            logger.log("dit", step, loss.item(), heldout_loss() if step % 500 == 0 else None, lr)
        if time.time() - last_save > 60.0 * args.save_minutes:
            meta["dit_steps"] = previous_steps + step
            save(pipe, ema, args.out, logger, meta)
            last_save = time.time()
    meta["dit_steps"] = previous_steps + step
    logger.log("dit", step, loss.item() if step else math.nan, heldout_loss())
    save(pipe, ema, args.out, logger, meta)
    if args.decoder_steps > 0:
        train_vae(pipe, rng, args.decoder_steps, 16, device, logger, decoder_only=True)
        save(pipe, ema, args.out, logger, meta)


if __name__ == "__main__":
    main()
