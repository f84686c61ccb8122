"""`python main.py claims`: the paper's first two claims measured in one command.

Critical: the disruption probe (top-k vs bottom-k vs random-k zeroing). Spatial: token clusters
on the probe's baseline sessions, per-block mIoU against the subject mask. Writes claims.json,
the tables and the figures into one folder.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "claims"


def add_parser(sub) -> None:
    from .probe import add_probe_arguments
    from .record import add_generation_arguments

    p = sub.add_parser(NAME, help="measure the critical and spatial claims (embedded model by default)")
    p.add_argument("--prompts", type=int, default=8, help="how many prompts (held-out captions on the embedded model)")
    p.add_argument("--prompt-file", type=Path, help="prompts for a model outside the Shapes world, one per line")
    p.add_argument("--masks", type=Path,
                   help="folder of subject masks named 000.png, 001.png ... (one per prompt); for videos, folders 000/, 001/ ... of frame masks")
    p.add_argument("--clusters", type=int, default=2)
    add_generation_arguments(p)
    add_probe_arguments(p)
    p.add_argument("--out", required=True, type=Path)


def run(args: argparse.Namespace) -> int:
    from massivelens.engine.analysis.clusters import evaluate, miou_by_block
    from massivelens.engine.analysis.probe import probe

    from .clusters import reference_masks
    from .console import StepBar, quiet_libraries
    from .probe import request_from
    from .prompts import choose_prompts
    from .reports import cluster_report, probe_report

    quiet_libraries()
    prompts = choose_prompts(args.model, None, args.prompt_file, args.prompts)
    bar = StepBar("claims")
    try:
        result = probe(request_from(args, prompts, args.out), progress=bar)
    finally:
        bar.close()
    written = probe_report(result, args.out)
    masks = sorted(p for p in args.masks.iterdir() if p.suffix == ".png" or p.is_dir()) if args.masks else None
    cluster_rows = []
    if masks or result.baseline_accuracy is not None:
        sessions = result.sessions if not masks else result.sessions[: len(masks)]
        cluster_rows = evaluate(sessions, reference_masks(sessions, masks), n_clusters=args.clusters)
        written += cluster_report(cluster_rows, args.out, f"Token clusters ({Path(args.model).name})")
    claims = {
        "model": args.model,
        "n_prompts": len(prompts),
        "seeds": args.seeds,
        "mode": args.mode,
        "baseline_accuracy": result.baseline_accuracy,
        "disruption": [
            {"strategy": e["strategy"], "k": e["k"], "accuracy": e["accuracy"], "accuracy_std": e["accuracy_std"],
             "psnr": e["psnr"], "psnr_std": e["psnr_std"], "mask_iou": e["mask_iou"], "clip": e["clip"], "n": e["n"]}
            for e in result.summary()
        ],
        "clusters": [{"block": e["block"], "strategy": e["strategy"], "miou": e["miou"]} for e in miou_by_block(cluster_rows)],
    }
    (args.out / "claims.json").write_text(json.dumps(claims, indent=1))
    for path in [*written, args.out / "claims.json"]:
        print(f"wrote {path}")
    return 0
