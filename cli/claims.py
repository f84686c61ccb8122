"""`python main.py claims`: the paper's first two claims measured in one command, with 95% intervals.

Critical: the disruption probe (top-k vs bottom-k vs random-k zeroing, random-k averaged over draws).
Spatial: token clusters on the probe's baseline sessions at the middle and the last step, per block,
k and channel set, mIoU against the subject mask. The unit of every interval is a prompt (its draws
averaged first). Writes claims.json, the tables and the figures into one folder.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "claims"
PROMPTS = 32  # held-out captions by default: enough for intervals that separate, still minutes on CPU


def add_parser(sub) -> None:
    from .clusters import add_foreground_argument
    from .probe import add_probe_arguments
    from .record import add_generation_arguments

    p = sub.add_parser(NAME, help="measure the critical and spatial claims with 95%% intervals (embedded model by default)")
    p.add_argument("--prompts", type=int, default=PROMPTS, help="how many prompts (held-out captions on the embedded model)")
    p.add_argument("--prompt-file", type=Path, help="prompts for a model outside the Shapes world, one per line")
    p.add_argument("--masks", type=Path,
                   help="folder of subject masks named 000.png, 001.png ... (one per prompt); for videos, folders 000/, 001/ ... of frame masks")
    p.add_argument("--clusters", type=int, default=2)
    add_foreground_argument(p)
    add_generation_arguments(p)
    add_probe_arguments(p)
    p.add_argument("--out", required=True, type=Path)


def run(args: argparse.Namespace) -> int:
    from massivelens.engine.analysis.probe import probe

    from .console import StepBar, quiet_libraries
    from .probe import request_from
    from .prompts import choose_prompts
    from .reports import probe_report

    quiet_libraries()
    prompts = choose_prompts(args.model, None, args.prompt_file, args.prompts)
    bar = StepBar("claims")
    try:
        result = probe(request_from(args, prompts, args.out), progress=bar)
    finally:
        bar.close()
    written = probe_report(result, args.out)
    curve, order, cluster_files = _spatial(args, result)
    claims = {
        "model": args.model,
        "n_prompts": len(prompts),
        "seeds": args.seeds,
        "mode": args.mode,
        "draws": args.draws,
        "confidence": 0.95,
        "baseline_accuracy": result.baseline_accuracy,
        "disruption": [
            {"strategy": e["strategy"], "k": e["k"], "accuracy": e["accuracy"], "accuracy_ci": e["accuracy_ci"],
             "accuracy_std": e["accuracy_std"], "psnr": e["psnr"], "psnr_ci": e["psnr_ci"], "psnr_std": e["psnr_std"],
             "mask_iou": e["mask_iou"], "clip": e["clip"], "n": e["n"], "units": e["units"]}
            for e in result.summary()
        ],
        "kmeans": {**_kmeans(args.foreground), "n_clusters": args.clusters},
        "clusters": curve,
        "cluster_ordering": order,
    }
    (args.out / "claims.json").write_text(json.dumps(_no_nan(claims), indent=1))
    for path in [*written, *cluster_files, args.out / "claims.json"]:
        print(f"wrote {path}")
    for entry in order:
        print(f"  step {entry['step']}, k {entry['k']}: top > random > bottom (95% intervals apart) in "
              f"{entry['top_random_bottom']} of {entry['blocks']} blocks; top above both in {entry['top_above_both']}")
    return 0


def _spatial(args: argparse.Namespace, result) -> tuple[list[dict], list[dict], list[Path]]:
    """Cluster mIoU per block, step, k and set, the ordering counts, and the files written."""
    from massivelens.engine.analysis.clusters import claim_steps, evaluate, miou_by_block, ordering
    from massivelens.sessions.reader import open_session

    from .clusters import reference_masks
    from .reports import cluster_report

    masks = sorted(p for p in args.masks.iterdir() if p.suffix == ".png" or p.is_dir()) if args.masks else None
    if not masks and result.baseline_accuracy is None:
        return [], [], []
    sessions = result.sessions if not masks else result.sessions[: len(masks)]
    with open_session(sessions[0]) as s:
        steps = sorted(set(claim_steps(s)))
    rows = evaluate(sessions, reference_masks(sessions, masks), n_clusters=args.clusters, ks=args.ks, steps=steps,
                    rule=args.foreground)
    curve = miou_by_block(rows)
    return curve, ordering(curve), cluster_report(rows, args.out, f"Token clusters ({Path(args.model).name})")


def _no_nan(value):
    """NaN (an interval from a single prompt) as null, so claims.json is strict JSON."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return value


def _kmeans(rule: str) -> dict:
    from massivelens.engine.analysis.clusters import KMEANS
    from massivelens.engine.defaults import FOREGROUND

    return {**KMEANS, "foreground": FOREGROUND[rule], "foreground_rule": rule}
