"""The disruption probe's mechanics on a tiny random pipeline (the claims are tested on the embedded model)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import massivelens
from massivelens.engine.analysis.probe import ProbeRequest, choose_channels, probe
from massivelens.engine.errors import BadRequest
from massivelens.engine.loading import ModelSpec, load_pipeline
from massivelens.sessions.massive import top_channels
from massivelens.sessions.reader import open_session
from tests.hooked import generation, seeded


def test_channel_strategies():
    mean = np.array([[5.0, 1.0, 9.0, 3.0, 0.5], [0.1, 0.2, 0.3, 0.4, 0.5]])
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(choose_channels("top", mean, 2, rng), [[2, 0], [4, 3]])
    np.testing.assert_array_equal(choose_channels("bottom", mean, 2, rng), [[4, 1], [0, 1]])
    drawn = choose_channels("random", mean, 3, rng)
    assert drawn.shape == (2, 3) and all(len(set(row)) == 3 for row in drawn)
    with pytest.raises(BadRequest, match="unknown strategy"):
        choose_channels("middle", mean, 2, rng)


def test_probe_zeroes_the_chosen_channels_and_scores_against_the_baseline(tiny_pipelines, tmp_path):
    folder = tiny_pipelines("flux")
    kw = generation("flux")
    request = ProbeRequest(
        prompts=[kw["prompt"]], out=tmp_path, spec=ModelSpec(str(folder)), ks=(1, 3), draws=2,
        steps=kw["num_inference_steps"], height=kw["height"], width=kw["width"],
    )
    result = probe(request)
    assert [(r.strategy, r.k, r.draw) for r in result.rows] == [
        ("top", 1, 0), ("top", 3, 0), ("bottom", 1, 0), ("bottom", 3, 0),
        ("random", 1, 0), ("random", 1, 1), ("random", 3, 0), ("random", 3, 1),
    ]
    assert result.baseline_accuracy is None and all(r.accuracy is None for r in result.rows)
    with open_session(result.sessions[0]) as s:
        assert s.channel_sets == ("top", "bottom", "random")
        names, mean = s.blocks("image"), s.mean_abs("image").mean(axis=0)
    # The saved top-3 image is exactly the plain call with those channels zeroed at every block.
    pipe = load_pipeline(ModelSpec(str(folder)))
    ids = top_channels(mean, 3)
    channels = {n: [int(c) for c in ids[i]] for i, n in enumerate(names)}
    plain_call = {k: kw[k] for k in ("prompt", "num_inference_steps", "height", "width")}
    with massivelens.zero_channels(pipe, channels):
        expected = np.asarray(pipe(**seeded(plain_call)).images[0])
    row = next(r for r in result.rows if (r.strategy, r.k) == ("top", 3))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "images" / row.image)), expected)
    assert row.mse > 0 and np.isfinite(row.psnr)
    summary = result.summary()
    random_3 = next(e for e in summary if (e["strategy"], e["k"]) == ("random", 3))
    assert random_3["n"] == 2 and random_3["psnr_std"] >= 0


def test_probe_rejects_bad_requests(tmp_path):
    with pytest.raises(BadRequest, match="at least one prompt"):
        probe(ProbeRequest(prompts=[], out=tmp_path))
    with pytest.raises(BadRequest, match="unknown mode"):
        probe(ProbeRequest(prompts=["x"], out=tmp_path, mode="halve"))


def test_probe_adds_clip_similarity_when_asked(tiny_pipelines, tmp_path):
    from tests.tiny_pipelines import build_tiny_clip

    kw = generation("flux")
    request = ProbeRequest(
        prompts=[kw["prompt"]], out=tmp_path, spec=ModelSpec(str(tiny_pipelines("flux"))), ks=(2,), strategies=("top",),
        steps=kw["num_inference_steps"], height=kw["height"], width=kw["width"],
        clip=str(build_tiny_clip(tmp_path / "clip")),
    )
    result = probe(request)
    assert all(-1.0 <= r.clip <= 1.0 for r in result.rows)
    assert result.summary()[0]["clip"] == result.rows[0].clip
