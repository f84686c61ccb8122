"""The token-cluster overlay: the mask on screen is engine.clusters' foreground of the recorded maps, it covers
the planted top-left subject, follows the selection, is cached, and is scored against the right mask."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from PySide6.QtGui import QImage

from massivelens.engine.analysis.clusters import cluster_tokens, mask_iou, ranked_clusters
from massivelens.engine.shapes.reader import read
from massivelens.engine.shapes.world import parse_caption, render
from massivelens.gui.selection import Selection
from massivelens.gui.session_data import SessionData
from massivelens.gui.session_view import SessionView
from massivelens.gui.views import cluster_overlay
from massivelens.resources import EXAMPLE_SESSION
from massivelens.sessions import schema as S
from massivelens.sessions.reader import open_session
from tests.gui.helpers import assert_not_blank, grab_pixels
from tests.session_factory import synthetic_info, write_synthetic_session


@pytest.fixture(scope="module")
def controls_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_session(tmp_path_factory.mktemp("clusters") / "controls.h5", blocks=3, channels=32, steps=2,
                                   control_sets=("bottom", "random"))


@pytest.fixture
def make_view(qtbot):
    """Opens a session in a SessionView; the files are closed after the test."""
    opened: list[SessionData] = []

    def make(path: Path) -> SessionView:
        view = SessionView(Selection())
        qtbot.addWidget(view)
        view.resize(1200, 800)
        opened.append(SessionData.open(path))
        view.set_data(opened[-1])
        view.show()
        qtbot.waitExposed(view)
        return view

    yield make
    for data in opened:
        data.close()


def quarter_mask(path: Path) -> Path:
    """A 64 x 64 mask image of the synthetic subject: the top-left quarter, white."""
    mask = np.zeros((64, 64), np.uint8)
    mask[:32, :32] = 255
    assert QImage(mask.data, 64, 64, 64, QImage.Format.Format_Grayscale8).save(str(path))
    return path


def test_overlay_is_the_foreground_of_the_recorded_maps_and_finds_the_subject(make_view, controls_path, tmp_path):
    view = make_view(controls_path)
    overlay = view.clusters
    assert [overlay.channel_set.itemData(i) for i in range(overlay.channel_set.count())] == ["top", "bottom", "random"]
    assert overlay.n_clusters.value() == 2 and overlay.iou is None  # synthetic model: no world, no mask yet
    assert "load one" in overlay.mask_label.text()
    view.selection.set(block=2, step=1)
    with open_session(controls_path) as s:
        expected = cluster_tokens(s.set_maps("top", 1, 2), 2)[1]
        bottom = cluster_tokens(s.set_maps("bottom", 1, 2), 2)[1]
        three = cluster_tokens(s.set_maps("top", 1, 2), 3)[1]
    np.testing.assert_array_equal(overlay.shown, expected)
    subject = np.zeros((8, 8), bool)
    subject[:4, :4] = True
    np.testing.assert_array_equal(overlay.shown, subject)
    assert overlay.load_mask(quarter_mask(tmp_path / "mask.png"))
    assert overlay.iou == 1.0 and "#1 (rule) 1.00" in overlay.title.full and "double.2 · step 1" in overlay.title.full
    overlay.channel_set.setCurrentIndex(1)
    np.testing.assert_array_equal(overlay.shown, bottom)
    assert overlay.iou == mask_iou(bottom, subject)
    overlay.channel_set.setCurrentIndex(0)
    overlay.n_clusters.setValue(3)
    np.testing.assert_array_equal(overlay.shown, three)
    overlay.clear_mask()
    assert overlay.iou is None and not overlay.clear.isEnabled()
    assert overlay.load_mask(tmp_path / "missing.png") is False and "cannot read" in overlay.mask_label.text()
    assert_not_blank(grab_pixels(overlay.figure))
    assert "cluster_overlay" in view.figures()


def test_masks_are_computed_once_per_session_set_block_step_and_k(make_view, controls_path, monkeypatch):
    calls = []
    monkeypatch.setattr(cluster_overlay, "ranked_clusters",
                        lambda maps, k, rule: calls.append(k) or ranked_clusters(maps, k, rule=rule))
    view = make_view(controls_path)
    first = len(calls)
    for block in (0, 1, 0, 1):
        view.selection.set(block=block, step=0)
    view.clusters.n_clusters.setValue(4)
    view.clusters.n_clusters.setValue(2)
    assert len(calls) - first == 2 and calls[-1] == 4  # block 1 at K=2, block 1 at K=4; the rest was cached


def test_text_stream_and_sessions_without_control_sets(make_view, session_path):
    view = make_view(session_path)
    assert view.clusters.channel_set.count() == 1  # recorded without controls: top-k only
    assert view.clusters.shown is not None
    view.selection.set(stream="text")
    assert view.clusters.shown is None and "image stream only" in view.clusters.title.full


def test_world_model_sessions_are_scored_against_the_world_readers_mask(make_view, session_path, tmp_path):
    """A session of a Shapes-world model (its folder says so) whose image is a rendered world image."""
    model = tmp_path / "shapes-model"
    model.mkdir()
    (model / "massivelens.json").write_text(json.dumps({"world": "shapes"}))
    path = shutil.copyfile(session_path, tmp_path / "world.h5")
    image, _ = render(parse_caption(synthetic_info(1, 4).prompt))
    with h5py.File(path, "r+") as f:
        f.attrs["model"] = str(model)
        f[S.IMAGE][...] = image
    view = make_view(path)
    overlay = view.clusters
    assert "world reader" in overlay.mask_label.text()
    reference = read(image)[1]
    assert reference.any()
    assert overlay.iou == mask_iou(overlay.shown, reference) and overlay.iou > 0


def test_the_rules_foreground_is_named_every_cluster_is_scored_and_the_user_may_flip_it(make_view, controls_path, tmp_path):
    """When the rule's foreground is the background, the reader sees it (both IoUs) and can paint the other
    cluster; the IoU the view reports stays the rule's."""
    view = make_view(controls_path)
    overlay = view.clusters
    view.selection.set(block=2, step=1)
    inverse = quarter_mask(tmp_path / "subject.png")
    image = QImage(str(inverse)).convertToFormat(QImage.Format.Format_Grayscale8)
    image.invertPixels()  # white = everything but the planted top-left subject: the rule's pick scores ~0
    image.save(str(tmp_path / "background.png"))
    assert overlay.load_mask(tmp_path / "background.png")
    with open_session(controls_path) as s:
        ranked = ranked_clusters(s.set_maps("top", 1, 2), 2)
    np.testing.assert_array_equal(overlay.shown, ranked[0])
    assert overlay.iou == overlay.ious[0] < 0.1 and overlay.ious[1] > 0.9
    assert "foreground by the paper's rule" in overlay.title.full and "#1 (rule) 0.00 · #2 1.00" in overlay.title.full
    overlay.shown_rank.setCurrentIndex(1)
    np.testing.assert_array_equal(overlay.shown, ranked[1])
    assert overlay.iou == overlay.ious[0]  # the recorded number keeps the rule's choice
    assert "not the rule's foreground" in overlay.title.full
    overlay.n_clusters.setValue(3)
    assert overlay.shown_rank.count() == 3 and overlay.shown_rank.currentIndex() == 0


