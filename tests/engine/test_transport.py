"""Transport: alpha 0 is the plain target, source values land where asked, inversion mechanics,
and, on the embedded model, transfer toward the source grows with alpha."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from massivelens.engine import defaults
from massivelens.engine.analysis.inversion import (
    encode,
    invert,
    latent_form,
    noising_overrides,
    seed_noise,
)
from massivelens.engine.analysis.transport import (
    TransportRequest,
    foreground,
    intervention,
    select_blocks,
    step_window,
    transport,
)
from massivelens.engine.analysis.transport_report import (
    attribute_transfer,
    gini,
    smoothness,
)
from massivelens.engine.core.architectures import adapter_for
from massivelens.engine.core.calls import to_uint8
from massivelens.engine.core.capture import Capture
from massivelens.engine.errors import BadRequest
from massivelens.engine.generation import Generation, call_kwargs
from massivelens.engine.loading import ModelSpec, load_pipeline
from massivelens.sessions.reader import open_session
from tests.hooked import generate, job_call, job_settings, seeded
from tests.session_factory import write_synthetic_session

NAMES = ["double.0", "double.1", "single.0", "single.1"]


def request_for(arch: str, folder: Path, out: Path, **changes) -> TransportRequest:
    settings = job_settings(arch)
    values = dict(target_prompt=settings.pop("prompt"), out=out, source_prompt="a blue square", spec=ModelSpec(str(folder)), k=3,
                  **settings)
    return TransportRequest(**{**values, **changes})


def engine_generation(arch: str, **changes) -> Generation:
    return Generation(**{**job_settings(arch), **changes})


def test_blocks_and_step_windows_parse_names_and_ranges():
    assert select_blocks([], NAMES) == NAMES == select_blocks(["all"], NAMES)
    assert select_blocks(["single.1", "0:2"], NAMES) == ["double.0", "double.1", "single.1"]
    assert select_blocks(["2:"], NAMES) == ["single.0", "single.1"]
    assert select_blocks(["-1"], NAMES) == ["single.1"]
    for bad, message in [("middle", "unknown block"), ("7", "bad block range"), ("3:1", "selects no block"), ("0:1:2", "bad block range")]:
        with pytest.raises(BadRequest, match=message):
            select_blocks([bad], NAMES)
    assert step_window((None, None), 4) == (0, 4)
    assert step_window((1, None), 4) == (1, 4)
    for bad in [(2, 2), (0, 5), (-1, 2)]:
        with pytest.raises(BadRequest, match="step window"):
            step_window(bad, 4)


def test_smoothness_is_one_minus_gini_of_consecutive_distances():
    assert gini([1.0, 1.0, 1.0]) == 0.0 and gini([0.0, 0.0]) == 0.0
    assert gini([0.0, 0.0, 3.0]) == pytest.approx(2 / 3)
    flat = np.zeros((4, 4, 3), np.uint8)
    steps = [flat + v for v in (0, 10, 20, 30)]  # equal steps: perfectly smooth
    assert smoothness(steps) == pytest.approx(1.0)
    assert smoothness([flat, flat, flat + 30]) == pytest.approx(0.5)  # one jump, one standstill
    assert smoothness([flat]) is None


def test_attribute_transfer_counts_only_the_attributes_that_differ():
    from massivelens.engine.shapes.world import Attributes, render

    source = Attributes("large", "red", "circle", "white", "center")
    target = Attributes("large", "blue", "circle", "white", "center")
    red, _ = render(source)
    blue, _ = render(target)
    red_square, _ = render(Attributes("large", "red", "square", "white", "center"))
    assert attribute_transfer(source.caption, target.caption, red) == (1.0, 0.0, 1.0)
    assert attribute_transfer(source.caption, target.caption, blue) == (0.0, 1.0, 1.0)
    # the colour moved but the shape, which both captions share, was lost: one of four kept
    assert attribute_transfer(source.caption, target.caption, red_square) == (1.0, 0.0, 0.75)
    assert attribute_transfer(source.caption, source.caption, red) == (None, None, None)
    assert attribute_transfer("a cat", target.caption, red) == (None, None, None)


@pytest.fixture(scope="module")
def flux_sweep(tiny_pipelines, tmp_path_factory):
    folder = tiny_pipelines("flux")
    request = request_for("flux", folder, tmp_path_factory.mktemp("transport"), alphas=(0.0, 1.0))
    return folder, transport(request)


def test_alpha_zero_is_the_plain_target_bit_for_bit(flux_sweep):
    folder, result = flux_sweep
    pipe = load_pipeline(ModelSpec(str(folder)))
    plain = np.asarray(pipe(**seeded(job_call("flux"))).images[0])
    np.testing.assert_array_equal(result.results[0].image, plain)
    np.testing.assert_array_equal(result.target_image, plain)
    assert np.abs(result.results[1].image.astype(int) - plain).max() > 0, "alpha 1 must change the image"


def test_result_sessions_name_source_target_and_settings(flux_sweep):
    _, result = flux_sweep
    with open_session(result.results[1].session) as s:
        info = s.info
    extra = info["extra"]
    assert info["kind"] == "transport" and info["prompt"] == result.target_prompt
    assert extra["source"]["prompt"] == "a blue square" and extra["target"]["prompt"] == result.target_prompt
    assert extra["alpha"] == 1.0 and extra["blocks"] == NAMES and extra["steps"] == [0, 2]
    assert extra["mask"] == "all" and extra["foreground"] == "score" and extra["k"] == 3
    assert extra["mask_at"] == {"step": 1, "block": 2}
    assert set(extra["channels"]) == set(NAMES) and all(len(c) == 3 for c in extra["channels"].values())
    assert (result.request.out / extra["source"]["session"]).is_file()


@pytest.mark.parametrize("arch", ["qwenimage", "sd3"])  # sequential and batched guidance, both branches
def test_source_values_land_in_the_mask_blocks_and_window_only(arch, tiny_pipelines, tmp_path):
    folder = tiny_pipelines(arch)
    request = request_for(arch, folder, tmp_path, alphas=(1.0,), blocks=("1:3",), window=(1, 2), mask="source")
    result = transport(request)
    pipe = load_pipeline(request.spec)
    adapter = adapter_for(pipe.transformer)
    names = [name for name, _, _ in adapter.blocks(pipe.transformer)]
    chosen = names[1:3]
    assert result.blocks == chosen and result.window == (1, 2) and set(result.channels) == set(chosen)
    mask = torch.from_numpy(result.mask.reshape(-1))
    assert 0 < int(mask.sum()) < mask.numel(), "the source foreground must be a proper part of the image"

    target = job_call(arch)
    source = Capture(result.channels, steps={1})
    generate(pipe, {**target, "prompt": "a blue square"}, [source])
    plain = Capture(result.channels)
    generate(pipe, target, [plain])
    seen = Capture(result.channels)
    image = generate(pipe, target, [intervention(result.channels, result.window, result.mask, 1.0, source.values), seen])
    np.testing.assert_array_equal(to_uint8(image), result.results[0].image)  # the sweep ran exactly this intervention

    branches = {branch for (_, _, branch) in seen._store}
    assert branches == {"cond", "uncond"}
    for block in chosen:
        for branch in branches:
            torch.testing.assert_close(plain.values(0, block, branch), seen.values(0, block, branch), rtol=0, atol=0)
            after, src = seen.values(1, block, branch), source.values(1, block, branch)
            torch.testing.assert_close(after[mask], src[mask], rtol=0, atol=0)
    first = chosen[0]  # its input is untouched, so what the mask leaves out is exactly the plain target
    for branch in branches:
        torch.testing.assert_close(seen.values(1, first, branch)[~mask], plain.values(1, first, branch)[~mask], rtol=0, atol=0)


def _clean_latents(pipe, gen: Generation, packed: torch.Tensor) -> torch.Tensor:
    """The denoising loop's packed latents in the form the pipeline's `latents=` takes."""
    like = encode(pipe, np.zeros((gen.height, gen.width, 3), np.uint8))
    return latent_form(pipe).from_loop(packed, like)


@pytest.mark.parametrize("arch", ["flux", "flux2"])
def test_inverse_euler_walks_the_schedule_backwards_and_converges(tiny_pipelines, arch):
    """Generate x0 from the seed's noise, invert it: the transformer sees the forward sigmas in
    reverse, and the recovered noise approaches the seed's noise as steps grow (first order)."""
    pipe = load_pipeline(ModelSpec(str(tiny_pipelines(arch))))
    adapter = adapter_for(pipe.transformer)
    errors = {}
    for steps in (2, 8):
        gen = engine_generation(arch, steps=steps, guidance=1.0)  # no CFG: one transformer call per step
        kept = {}
        generate(pipe, dict(
            call_kwargs(pipe, gen), callback_on_step_end=lambda p, i, t, d: kept.update(x0=d["latents"].clone()) or {},
            callback_on_step_end_tensor_inputs=["latents"]))
        forward = pipe.scheduler.sigmas[:-1].clone()
        seen = []
        handle = pipe.transformer.register_forward_pre_hook(lambda m, a, kw: seen.append(float(kw["timestep"][0])), with_kwargs=True)
        try:
            x0 = _clean_latents(pipe, gen, kept["x0"])
            noise = invert(pipe, adapter, gen, x0)
        finally:
            handle.remove()
        visited = sorted(set(seen), key=seen.index)
        np.testing.assert_allclose(visited, [0.0, *forward.flip(0)[:-1].tolist()], atol=1e-6)
        truth = seed_noise(pipe, gen, x0)
        assert noise.shape == truth.shape == x0.shape
        errors[steps] = float((noise - truth).norm() / truth.norm())
    assert errors[8] < 0.5 * errors[2], errors


