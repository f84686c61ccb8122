"""Families tested on the transformer alone (tests/tiny_transformers.py says why): one call with the inputs
its pipeline passes, under the same hooks a recording uses. The streams are split as the adapter table says,
a channel planted at each stream's embedder is the top channel at every block of that stream, the call's
output is untouched, and inference finds the table's block lists and token reader. (Guidance layouts need
the pipeline: they are not tested here.)"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from massivelens.engine.core.architectures import ADAPTERS, Adapter
from massivelens.engine.core.hooks import BlockCall, BlockHooks, Streams
from massivelens.engine.core.inference import pending_adapter
from tests.tiny_transformers import TRANSFORMERS, N

PLANTED = {"image": 5, "reference": 5, "text": 9}


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    out = {}
    for name, tiny in TRANSFORMERS.items():
        torch.manual_seed(0)
        out[name] = tiny.build().eval()
    return out


class TopChannels:
    """Observer: per block and stream, the token count and the channel with the largest mean |x|."""

    def __init__(self):
        self.seen: dict[tuple[str, str], tuple[int, int]] = {}

    def on_block(self, call: BlockCall, streams: Streams) -> None:
        for stream, x in streams.items():
            self.seen[(call.name, stream)] = (int(x.shape[1]), int(x[0].abs().mean(dim=0).argmax()))

    def on_step_end(self, step: int, timestep: float) -> None:
        return None


def _call(model: torch.nn.Module, inputs: dict, adapter: Adapter, planted: dict[str, str] | None = None) -> tuple[BlockHooks, TopChannels, torch.Tensor]:
    """One call under BlockHooks (a stand-in pipeline: the transformer alone), channels planted at `planted`
    (stream -> embedder path; one embedder may feed two streams)."""
    observer = TopChannels()
    by_module = {path: stream for stream, path in (planted or {}).items()}
    handles = [_plant(model.get_submodule(path), PLANTED[stream]) for path, stream in by_module.items()]
    try:
        with torch.no_grad(), BlockHooks(SimpleNamespace(transformer=model, scheduler=None), [observer], adapter=adapter) as hooks:
            output = model(**inputs, return_dict=False)[0]
    finally:
        for handle in handles:
            handle.remove()
    return hooks, observer, output


@pytest.mark.parametrize("name", list(TRANSFORMERS))
def test_streams_are_split_as_the_table_says_and_planted_channels_are_found(name, models):
    model, tiny = models[name], TRANSFORMERS[name]
    torch.manual_seed(1)
    inputs = tiny.inputs(model)
    with torch.no_grad():
        plain = model(**inputs, return_dict=False)[0]
    adapter = ADAPTERS[type(model).__name__]
    hooks, observer, output = _call(model, inputs, adapter)
    assert torch.equal(output, plain)
    expected = {(block, stream) for stream, blocks in adapter.stream_blocks(model, hooks.tokens).items() for block in blocks}
    assert set(observer.seen) == expected
    assert all(count == N for (block, stream), (count, _) in observer.seen.items() if stream == "image")
    _, planted, _ = _call(model, inputs, adapter, tiny.embedders)
    for (block, stream), (_, top) in planted.seen.items():
        if stream in tiny.embedders:
            assert top == PLANTED[stream], (block, stream)


@pytest.mark.parametrize("name", list(TRANSFORMERS))
def test_inference_finds_the_tables_block_lists_and_token_reader(name, models):
    model, tiny = models[name], TRANSFORMERS[name]
    hooks, _, _ = _call(model, tiny.inputs(model), pending_adapter(model))
    table = ADAPTERS[type(model).__name__]
    assert (_lists(hooks.adapter), hooks.adapter.grid) == (_lists(table), table.grid)


def _lists(adapter: Adapter) -> list[tuple]:
    return [(s.attr, s.image, s.text, s.joint, s.holds, s.sequence_first, s.generated_only) for s in adapter.block_lists]


def _plant(module: torch.nn.Module, channel: int):
    def hook(mod, args, output):
        if not isinstance(output, torch.Tensor):  # OmniGen's patch embedder also maps lists of input images
            return None
        output = output.clone()
        output[..., channel] += 1e5
        return output

    return module.register_forward_hook(hook)
