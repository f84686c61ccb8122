"""Time to redraw the main window after a step-slider move, on a FLUX-sized session. Goal: <= 30 ms.

    python bench/gui_redraw.py [--session PATH] [--repeats N]

The session (57 blocks, 3072 channels, 28 steps, 64x64 token grid, k=16) is written once through
sessions/ by tests/session_factory.write_synthetic_session and reused from --session (default
out/bench/flux_sized.h5); writing it takes about a minute and ~10 GB of memory at peak.
A "redraw" is: move the slider, then let Qt handle every resulting event, painting included (checked).
The first visit of a step reads its token-map chunk from disk; later visits are served from the cache.
Wall time is the number that counts; the GUI thread's CPU time is printed too, because on a shared
machine other processes inflate wall time.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PySide6.QtCore import QEvent, QObject, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from massivelens.gui.app import settle  # noqa: E402
from massivelens.gui.main_window import MainWindow  # noqa: E402
from massivelens.sessions.reader import open_session  # noqa: E402
from tests.session_factory import write_synthetic_session  # noqa: E402

FLUX = {"blocks": 57, "channels": 3072, "steps": 28, "grid": (64, 64), "k": 16}
GOAL_MS = 30.0


class PaintCounter(QObject):
    """Proves that the timed interval includes painting, not just data updates."""

    def __init__(self):
        super().__init__()
        self.paints = 0

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        self.paints += event.type() == QEvent.Type.Paint
        return False


def ensure_session(path: Path) -> Path:
    """Reuse the session at `path`, or write a FLUX-sized one there (through sessions/, as the tests do)."""
    if path.is_file():
        return path
    print(f"writing a FLUX-sized synthetic session to {path} (one-off: about a minute, ~10 GB RAM)…", flush=True)
    start = time.perf_counter()
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    write_synthetic_session(partial, **FLUX)
    partial.rename(path)
    print(f"  written in {time.perf_counter() - start:.0f} s", flush=True)
    return path


def bench(path: Path, repeats: int) -> tuple[list[float], list[float], list[float]]:
    """Slider moves to consecutive steps (every one differs from the last).

    Returns wall times in ms of first visits and of revisits, and the GUI thread's CPU ms of every move."""
    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as settings_dir:
        window = MainWindow(QSettings(str(Path(settings_dir) / "bench.ini"), QSettings.Format.IniFormat))
        window.show()
        start = time.perf_counter()
        window.open_path(path)
        settle()
        print(f"open + first draw: {(time.perf_counter() - start) * 1000:.0f} ms (reads the statistics once)")
        counter = PaintCounter()
        window.view.heatmap.viewport().installEventFilter(counter)
        slider, steps = window.view.step, window.current().steps_done
        cold, warm, cpu, seen = [], [], [], set()
        for _ in range(repeats):
            step = (slider.value() + 1) % steps
            paints = counter.paints
            t0, c0 = time.perf_counter(), time.thread_time()
            slider.setValue(step)
            app.processEvents()
            elapsed, cpu_ms = (time.perf_counter() - t0) * 1000, (time.thread_time() - c0) * 1000
            assert counter.paints > paints, "the heatmap was not repainted inside the timed interval"
            (warm if step in seen else cold).append(elapsed)
            cpu.append(cpu_ms)
            seen.add(step)
        window.close()
    return cold, warm, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--session", type=Path, default=REPO / "out" / "bench" / "flux_sized.h5")
    parser.add_argument("--repeats", type=int, default=84, help="slider moves (default: three passes over 28 steps)")
    args = parser.parse_args()
    path = ensure_session(args.session)
    with open_session(path) as s:
        h, w = s.grid
        blocks, channels = len(s.blocks("image")), s.channels("image")
        shape = f"{blocks} blocks x {channels} channels x {s.steps_done} steps, grid {h}x{w}, k={s.k}"
    cold, warm, cpu = bench(path, args.repeats)
    every = cold + warm
    median = statistics.median(every)
    print(f"session: {path} ({shape})")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; GUI-thread CPU per move: "
          f"median {statistics.median(cpu):.1f} ms")
    print(f"first visit of a step (maps read from disk): median {statistics.median(cold):.1f} ms over {len(cold)}")
    if warm:
        print(f"revisit (served from the cache):            median {statistics.median(warm):.1f} ms over {len(warm)}")
    print(f"redraw on a step-slider move: median {median:.1f} ms over {len(every)} moves, "
          f"{median / GOAL_MS:.2f}x the {GOAL_MS:.0f} ms goal ({'met' if median <= GOAL_MS else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
