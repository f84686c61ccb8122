"""Token clusters: planted subjects are found; IoU is computed at pixel resolution; sessions are scored."""
from __future__ import annotations

import numpy as np
import pytest

from massivelens.engine.analysis.clusters import (
    cluster_tokens,
    evaluate,
    iou,
    mask_iou,
    miou_by_block,
    normalise,
    ranked_clusters,
    upsample,
)
from massivelens.engine.errors import BadRequest
from tests.session_factory import write_synthetic_session


def subject_maps(k: int = 4, h: int = 8, w: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    subject = np.zeros((h, w), bool)
    subject[2:5, 1:6] = True
    maps = rng.normal(size=(k, h, w))
    maps[:, subject] += 8.0  # the subject lights up on every channel
    maps[1] *= 100  # scale differences must not matter after min-max normalisation
    return maps, subject


def test_foreground_cluster_is_the_planted_subject():
    maps, subject = subject_maps()
    labels, foreground = cluster_tokens(maps)
    np.testing.assert_array_equal(foreground, subject)
    assert set(np.unique(labels)) == {0, 1}


def test_foreground_is_the_brighter_cluster_even_when_it_is_larger():
    maps, subject = subject_maps()
    _, foreground = cluster_tokens(-maps)  # the dark small region is now background
    np.testing.assert_array_equal(foreground, ~subject)


def test_the_border_rule_finds_the_subject_whichever_sign_its_channels_take():
    maps, subject = subject_maps()
    for signed in (maps, -maps):  # -maps: the channels are smaller on the subject, as FLUX.2's channel 124
        _, foreground = cluster_tokens(signed, rule="border")
        np.testing.assert_array_equal(foreground, subject)
    _, paper = cluster_tokens(-maps, rule="score")
    np.testing.assert_array_equal(paper, ~subject)  # the paper's rule picks the background there
    ranked = ranked_clusters(-maps, rule="border")
    np.testing.assert_array_equal(ranked[0], subject)
    np.testing.assert_array_equal(ranked[1], ~subject)


def test_the_border_rule_holds_for_a_subject_touching_the_edge_and_for_video_grids():
    maps, _ = subject_maps()
    subject = np.zeros((8, 8), bool)
    subject[:4, :4] = True  # a corner subject owns 7 of the 28 border tokens, the background 21
    maps = np.random.default_rng(1).normal(size=(4, 8, 8)) - 8.0 * subject
    np.testing.assert_array_equal(cluster_tokens(maps, rule="border")[1], subject)
    video = np.stack([maps, maps], axis=1)  # (k, frames, h, w): every frame's border counts
    np.testing.assert_array_equal(cluster_tokens(video, rule="border")[1], np.stack([subject, subject]))


def test_the_api_clusters_the_shipped_flux2_example_and_finds_its_subject_off_the_border():
    import massivelens
    from massivelens.engine.shapes.reader import read
    from massivelens.resources import EXAMPLE_SESSION

    with massivelens.open_session(EXAMPLE_SESSION) as s:
        maps, reference = s.top_maps(10, 2)[:2], read(s.image)[1]
    labels, subject = massivelens.cluster_tokens(maps, rule="border")
    assert labels.shape == subject.shape == (8, 8)
    assert mask_iou(subject, reference) > 0.5 > mask_iou(massivelens.cluster_tokens(maps)[1], reference)


def test_the_border_rule_never_calls_an_empty_cluster_the_foreground():
    from massivelens.engine.analysis.clusters import _order

    labels = np.zeros((4, 4), np.int64)
    labels[1:3, 1:3] = 2  # cluster 2 in the middle, cluster 0 around it, cluster 1 empty
    assert list(_order(labels, [0.2, -np.inf, 0.9], "border")) == [2, 0, 1]


def test_an_unknown_foreground_rule_is_a_clear_error():
    maps, _ = subject_maps()
    with pytest.raises(BadRequest, match="unknown foreground rule 'largest'.*score, border"):
        cluster_tokens(maps, rule="largest")


def test_normalise_scales_each_channel_to_unit_range_and_survives_constants():
    maps, _ = subject_maps()
    maps[2] = 5.0
    x = normalise(maps)
    assert x.shape == (64, 4)
    np.testing.assert_allclose(x[:, [0, 1, 3]].min(axis=0), 0)
    np.testing.assert_allclose(x[:, [0, 1, 3]].max(axis=0), 1)
    assert np.all(x[:, 2] == 0)


def test_token_masks_are_compared_at_pixel_resolution():
    token = np.array([[True, False], [False, False]])
    pixels = np.zeros((64, 64), bool)
    pixels[:32, :32] = True
    assert upsample(token, (64, 64)).sum() == 32 * 32
    assert mask_iou(token, pixels) == 1.0
    pixels[:32, :16] = False
    assert mask_iou(token, pixels) == 0.5
    assert iou(np.zeros((3, 3), bool), np.zeros((3, 3), bool)) == 1.0


def test_sessions_are_scored_per_block_against_the_subject(tmp_path):
    path = write_synthetic_session(tmp_path / "s.h5", grid=(8, 8), k=3)
    reference = np.zeros((64, 64), bool)
    reference[:32, :32] = True  # the factory's planted subject: the top-left quarter
    rows = evaluate([path], [reference])
    assert {r.strategy for r in rows} == {"top"} and len(rows) == 4
    assert all(r.iou == 1.0 for r in rows)
    curve = miou_by_block(rows)
    assert [e["block"] for e in curve] == ["double.0", "double.1", "double.2", "double.3"]
