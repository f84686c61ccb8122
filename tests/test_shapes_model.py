"""The embedded model is a stock FluxPipeline that round-trips through save/load and generates."""

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline, FluxPipeline

from massivelens.engine.shapes import world
from massivelens.engine.shapes.evaluate import generate
from massivelens.engine.shapes.model import TINY, build_pipeline

torch.set_num_threads(1)
SHIPPED = Path(__file__).resolve().parent.parent / "resources" / "shapes-dit"
CAPTION = "a large red circle on a blue background at top left"


def _single_tokens(pipe: FluxPipeline) -> bool:
    words = world.vocabulary()
    return all(len(pipe.tokenizer.tokenize(w)) == 1 for w in words) and all(
        len(pipe.tokenizer_2.tokenize(w)) == 1 for w in words
    )


def test_tiny_pipeline_round_trips_and_generates(tmp_path):
    pipe = build_pipeline(TINY)
    assert isinstance(pipe, FluxPipeline) and not pipe.transformer.config.guidance_embeds
    assert _single_tokens(pipe)
    pipe.save_pretrained(tmp_path)
    loaded = DiffusionPipeline.from_pretrained(tmp_path)
    assert isinstance(loaded, FluxPipeline) and _single_tokens(loaded)
    assert loaded.vae.config.shift_factor == 0.0
    for name in ("transformer", "text_encoder", "text_encoder_2", "vae"):
        saved = getattr(pipe, name).state_dict()
        for key, value in getattr(loaded, name).state_dict().items():
            assert torch.equal(value, saved[key]), (name, key)
    loaded.set_progress_bar_config(disable=True)
    (image,) = generate(loaded, [CAPTION], steps=2)
    assert image.shape == (world.SIZE, world.SIZE, 3) and image.dtype == np.uint8


@pytest.mark.skipif(not (SHIPPED / "model_index.json").exists(), reason="embedded model not trained yet")
def test_shipped_model_loads_and_generates():
    pipe = DiffusionPipeline.from_pretrained(SHIPPED)
    assert isinstance(pipe, FluxPipeline) and _single_tokens(pipe)
    pipe.set_progress_bar_config(disable=True)
    (image,) = generate(pipe, [CAPTION], steps=2)
    assert image.shape == (world.SIZE, world.SIZE, 3) and image.dtype == np.uint8


def _train(out: Path, *extra: str) -> None:
    from massivelens.engine.shapes import train

    train.main(["--out", str(out), "--log", str(out.parent / f"{out.name}.csv"), "--vae-steps", "2", "--steps", "3",
                "--decoder-steps", "1", "--batch", "2", "--cache", "32", "--dit-heads", "1",
                "--dit-single-layers", "1", "--threads", "1", *extra])


def test_training_command_is_seeded_and_resumes(tmp_path):
    import json

    from massivelens.engine import defaults
    from massivelens.engine.loading import ModelSpec, load_pipeline

    _train(tmp_path / "a")
    _train(tmp_path / "b")
    a, b = (load_pipeline(ModelSpec(str(tmp_path / n))).transformer.state_dict() for n in "ab")
    assert all(torch.equal(a[key], b[key]) for key in a)  # same seed, same model
    assert defaults.model_defaults(str(tmp_path / "a"))["world"] == "shapes"
    assert json.loads((tmp_path / "a" / "train_config.json").read_text())["dit_steps"] == 3

    _train(tmp_path / "a", "--resume", "--steps", "2")
    assert json.loads((tmp_path / "a" / "train_config.json").read_text())["dit_steps"] == 5
    resumed = load_pipeline(ModelSpec(str(tmp_path / "a"))).transformer.state_dict()
    assert not all(torch.equal(resumed[key], a[key]) for key in a)
