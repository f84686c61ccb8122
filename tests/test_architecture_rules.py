"""engine/ and sessions/ never import Qt, so the CLI and most tests run with no display."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_engine_sessions_and_cli_import_without_qt():
    script = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        for name in ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "superqt"):
            sys.modules[name] = None  # any import of these now fails
        from massivelens import cli, engine, sessions
        for package in (engine, sessions, cli):
            for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
                importlib.import_module(info.name)
        import massivelens.cli.main
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")
