"""Train an embedded shapes model from scratch: VAE first, then DiT + text encoders.

    python -m massivelens.engine.shapes.train --out resources/shapes-dit --seed 0
    python -m massivelens.engine.shapes.train --arch flux2 --vae-from resources/shapes-dit --vae-steps 0 \
        --decoder-steps 0 --out resources/shapes-flux2 --seed 0

--arch picks the pipeline (flux: FluxPipeline, flux2: Flux2KleinPipeline; engine/shapes/arches.py holds
what differs). The recipe is counted in optimiser steps (VAE, DiT, decoder refinement), so the
same command gives the same model on a CPU or a GPU; --dit-minutes optionally caps
the DiT phase by wall time instead. Rectified flow as the pipelines sample it: x_t = (1 - t) x0 + t noise and the
transformer predicts noise - x0 (the Euler step adds (sigma_next - sigma) * pred).
The pipeline folder (EMA weights) is rewritten every --save-minutes and at the end; every
--snapshot-every DiT steps the activation snapshot (snapshots.py) is appended to snapshots.jsonl.
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
from diffusers import DiffusionPipeline

from ..defaults import MODEL_DEFAULTS_FILE
from .arches import ARCHES, arch_of, load_vae_weights
from .model import NEGATIVE_PROMPT, ModelConfig
from .reader import score
from .snapshots import SNAPSHOT_FILE, Snapshots
from .world import HELDOUT_SEED_BASE, heldout_seeds, sample

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


def train_vae(pipe: DiffusionPipeline, rng: np.random.Generator, steps: int, batch: int, device: torch.device,
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
def vae_reader_accuracy(pipe: DiffusionPipeline, device: torch.device, n: int = 100) -> float:
    """All-five reader accuracy on VAE reconstructions: an upper bound for what the DiT can reach."""
    captions, x = world_batch(np.array(heldout_seeds(n)))
    recon = pipe.vae.decode(pipe.vae.encode(x.to(device)).latent_dist.mode()).sample.cpu()
    images = ((recon.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return score(list(zip(captions, images)))["all_five"]


@torch.no_grad()
def encode_latents(pipe: DiffusionPipeline, seeds: np.ndarray, device: torch.device) -> tuple[torch.Tensor, list[str]]:
    """Raw VAE posterior means and captions for the given world seeds."""
    latents, captions = [], []
    for chunk in np.array_split(seeds, max(1, len(seeds) // 256)):
        caps, x = world_batch(chunk)
        latents.append(pipe.vae.encode(x.to(device)).latent_dist.mode().cpu())
        captions += caps
    return torch.cat(latents), captions


def flow_loss(arch, modules: dict[str, torch.nn.Module], x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
              text: tuple[torch.Tensor, ...], img_ids: torch.Tensor) -> torch.Tensor:
    """Rectified-flow loss on packed latents x0 (B, tokens, channels)."""
    tt = t[:, None, None]
    x_t = (1.0 - tt) * x0 + tt * noise
    return F.mse_loss(arch.predict(modules, x_t, t, text, img_ids), noise - x0)


def save(arch, pipe: DiffusionPipeline, ema: dict[str, torch.nn.Module], out: Path, logger: Logger, meta: dict,
         snapshots: Path | None = None) -> None:
    """Write the pipeline (EMA weights) to a sibling folder, then swap it in so a stop never leaves half a model."""
    to_save = arch.assemble(pipe, ema)
    tmp = out.with_name(out.name + ".saving")
    shutil.rmtree(tmp, ignore_errors=True)
    to_save.save_pretrained(tmp)
    shutil.copy(logger.path, tmp / LOG_NAME)
    (tmp / "train_config.json").write_text(json.dumps(meta, indent=2))
    (tmp / MODEL_DEFAULTS_FILE).write_text(json.dumps(arch.generation_defaults(pipe), indent=2))
    if snapshots is not None and snapshots.exists():
        shutil.copy(snapshots, tmp / SNAPSHOT_FILE)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    print(f"saved {out} at step {meta.get('dit_steps')}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=sorted(ARCHES), default="flux", help="flux: FluxPipeline, flux2: Flux2KleinPipeline")
    parser.add_argument("--out", type=Path, default=None, help="pipeline folder (default: resources/shapes-dit or shapes-flux2)")
    parser.add_argument("--log", type=Path, default=None, help="default: runs/<out name>/train_log.csv")
    parser.add_argument("--vae-steps", type=int, default=VAE_STEPS)
    parser.add_argument("--vae-from", type=Path, default=None,
                        help="start from this embedded model's trained VAE (same layout); then --vae-steps may be 0")
    parser.add_argument("--steps", type=int, default=DIT_STEPS, help="DiT steps")
    parser.add_argument("--decoder-steps", type=int, default=DECODER_STEPS, help="decoder refinement at the end")
    parser.add_argument("--dit-minutes", type=float, default=None, help="optional wall-time cap on the DiT phase")
    parser.add_argument("--save-minutes", type=float, default=10.0)
    parser.add_argument("--snapshot-every", type=int, default=250, help="DiT steps between activation snapshots (0: none)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=8e-4)
    parser.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay of the DiT phase")
    parser.add_argument("--cache", type=int, default=24000, help="pre-encoded training images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--resume", action="store_true", help="continue from the pipeline in --out")
    parser.add_argument("--dit-heads", type=int, default=ModelConfig.dit_heads, help="DiT width in 32-wide heads")
    parser.add_argument("--dit-single-layers", type=int, default=ModelConfig.dit_single_layers)
    parser.add_argument("--freeze-text-encoder", action="store_true",
                        help="flux2: train the transformer alone on cached embeddings of the fixed (random) Qwen3")
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny configuration (smoke runs)")
    args = parser.parse_args(argv)
    arch = ARCHES[args.arch]()
    args.out = args.out or Path(arch.default_out)
    args.log = args.log or Path("runs") / args.out.name / LOG_NAME
    if args.freeze_text_encoder and not hasattr(arch, "freeze_text"):
        parser.error("--freeze-text-encoder needs --arch flux2")
    if not args.resume and args.vae_steps < 1 and args.vae_from is None:
        parser.error("--vae-steps must be at least 1 for a fresh model without --vae-from")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = arch.config(args.dit_heads, args.dit_single_layers)
    if args.tiny:
        from . import model, model_flux2

        tiny = model_flux2.TINY if args.arch == "flux2" else model.TINY
        config = type(tiny)(**{**arch.config_dict(tiny), "dit_heads": args.dit_heads,
                               "dit_single_layers": args.dit_single_layers})
    logger = Logger(args.log, args.resume)
    snapshot_path = args.log.with_name(SNAPSHOT_FILE)

    previous_steps = 0
    if args.resume:
        previous_steps = json.loads((args.out / "train_config.json").read_text()).get("dit_steps", 0)
        pipe = DiffusionPipeline.from_pretrained(args.out)
        arch = arch_of(pipe)
        pipe.vae.to(device).eval().requires_grad_(False)
        if (args.out / SNAPSHOT_FILE).exists() and not snapshot_path.exists():
            shutil.copy(args.out / SNAPSHOT_FILE, snapshot_path)
    else:
        snapshot_path.unlink(missing_ok=True)
        pipe = arch.build(config, seed=args.seed)
        if args.vae_from is not None:
            load_vae_weights(pipe, args.vae_from)
            pipe.vae.to(device).eval().requires_grad_(False)
        if args.vae_steps > 0:
            train_vae(pipe, rng, args.vae_steps, 16, device, logger)
    if args.freeze_text_encoder:
        arch.freeze_text()
    print("parameters", arch.parameter_counts(pipe), flush=True)

    latents, captions = encode_latents(pipe, rng.integers(0, HELDOUT_SEED_BASE, args.cache), device)
    if not args.resume:
        arch.calibrate(pipe, latents)
    latents = arch.to_tokens(pipe, latents)
    held_latents, held_captions = encode_latents(pipe, np.array(heldout_seeds(256)), device)
    held_latents = arch.to_tokens(pipe, held_latents)
    img_ids = arch.img_ids(pipe, device)
    arch.prepare_text(pipe, arch.max_tokens(pipe))
    held_gen = torch.Generator().manual_seed(12345)
    held_noise = torch.randn(held_latents.shape, generator=held_gen)
    held_t = torch.linspace(0.02, 0.98, len(held_latents))

    modules = {n: getattr(pipe, n).to(device).train().requires_grad_(True) for n in arch.trained}
    ema = {n: copy.deepcopy(m).eval().requires_grad_(False) for n, m in modules.items()}
    params = [p for m in modules.values() for p in m.parameters()]
    ema_params = [p for m in ema.values() for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay, foreach=True)  # one kernel per op, not per tensor
    warmup = 0 if args.resume else 300
    grid = arch.token_grid(pipe)
    meta = {"arch": args.arch, "config": arch.config_dict(config), "args": {k: str(v) for k, v in vars(args).items()},
            "parameters": arch.parameter_counts(pipe), "dit_steps": 0, "token_grid": list(grid)}
    snapshots = Snapshots(arch, pipe, device) if args.snapshot_every > 0 else None

    def snapshot(step: int) -> None:
        if snapshots is not None:
            snapshots.append(snapshot_path, previous_steps + step, {"ema": ema, "live": modules})

    @torch.no_grad()
    def heldout_loss() -> float:
        losses = []
        for sl in torch.split(torch.arange(len(held_latents)), 64):
            text = arch.lookup([held_captions[i] for i in sl], device)
            losses.append(flow_loss(arch, ema, held_latents[sl].to(device), held_t[sl].to(device),
                                    held_noise[sl].to(device), text, img_ids))
        return float(torch.stack(losses).mean())

    step, last_save = 0, time.time()
    if not args.resume:
        snapshot(0)
    dit_start = last_save
    deadline = math.inf if args.dit_minutes is None else dit_start + 60.0 * args.dit_minutes
    while step < args.steps and time.time() < deadline:
        rows = torch.from_numpy(rng.integers(0, len(latents), args.batch))
        x0 = latents[rows].to(device)
        batch_captions = [NEGATIVE_PROMPT if rng.random() < 0.1 else captions[i] for i in rows.tolist()]
        text = arch.lookup(batch_captions, device)
        t = torch.sigmoid(torch.randn(args.batch, device=device))
        progress = max(step / args.steps, (time.time() - dit_start) / (deadline - dit_start))
        lr = args.lr * min(1.0, (step + 1) / warmup if warmup else 1.0) * (0.55 + 0.45 * math.cos(math.pi * progress))
        for group in opt.param_groups:
            group["lr"] = lr
        loss = flow_loss(arch, modules, x0, t, torch.randn_like(x0), text, img_ids)
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
        if args.snapshot_every > 0 and step % args.snapshot_every == 0:
            snapshot(step)
        if time.time() - last_save > 60.0 * args.save_minutes:
            meta["dit_steps"] = previous_steps + step
            save(arch, pipe, ema, args.out, logger, meta, snapshot_path)
            last_save = time.time()
    meta["dit_steps"] = previous_steps + step
    logger.log("dit", step, loss.item() if step else math.nan, heldout_loss())
    if args.snapshot_every > 0 and step % args.snapshot_every != 0:
        snapshot(step)
    save(arch, pipe, ema, args.out, logger, meta, snapshot_path)
    if args.decoder_steps > 0:
        train_vae(pipe, rng, args.decoder_steps, 16, device, logger, decoder_only=True)
        save(arch, pipe, ema, args.out, logger, meta, snapshot_path)


if __name__ == "__main__":
    main()
