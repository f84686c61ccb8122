"""Activation snapshots during training: how massive activations grow.

Every few hundred DiT steps, training runs the transformer once on a fixed batch (16 held-out captions x 2
noise seeds, their own images noised to t = 0.5, the middle of the 20-step schedule) and appends, per block,
statistics of the image-token hidden states (the block's image-stream output) to snapshots.jsonl:

- max_over_median: max |x| / median |x| over the sample's image tokens and channels (mean over the 32 samples),
  the ratio the model card and sessions report;
- top_share: share of image tokens whose largest |x| sits in the block's top-1 channel (largest mean |x|);
- sun: share of samples where a channel exceeds 100 and 1000x the block's median (Sun et al.'s rule).

Both weight sets are measured: "ema" (what is saved and shipped) and "live" (the optimiser's weights).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .world import heldout_samples

SNAPSHOT_FILE = "snapshots.jsonl"
CAPTIONS, SEEDS, T = 16, 2, 0.5
CAPTION_OFFSET = 10_000  # the model card's activation captions (held out, apart from the evaluation's)
SUN_ABSOLUTE, SUN_RELATIVE = 100.0, 1000.0


class Snapshots:
    """The fixed snapshot batch for one pipeline, and the measurement."""

    def __init__(self, arch, pipe, device: torch.device) -> None:
        from .train import images_to_tensor

        samples = heldout_samples(CAPTIONS, offset=CAPTION_OFFSET)
        self.arch = arch
        with torch.no_grad():
            x = images_to_tensor([image for _, image, _ in samples]).to(device)
            x0 = arch.to_tokens(pipe, pipe.vae.encode(x).latent_dist.mode()).cpu()
        noise = torch.stack([torch.randn(x0.shape[1:], generator=torch.Generator().manual_seed(seed))
                             for seed in range(SEEDS) for _ in range(CAPTIONS)])
        x0 = x0.repeat(SEEDS, 1, 1)
        self.x_t = ((1.0 - T) * x0 + T * noise).to(device)
        self.t = torch.full((len(self.x_t),), T, device=device)
        self.text = arch.lookup([caption for caption, _, _ in samples] * SEEDS, device)
        self.img_ids = arch.img_ids(pipe, device)

    @torch.no_grad()
    def measure(self, modules: dict[str, torch.nn.Module]) -> list[dict]:
        transformer = modules["transformer"]
        captured: dict[str, torch.Tensor] = {}
        n_img = self.x_t.shape[1]

        def hook(name: str):
            def store(_module, _inputs, output):
                states = output[1] if isinstance(output, tuple) else output[:, -n_img:]
                captured[name] = states.detach().float().cpu()
            return store

        blocks = [(f"double.{i}", b) for i, b in enumerate(transformer.transformer_blocks)]
        blocks += [(f"single.{i}", b) for i, b in enumerate(transformer.single_transformer_blocks)]
        handles = [block.register_forward_hook(hook(name)) for name, block in blocks]
        try:
            self.arch.predict(modules, self.x_t, self.t, self.text, self.img_ids)
        finally:
            for handle in handles:
                handle.remove()
        return [block_statistics(name, captured[name].numpy()) for name, _ in blocks]

    def append(self, path: Path, step: int, weights: dict[str, dict[str, torch.nn.Module]]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            for label, modules in weights.items():
                record = {"step": step, "weights": label, "t": T, "captions": CAPTIONS, "seeds": SEEDS,
                          "blocks": self.measure(modules)}
                f.write(json.dumps(record) + "\n")


def measure_pipeline(pipe) -> list[dict]:
    """The snapshot statistics of a saved pipeline's own weights, on the same fixed batch.

    The model card sets them beside the last snapshot: equal when the snapshots come from the run that
    produced the weights, and the measure of how close a rerun of the recipe came when they do not.
    """
    from .arches import arch_of

    arch = arch_of(pipe)
    arch.prepare_text(pipe, arch.max_tokens(pipe))
    modules = {name: getattr(pipe, name).eval() for name in arch.trained}
    return Snapshots(arch, pipe, torch.device("cpu")).measure(modules)


def block_statistics(name: str, states: np.ndarray) -> dict:
    """Statistics of one block's image tokens, states (samples, tokens, channels)."""
    magnitude = np.abs(states)
    peak = magnitude.max(axis=(1, 2))
    median = np.median(magnitude.reshape(len(states), -1), axis=1)
    ratio = peak / np.maximum(median, np.finfo(np.float32).tiny)
    top = int(np.argmax(magnitude.mean(axis=(0, 1))))
    return {
        "block": name,
        "max_over_median": float(ratio.mean()),
        "max_abs": float(peak.mean()),
        "median_abs": float(median.mean()),
        "top_channel": top,
        "top_share": float(np.mean(magnitude.argmax(axis=2) == top)),
        "sun": float(np.mean((peak > SUN_ABSOLUTE) & (peak > SUN_RELATIVE * median))),
    }


def read(path: Path, weights: str = "ema") -> list[dict]:
    """The snapshots of one weight set, in step order (a resumed run's steps continue the earlier ones)."""
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sorted((r for r in records if r.get("weights", "ema") == weights), key=lambda r: r["step"])
