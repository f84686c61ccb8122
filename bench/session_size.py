"""Session size per recording profile at FLUX.1-dev geometry, from real files written by the real writer.

    python bench/session_size.py [--steps 28] [--size 1024] [--prompts 1600]

FLUX.1-dev's layout (19 double + 38 single blocks, both streams in every block, 3072 channels), a
(size/16)^2 token grid, k = 16, filled with synthetic statistics and token maps packed as the recorder
packs them (tests.session_factory.float_step). Prints MB per session and what a batch of --prompts
lean sessions needs. Targets at 1024 px, 28 steps: default <= 256 MB, lean <= 24 MB (1600 prompts in ~40 GB).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from massivelens.engine.api import kept_steps  # noqa: E402
from massivelens.sessions.records import Layout  # noqa: E402
from massivelens.sessions.writer import SessionWriter  # noqa: E402
from tests.session_factory import float_step, synthetic_info  # noqa: E402

CHANNELS, K = 3072, 16
BLOCKS = [f"double.{i}" for i in range(19)] + [f"single.{i}" for i in range(38)]


def write(path: Path, profile: str, steps: int, grid: tuple[int, int]) -> float:
    rng = np.random.default_rng(0)
    layout = Layout(blocks={"image": BLOCKS, "text": BLOCKS}, channels={"image": CHANNELS, "text": CHANNELS}, grid=grid,
                    profile=profile, kept_steps=kept_steps(profile, None, steps))
    n = len(BLOCKS)
    start = time.perf_counter()
    runs: dict = {}
    with SessionWriter(path, synthetic_info(steps, K), layout) as writer:
        for step in range(steps):
            mean = rng.gamma(2.0, size=(n, CHANNELS)).astype(np.float32)
            stats = (mean, mean * 4, np.full(n, 1.5, np.float32))
            top = np.argsort(-mean, axis=1)[:, :K].astype(np.int32)
            maps = rng.normal(size=(n, K, *grid)).astype(np.float32) if layout.keeps(step) else None
            writer.write_step(float_step(layout, step, float(step), {"image": stats, "text": stats}, {"top": top},
                                         {"top": maps} if maps is not None else {}, runs))
        writer.finish(np.zeros((grid[0] * 16, grid[1] * 16, 3), np.uint8))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--prompts", type=int, default=1600)
    args = parser.parse_args()
    grid = (args.size // 16, args.size // 16)
    print(f"FLUX.1-dev layout, {args.size} px ({grid[0]}x{grid[1]} tokens), {args.steps} steps, k {K}")
    print(f"{'profile':<8} {'MB/session':>11} {'write s':>8} {f'{args.prompts} sessions':>16}")
    with tempfile.TemporaryDirectory() as tmp:
        for profile in ("full", "default", "lean"):
            path = Path(tmp) / f"{profile}.h5"
            seconds = write(path, profile, args.steps, grid)
            size = path.stat().st_size
            print(f"{profile:<8} {size / 2**20:>11.1f} {seconds:>8.1f} {size * args.prompts / 2**30:>13.1f} GB")
            path.unlink()
    print("targets at 1024 px, 28 steps: default <= 256 MB, lean <= 24 MB (1600 lean sessions in about 40 GB)")


if __name__ == "__main__":
    main()
