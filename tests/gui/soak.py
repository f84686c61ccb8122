"""A seeded random-interaction soak of the main window: clicks, keys, sliders, opens of good, bad and damaged files,
overlapping record / probe / transport jobs, cancels, exports, Save As onto open files, comparisons opened and
closed, sessions closed, resizes. It counts what a user must never meet: unhandled exceptions, Qt warnings, jobs
that fail, actions that hang; and it samples the process's memory. tests/gui/test_soak.py runs it briefly;
bench/gui_soak.py runs it for minutes, on the real engine."""
from __future__ import annotations

import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QPointF, Qt, qInstallMessageHandler
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox

from massivelens.gui.main_window import MainWindow

HANG_S = 20.0  # an action (with the events it causes) that takes longer than this counts as a hang


def rss_mb() -> float:
    """Resident memory of this process (Linux /proc), in MB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 1e6


def garble(source: Path, target: Path, seed: int) -> Path:
    """A copy of a session with 4 KiB of random bytes at a random place."""
    rng = np.random.default_rng(seed)
    raw = bytearray(source.read_bytes())
    start = int(rng.integers(2048, max(2049, len(raw) - 4096)))
    raw[start:start + 4096] = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    target.write_bytes(bytes(raw))
    return target


@dataclass
class SoakReport:
    actions: Counter = field(default_factory=Counter)
    exceptions: list[str] = field(default_factory=list)
    qt_warnings: list[str] = field(default_factory=list)
    failed_jobs: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    rss: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MB)

    def summary(self) -> str:
        growth = self.rss[-1][1] - self.rss[0][1] if len(self.rss) > 1 else 0.0
        warm = next((mb for t, mb in self.rss if t >= 60), None)  # after the first minute: models loaded, caches full
        after = f", {self.rss[-1][1] - warm:+.0f} MB after the first minute" if warm is not None else ""
        return (f"{sum(self.actions.values())} actions ({', '.join(f'{k} {v}' for k, v in sorted(self.actions.items()))}); "
                f"unhandled exceptions {len(self.exceptions)}, Qt warnings {len(self.qt_warnings)}, "
                f"failed jobs {len(self.failed_jobs)}, hangs {len(self.hangs)}; RSS {self.rss[0][1]:.0f} -> "
                f"{self.rss[-1][1]:.0f} MB ({growth:+.0f} MB{after})")


class Soak:
    """Drives `window` with actions drawn from a seeded generator; `files` are session files to open."""

    def __init__(self, window: MainWindow, folder: Path, files: list[Path], seed: int = 0,
                 log: Callable[[str], None] = lambda line: None):
        self.window, self.folder, self.log = window, Path(folder), log
        self.rng = np.random.default_rng(seed)
        self.report = SoakReport()
        self.good = list(files)
        self.bad = [self._bad_file()] + [garble(f, self.folder / f"garbled-{i}.h5", seed + i) for i, f in enumerate(files)]
        for runner in (window.runner, window.probe_panel.runner, window.transport_editor.runner):
            runner.failed.connect(lambda message, r=runner: self.report.failed_jobs.append(f"{r.label}: {message}"))
        self.actions: dict[str, Callable[[], None]] = {
            "click cell": self.click_cell, "arrow key": self.arrow_key, "step slider": self.step_slider,
            "stream": self.stream, "log scale": self.log_scale, "clusters": self.clusters, "open": self.open_good,
            "open bad": self.open_bad, "record": self.record, "probe": self.probe, "transport": self.transport,
            "cancel": self.cancel, "export": self.export, "save as": self.save_as, "compare": self.compare,
            "close session": self.close_session, "resize": self.resize, "zoom": self.zoom,
        }

    def _bad_file(self) -> Path:
        path = self.folder / "not-a-session.h5"
        path.write_bytes(b"not hdf5 at all")
        return path

    # Running -------------------------------------------------------------------------------------
    def run(self, actions: int | None = None, seconds: float | None = None) -> SoakReport:
        """`actions` actions, or as many as fit in `seconds`; then waits for the running jobs and closes nothing."""
        start = time.perf_counter()
        hook, sys.excepthook = sys.excepthook, self._exception
        qInstallMessageHandler(self._qt_message)
        try:
            self.report.rss.append((0.0, rss_mb()))
            count = 0
            while (actions is None or count < actions) and (seconds is None or time.perf_counter() - start < seconds):
                self.step(count)
                count += 1
                if count % 25 == 0:
                    self.report.rss.append((time.perf_counter() - start, rss_mb()))
            self.drain()
            self.report.rss.append((time.perf_counter() - start, rss_mb()))
        finally:
            sys.excepthook = hook
            qInstallMessageHandler(None)
        return self.report

    def step(self, index: int) -> None:
        name = str(self.rng.choice(list(self.actions)))
        began = time.perf_counter()
        self.actions[name]()
        self._events()
        took = time.perf_counter() - began
        self.report.actions[name] += 1
        self.log(f"{index:5d} {name:14s} {took * 1000:7.0f} ms")
        if took > HANG_S:
            self.report.hangs.append(f"{name} took {took:.1f} s")

    def drain(self) -> None:
        """End the run as a person quitting would: withdraw waiting jobs, cancel the running one, and wait for it,
        so every job's outcome is counted."""
        jobs = self.window.jobs
        for runner in list(jobs.waiting):
            runner.cancel()
        if jobs.active is not None:
            jobs.active.cancel()
        while jobs.active is not None or jobs.waiting:
            self._events()
            time.sleep(0.01)
        self._events()

    def _events(self) -> None:
        for box in self.window.findChildren(QMessageBox):
            box.close()  # a person reads the message and closes it
        QApplication.processEvents()

    def _exception(self, kind, value, trace) -> None:
        self.report.exceptions.append(f"{kind.__name__}: {value}")
        self.log(f"UNHANDLED {kind.__name__}: {value}")

    def _qt_message(self, mode, context, message: str) -> None:
        if not message.startswith("This plugin does not support"):  # the offscreen platform's own notes
            self.report.qt_warnings.append(message)

    # Actions -------------------------------------------------------------------------------------
    def _pick(self, items: list):
        return items[int(self.rng.integers(len(items)))] if items else None

    def click_cell(self) -> None:
        plot = self._pick([self.window.view.heatmap, self.window.view.step_heatmap])
        if plot.values is None:
            return
        rows, cols = plot.values.shape
        point = plot.plot.getViewBox().mapViewToScene(QPointF(self.rng.integers(cols), self.rng.integers(rows)))
        QTest.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=plot.mapFromScene(point))

    def arrow_key(self) -> None:
        key = self._pick([Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_Home])
        QTest.keyClick(self._pick([self.window.view.heatmap, self.window.view.step_heatmap]), key)

    def step_slider(self) -> None:
        slider = self.window.view.step
        slider.setValue(int(self.rng.integers(slider.minimum(), slider.maximum() + 1)))

    def stream(self) -> None:
        box = self.window.view.stream
        if box.count():
            box.setCurrentIndex(int(self.rng.integers(box.count())))

    def log_scale(self) -> None:
        self.window.view.log.toggle()

    def clusters(self) -> None:
        overlay = self.window.view.clusters
        overlay.n_clusters.setValue(int(self.rng.integers(2, 5)))
        if overlay.shown_rank.count():
            overlay.shown_rank.setCurrentIndex(int(self.rng.integers(overlay.shown_rank.count())))

    def open_good(self) -> None:
        self.window.open_path(self._pick(self.good))

    def open_bad(self) -> None:
        self.window.open_path(self._pick(self.bad))

    def record(self) -> None:
        self.window.record_panel.record.click()

    def probe(self) -> None:
        panel = self.window.show_probe_panel()
        panel.ks.setText("1")
        panel.run_button.click()

    def transport(self) -> None:
        editor = self.window.show_transport_editor()
        editor.source_prompt.setText("a large red circle on a white background at top left")
        editor.target_prompt.setText("a large red circle on a white background at bottom right")
        editor.alphas.setText("0 1")
        editor.run_button.click()

    def cancel(self) -> None:
        self._pick([self.window.cancel_recording, self.window.probe_panel._cancel, self.window.transport_editor._cancel])()

    def export(self) -> None:
        target = self.folder / "exports" / f"{int(self.rng.integers(3))}"
        if self.rng.random() < 0.5:
            self.window.export_figures(target)
        else:
            self.window.export_view("channel_heatmap", target / f"view.{self._pick(['png', 'svg', 'pdf'])}")

    def save_as(self) -> None:
        """Half the time onto a file another session reads (refused), else to a fresh name."""
        open_files = [d.path for d in self.window.session_list.sessions()]
        onto = self._pick(open_files) if self.rng.random() < 0.5 else None
        saved = self.window.save_as(onto or self.folder / f"saved-{int(self.rng.integers(1_000_000))}.h5")
        if saved is not None:
            self.good.append(saved.path)

    def compare(self) -> None:
        sessions = self.window.session_list.sessions()
        if self.window.compare_windows and self.rng.random() < 0.6:
            self._pick(self.window.compare_windows).close()
        elif len(sessions) >= 2:
            first, second = self.rng.choice(len(sessions), 2, replace=False)
            self.window.compare(sessions[first], sessions[second])

    def close_session(self) -> None:
        data = self._pick([d for d in self.window.session_list.sessions() if d is not self.window.live.data])
        if data is not None:
            self.window.close_session(data)

    def resize(self) -> None:
        self.window.resize(*self._pick([(1024, 640), (1280, 720), (1400, 900), (915, 600)]))

    def zoom(self) -> None:
        box = self.window.view.heatmap.plot.getViewBox()
        box.scaleBy((float(self.rng.uniform(0.3, 1.5)), 1.0))


def copy_sessions(files: list[Path], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copyfile(f, folder / f.name)) for f in files]
