"""A failing writer or a full disk stops the run with a one-line message and leaves a readable session
that keeps the steps written before; nothing hangs."""
from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from diffusers import DiffusionPipeline

import massivelens
from massivelens.engine.errors import SessionWriteFailed
from massivelens.sessions.writer import SessionWriter
from tests.hooked import generation, seeded

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def flux(tiny_pipelines):
    pipe = DiffusionPipeline.from_pretrained(tiny_pipelines("flux"), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_a_writer_that_raises_mid_run_stops_it_and_keeps_the_steps_before(flux, tmp_path, monkeypatch):
    write_step = SessionWriter.write_step

    def failing(self, record):
        if record.step == 2:
            raise OSError(errno.EIO, "Input/output error")
        write_step(self, record)

    monkeypatch.setattr(SessionWriter, "write_step", failing)
    with pytest.raises(SessionWriteFailed, match=r"writing the session failed: \[Errno 5\] Input/output error"):
        massivelens.record(flux, tmp_path / "s.h5", **seeded(generation("flux", num_inference_steps=6)))
    with massivelens.open_session(tmp_path / "s.h5") as s:
        assert not s.complete and s.steps_done == 2 and s.image is None
        assert s.mean_abs("image").shape[0] == 2


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB file system (tmpfs); skipped where this machine does not let the tests mount one."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4M", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_disk_too_small_for_the_session_refuses_before_writing(small_disk, tiny_pipelines):
    kw = generation("flux")
    result = subprocess.run(
        [sys.executable, "main.py", "record", "--model", str(tiny_pipelines("flux")), "--prompt", "a red circle",
         "--steps", "200", "--height", str(kw["height"]), "--width", str(kw["width"]), "--profile", "full",
         "--hidden-blocks", "double.0", "double.1", "single.0", "single.1", "--out", str(small_disk / "x.h5")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("record:")]  # the progress bar
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "not enough disk space for the session of x.h5" in lines[0] and "Traceback" not in result.stderr
    assert not (small_disk / "x.h5").exists()


def test_a_disk_that_fills_up_mid_run_stops_it_with_a_readable_session(small_disk, flux):
    filler = small_disk / "filler.bin"

    def fill_at_step_3(progress):
        if progress.step == 3 and not filler.exists():
            free = __import__("shutil").disk_usage(small_disk).free
            filler.write_bytes(b"\0" * (free - 256 * 1024))  # another program takes the space

    with pytest.raises(SessionWriteFailed, match="not enough disk space for step"):
        with massivelens.recording(flux, small_disk / "s.h5", progress=fill_at_step_3):
            flux(**seeded(generation("flux", num_inference_steps=8)))
    with massivelens.open_session(small_disk / "s.h5") as s:
        assert not s.complete and 2 <= s.steps_done <= 3
        assert s.top_maps(1, 0).shape == (16, *s.grid)
