"""Transport on the embedded model: attribute transfer across alpha, and inverse Euler vs forward noising.

    python bench/transport_embedded.py [--pairs 4] [--references 4] [--steps 20] [--alphas 0 0.25 0.5 0.75 1]

(a) Prompt interpolation: held-out captions as targets, the same caption with another color
(and, separately, another shape) as sources; the world reader says which of the differing
attributes each result takes from the source (from_source) and keeps from the target.
(b) Subject-driven: clean renders of held-out captions as reference images (with their captions),
transported into a target whose subject has another color and shape. Per method: PSNR of the
source run's own image against the reference (inverse Euler: the reconstruction from the inverted
noise; noising: the VAE round trip, its last step lands on x0), and from_source per alpha.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import defaults  # noqa: E402
from engine.loading import ModelSpec  # noqa: E402
from engine.metrics import psnr  # noqa: E402
from engine.shapes.world import COLORS, SHAPES, heldout_samples, parse_caption, render  # noqa: E402
from engine.transport import TransportRequest, transport  # noqa: E402
from engine.transport_report import attribute_transfer  # noqa: E402


def changed(caption: str, **attributes: str) -> str:
    return replace(parse_caption(caption), **attributes).caption


def other(values: tuple[str, ...], *avoid: str) -> str:
    return next(v for v in values if v not in avoid)


def table(title: str, rows: dict[str, list[list[float]]], alphas: list[float]) -> None:
    print(f"\n{title}")
    print(f"  {'':<26}" + "".join(f"alpha {a:<5g}" for a in alphas))
    for name, runs in rows.items():
        mean = np.mean(runs, axis=0)
        print(f"  {name:<26}" + "".join(f"{v:<11.2f}" for v in mean) + f"(n={len(runs)})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=defaults.DEFAULT_MODEL)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--references", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance", type=float, default=4.0)
    parser.add_argument("--k", type=int, default=defaults.K)
    parser.add_argument("--mask", default="all")
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = dict(spec=ModelSpec(args.model), steps=args.steps, guidance=args.guidance, height=64, width=64,
                k=args.k, mask=args.mask, alphas=tuple(args.alphas))
    tmp = Path(tempfile.mkdtemp(prefix="transport-bench-"))
    start = time.perf_counter()

    prompt_rows: dict[str, list[list[float]]] = {"color": [], "shape": []}
    for i, (caption, _, _) in enumerate(heldout_samples(args.pairs)):
        attrs = parse_caption(caption)
        sources = {"color": changed(caption, color=other(COLORS, attrs.color, attrs.background)),
                   "shape": changed(caption, shape=other(SHAPES, attrs.shape))}
        for name, source in sources.items():
            result = transport(TransportRequest(target_prompt=caption, source_prompt=source, out=tmp / f"p{i}-{name}", **base))
            prompt_rows[name].append([attribute_transfer(source, caption, r.image)[0] for r in result.results])
    table(f"(a) prompt interpolation, from_source (k={args.k}, mask {args.mask}, {args.steps} steps)", prompt_rows, args.alphas)

    psnrs: dict[str, list[float]] = {"euler": [], "noise": []}
    image_rows: dict[str, list[list[float]]] = {"euler": [], "noise": []}
    for i, (caption, _, _) in enumerate(heldout_samples(args.references, offset=100)):
        attrs = parse_caption(caption)
        reference = tmp / f"ref{i}.png"
        from PIL import Image

        Image.fromarray(render(attrs)[0]).save(reference)
        target = changed(caption, color=other(COLORS, attrs.color, attrs.background), shape=other(SHAPES, attrs.shape))
        for method in psnrs:
            result = transport(TransportRequest(target_prompt=target, source_image=reference, source_caption=caption,
                                                inversion=method, out=tmp / f"i{i}-{method}", **base))
            psnrs[method].append(psnr(result.source_image, result.reference))
            image_rows[method].append([attribute_transfer(caption, target, r.image)[0] for r in result.results])
    print(f"\n(b) reference images: source run vs reference, PSNR (dB), mean over {args.references}")
    for method, values in psnrs.items():
        label = "inverse Euler reconstruction" if method == "euler" else "noising (VAE round trip)"
        print(f"  {label:<30} {np.mean(values):6.2f}  (min {np.min(values):.2f})")
    table("(b) subject transfer from the reference (color + shape differ), from_source", image_rows, args.alphas)
    print(f"\n{time.perf_counter() - start:.0f} s, outputs in {tmp}")


if __name__ == "__main__":
    main()
