"""Recording profiles on one run: full (float32 statistics), default (16-bit) and lean (chosen steps);
what they show agrees within the stated precision with the exact hidden states of the same run."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline

import massivelens
from massivelens.engine import defaults
from massivelens.engine.analysis.clusters import cluster_tokens
from massivelens.engine.errors import BadRequest
from massivelens.sessions.massive import summarize
from massivelens.sessions.reader import SessionError
from tests.hooked import generation, seeded

EMBEDDED = Path(defaults.DEFAULT_MODEL)


@pytest.fixture(scope="module")
def profiles(tiny_pipelines, tmp_path_factory) -> dict[str, Path]:
    pipe = DiffusionPipeline.from_pretrained(tiny_pipelines("flux"), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    root = tmp_path_factory.mktemp("profiles")
    kw = generation("flux", num_inference_steps=5)
    for profile in ("full", "default", "lean"):
        massivelens.record(pipe, root / f"{profile}.h5", k=4, profile=profile, **seeded(kw))
    massivelens.record(pipe, root / "lean-chosen.h5", k=4, profile="lean", map_steps=(0, -2), **seeded(kw))
    return {p.stem: p for p in root.glob("*.h5")}


def test_profiles_keep_what_they_promise(profiles):
    with massivelens.open_session(profiles["full"]) as full, massivelens.open_session(profiles["default"]) as default, \
            massivelens.open_session(profiles["lean"]) as lean, massivelens.open_session(profiles["lean-chosen"]) as chosen:
        assert (full.profile, default.profile, lean.profile) == ("full", "default", "lean")
        assert full.stat_steps == default.stat_steps == [0, 1, 2, 3, 4]
        assert lean.stat_steps == [2, 4] and chosen.stat_steps == [0, 3]
        np.testing.assert_allclose(default.mean_abs("image"), full.mean_abs("image"), rtol=2**-11)
        np.testing.assert_allclose(lean.mean_abs("text", 4), full.mean_abs("text", 4), rtol=2**-11)
        assert np.isnan(lean.mean_abs("image")[[0, 1, 3]]).all()
        for s in (default, lean):  # aggregates and ranks are exact in every profile
            np.testing.assert_array_equal(s.mean_abs_run("image"), full.mean_abs_run("image"))
            np.testing.assert_array_equal(s.top_channels(), full.top_channels())
            np.testing.assert_array_equal(s.median_abs("image"), full.median_abs("image"))
            np.testing.assert_array_equal(s.sun_steps("image"), full.sun_steps("image"))
            assert [b.top_channels for b in summarize(s)] == [b.top_channels for b in summarize(full)]
        np.testing.assert_array_equal(lean.top_maps(4, 1), full.top_maps(4, 1))
        with pytest.raises(SessionError, match="keeps top_maps at steps 2, 4 only, not at step 1"):
            lean.top_maps(1, 0)
        with pytest.raises(SessionError, match="not at step 3"):
            lean.mean_abs("image", 3)
    sizes = {name: data_bytes(path) for name, path in profiles.items()}  # at this tiny size HDF5's own overhead dominates files
    assert sizes["full"] > sizes["default"] > sizes["lean"]


def data_bytes(path: Path) -> int:
    sizes = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: sizes.append(obj.nbytes) if isinstance(obj, h5py.Dataset) else None)
    return sum(sizes)


def test_bad_profile_settings_are_refused(tiny_pipelines, tmp_path):
    pipe = DiffusionPipeline.from_pretrained(tiny_pipelines("flux"), dtype=torch.float32)
    with pytest.raises(BadRequest, match="unknown profile 'tiny'"):
        massivelens.record(pipe, tmp_path / "a.h5", profile="tiny", **seeded(generation("flux")))
    with pytest.raises(BadRequest, match="the default profile keeps every step"):
        massivelens.record(pipe, tmp_path / "a.h5", map_steps=(1,), **seeded(generation("flux")))
    with pytest.raises(BadRequest, match="map step 9 is outside the run's 2 steps"):
        massivelens.record(pipe, tmp_path / "a.h5", profile="lean", map_steps=(9,), **seeded(generation("flux")))


@pytest.mark.skipif(not (EMBEDDED / "model_index.json").is_file(), reason="the embedded model is not in this checkout")
def test_compact_readings_match_the_exact_hidden_states_of_the_same_run(tmp_path):
    """The embedded model with every block's full hidden state kept exactly (float32): statistics,
    rankings, token maps and token clusters read from the 16-bit session agree with them."""
    pipe = DiffusionPipeline.from_pretrained(EMBEDDED, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    names = massivelens.engine.core.architectures.adapter_for(pipe.transformer).block_names(pipe.transformer)
    call = dict(prompt="a large red circle on a white background at center", height=64, width=64, num_inference_steps=8,
                guidance_scale=4.0, max_sequence_length=20)  # the default embedded model's (Flux2KleinPipeline) settings
    massivelens.record(pipe, tmp_path / "s.h5", k=8, hidden_blocks=names, **seeded(call))
    same_masks = 0
    with massivelens.open_session(tmp_path / "s.h5") as s:
        for b, name in enumerate(names):
            hidden, steps = s.hidden("image", name)
            exact = np.abs(hidden[:])  # (steps, tokens, channels)
            np.testing.assert_allclose(s.mean_abs("image")[:, b], exact.mean(axis=1), rtol=2**-11)
            np.testing.assert_allclose(s.max_abs("image")[:, b], exact.max(axis=1), rtol=2**-11)
            np.testing.assert_allclose(s.mean_abs_run("image")[b], exact.mean(axis=1).mean(axis=0), rtol=1e-5)
            for step in steps:
                top = s.top_channels(step)[b]
                exact_maps = hidden[step][:, top].T.reshape(len(top), *s.grid)
                compact_maps = s.top_maps(step, b)
                peak = np.abs(exact_maps).max()  # half a 16-bit step, plus float32 rounding of the scale and the product
                np.testing.assert_allclose(compact_maps, exact_maps, rtol=0, atol=peak / 65534 + 4 * np.finfo(np.float32).eps * peak)
                same_masks += np.array_equal(cluster_tokens(compact_maps)[1], cluster_tokens(exact_maps)[1])
    assert same_masks == len(names) * 8, f"{same_masks} of {len(names) * 8} token-cluster masks are the same"
