"""Random use of the app for minutes: a seeded soak of the main window (tests/gui/soak.py) on the real engine.

    python bench/gui_soak.py --minutes 10            # record / probe / transport on the embedded model
    python bench/gui_soak.py --minutes 2 --fake      # fake jobs: the GUI alone, many more actions per minute

Prints every action with its time, then the unhandled exceptions, Qt warnings, failed jobs and hangs (target:
none of each) and the memory (RSS) over the run (target: within +200 MB over 10 minutes). Runs offscreen when
there is no display; settings and files go to a temporary folder.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from massivelens.gui.main_window import MainWindow  # noqa: E402
from massivelens.gui.probe_panel import probe_job  # noqa: E402
from massivelens.resources import EXAMPLE_SESSION  # noqa: E402
from tests.gui.fakes import fake_probe, fake_transport, slow_job  # noqa: E402
from tests.gui.soak import Soak, copy_sessions  # noqa: E402
from tests.session_factory import write_synthetic_session  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fake", action="store_true", help="fake jobs instead of the embedded model")
    parser.add_argument("--quiet", action="store_true", help="print the summary only")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    folder = Path(tempfile.mkdtemp(prefix="massivelens-soak-"))
    settings = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("sessions_dir", str(folder / "sessions"))
    window = MainWindow(settings, **({"job": slow_job(steps=8, delay=0.01),
                                      "probe": partial(probe_job, run=fake_probe(delay=0.01))} if args.fake else {}))
    if args.fake:
        window.transport_editor.runner.job = fake_transport(delay=0.02)
    window.show()
    files = copy_sessions([EXAMPLE_SESSION, write_synthetic_session(folder / "synthetic.h5", blocks=6, channels=48, steps=4,
                                                                    control_sets=("bottom", "random"))], folder / "files")
    soak = Soak(window, folder, files, seed=args.seed, log=(lambda line: None) if args.quiet else print)
    report = soak.run(seconds=args.minutes * 60)
    window.close()
    app.processEvents()
    print(report.summary())
    for title, lines in (("unhandled exceptions", report.exceptions), ("Qt warnings", report.qt_warnings),
                         ("failed jobs", report.failed_jobs), ("hangs", report.hangs)):
        for line in lines:
            print(f"{title}: {line}")
    print("RSS (s, MB): " + ", ".join(f"({t:.0f}, {mb:.0f})" for t, mb in report.rss[:: max(1, len(report.rss) // 12)]))
    print(f"files in {folder}")
    return 0 if not (report.exceptions or report.qt_warnings or report.failed_jobs or report.hangs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
