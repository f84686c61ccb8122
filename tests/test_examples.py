"""The README's runnable example stays runnable."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_record_your_pipeline_example_runs(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "examples" / "record_your_pipeline.py")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "your callback ran at every one" in result.stdout and "top channels [124, 67]" in result.stdout  # the default model's last blocks
    assert (tmp_path / "example.h5").is_file() and (tmp_path / "example-zeroed.png").is_file()
