"""Score the embedded model: generate held-out captions, read the images back, report accuracy.

    python -m massivelens.engine.shapes.evaluate --model resources/shapes-dit --n 200
    python -m massivelens.engine.shapes.evaluate --model resources/shapes-flux2 --n 200
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline, FlowMatchEulerDiscreteScheduler, Flux2KleinPipeline
from PIL import Image

from massivelens.resources import EMBEDDED_MODEL

from .model import CFG, NEGATIVE_PROMPT, STEPS
from .reader import score
from .world import SIZE, heldout_samples

DEFAULT_STEPS = STEPS
DEFAULT_CFG = CFG


def generate(pipe: DiffusionPipeline, captions: list[str], steps: int = DEFAULT_STEPS, cfg: float = DEFAULT_CFG,
             seed: int = 0) -> list[np.ndarray]:
    """uint8 HxWx3 images for captions through the stock pipeline call, classifier-free guided against the
    empty caption: FluxPipeline's true CFG (negative_prompt + true_cfg_scale), Flux2KleinPipeline's own CFG
    (guidance_scale; it always guides against "")."""
    if isinstance(pipe, Flux2KleinPipeline):
        guidance = dict(guidance_scale=cfg, max_sequence_length=pipe.tokenizer.model_max_length)
    else:
        guidance = dict(negative_prompt=[NEGATIVE_PROMPT] * len(captions), true_cfg_scale=cfg,
                        max_sequence_length=pipe.tokenizer_2.model_max_length)
    result = pipe(
        prompt=captions, height=SIZE, width=SIZE, num_inference_steps=steps,
        generator=torch.Generator().manual_seed(seed), output_type="np", **guidance,
    )
    return [(np.clip(im, 0.0, 1.0) * 255).round().astype(np.uint8) for im in result.images]


def evaluate(pipe: DiffusionPipeline, n: int, steps: int = DEFAULT_STEPS, cfg: float = DEFAULT_CFG,
             batch: int = 1, seed: int = 0, grid: Path | None = None) -> dict[str, float]:
    """Generate n held-out captions (batch at a time), score them and time them."""
    pipe.set_progress_bar_config(disable=True)
    captions = [caption for caption, _, _ in heldout_samples(n)]
    images: list[np.ndarray] = []
    start, cpu_start = time.perf_counter(), time.process_time()
    for i in range(0, n, batch):
        images += generate(pipe, captions[i : i + batch], steps, cfg, seed + i)
    seconds = (time.perf_counter() - start) / n
    result = score(list(zip(captions, images)))
    result["seconds_per_image"] = seconds
    # CPU time of this process: on a shared machine, the cost on one core when wall time is inflated by others.
    result["cpu_seconds_per_image"] = (time.process_time() - cpu_start) / n
    if grid is not None:
        cols = 10
        rows = [np.concatenate(images[r : r + cols], axis=1) for r in range(0, len(images) - cols + 1, cols)]
        Image.fromarray(np.concatenate(rows, axis=0)).save(grid)
    return result


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=EMBEDDED_MODEL)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--cfg", type=float, default=DEFAULT_CFG)
    parser.add_argument("--shift", type=float, default=None, help="override the scheduler's shift")
    parser.add_argument("--batch", type=int, default=1, help="images per pipeline call (1 times single images)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--grid", type=Path, default=None, help="write the first images as a PNG grid")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    pipe = DiffusionPipeline.from_pretrained(args.model).to(args.device)
    if args.shift is not None:
        pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config, shift=args.shift)
    result = evaluate(pipe, args.n, args.steps, args.cfg, args.batch, args.seed, args.grid)
    print(json.dumps({k: round(v, 4) for k, v in result.items()}, indent=2))
    return result


if __name__ == "__main__":
    main()
