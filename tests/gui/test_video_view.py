"""A video session in the app: the frame slider and playback move the token map and the clusters through the
video, over the frame they belong to; the clip exports as an animated image; image sessions show no frame controls."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline
from PIL import Image

import massivelens
from massivelens.engine.analysis.clusters import ranked_clusters
from massivelens.gui.clip_export import export_clip
from massivelens.gui.selection import Selection
from massivelens.gui.session_data import SessionData
from massivelens.gui.session_view import SessionView
from tests.gui.helpers import assert_not_blank, grab_pixels
from tests.hooked import seeded
from tests.tiny_video_pipelines import tiny_video_call_kwargs

FRAMES = 9  # 3 latent frames: output frames 1-4 decode from latent frame 1, 5-8 from 2


@pytest.fixture(scope="module")
def video_session(tiny_video_pipelines, tmp_path_factory):
    pipe = DiffusionPipeline.from_pretrained(tiny_video_pipelines("wan"), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    path = tmp_path_factory.mktemp("video_view") / "v.h5"
    massivelens.record(pipe, path, k=4, **seeded({**tiny_video_call_kwargs("wan"), "num_frames": FRAMES}))
    return path


@pytest.fixture
def view(qtbot, video_session):
    widget = SessionView(Selection())
    qtbot.addWidget(widget)
    widget.resize(1200, 800)
    data = SessionData.open(video_session)
    widget.set_data(data)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.frames.play.setChecked(False)
    data.close()


def test_frame_slider_moves_maps_and_clusters_over_their_frame(view):
    data, selection = view.data, view.selection
    assert all(w.isVisibleTo(view) for w in view.frames.widgets()) and view.frames.slider.maximum() == FRAMES - 1
    step, block = 1, 0
    channel = int(data.session.top_channels(step)[block][0])
    selection.set(step=step, block=block, channel=channel)
    first = grab_pixels(view.token_map)
    view.frames.slider.setValue(5)
    assert selection.frame == 5 and "frame 5 (latent 2)" in view.token_map.title.full
    np.testing.assert_array_equal(view.token_map.current_map(), data.session.top_maps(step, block)[0, 2])
    np.testing.assert_array_equal(view.token_map.picture.image, data.session.frames[5])
    expected = ranked_clusters(data.session.set_maps("top", step, block), 2)[0][2]
    np.testing.assert_array_equal(view.clusters.shown, expected)
    fifth = grab_pixels(view.token_map)
    assert_not_blank(fifth)
    assert not np.array_equal(first, fifth)
    assert_not_blank(grab_pixels(view.clusters.figure))


def test_playback_advances_and_loops(qtbot, view):
    view.selection.set(frame=FRAMES - 1)
    view.frames.advance()
    assert view.selection.frame == 0  # past the last frame, back to the first
    view.frames.play.setChecked(True)
    qtbot.waitUntil(lambda: view.selection.frame >= 2, timeout=5000)
    view.frames.play.setChecked(False)
    assert not view.frames.timer.isActive() and view.frames.play.text() == "▶"


def test_clip_export_writes_every_frame_of_the_view(view, tmp_path):
    view.selection.set(frame=3, step=1)
    path = export_clip(view.token_map, view.selection, view.data, tmp_path / "clip.gif")
    assert view.selection.frame == 3  # put back
    with Image.open(path) as gif:
        assert gif.n_frames == FRAMES
        shots = []
        for i in range(gif.n_frames):
            gif.seek(i)
            shots.append(np.asarray(gif.convert("RGB")))
    assert_not_blank(shots[5])
    assert not np.array_equal(shots[0], shots[5])


def test_image_sessions_show_no_frame_controls(qtbot, session_path):
    view = SessionView(Selection())
    qtbot.addWidget(view)
    view.show()
    assert not any(w.isVisibleTo(view) for w in view.frames.widgets())  # nor does the empty view
    data = SessionData.open(session_path)
    view.set_data(data)
    view.show()
    assert not any(w.isVisibleTo(view) for w in (*view.frames.widgets(), view.frame_heatmap))
    assert "frame_heatmap" not in view.figures()
    assert "frame" not in view.token_map.title.full
    data.close()


def test_frame_heatmap_shows_the_channel_per_frame_and_follows_the_frame(view):
    data, selection = view.data, view.selection
    step, block = 1, 1
    channel = int(data.session.top_channels(step)[block][0])
    selection.set(step=step, block=block, channel=channel, frame=6)
    heatmap = view.frame_heatmap
    assert heatmap.isVisibleTo(view) and "frame_heatmap" in view.figures()
    per_latent = data.session.top_frame_mean_abs(step)[block, 0]  # the top-1 channel of this block, per latent frame
    np.testing.assert_allclose(heatmap.values[block], per_latent[[0, 1, 1, 1, 1, 2, 2, 2, 2]], rtol=1e-6)
    assert heatmap.marked == (block, 6)
    selection.set(frame=2)
    assert heatmap.marked == (block, 2)
    assert_not_blank(grab_pixels(heatmap))
