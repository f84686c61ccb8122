"""The CLI on a video pipeline: record --frames, inspect, export (frames, preview, reproduce.py)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from massivelens.cli.main import main
from massivelens.sessions.reader import open_session
from tests.tiny_video_pipelines import token_grid

FRAMES = 5


@pytest.fixture(scope="module")
def recorded(tiny_video_pipelines, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("video_cli") / "v.h5"
    assert main(["record", "--model", str(tiny_video_pipelines("wan")), "--prompt", "a red circle", "--frames", str(FRAMES),
                 "--steps", "2", "--height", "32", "--width", "64", "--k", "3", "--out", str(out)]) == 0
    return out


def test_record_frames_passes_num_frames(recorded, capsys):
    with open_session(recorded) as s:
        assert s.complete and s.call["kwargs"]["num_frames"] == FRAMES
        assert s.frames.shape == (FRAMES, 32, 64, 3) and s.grid == token_grid("wan", FRAMES, 32, 64)
        per_frame = s.top_frame_mean_abs()[:, :, 0]
    capsys.readouterr()
    assert main(["inspect", str(recorded), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["grid"] == list(token_grid("wan", FRAMES, 32, 64))
    expected = (per_frame[..., 0] / per_frame[..., 1:].mean(axis=-1)).mean(axis=0)
    np.testing.assert_allclose(data["first_frame_ratio"], expected, rtol=1e-6)
    assert main(["inspect", str(recorded)]) == 0
    assert "latent frame 0 / later frames" in capsys.readouterr().out


def test_export_writes_frames_a_preview_and_a_script_that_makes_them_again(recorded, tmp_path):
    assert main(["export", str(recorded), "--out", str(tmp_path / "x")]) == 0
    with open_session(recorded) as s:
        frames = s.frames
    pngs = sorted((tmp_path / "x" / "frames").glob("*.png"))
    assert [p.name for p in pngs] == [f"{i:04d}.png" for i in range(FRAMES)]
    np.testing.assert_array_equal(np.stack([np.asarray(Image.open(p)) for p in pngs]), frames)
    with Image.open(tmp_path / "x" / "video.gif") as gif:
        assert gif.n_frames == FRAMES and gif.size == (64, 32)
    assert not (tmp_path / "x" / "image.png").exists()
    replay = subprocess.run([sys.executable, str(tmp_path / "x" / "reproduce.py"), str(tmp_path / "again")],
                            capture_output=True, text=True, timeout=300)
    assert replay.returncode == 0, replay.stderr
    again = np.stack([np.asarray(Image.open(p)) for p in sorted((tmp_path / "again").glob("*.png"))])
    np.testing.assert_array_equal(again, frames)


def test_frames_on_an_image_model_give_one_line(tiny_pipelines, tmp_path, capsys):
    assert main(["record", "--model", str(tiny_pipelines("flux")), "--prompt", "x", "--frames", "5",
                 "--out", str(tmp_path / "a.h5")]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == ["error: FluxPipeline makes images; frames need a video pipeline"]


def test_frames_below_one_are_refused():
    from massivelens.engine.errors import BadRequest
    from massivelens.engine.generation import resolve

    with pytest.raises(BadRequest, match="frames must be at least 1"):
        resolve("any/model", "a red circle", frames=0)
