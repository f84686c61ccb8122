"""`python main.py probe`: zero the top-k, bottom-k or random-k channels and measure what breaks."""
from __future__ import annotations

import argparse
from pathlib import Path

from massivelens.engine import defaults
from massivelens.sessions.schema import RANDOM_DRAWS

from .record import add_generation_arguments

NAME = "probe"


def add_probe_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ks", nargs="+", type=int, default=list(defaults.PROBE_KS), help="numbers of channels to disrupt per block")
    p.add_argument("--strategies", nargs="+", choices=defaults.STRATEGIES, default=list(defaults.STRATEGIES))
    p.add_argument("--draws", type=int, default=RANDOM_DRAWS,
                   help="random channel sets per block, prompt and k (seeded by prompt, seed and draw); figures average them")
    p.add_argument("--mode", choices=("zero", "mean"), default="zero", help="set channels to zero or to their mean")
    p.add_argument("--blocks", nargs="*", help="blocks to disrupt (default: all)")
    p.add_argument("--seeds", nargs="+", type=int, default=[defaults.SEED])
    p.add_argument("--clip", metavar="ID", help="CLIP model (hub id or local folder): CLIP similarity of each image to its prompt")


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="disruption probe: regenerate with k channels zeroed per strategy")
    p.add_argument("--prompt", nargs="+", help="prompts (default: held-out captions on the embedded model)")
    p.add_argument("--prompts", type=Path, help="a text file with one prompt per line")
    p.add_argument("--n", type=int, default=4, help="how many default prompts")
    add_generation_arguments(p)
    add_probe_arguments(p)
    p.add_argument("--out", required=True, type=Path)


def request_from(args: argparse.Namespace, prompts: list[str], out: Path):
    from massivelens.engine.analysis.probe import ProbeRequest
    from massivelens.engine.loading import ModelSpec

    return ProbeRequest(
        prompts=prompts, out=out, spec=ModelSpec(args.model, args.dtype, args.device, args.offload),
        seeds=tuple(args.seeds), ks=tuple(args.ks), strategies=tuple(args.strategies), draws=args.draws,
        mode=args.mode, blocks=tuple(args.blocks) if args.blocks else None, negative_prompt=args.negative_prompt,
        steps=args.steps, guidance=args.guidance, height=args.height, width=args.width, frames=args.frames, clip=args.clip,
    )


def run(args: argparse.Namespace) -> int:
    from massivelens.engine.analysis.probe import probe

    from .console import StepBar, quiet_libraries
    from .prompts import choose_prompts
    from .reports import probe_report

    quiet_libraries()
    prompts = choose_prompts(args.model, args.prompt, args.prompts, args.n)
    bar = StepBar("probe")
    try:
        result = probe(request_from(args, prompts, args.out), progress=bar)
    finally:
        bar.close()
    for path in probe_report(result, args.out):
        print(f"wrote {path}")
    if result.baseline_temporal is not None:
        print(f"  baseline temporal consistency {result.baseline_temporal:.2f} dB (mean PSNR of consecutive frames)")
    for e in result.summary():
        acc = "" if e["accuracy"] is None else f"  accuracy {e['accuracy']:.2f}"
        temporal = "" if e["temporal"] is None else f"  temporal {e['temporal']:6.2f} dB"
        print(f"  {e['strategy']:<7} k={e['k']:<3} psnr {e['psnr']:6.2f} dB{acc}{temporal}")
    return 0
