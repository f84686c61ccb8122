"""The paper's first two claims, asserted on the embedded model with a small prompt set."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from massivelens.engine import defaults
from massivelens.engine.analysis.clusters import evaluate, miou_by_block
from massivelens.engine.analysis.probe import ProbeRequest, probe
from massivelens.engine.loading import ModelSpec
from massivelens.engine.shapes.reader import read
from massivelens.engine.shapes.world import heldout_samples
from massivelens.sessions.reader import open_session

pytestmark = pytest.mark.skipif(
    not (Path(defaults.DEFAULT_MODEL) / "model_index.json").is_file(), reason="the embedded model is not built"
)


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    prompts = [caption for caption, _, _ in heldout_samples(3)]
    out = tmp_path_factory.mktemp("claims")
    return probe(ProbeRequest(prompts=prompts, out=out, spec=ModelSpec(defaults.DEFAULT_MODEL), ks=(4,), strategies=("top", "bottom")))


def test_zeroing_top_channels_hurts_more_than_bottom_channels(probed):
    by = {e["strategy"]: e for e in probed.summary()}
    assert by["top"]["psnr"] < by["bottom"]["psnr"] - 3.0
    assert by["top"]["accuracy"] <= by["bottom"]["accuracy"]


def test_top_channel_clusters_find_the_subject_better_than_bottom_channels(probed):
    references = []
    for path in probed.sessions:
        with open_session(path) as s:
            references.append(read(s.image)[1])
    curve = miou_by_block(evaluate(probed.sessions, references))
    best = {strategy: max(e["miou"] for e in curve if e["strategy"] == strategy) for strategy in ("top", "bottom")}
    assert best["top"] > best["bottom"] + 0.1
    assert np.isfinite(list(best.values())).all()


def test_claims_json_has_intervals_draws_steps_and_the_clustering(tmp_path):
    from massivelens.cli.main import main

    out = tmp_path / "claims"
    assert main(["claims", "--prompts", "2", "--ks", "4", "--draws", "3", "--steps", "4", "--out", str(out)]) == 0
    claims = json.loads((out / "claims.json").read_text())
    assert {"model", "n_prompts", "disruption", "baseline_accuracy", "clusters"} <= set(claims)
    random = next(e for e in claims["disruption"] if e["strategy"] == "random")
    assert (random["n"], random["units"]) == (6, 2)  # three draws of each of two prompts, averaged per prompt
    low, high = random["psnr_ci"]
    assert low < random["psnr"] < high
    assert claims["kmeans"]["n_init"] == 10 and claims["kmeans"]["n_clusters"] == 2
    assert claims["kmeans"]["foreground_rule"] == "score" and "paper" in claims["kmeans"]["foreground"]
    assert {e["step"] for e in claims["clusters"]} == {2, 3}  # the middle and the last of 4 steps
    assert {e["draws"] for e in claims["clusters"] if e["strategy"] == "random"} == {3}
    assert all(len(e["ci"]) == 2 for e in claims["clusters"])
    assert [(e["step"], e["k"], e["blocks"]) for e in claims["cluster_ordering"]] == [(2, 4, 6), (3, 4, 6)]
    assert (out / "clusters_miou.svg").is_file() and (out / "clusters_miou-step3-k4.svg").is_file()