@pytest.mark.parametrize("arch", ["flux", "flux2"])
def test_forward_noising_feeds_the_noised_reference_at_every_step(tiny_pipelines, arch):
    pipe = load_pipeline(ModelSpec(str(tiny_pipelines(arch))))
    gen = engine_generation(arch, steps=3, guidance=1.0)
    reference = np.random.default_rng(0).integers(0, 256, (gen.height, gen.width, 3), dtype=np.uint8)
    x0 = encode(pipe, reference)
    noise = seed_noise(pipe, gen, x0)
    form = latent_form(pipe)
    inputs = []
    handle = pipe.transformer.register_forward_pre_hook(lambda m, a, kw: inputs.append(kw["hidden_states"].clone()), with_kwargs=True)
    try:
        generate(pipe, {**call_kwargs(pipe, gen), **noising_overrides(pipe, gen, x0)})
    finally:
        handle.remove()
    sigmas = pipe.scheduler.sigmas
    assert len(inputs) == gen.steps
    for step, x in enumerate(inputs):
        expected = (1 - sigmas[step]) * form.to_loop(x0) + sigmas[step] * form.to_loop(noise)
        torch.testing.assert_close(x, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", ["flux", "flux2"])
def test_image_source_runs_on_flux_pipelines(tiny_pipelines, tmp_path, arch):
    from PIL import Image

    gen = engine_generation(arch)
    picture = tmp_path / "ref.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(picture)
    for inversion in ("euler", "noise"):
        request = request_for(arch, tiny_pipelines(arch), tmp_path / inversion, source_prompt=None, source_image=picture,
                              alphas=(0.5,), inversion=inversion)
        result = transport(request)
        assert result.reference.shape == result.source_image.shape == (gen.height, gen.width, 3)  # resized to the generation size
        with open_session(result.source_session) as s:
            assert s.info["extra"]["inversion"] == inversion and s.info["extra"]["caption"] == ""


def test_image_source_is_refused_elsewhere(tiny_pipelines, tmp_path):
    from PIL import Image

    picture = tmp_path / "ref.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(picture)
    with pytest.raises(BadRequest, match="Flux2KleinPipeline"):
        transport(request_for("sd3", tiny_pipelines("sd3"), tmp_path / "sd3", source_prompt=None, source_image=picture))


def test_transport_masks_take_the_foreground_rule(tmp_path):
    """Channels dimmer on the subject (as FLUX.2's): the paper's rule masks the background, the border rule the subject."""
    session = write_synthetic_session(tmp_path / "dark.h5", grid=(8, 8), k=3, dark_subject=True)
    subject = np.zeros((8, 8), bool)
    subject[:4, :4] = True
    paper, at = foreground(session, None, None)
    border, _ = foreground(session, None, None, "border")
    np.testing.assert_array_equal(paper, ~subject)
    np.testing.assert_array_equal(border, subject)
    assert at == (1, 2)


def test_bad_requests_are_refused(tmp_path):
    for changes, message in [
        (dict(source_prompt=None), "exactly one source"),
        (dict(source_image=tmp_path / "x.png"), "exactly one source"),
        (dict(source_prompt=" "), "source prompt is empty"),
        (dict(alphas=(0.5, 1.5)), "alpha must be in"),
        (dict(mask="left"), "unknown mask"),
        (dict(inversion="ddim"), "unknown inversion"),
        (dict(foreground="largest"), "unknown foreground rule 'largest'; use score, border"),
    ]:
        with pytest.raises(BadRequest, match=message):
            transport(request_for("flux", Path("/unused"), tmp_path, **changes))


EMBEDDED = Path(defaults.DEFAULT_MODEL)
# Source, target: each pair differs in one layout attribute. Massive channels carry layout on the
# embedded model; a subject's color mostly rides on the pooled-text modulation that transport leaves
# alone, so color pairs move only without guidance and with k >= 32 (see the README).
LAYOUT_PAIRS = [
    ("a small red circle on a white background at center", "a large red circle on a white background at center"),
    ("a large yellow square on a black background at top left", "a small yellow square on a black background at top left"),
    ("a large blue circle on a white background at top left", "a large blue circle on a white background at bottom right"),
    ("a small green square on a black background at center", "a small green square on a black background at top right"),
]


@pytest.mark.skipif(not (EMBEDDED / "model_index.json").is_file(),
                    reason="the embedded model (resources/shapes-dit) is not trained/saved on this machine")
def test_transfer_toward_the_source_grows_with_alpha_on_the_embedded_model(tmp_path):
    """At the model's own settings (k 16, all blocks and steps, no mask): none of the source at
    alpha 0, most of it at alpha 1, never less at a larger alpha (mean over the pairs)."""
    alphas = (0.0, 0.5, 1.0)
    transfer = []
    for i, (source, target) in enumerate(LAYOUT_PAIRS):
        request = TransportRequest(target_prompt=target, source_prompt=source, out=tmp_path / str(i), spec=ModelSpec(str(EMBEDDED)), alphas=alphas)
        transfer.append([attribute_transfer(source, target, r.image)[0] for r in transport(request).results])
    mean = np.mean(transfer, axis=0)
    assert all(b >= a for a, b in zip(mean, mean[1:])), transfer
    assert mean[0] == 0.0 and mean[-1] >= 0.5, transfer
