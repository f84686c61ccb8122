"""The spatial claim under each foreground rule, on sessions already recorded (no model needed).

    python bench/foreground_rules.py runs/claims/sessions --ks 1 2 4 8 16 --out bench/results/foreground_rules.md

The sessions are `claims`' baseline sessions of the embedded model (its `sessions/` folder), scored against
the world reader's subject masks at the middle and the last step, as `claims` scores them. Per rule, step
and k: top, random and bottom mIoU (mean over blocks, and the best block), and in how many blocks top >
random > bottom with non-overlapping 95% intervals. The paper's rule ("score") calls foreground the cluster
of higher summed score; "border" the cluster that holds the least of the image's border.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from massivelens.cli.clusters import reference_masks  # noqa: E402
from massivelens.engine.analysis.clusters import claim_steps, evaluate, miou_by_block, ordering  # noqa: E402
from massivelens.engine.defaults import FOREGROUND  # noqa: E402
from massivelens.sessions.reader import open_session  # noqa: E402


def table(sessions: list[Path], ks: list[int], rules: list[str]) -> str:
    references = reference_masks(sessions, None)
    with open_session(sessions[0]) as s:
        steps = sorted(set(claim_steps(s)))
    lines = [f"{len(sessions)} sessions ({sessions[0].parent}), 95% intervals over sessions", "",
             "| rule | step | k | top: mIoU, mean over blocks (best block) | random | bottom | top > random > bottom "
             "| top above both |",
             "|---|---|---|---|---|---|---|---|"]
    for rule in rules:
        curve = miou_by_block(evaluate(sessions, references, ks=ks, steps=steps, rule=rule))
        for entry in ordering(curve):
            at = [e for e in curve if (e["step"], e["k"]) == (entry["step"], entry["k"])]
            cells = []
            for strategy in ("top", "random", "bottom"):
                mine = [e for e in at if e["strategy"] == strategy]
                best = max(mine, key=lambda e: e["miou"])
                cells.append(f"{np.mean([e['miou'] for e in mine]):.2f} ({best['miou']:.2f} {best['block']})")
            lines.append(f"| {rule} | {entry['step']} | {entry['k']} | {' | '.join(cells)} | "
                         f"{entry['top_random_bottom']} of {entry['blocks']} | {entry['top_above_both']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sessions", type=Path, help="a folder of recorded sessions (claims' sessions/)")
    parser.add_argument("--ks", nargs="+", type=int, default=[1, 2, 4, 8, 16])
    parser.add_argument("--rules", nargs="+", choices=list(FOREGROUND), default=list(FOREGROUND))
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args()
    text = table(sorted(args.sessions.glob("*.h5")), args.ks, args.rules)
    print(text, end="")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(f"# python bench/foreground_rules.py {args.sessions} --ks {' '.join(map(str, args.ks))}\n\n{text}")


if __name__ == "__main__":
    main()
