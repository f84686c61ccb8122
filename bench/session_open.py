"""Opening a large session is lazy: time to open and to read one step's view, for a ~1 GB file.

    python bench/session_open.py [--keep PATH]

Writes a synthetic FLUX-sized session (57 blocks, 3072 channels, 28 steps, 96x96 token grid,
k=16: about 1 GB, mostly token maps) through sessions/, then times, in one run: open + run
attributes, one step's block x channel heatmap, one token map. Goal: opening well under 1 s.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from massivelens.sessions.reader import open_session  # noqa: E402
from tests.session_factory import write_synthetic_session  # noqa: E402


def timed(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="write the session here and keep it (default: a temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "big.h5"
        if not path.exists():
            t0 = time.perf_counter()
            write_synthetic_session(path, blocks=57, channels=3072, steps=28, grid=(96, 96), k=16)
            print(f"wrote {path.stat().st_size / 1e9:.2f} GB in {time.perf_counter() - t0:.1f} s")

        def open_and_describe():
            with open_session(path) as s:
                s.info, s.blocks("image"), s.steps_done

        s = open_session(path)
        results = {
            "open + attributes + block names": timed(open_and_describe),
            "heatmap of one step (57 x 3072)": timed(lambda: s.mean_abs("image", 14)),
            "one token map (96 x 96)": timed(lambda: s.token_map(14, 30, int(s.top_channels(14)[30][0]))),
        }
        s.close()
        for label, seconds in results.items():
            print(f"{label:<36} {seconds * 1000:8.1f} ms")
        print(f"goal: open well under 1 s -> ratio to 1 s: {results['open + attributes + block names']:.4f}")


if __name__ == "__main__":
    main()
