"""How massive activations grow: train embedded-model variants from the same seed and compare their snapshots.

    python bench/growth_variants.py --arch flux2 --steps 1500 --batch 32 --threads 2 --out runs/growth
    python bench/growth_variants.py --only base wide deep --steps 3000     # a subset, longer
    python bench/growth_variants.py --report runs/growth                   # the table again, no training

Each variant is one `python -m massivelens.engine.shapes.train` run (a subprocess, the VAE taken from the
shipped shapes-dit so only the DiT trains) that changes one thing the literature ties to massive
activations: depth, width, learning rate, weight decay, or training length. Training keeps activation
snapshots (engine/shapes/snapshots.py); the table gives, per variant, the held-out flow loss at the end
and, at the last snapshot of the EMA weights, the block with the largest max/median, that ratio, its
top-1 channel's share of largest-|x| tokens, and the share of samples meeting Sun et al.'s rule
(> 100 and > 1000x the median), with the wall time. Written to OUT/variants.md and OUT/variants.json.
Register tokens are not among the variants: diffusers' FLUX transformers have no register slot, and
adding tokens would change the sequence every adapter and session reads.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from massivelens.engine.shapes.snapshots import SNAPSHOT_FILE, read  # noqa: E402
from massivelens.engine.shapes.train import LOG_NAME  # noqa: E402
from massivelens.resources import FOLDER  # noqa: E402

# name -> (what it changes, extra train flags; "{steps}" is the run's --steps)
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "base": ("the shipped recipe (width 128, 2 double + 4 single blocks, lr 8e-4, wd 0.01)", []),
    "deep": ("8 single blocks instead of 4", ["--dit-single-layers", "8"]),
    "wide": ("width 256 (8 heads) instead of 128", ["--dit-heads", "8"]),
    "lr-high": ("learning rate 2.4e-3 (3x)", ["--lr", "2.4e-3"]),
    "lr-low": ("learning rate 2.7e-4 (1/3)", ["--lr", "2.7e-4"]),
    "wd-0": ("no weight decay", ["--weight-decay", "0"]),
    "wd-high": ("weight decay 0.1 (10x)", ["--weight-decay", "0.1"]),
    "long": ("3x the steps", ["--steps", "{long}"]),
}


def train(name: str, args: argparse.Namespace) -> float:
    """One variant's training run; returns its wall time in seconds."""
    folder = args.out / name
    flags = [f.format(long=3 * args.steps) for f in VARIANTS[name][1]]
    vae = ["--vae-steps", "200"] if args.vae_from == "none" else ["--vae-from", args.vae_from, "--vae-steps", "0"]
    command = [sys.executable, "-m", "massivelens.engine.shapes.train", "--arch", args.arch, *vae, "--decoder-steps", "0",
               "--steps", str(args.steps), "--batch", str(args.batch), "--threads", str(args.threads), "--seed", str(args.seed),
               "--snapshot-every", str(args.snapshot_every),
               "--out", str(folder / "pipeline"), "--log", str(folder / LOG_NAME), *args.train_flags, *flags]
    if args.arch == "flux2":
        command.append("--freeze-text-encoder")
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with (folder / "train.out").open("w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    (folder / "wall_s.txt").write_text(f"{seconds:.1f}\n")
    return seconds


def summary(name: str, folder: Path) -> dict | None:
    """The variant's last snapshot and held-out loss; None when it has not run."""
    snapshots = read(folder / SNAPSHOT_FILE)
    if not snapshots:
        return None
    last = snapshots[-1]
    peak = max(last["blocks"], key=lambda b: b["max_over_median"])
    with (folder / LOG_NAME).open() as f:
        losses = [float(r["heldout_loss"]) for r in csv.DictReader(f) if r["phase"] == "dit" and r["heldout_loss"]]
    wall = folder / "wall_s.txt"
    return {"variant": name, "changes": VARIANTS[name][0], "steps": last["step"], "heldout_loss": losses[-1] if losses else None,
            "block": peak["block"], "max_over_median": peak["max_over_median"], "first_max_over_median":
            next(b["max_over_median"] for b in snapshots[0]["blocks"] if b["block"] == peak["block"]),
            "top_share": peak["top_share"], "sun": max(b["sun"] for b in last["blocks"]),
            "wall_s": float(wall.read_text()) if wall.exists() else None}


def report(out: Path, names: list[str]) -> str:
    rows = [r for r in (summary(n, out / n) for n in names) if r is not None]
    (out / "variants.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["| variant | changes | steps | held-out loss | peak block | max/median (step 0 -> last) | top-1 share | Sun's rule "
             "| wall |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        loss = "-" if r["heldout_loss"] is None else f"{r['heldout_loss']:.5f}"
        wall = "-" if r["wall_s"] is None else f"{r['wall_s'] / 60:.0f} min"
        lines.append(f"| {r['variant']} | {r['changes']} | {r['steps']} | {loss} | {r['block']} | "
                     f"{r['first_max_over_median']:.2f} -> {r['max_over_median']:.2f} | {r['top_share']:.2f} | "
                     f"{r['sun']:.2f} | {wall} |")
    table = "\n".join(lines) + "\n"
    (out / "variants.md").write_text(table)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=("flux", "flux2"), default="flux2")
    parser.add_argument("--only", nargs="+", choices=sorted(VARIANTS), help="variants to train (default: all)")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--snapshot-every", type=int, default=250)
    parser.add_argument("--out", type=Path, default=Path("runs/growth"))
    parser.add_argument("--vae-from", default=str(FOLDER / "shapes-dit"),
                        help="model whose VAE is reused; none: train one (200 steps)")
    parser.add_argument("--report", type=Path, metavar="OUT", help="print the table of finished variants in OUT and stop")
    parser.add_argument("--train-flags", nargs=argparse.REMAINDER, default=[], help="passed on to every training run (last)")
    args = parser.parse_args()
    if args.report is not None:
        print(report(args.report, list(VARIANTS)), end="")
        return
    for name in args.only or list(VARIANTS):
        print(f"{name}: {VARIANTS[name][0]}", flush=True)
        print(f"  {train(name, args) / 60:.1f} min", flush=True)
    print(report(args.out, list(VARIANTS)), end="")


if __name__ == "__main__":
    main()
