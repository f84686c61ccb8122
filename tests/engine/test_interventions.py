"""Interventions: zero, mean and replace, with alpha and token masks; hooks gone after errors and cancel."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from massivelens.engine.cancel import CancelToken
from massivelens.engine.core.architectures import adapter_for
from massivelens.engine.core.capture import Capture
from massivelens.engine.core.interventions import Intervention
from massivelens.engine.errors import Cancelled
from massivelens.engine.loading import ModelSpec, load_pipeline
from tests.hooked import generate, generation

ARCHS = ("qwenimage", "sd3")  # one sequential-CFG and one batched-CFG architecture


@pytest.fixture(params=ARCHS)
def setup(request, tiny_pipelines):
    arch = request.param
    pipe = load_pipeline(ModelSpec(str(tiny_pipelines(arch))))
    adapter = adapter_for(pipe.transformer)
    names = [name for name, _, _ in adapter.blocks(pipe.transformer)]
    return pipe, adapter, generation(arch), names


def hook_count(pipe) -> int:
    modules = [pipe.transformer, *pipe.transformer.modules()]
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in modules)


def test_zeroing_changes_the_image_and_alpha_zero_changes_nothing(setup):
    pipe, adapter, gen, names = setup
    plain = generate(pipe, gen)
    channels = {name: [0, 1, 2, 3] for name in names}
    zeroed = generate(pipe, gen, [Intervention(channels, "zero")])
    assert np.abs(zeroed - plain).max() > 1e-3
    untouched = generate(pipe, gen, [Intervention(channels, "zero", alpha=0.0)])
    np.testing.assert_array_equal(untouched, plain)


def test_replace_copies_source_values_per_branch_and_blends_by_alpha(setup):
    """Source channels land in the target at every block and guidance branch; alpha 0.5 lands
    halfway between the target's own values and the source's (checked at the first block of
    step 0, whose input is the same with or without the intervention)."""
    pipe, adapter, gen, names = setup
    channels = {name: [0, 2, 5] for name in names}
    source = Capture(channels)
    generate(pipe, {**gen, "prompt": "a blue square"}, [source])
    own = Capture(channels)
    target_image = generate(pipe, gen, [own])
    seen = Capture(channels)
    moved = generate(pipe, gen, [Intervention(channels, "replace", source=source.values), seen])
    assert len(seen) == len(source) and len(source) == gen["num_inference_steps"] * len(names) * 2  # both branches
    for key in seen._store:
        torch.testing.assert_close(seen.values(*key), source.values(*key), rtol=0, atol=0)
    assert np.abs(moved - target_image).mean() > 1e-4
    half = Capture(channels, steps={0})
    generate(pipe, gen, [Intervention(channels, "replace", alpha=0.5, source=source.values), half])
    for branch in ("cond", "uncond"):
        expected = 0.5 * own.values(0, names[0], branch) + 0.5 * source.values(0, names[0], branch)
        torch.testing.assert_close(half.values(0, names[0], branch), expected, rtol=1e-5, atol=1e-6)


def test_token_mask_and_mean_act_where_asked(setup):
    pipe, adapter, gen, names = setup
    block = names[0]
    seen_plain = Capture({block: [0, 1]})
    generate(pipe, gen, [seen_plain])
    tokens = seen_plain.values(0, block, "cond").shape[0]
    mask = torch.zeros(tokens, dtype=torch.bool)
    mask[: tokens // 2] = True
    seen = Capture({block: [0, 1]}, steps={0})
    generate(pipe, gen, [Intervention({block: [0]}, "zero", token_mask=mask, steps={0}), seen])
    after, before = seen.values(0, block, "cond"), seen_plain.values(0, block, "cond")
    assert torch.all(after[mask, 0] == 0)
    torch.testing.assert_close(after[~mask, 0], before[~mask, 0], rtol=0, atol=0)
    torch.testing.assert_close(after[:, 1], before[:, 1], rtol=0, atol=0)
    seen_mean = Capture({block: [1]}, steps={0})
    generate(pipe, gen, [Intervention({block: [1]}, "mean", steps={0}), seen_mean])
    values = seen_mean.values(0, block, "cond")[:, 0]
    torch.testing.assert_close(values, torch.full_like(values, before[:, 1].mean().item()), rtol=1e-5, atol=1e-6)


class Boom(RuntimeError):
    pass


class FailAt:
    """Observer that raises at a given step, as a bug or an OOM would."""

    def __init__(self, step: int):
        self.step = step

    def on_block(self, call, streams):
        if call.step == self.step:
            raise Boom("failure inside a block")

    def on_step_end(self, step, timestep):
        return None


def test_hooks_are_gone_after_an_error_and_after_cancel(setup):
    pipe, adapter, gen, names = setup
    before = hook_count(pipe)
    plain = generate(pipe, gen)
    with pytest.raises(Boom):
        generate(pipe, gen, [Intervention({n: [0] for n in names}, "zero"), FailAt(1)])
    assert hook_count(pipe) == before
    np.testing.assert_array_equal(generate(pipe, gen), plain)

    token, calls = CancelToken(), []

    def progress(p):
        calls.append((p.step, p.block))
        if (p.step, p.block) == (0, 1):
            token.cancel()

    with pytest.raises(Cancelled):
        generate(pipe, gen, [Intervention({n: [0] for n in names}, "zero")], cancel=token, progress=progress)
    assert calls[-1] == (0, 1), "the run must stop before the next block starts"
    assert hook_count(pipe) == before
    np.testing.assert_array_equal(generate(pipe, gen), plain)


def test_progress_reports_every_step_and_block_in_order(setup):
    pipe, adapter, gen, names = setup
    seen = []
    generate(pipe, gen, progress=lambda p: seen.append((p.step, p.block, p.block_name)))
    assert seen == [(s, b, names[b]) for s in range(gen["num_inference_steps"]) for b in range(len(names))]
