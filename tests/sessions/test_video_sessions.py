"""Video sessions: the frame axis where it applies, image sessions as they were."""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

from massivelens.sessions import schema as S
from massivelens.sessions.reader import SessionError, open_session
from massivelens.sessions.records import Layout
from massivelens.sessions.writer import SessionWriter
from tests.session_factory import float_step, synthetic_info, write_synthetic_session

GRID = (3, 2, 4)  # latent frames, h, w
BLOCKS, CHANNELS, K, STEPS = 2, 8, 2, 2


def _write_video(path, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A two-step video session from random statistics whose first latent frame is 500x the others (as
    first-frame dominance makes it); returns its exact top maps and its frames."""
    layout = Layout(blocks={"image": ["block.0", "block.1"]}, channels={"image": CHANNELS}, grid=GRID)
    maps = rng.normal(size=(STEPS, BLOCKS, K, *GRID)).astype(np.float32)
    maps[:, :, :, 0] *= 500
    runs: dict = {}
    with SessionWriter(path, synthetic_info(STEPS, K), layout) as writer:
        for step in range(STEPS):
            stats = (rng.random((BLOCKS, CHANNELS), dtype=np.float32), rng.random((BLOCKS, CHANNELS), dtype=np.float32),
                     rng.random(BLOCKS, dtype=np.float32))
            top = np.tile(np.arange(K, dtype=np.int32), (BLOCKS, 1))
            record = float_step(layout, step, 1000.0 - step, {"image": stats}, {"top": top}, {"top": maps[step]}, runs)
            writer.write_step(replace(record, top_frame_mean_abs=np.abs(maps[step]).mean(axis=(-2, -1))))
        frames = rng.integers(0, 256, (9, 32, 64, 3), dtype=np.uint8)
        writer.finish(frames)
    return maps, frames


def test_video_session_keeps_the_frame_axis(tmp_path):
    maps, frames = _write_video(tmp_path / "v.h5", np.random.default_rng(0))
    with open_session(tmp_path / "v.h5") as s:
        assert s.is_video and s.grid == GRID and s.latent_frames == 3
        # 16-bit maps with a scale per latent frame: every frame within 1/65534 of its own largest |x|
        tolerance = np.abs(maps).max(axis=(-2, -1), keepdims=True) / 65534 * 1.001
        assert (np.abs(s.top_maps() - maps) <= tolerance).all()
        np.testing.assert_array_equal(s.frame_maps("top", 1, 0, 2), s.top_maps(1, 0)[:, 2])
        np.testing.assert_allclose(s.top_frame_mean_abs(1), np.abs(maps[1]).mean(axis=(-2, -1)))
        np.testing.assert_array_equal(s.frames, frames)
        np.testing.assert_array_equal(s.image, frames[0])
        assert (s.info["height"], s.info["width"]) == (32, 64)
        with pytest.raises(SessionError, match="no latent frame 3"):
            s.frame_maps("top", 0, 0, 3)
    with h5py.File(tmp_path / "v.h5") as f:
        assert f["image/top_maps_scale"].shape == (STEPS, BLOCKS, K, GRID[0])
        assert S.IMAGE not in f


def test_image_sessions_carry_no_frame_axis(tmp_path):
    path = write_synthetic_session(tmp_path / "i.h5", grid=(8, 8), k=4)
    with h5py.File(path) as f:
        assert f[S.GRID].shape == (2,) and f["image/top_maps_scale"].shape == (3, 4, 4)
        assert f"image/{S.TOP_FRAME_MEAN_ABS}" not in f and S.FRAMES not in f
    with open_session(path) as s:
        assert not s.is_video and s.latent_frames == 1 and s.frames is None and s.grid == (8, 8)
        np.testing.assert_array_equal(s.frame_maps("top", 1, 2), s.top_maps(1, 2))
        with pytest.raises(SessionError, match="no per-frame statistics"):
            s.top_frame_mean_abs()


def test_schema_doc_names_the_video_datasets():
    text = Path(S.__file__).with_name("SCHEMA.md").read_text()
    spans = re.findall(r"`([^`]+)`", text)
    for name in (f"image/{S.TOP_FRAME_MEAN_ABS}", S.FRAMES):
        assert name in spans, name
