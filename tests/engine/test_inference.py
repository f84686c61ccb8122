"""Tomorrow's class: a transformer class the table does not know is recorded through an adapter inferred
on its first call, with the notice kept in the session; what cannot be decided is refused in one line."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline

import massivelens
from massivelens.engine.core.architectures import ADAPTERS, adapter_for
from massivelens.engine.core.inference import branch_order
from massivelens.engine.errors import UnsupportedModel
from tests.hooked import generation, seeded


def _renamed(pipe, name: str):
    """The pipeline with its transformer's class renamed, as a new diffusers release would ship it."""
    cls = type(pipe.transformer)
    pipe.transformer.__class__ = type(name, (cls,), {"__module__": cls.__module__})
    return pipe


@pytest.fixture
def sana(tiny_pipelines):
    pipe = DiffusionPipeline.from_pretrained(tiny_pipelines("sana"), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_an_unknown_class_is_recorded_with_an_inferred_adapter_and_its_notice(sana, tmp_path):
    kw = generation("sana")
    plain = sana(**seeded(kw), output_type="np").images
    pipe = _renamed(sana, "TomorrowTransformer2DModel")
    assert "TomorrowTransformer2DModel" not in ADAPTERS and adapter_for(pipe.transformer).pending
    output = massivelens.record(pipe, tmp_path / "s.h5", k=4, **seeded(kw), output_type="np")
    np.testing.assert_array_equal(output.images, plain)
    with massivelens.open_session(tmp_path / "s.h5") as s:
        assert s.complete and s.blocks("image") == ["transformer_blocks.0", "transformer_blocks.1"]
        notice = s.call["notes"][-1]
    assert notice == (
        "adapter inferred for TomorrowTransformer2DModel: transformer_blocks -> image; tokens read by 'latents' (4 x 6); "
        "guidance: batched, unconditional rows first (read from SanaPipeline.__call__)"
    )


def test_a_batched_call_whose_branch_order_the_pipeline_does_not_show_is_refused(sana, tmp_path):
    class WrappedPipeline(type(sana)):
        def __call__(self, *args, **kwargs):
            return super().__call__(*args, **kwargs)

    assert branch_order(WrappedPipeline) is None and branch_order(type(sana)) is False
    sana.__class__ = WrappedPipeline
    pipe = _renamed(sana, "TomorrowTransformer2DModel")
    with pytest.raises(UnsupportedModel) as error:
        massivelens.record(pipe, tmp_path / "s.h5", **seeded(generation("sana")), output_type="np")
    assert str(error.value) == (
        "cannot infer an adapter for TomorrowTransformer2DModel: a call holds 2 guidance branches and "
        "WrappedPipeline.__call__ does not show which rows are conditional"
    )


def test_a_class_without_attention_blocks_is_refused_in_one_line():
    class MLPTransformer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([torch.nn.Linear(4, 4) for _ in range(2)])

    with pytest.raises(UnsupportedModel) as error:
        adapter_for(MLPTransformer())
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("transformer class MLPTransformer is not in the adapter table and has no ModuleList of attention blocks")
