"""Every family beyond the first six, on its real diffusers pipeline built offline: recording returns the
plain call's output bit for bit, the session has the adapter table's streams and token grid, and with
the class taken out of the table the adapter inferred on the first call is the table's own, with which a
planted massive channel is found top-1 at every block of its stream."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline

import massivelens
from massivelens.engine.core.architectures import ADAPTERS, Adapter
from massivelens.sessions.massive import summarize
from tests.hooked import plant
from tests.tiny_families import FAMILIES, build_family
from tests.tiny_pipelines import ARCHITECTURES, tiny_call_kwargs

PLANTED = {"image": 5, "reference": 5, "text": 9}
# The first six families' image and text embedders (as in test_recording.py).
EMBEDDERS = {"flux": ("x_embedder", "context_embedder"), "flux2": ("x_embedder", "context_embedder"),
             "sd3": ("pos_embed", "context_embedder"), "pixart": ("pos_embed", None), "sana": ("patch_embed", None),
             "qwenimage": ("img_in", "txt_in")}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def family_pipelines(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], DiffusionPipeline]:
    """Returns `get(name) -> pipeline`, each family built, saved and loaded once per test session."""
    root = tmp_path_factory.mktemp("tiny_families")
    loaded: dict[str, DiffusionPipeline] = {}

    def get(name: str) -> DiffusionPipeline:
        if name not in loaded:
            folder = build_family(name, root / name)
            loaded[name] = _load(folder, **FAMILIES[name].load)
        return loaded[name]

    return get


def _load(folder: Path, **components) -> DiffusionPipeline:
    pipe = DiffusionPipeline.from_pretrained(folder, dtype=torch.float32, **components)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _seeded(kwargs: dict) -> dict:
    return {**kwargs, "generator": torch.Generator("cpu").manual_seed(0), "output_type": "np"}


def _layout(adapter: Adapter) -> tuple:
    """What an adapter says, without the labels it gives block lists."""
    lists = tuple((s.attr, s.image, s.text, s.joint, s.holds, s.sequence_first, s.generated_only) for s in adapter.block_lists)
    return lists, adapter.cfg, adapter.cond_first, adapter.grid


@pytest.mark.parametrize("name", list(FAMILIES))
def test_record_returns_the_plain_output_bit_identical(name, family_pipelines, tmp_path):
    pipe, family = family_pipelines(name), FAMILIES[name]
    kwargs = family.kwargs(pipe)
    plain = pipe(**_seeded(kwargs)).images
    output = massivelens.record(pipe, tmp_path / "s.h5", k=4, **_seeded(kwargs))
    np.testing.assert_array_equal(output.images, plain)
    adapter = ADAPTERS[type(pipe.transformer).__name__]
    with massivelens.open_session(tmp_path / "s.h5") as s:
        assert s.complete and s.steps_done == kwargs["num_inference_steps"]
        for stream, blocks in adapter.stream_blocks(pipe.transformer).items():
            assert s.blocks(stream) == blocks
        assert tuple(s.info["tokens"]["grid"]) == s.grid and s.top_maps(0, 0).shape == (4, *s.grid)
        assert np.isfinite(s.mean_abs("image")).all()


@pytest.mark.parametrize("name", list(FAMILIES))
def test_an_inferred_adapter_is_the_tables_and_finds_planted_channels(name, family_pipelines, tmp_path, monkeypatch):
    pipe, family = family_pipelines(name), FAMILIES[name]
    _planted_run(pipe, family.kwargs(pipe), family.image_embedder, family.text_embedder, tmp_path, monkeypatch)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_inference_on_the_first_six_families_gives_the_tables_adapter(arch, tiny_pipelines, tmp_path, monkeypatch):
    pipe = _load(tiny_pipelines(arch))
    _planted_run(pipe, tiny_call_kwargs(arch), *EMBEDDERS[arch], tmp_path, monkeypatch)


def _planted_run(pipe, kwargs: dict, image: str, text: str | None, tmp_path: Path, monkeypatch) -> None:
    """Record with the class taken out of the table and channels planted at its embedders: the inferred
    adapter must be the table's, its notice kept in the session, and the planted channels top-1."""
    name = type(pipe.transformer).__name__
    table = ADAPTERS[name]
    monkeypatch.delitem(ADAPTERS, name)
    handles = [plant(pipe.transformer.get_submodule(image), PLANTED["image"])]
    if text:
        handles.append(plant(pipe.transformer.get_submodule(text), PLANTED["text"]))
    try:
        with massivelens.recording(pipe, tmp_path / "p.h5") as rec:
            pipe(**_seeded(kwargs))
    finally:
        for handle in handles:
            handle.remove()
    assert _layout(rec.adapter) == _layout(table)
    with massivelens.open_session(tmp_path / "p.h5") as s:
        assert s.call["notes"][-1].startswith(f"adapter inferred for {name}: ")
        rows, streams = summarize(s), set(s.streams)
    assert {row.stream for row in rows} == streams
    for row in rows:
        if row.stream == "text" and not text:
            continue
        assert row.top_channels[0] == PLANTED[row.stream], (row.block, row.stream, row.top_channels)
