"""A killed recording leaves a session that opens, says it is incomplete, and keeps its finished steps;
its steps_done never runs ahead of the data."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from massivelens.sessions.reader import open_session
from tests.tiny_pipelines import tiny_call_kwargs

REPO = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import sys, time, torch
    torch.set_num_threads(1)
    from massivelens.engine.jobs import RecordRequest, record
    folder, out, height, width = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

    def progress(p):
        if p.block == 0:
            print(f"step {p.step}", flush=True)
        time.sleep(0.05)

    record(RecordRequest(prompt="a red circle", out=out, model=folder, steps=50, height=height, width=width, k=4), progress)
    """
)


def test_kill_mid_run_leaves_an_incomplete_readable_session(tiny_pipelines, tmp_path):
    kw = tiny_call_kwargs("flux")
    out = tmp_path / "killed.h5"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tiny_pipelines("flux")), str(out), str(kw["height"]), str(kw["width"])],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    for line in child.stdout:
        if line.strip() == "step 6":
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with open_session(out) as s:
        assert not s.complete
        assert 2 <= s.steps_done <= 6  # finished steps, some maybe still in the writer's queue when killed
        assert np.isfinite(s.mean_abs("image")).all()
        assert np.isfinite(s.timesteps).all()
        assert s.image is None