def test_on_the_shipped_flux2_example_the_border_rule_finds_the_subject_where_the_papers_rule_cannot(make_view):
    """FLUX.2's massive channel is smaller on the subject: on its first channel alone the paper's rule paints the
    background; the border rule, which needs no sign, paints the subject."""
    view = make_view(EXAMPLE_SESSION)
    overlay = view.clusters
    assert overlay.k.maximum() == overlay.k.value() == view.clusters.data.k == 8  # all recorded channels by default
    assert [overlay.rule.itemData(i) for i in range(overlay.rule.count())] == ["score", "border"]
    view.selection.set(block=2, step=10)
    overlay.k.setValue(1)
    assert overlay.iou < 0.1 and "first 1 of top-8" in overlay.title.full
    overlay.rule.setCurrentIndex(1)
    with open_session(EXAMPLE_SESSION) as s:
        expected = ranked_clusters(s.set_maps("top", 10, 2)[:1], 2, rule="border")
    np.testing.assert_array_equal(overlay.shown, expected[0])
    assert overlay.iou > 0.5 and "foreground by the border rule" in overlay.title.full
    assert overlay.shown_rank.itemText(1) == "cluster #2 by border"


def test_damaged_maps_are_never_clustered(make_view, controls_path, tmp_path):
    path = shutil.copyfile(controls_path, tmp_path / "nan.h5")
    with h5py.File(path, "r+") as f:
        f["image/top_maps_scale"][1, 2, 0] = np.nan  # 16-bit maps: a damaged scale decodes to NaN
    view = make_view(path)
    view.selection.set(block=2, step=1)
    assert view.clusters.shown is None and "not clustered" in view.clusters.title.full
    view.selection.set(block=1)
    assert view.clusters.shown is not None
