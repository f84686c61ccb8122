"""`python main.py transport`: copy a source's massive channels into a target generation, over alphas."""
from __future__ import annotations

import argparse
from pathlib import Path

from massivelens.engine.defaults import ALPHAS, INVERSION_GUIDANCE, INVERSIONS, MASK_MODES
from massivelens.engine.errors import BadRequest

from .clusters import add_foreground_argument
from .record import add_generation_arguments

NAME = "transport"


def step_window(text: str) -> tuple[int | None, int | None]:
    from massivelens.engine.analysis.transport import parse_window

    try:
        return parse_window(text)
    except BadRequest as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="transport massive channels from a source prompt or image into a target generation")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--source-prompt", help="source prompt (prompt interpolation)")
    source.add_argument("--source-image", type=Path, help="reference image, inverted into a trajectory (subject-driven generation)")
    p.add_argument("--source-caption", default="", help="caption of the reference image (default: none)")
    p.add_argument("--target-prompt", required=True)
    p.add_argument("--alpha", nargs="+", type=float, default=list(ALPHAS), help="strengths in [0, 1], one image each")
    p.add_argument("--blocks", nargs="+", metavar="BLOCK",
                   help="block names, index ranges like 0:4, or all (default: the model's transport defaults, else all)")
    p.add_argument("--window", "--step-window", dest="window", type=step_window, metavar="START:END",
                   help="denoising steps that are transported, half-open; ':' = all (default: the model's, else all)")
    p.add_argument("--mask", choices=MASK_MODES,
                   help="where: source or target foreground, their union, or all tokens (default: the model's, else all)")
    p.add_argument("--mask-step", type=int, help="step of the token maps the masks are clustered on (default: middle)")
    p.add_argument("--mask-block", type=int, help="block index of those token maps (default: middle)")
    add_foreground_argument(p)
    p.add_argument("--inversion", choices=INVERSIONS, default="euler", help="how a reference image becomes a trajectory")
    p.add_argument("--inversion-guidance", type=float, default=INVERSION_GUIDANCE,
                   help="guidance of the reference's inversion and trajectory (default: 1, no classifier-free guidance)")
    p.add_argument("--clip", metavar="ID", help="CLIP model (hub id or local folder) for text and image similarities")
    add_generation_arguments(p)
    p.set_defaults(k=None)  # transport's k: the model's transport defaults unless given
    p.add_argument("--out", required=True, type=Path, help="output folder")


def run(args: argparse.Namespace) -> int:
    from massivelens.engine.analysis.transport import TransportRequest, transport
    from massivelens.engine.analysis.transport_report import save
    from massivelens.engine.loading import ModelSpec

    from .console import StepBar, quiet_libraries

    quiet_libraries()
    clip = _clip(args.clip, args.device)
    request = TransportRequest(
        target_prompt=args.target_prompt, out=args.out, source_prompt=args.source_prompt, source_image=args.source_image,
        source_caption=args.source_caption, inversion=args.inversion,
        inversion_guidance=args.inversion_guidance, alphas=tuple(args.alpha), blocks=None if args.blocks is None else tuple(args.blocks),
        window=args.window, mask=args.mask, k=args.k, mask_step=args.mask_step, mask_block=args.mask_block,
        foreground=args.foreground,
        spec=ModelSpec(args.model, args.dtype, args.device, args.offload), negative_prompt=args.negative_prompt,
        seed=args.seed, steps=args.steps, guidance=args.guidance, height=args.height, width=args.width, frames=args.frames,
    )
    bar = StepBar("transport")
    try:
        result = transport(request, progress=bar)
    finally:
        bar.close()
    written, data = save(result, clip)
    for path in written:
        print(f"wrote {path}")
    for row in data["results"]:
        transfer = "" if row["from_source"] is None else f"  from source {row['from_source']:.2f}  from target {row['from_target']:.2f}"
        if row.get("unchanged") is not None:
            transfer += f"  rest kept {row['unchanged']:.2f}"
        print(f"  alpha {row['alpha']:<5g} {row['image']}{transfer}")
    if data["smoothness"] is not None:
        print(f"  smoothness {data['smoothness']:.3f}")
    return 0


def _clip(model: str | None, device: str | None):
    """Loaded before the sweep, so a bad CLIP id fails in a second, not after the generations."""
    if model is None:
        return None
    from massivelens.engine.analysis.clip_score import ClipScorer

    return ClipScorer(model, device)
