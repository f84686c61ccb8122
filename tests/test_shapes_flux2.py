"""The second embedded model: a stock Flux2KleinPipeline (tiny config here) that round-trips through
save/load, generates reproducibly, is recorded by MassiveLens, and whose training matches the pipeline's
own text encoding and latent packing and writes activation snapshots."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline, Flux2KleinPipeline

import massivelens
from massivelens.engine.shapes import world
from massivelens.engine.shapes.arches import Flux2
from massivelens.engine.shapes.model_flux2 import TINY, build_pipeline
from massivelens.engine.shapes.snapshots import SNAPSHOT_FILE, block_statistics, measure_pipeline, read

torch.set_num_threads(1)
CAPTION = "a small red circle on a blue background at top left"
CALL = dict(height=world.SIZE, width=world.SIZE, num_inference_steps=2, guidance_scale=4.0, max_sequence_length=20)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Flux2KleinPipeline, Path]:
    pipe = build_pipeline(TINY)
    folder = tmp_path_factory.mktemp("flux2")
    pipe.save_pretrained(folder)
    return pipe, folder


def _single_tokens(pipe: Flux2KleinPipeline) -> bool:
    words = world.vocabulary()
    return all(len(pipe.tokenizer.tokenize(" " + w)) == 1 for w in words) and pipe.tokenizer.tokenize("a") == ["a"]


def test_tiny_flux2_round_trips_and_generates_identically(saved):
    pipe, folder = saved
    assert not pipe.transformer.config.guidance_embeds and _single_tokens(pipe)
    loaded = DiffusionPipeline.from_pretrained(folder)
    assert isinstance(loaded, Flux2KleinPipeline) and _single_tokens(loaded)
    for name in ("transformer", "text_encoder", "vae"):
        reference = getattr(pipe, name).state_dict()
        for key, value in getattr(loaded, name).state_dict().items():
            assert torch.equal(value, reference[key]), (name, key)
    loaded.set_progress_bar_config(disable=True)
    images = [loaded(prompt=CAPTION, generator=torch.Generator().manual_seed(0), output_type="np", **CALL).images
              for _ in range(2)]
    assert images[0].shape == (1, world.SIZE, world.SIZE, 3)
    np.testing.assert_array_equal(images[0], images[1])


def test_training_encodes_and_packs_as_the_pipeline_does(saved):
    pipe, _ = saved
    arch = Flux2()
    arch.prepare_text(pipe, arch.max_tokens(pipe))
    embeds, text_ids = pipe.encode_prompt(CAPTION, device="cpu", max_sequence_length=arch.max_tokens(pipe))
    ours = arch.encode({"text_encoder": pipe.text_encoder}, arch.lookup([CAPTION], torch.device("cpu")))
    assert torch.equal(ours["encoder_hidden_states"], embeds) and torch.equal(ours["txt_ids"], text_ids)
    # Latents: to_tokens is the pipeline's patchify + batch-norm normalisation + packing; the pipeline's
    # decode path (unpack by ids, de-normalise, unpatchify) inverts it exactly.
    latents = torch.randn(2, TINY.latent_channels, 16, 16)
    arch.calibrate(pipe, latents)
    tokens = arch.to_tokens(pipe, latents)
    ids = arch.img_ids(pipe, "cpu").expand(2, -1, -1)
    grid = pipe._unpack_latents_with_ids(tokens, ids, 8, 8)
    bn = pipe.vae.bn
    std = torch.sqrt(bn.running_var.view(1, -1, 1, 1) + pipe.vae.config.batch_norm_eps)
    grid = grid * std + bn.running_mean.view(1, -1, 1, 1)
    torch.testing.assert_close(pipe._unpatchify_latents(grid), latents, rtol=1e-5, atol=1e-5)


def test_massivelens_records_the_flux2_model(saved, tmp_path):
    _, folder = saved
    pipe = DiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    massivelens.record(pipe, tmp_path / "s.h5", k=3, prompt=CAPTION, generator=torch.Generator().manual_seed(0), **CALL)
    with massivelens.open_session(tmp_path / "s.h5") as s:
        assert s.complete and s.blocks("image") == ["double.0", "single.0"]
        assert np.all(s.peak_abs("image") > 0) and np.all(s.median_abs("image") > 0)
        assert s.mean_abs("image").shape[-1] == pipe.transformer.inner_dim


def test_block_statistics_find_a_planted_massive_channel():
    states = np.random.default_rng(0).normal(size=(4, 16, 32)).astype(np.float32)
    states[:, :, 7] = 5000.0
    stats = block_statistics("double.0", states)
    assert stats["top_channel"] == 7 and stats["top_share"] == 1.0 and stats["sun"] == 1.0
    assert stats["max_over_median"] > 1000


def test_flux2_training_command_writes_snapshots(tmp_path):
    from massivelens.engine.shapes import train

    out = tmp_path / "m"
    train.main(["--arch", "flux2", "--tiny", "--out", str(out), "--log", str(tmp_path / "run" / "log.csv"),
                "--vae-steps", "2", "--steps", "3", "--decoder-steps", "0", "--batch", "2", "--cache", "32",
                "--dit-heads", "1", "--dit-single-layers", "1", "--snapshot-every", "2", "--threads", "1"])
    assert isinstance(DiffusionPipeline.from_pretrained(out), Flux2KleinPipeline)
    defaults = json.loads((out / "massivelens.json").read_text())
    assert defaults["world"] == "shapes" and "negative_prompt" not in defaults
    snapshots = read(out / SNAPSHOT_FILE)
    assert [s["step"] for s in snapshots] == [0, 2, 3]  # the start, every 2 steps and the last step
    assert [b["block"] for b in snapshots[-1]["blocks"]] == ["double.0", "single.0"]
    assert {"max_over_median", "top_share", "top_channel", "sun"} <= set(snapshots[-1]["blocks"][0])
    assert len(read(out / SNAPSHOT_FILE, "live")) == 3
    saved = measure_pipeline(DiffusionPipeline.from_pretrained(out))  # what the card sets beside the last snapshot
    for measured, recorded in zip(saved, snapshots[-1]["blocks"]):
        assert measured["block"] == recorded["block"] and measured["top_channel"] == recorded["top_channel"]
        assert measured["max_over_median"] == pytest.approx(recorded["max_over_median"], rel=1e-4)


def test_model_card_plots_snapshot_growth(tmp_path):
    from massivelens.cli.model_card import growth_figures, growth_section

    assert "no activation snapshots" in growth_section(tmp_path, [])
    blocks = lambda ratio: [{"block": name, "max_over_median": ratio, "max_abs": ratio, "median_abs": 1.0,  # noqa: E731
                             "top_channel": 3, "top_share": 0.5, "sun": 0.0} for name in ("double.0", "single.0")]
    with (tmp_path / SNAPSHOT_FILE).open("w") as f:
        for step, ratio in ((250, 20.0), (0, 10.0), (500, 40.0)):
            for weights in ("ema", "live"):
                f.write(json.dumps({"step": step, "weights": weights, "blocks": blocks(ratio)}) + "\n")
    figures = growth_figures(tmp_path)
    assert figures == ["growth_ratio.png", "growth_top_share.png"]
    assert all((tmp_path / name).stat().st_size > 0 for name in figures)
    section = growth_section(tmp_path, figures)
    assert "| double.0 | 10.0 | 40.0 | x4.0 | 3 |" in section and "![growth_ratio.png]" in section
    assert "saved weights" not in section and "Where the snapshots come from" not in section
    (tmp_path / "train_config.json").write_text(json.dumps({"snapshots": "a rerun of the recipe"}))
    saved = [dict(b, max_over_median=38.0, top_share=0.75) for b in blocks(0.0)]
    section = growth_section(tmp_path, figures, saved)
    assert "Where the snapshots come from: a rerun of the recipe" in section
    assert "| x4.0 | 3 | 0.50 | 0.50 | 0.00 | 38.0 | 3, 0.75 |" in section
    assert "the largest ratio in any snapshot is 40.0 (double.0, step 500), 25x short of it" in section
    variants = [{"variant": name, "changes": f"{name} change", "steps": 1000, "heldout_loss": 0.1, "block": "single.0",
                 "first_max_over_median": 7.0, "max_over_median": ratio, "top_share": 0.9, "sun": 0.0, "wall_s": 60.0}
                for name, ratio in (("base", 16.8), ("wide", 26.7))]
    section = growth_section(tmp_path, figures, saved, variants)
    assert "| wide | wide change | 1000 | 0.1000 | single.0 | 7.0 -> 26.7 | 0.90 | 0.00 |" in section
    assert ("The variant that grew furthest is wide (wide change): max/median 26.7 at single.0 after 1000 steps, "
            "37x short") in section


def test_a_frozen_text_encoder_is_saved_unchanged_and_its_cache_is_the_pipelines_encoding(tmp_path):
    from massivelens.engine.shapes import train

    out = tmp_path / "m"
    train.main(["--arch", "flux2", "--tiny", "--freeze-text-encoder", "--out", str(out), "--log", str(tmp_path / "log.csv"),
                "--vae-steps", "2", "--steps", "3", "--decoder-steps", "0", "--batch", "2", "--cache", "32",
                "--snapshot-every", "0", "--threads", "1"])
    initial, trained = build_pipeline(TINY), DiffusionPipeline.from_pretrained(out)
    for name, weights in initial.text_encoder.state_dict().items():
        assert torch.equal(trained.text_encoder.state_dict()[name], weights), name
    assert not all(torch.equal(trained.transformer.state_dict()[n], w) for n, w in initial.transformer.state_dict().items())
    arch = Flux2()
    arch.freeze_text()
    arch.prepare_text(trained, arch.max_tokens(trained))
    embeds, text_ids = trained.encode_prompt(CAPTION, device="cpu", max_sequence_length=arch.max_tokens(trained))
    ours = arch.encode({}, arch.lookup([CAPTION], torch.device("cpu")))
    torch.testing.assert_close(ours["encoder_hidden_states"], embeds)
    assert torch.equal(ours["txt_ids"], text_ids)


def test_text_embeddings_keep_each_words_identity_in_the_stacked_hidden_states():
    """Unit-variance embeddings: a changed word moves its own token's stacked hidden states by about as much as
    two independent random vectors differ (sqrt 2 of the norm), not by the blurred ~0.6 of Qwen3's init.
    The trained model's text encoder (27 layers, width 32): the tiny one is too narrow to blur."""
    from massivelens.engine.shapes.model_flux2 import Flux2Config

    pipe = build_pipeline(Flux2Config())
    arch = Flux2()
    arch.prepare_text(pipe, arch.max_tokens(pipe))
    with torch.no_grad():
        e = arch.encode({"text_encoder": pipe.text_encoder},
                        arch.lookup([CAPTION, CAPTION.replace("top left", "bottom right")], torch.device("cpu")))
    e = e["encoder_hidden_states"]
    moved = ((e[0] - e[1]).norm(dim=-1) / e[0].norm(dim=-1))[-8:-6]  # "top left" -> "bottom right"
    assert (moved > 1.2).all(), moved


