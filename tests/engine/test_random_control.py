"""The random-k control: several draws per block and image, seeded by prompt, seed and draw, each with its
own token maps (the values of its channels), readable draw by draw."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import massivelens
from massivelens.engine import defaults
from massivelens.engine.loading import ModelSpec, load_pipeline
from massivelens.sessions.reader import SessionError, open_session

PROMPTS = ["a small red circle on a blue background at top left", "a large green square on a white background at center"]
pytestmark = pytest.mark.skipif(
    not (Path(defaults.DEFAULT_MODEL) / "model_index.json").is_file(), reason="the embedded model is not built"
)


@pytest.fixture(scope="module")
def pipe():
    return load_pipeline(ModelSpec(defaults.DEFAULT_MODEL))


def _record(pipe, out, prompt, seed=0, draws=4):
    import torch

    massivelens.record(pipe, out, k=3, controls=("random",), random_draws=draws, hidden_blocks=("single.1",),
                       hidden_steps=(1,), prompt=prompt, num_inference_steps=2, height=64, width=64,
                       max_sequence_length=16, generator=torch.Generator().manual_seed(seed))
    return out


def test_each_draw_has_its_own_channels_and_their_maps(pipe, tmp_path):
    path = _record(pipe, tmp_path / "a.h5", PROMPTS[0])
    with open_session(path) as s:
        assert s.draws("random") == 4 and s.draws("top") == 1
        draws = [s.set_channels("random", 1, draw=d) for d in range(4)]
        assert all(d.shape == (len(s.blocks("image")), 3) for d in draws)
        assert len({tuple(d[0]) for d in draws}) == 4  # different sets in one block
        assert all(len(set(row)) == 3 for d in draws for row in d)  # k distinct channels per set
        block = s.blocks("image").index("single.1")
        dataset, steps = s.hidden("image", "single.1")
        assert steps == [1]
        hidden = dataset[0]  # (tokens, channels) at step 1
        for d in range(4):
            maps = s.set_maps("random", 1, block, draw=d)
            expected = hidden[:, draws[d][block]].T.reshape(maps.shape)
            np.testing.assert_allclose(maps, expected, atol=1e-3 * np.abs(expected).max())
        with pytest.raises(SessionError, match="holds 4 draw"):
            s.set_maps("random", 1, block, draw=4)


def test_draws_are_seeded_by_prompt_and_seed(pipe, tmp_path):
    def channels(name, prompt, seed=0):
        with open_session(_record(pipe, tmp_path / name, prompt, seed)) as s:
            return s.set_channels("random", 0)

    first = channels("a.h5", PROMPTS[0])
    np.testing.assert_array_equal(first, channels("again.h5", PROMPTS[0]))
    assert not np.array_equal(first, channels("other-prompt.h5", PROMPTS[1]))
    assert not np.array_equal(first, channels("other-seed.h5", PROMPTS[0], seed=1))


def test_images_of_one_call_draw_their_own_channels(pipe, tmp_path):
    _record(pipe, tmp_path / "both.h5", PROMPTS)
    with open_session(tmp_path / "both-0.h5") as a, open_session(tmp_path / "both-1.h5") as b:
        assert not np.array_equal(a.set_channels("random", 0), b.set_channels("random", 0))
    with open_session(_record(pipe, tmp_path / "alone.h5", PROMPTS[1])) as alone, open_session(tmp_path / "both-1.h5") as b:
        np.testing.assert_array_equal(alone.set_channels("random", 0), b.set_channels("random", 0))
