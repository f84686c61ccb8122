"""Transport on the embedded model: attribute transfer across alpha, and inverse Euler vs forward noising.

    python bench/transport_embedded.py [--pairs 8] [--references 6] [--k 16] [--guidance G] [--attributes size position color]
    python bench/transport_embedded.py --references 0 --k 4 8 16 32 64 128   # how transfer grows with k

(a) Prompt interpolation: held-out captions as targets, the same caption with one attribute changed
as sources; the world reader says whether each result takes that attribute from the source
(from_source, mean over pairs per alpha); at the last alpha also the share of the other four attributes
kept from the target ("rest kept") and the strip's smoothness (1 - Gini of consecutive image distances).
(b) Subject-driven: clean renders of held-out captions as reference images, with their captions
or without them, transported into targets whose subject has another size and position. Per method,
PSNR of the source run's own image against the reference (inverse Euler: the reconstruction from
the inverted noise; noising: the VAE round trip, since its last step lands on x0), the same for a
plain generation of the caption, and from_source per alpha.
Settings not given (k, blocks, window, mask, guidance) are the model's own (massivelens.json); several
--k values repeat part (a) at each k.
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
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from massivelens.engine import defaults  # noqa: E402
from massivelens.engine.analysis.metrics import psnr  # noqa: E402
from massivelens.engine.analysis.transport import TransportRequest, transport, with_model_defaults  # noqa: E402
from massivelens.engine.analysis.transport_report import attribute_transfer, smoothness  # noqa: E402
from massivelens.engine.generation import call_kwargs, resolve  # noqa: E402
from massivelens.engine.loading import ModelSpec, load_pipeline  # noqa: E402
from massivelens.engine.shapes.world import (  # noqa: E402
    COLORS,
    POSITIONS,
    SHAPES,
    Attributes,
    heldout_samples,
    parse_caption,
    render,
)


def changed(attrs: Attributes, name: str) -> Attributes:
    """The same attributes with `name` set to another valid value."""
    choices = {"size": ("small", "large"), "color": COLORS, "background": COLORS, "shape": SHAPES, "position": POSITIONS}
    taken = {attrs.color, attrs.background} if name in ("color", "background") else {getattr(attrs, name)}
    return replace(attrs, **{name: next(v for v in choices[name] if v not in taken)})


def row(label: str, values: list[list[float]]) -> str:
    return f"  {label:<30}" + "".join(f"{v:<8.2f}" for v in np.mean(values, axis=0)) + f"(n={len(values)})"


def prompt_table(args: argparse.Namespace, base: dict, tmp: Path, header: str) -> None:
    own = with_model_defaults(TransportRequest(target_prompt="-", source_prompt="-", out=tmp, **base))
    print(f"(a) prompt interpolation: from_source per alpha (k={own.k}, guidance {args.guidance or 'default'}, "
          f"mask {own.mask}, blocks {' '.join(own.blocks) or 'all'}, window {own.window})")
    print(header)
    last: dict[str, tuple[float, float, float]] = {}
    for name in args.attributes:
        runs, rest, smooth = [], [], []
        for i, (caption, _, _) in enumerate(heldout_samples(args.pairs)):
            source = changed(parse_caption(caption), name).caption
            result = transport(TransportRequest(target_prompt=caption, source_prompt=source, out=tmp / f"{name}{i}{own.k}", **base))
            scores = [attribute_transfer(source, caption, r.image) for r in result.results]
            runs.append([s.taken for s in scores])
            rest.append(scores[-1].unchanged)
            smooth.append(smoothness([r.image for r in result.results]))
        print(row(name, runs), flush=True)
        last[name] = (float(np.mean([r[-1] for r in runs])), float(np.mean(rest)), float(np.mean(smooth)))
    print(f"  at alpha {args.alphas[-1]:g}: {'taken':<8}{'rest kept':<11}smoothness of the strip")
    for name, (taken, rest_kept, smooth) in last.items():
        print(f"  {name:<30}{taken:<8.2f}{rest_kept:<11.2f}{smooth:.3f}")


def reference_table(args: argparse.Namespace, base: dict, tmp: Path, header: str) -> None:
    print("\n(b) reference images into targets of another size and position")
    pipe = load_pipeline(base["spec"])
    methods = [(method, captioned) for captioned in (True, False) for method in ("euler", "noise")]
    psnrs: dict[tuple, list[float]] = {m: [] for m in methods}
    runs: dict[tuple, list[list[float]]] = {m: [] for m in methods}
    plain: list[float] = []
    for i, (caption, _, _) in enumerate(heldout_samples(args.references, offset=100)):
        attrs = parse_caption(caption)
        reference = tmp / f"reference{i}.png"
        Image.fromarray(render(attrs)[0]).save(reference)
        target = changed(changed(attrs, "size"), "position").caption
        for method, captioned in methods:
            result = transport(TransportRequest(target_prompt=target, source_image=reference, source_caption=caption if captioned else "",
                                                inversion=method, out=tmp / f"{method}{captioned}{i}", **base))
            psnrs[method, captioned].append(psnr(result.source_image, result.reference))
            runs[method, captioned].append([attribute_transfer(caption, target, r.image).taken for r in result.results])
        gen = resolve(args.model, caption, guidance=args.guidance)
        plain.append(psnr(np.asarray(pipe(**call_kwargs(pipe, gen)).images[0]), result.reference))
    print(f"  PSNR (dB) to the reference of the source run's image, mean over {args.references}")
    print("  (euler: reconstruction from the inverted noise; noise: the VAE round trip, its last step lands on x0)")
    for (method, captioned), values in psnrs.items():
        print(f"    {method:<6} {'with caption' if captioned else 'no caption':<14} {np.mean(values):6.2f}")
    print(f"    plain generation of the caption  {np.mean(plain):6.2f}")
    print("  from_source (size and position taken from the reference):")
    print(header)
    for (method, captioned), values in runs.items():
        print(row(f"{method}, {'with caption' if captioned else 'no caption'}", values))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=defaults.DEFAULT_MODEL)
    parser.add_argument("--pairs", type=int, default=8, help="prompt pairs per attribute (0: skip part a)")
    parser.add_argument("--references", type=int, default=6, help="reference images (0: skip part b)")
    parser.add_argument("--attributes", nargs="+", default=["size", "position", "shape", "color", "background"])
    parser.add_argument("--guidance", type=float)
    parser.add_argument("--k", type=int, nargs="+", default=[None], help="channels per block; several: part (a) at each")
    parser.add_argument("--mask")
    parser.add_argument("--blocks", nargs="*", help='block names or ranges ("0:4"), or all')
    parser.add_argument("--window", type=int, nargs=2, default=None, metavar=("START", "END"), help="step range (half-open)")
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = dict(spec=ModelSpec(args.model), guidance=args.guidance, k=args.k[0], mask=args.mask, alphas=tuple(args.alphas),
                blocks=None if args.blocks is None else tuple(args.blocks), window=tuple(args.window) if args.window else None)
    tmp = Path(tempfile.mkdtemp(prefix="transport-bench-"))
    start = time.perf_counter()
    header = f"  {'':<30}" + "".join(f"a={a:<6g}" for a in args.alphas)
    for k in args.k if args.pairs else ():
        prompt_table(args, {**base, "k": k}, tmp, header)
    if args.references:
        reference_table(args, base, tmp, header)
    print(f"\n{time.perf_counter() - start:.0f} s, outputs in {tmp}")


if __name__ == "__main__":
    main()