SHIPPED = Path(__file__).resolve().parent.parent / "resources" / "shapes-flux2"


def test_the_shipped_flux2_model_is_the_default_and_draws_its_captions():
    """Loaded and called as a user calls FLUX.2-klein, at its own settings, it draws what held-out captions say."""
    from massivelens.engine import defaults
    from massivelens.engine.shapes.reader import read

    assert Path(defaults.DEFAULT_MODEL) == SHIPPED
    own = defaults.model_defaults(str(SHIPPED))
    pipe = DiffusionPipeline.from_pretrained(SHIPPED)
    assert isinstance(pipe, Flux2KleinPipeline)
    pipe.set_progress_bar_config(disable=True)
    captions = [caption for caption, _, _ in world.heldout_samples(4, offset=300)]
    for caption in captions:
        image = pipe(prompt=caption, generator=torch.Generator().manual_seed(0), output_type="np", height=own["height"],
                     width=own["width"], num_inference_steps=own["steps"], guidance_scale=own["guidance"],
                     max_sequence_length=own["max_sequence_length"]).images[0]
        reading, _ = read((image * 255).round().astype(np.uint8))
        assert reading.attributes() == world.parse_caption(caption), caption


def test_sessions_recorded_elsewhere_on_an_embedded_model_still_score_the_world(tmp_path):
    from massivelens.engine.analysis.metrics import uses_world

    assert uses_world("/another/machine/resources/shapes-flux2") and uses_world("/another/machine/resources/shapes-dit")
    assert not uses_world(str(tmp_path / "some-model"))
