"""The paper's analyses on video sessions: the probe (clip, per-frame and temporal PSNR), token clusters
(per-frame masks against a folder of frame masks) and text-conditioned transport, on tiny Wan 2.1."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import massivelens
from massivelens.cli.main import main
from massivelens.engine.analysis.clusters import latent_frame
from massivelens.engine.analysis.metrics import frame_psnr, psnr, temporal_consistency
from massivelens.engine.analysis.probe import ProbeRequest, probe, write_tables
from massivelens.engine.analysis.transport import TransportRequest, transport
from massivelens.engine.analysis.transport_report import save
from massivelens.engine.loading import ModelSpec, load_pipeline
from massivelens.sessions.massive import top_channels
from massivelens.sessions.reader import open_session
from massivelens.sessions.schema import RANDOM_DRAWS
from tests.hooked import seeded
from tests.tiny_video_pipelines import token_grid

SIZE = dict(height=32, width=64, frames=9)
PROMPT = "a red circle"


def _plain_call(**changes) -> dict:
    """The call the record job makes of SIZE at 2 steps, as a user writes it."""
    return {"prompt": PROMPT, "num_inference_steps": 2, "height": SIZE["height"], "width": SIZE["width"],
            "num_frames": SIZE["frames"], **changes}


def test_latent_frames_of_output_frames():
    assert tuple(latent_frame(f, 9, 3) for f in range(9)) == WAN_LATENT_FRAME
    assert [latent_frame(f, 81, 21) for f in (0, 1, 4, 5, 80)] == [0, 1, 1, 2, 20]
    assert [latent_frame(f, 9, 2) for f in (0, 1, 8)] == [0, 1, 1]  # LTX: 8
    assert latent_frame(0, 1, 1) == 0


def test_probe_scores_clips_frames_and_temporal_consistency(tiny_video_pipelines, tmp_path):
    folder = tiny_video_pipelines("wan")
    request = ProbeRequest(prompts=[PROMPT], out=tmp_path, spec=ModelSpec(str(folder)), ks=(2,), strategies=("top", "bottom"),
                           draws=1, steps=2, **SIZE)
    result = probe(request)
    with open_session(result.sessions[0]) as s:
        baseline, names, mean = s.frames, s.blocks("image"), s.mean_abs("image").mean(axis=0)
    assert result.baseline_temporal == pytest.approx(temporal_consistency(baseline))
    # The top-2 row scores exactly the plain call with those channels zeroed at every block.
    ids = top_channels(mean, 2)
    with massivelens.zero_channels(load_pipeline(ModelSpec(str(folder))), {n: [int(c) for c in ids[i]] for i, n in enumerate(names)}):
        zeroed = (load_pipeline(ModelSpec(str(folder)))(**seeded(_plain_call())).frames[0] * 255).round().astype(np.uint8)
    row = next(r for r in result.rows if r.strategy == "top")
    assert row.psnr == pytest.approx(psnr(zeroed, baseline)) and row.temporal == pytest.approx(temporal_consistency(zeroed))
    frames = [f for f in result.frame_rows if f.strategy == "top"]
    assert [f.frame for f in frames] == list(range(SIZE["frames"]))
    np.testing.assert_allclose([f.psnr for f in frames], frame_psnr(zeroed, baseline))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "images" / row.image)), zeroed[0])
    with Image.open((tmp_path / "images" / row.image).with_suffix(".gif")) as gif:
        assert gif.n_frames == SIZE["frames"]
    paths = write_tables(result, tmp_path)
    with paths[-1].open() as f:
        assert len(list(csv.DictReader(f))) == 2 * SIZE["frames"]
    summary = {e["strategy"]: e for e in result.summary()}
    assert summary["top"]["temporal"] == pytest.approx(row.temporal)


def _moving_subject(conv_output_hook_target, grid):
    """Adds a large value to channels 3, 5 and 7 of a 2-column-wide subject that moves one token column
    right per latent frame (on Wan's patch embedding, (B, C, F, H, W))."""
    def hook(module, args, output):
        output = output.clone()
        for frame in range(grid[0]):
            for channel, scale in zip((3, 5, 7), (3e3, 2e3, 1e3)):
                output[:, channel, frame, :, frame:frame + 2] += scale
        return output

    return conv_output_hook_target.register_forward_hook(hook)


WAN_LATENT_FRAME = (0, 1, 1, 1, 1, 2, 2, 2, 2)  # of each of 9 output frames: the first alone, then 4 per latent frame


def _frame_masks(folder: Path, frames: int, grid) -> Path:
    """One PNG per output frame: white where that frame's latent frame holds the subject."""
    folder.mkdir()
    columns = SIZE["width"] // grid[2]
    for f in range(frames):
        latent = WAN_LATENT_FRAME[f]
        mask = np.zeros((SIZE["height"], SIZE["width"]), np.uint8)
        mask[:, latent * columns:(latent + 2) * columns] = 255
        Image.fromarray(mask).save(folder / f"{f:04d}.png")
    return folder


def test_clusters_find_a_moving_subject_frame_by_frame(tiny_video_pipelines, tmp_path, capsys):
    folder = tiny_video_pipelines("wan")
    pipe = load_pipeline(ModelSpec(str(folder)))
    grid = token_grid("wan", SIZE["frames"], SIZE["height"], SIZE["width"])
    handle = _moving_subject(pipe.transformer.patch_embedding, grid)
    try:
        massivelens.record(pipe, tmp_path / "v.h5", k=4, controls=("bottom", "random"), **seeded(_plain_call()))
    finally:
        handle.remove()
    masks = _frame_masks(tmp_path / "masks", SIZE["frames"], grid)
    assert main(["clusters", str(tmp_path / "v.h5"), "--masks", str(masks), "--out", str(tmp_path / "c")]) == 0
    with (tmp_path / "c" / "clusters.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * (2 + RANDOM_DRAWS) * SIZE["frames"]  # blocks x (top, bottom, random draws) x frames
    assert all(float(r["iou"]) == 1.0 for r in rows if r["strategy"] == "top")
    assert any(float(r["iou"]) < 1.0 for r in rows if r["strategy"] == "bottom")
    with Image.open(tmp_path / "c" / "overlay-v.gif") as gif:
        assert gif.n_frames == SIZE["frames"]
    (masks / "0008.png").unlink()
    assert main(["clusters", str(tmp_path / "v.h5"), "--masks", str(masks), "--out", str(tmp_path / "c")]) == 1
    assert "a video of 9 frames: give a folder of 9 frame masks, got 8 frame masks" in capsys.readouterr().err


def test_transport_moves_every_channel_of_every_frame(tiny_video_pipelines, tmp_path):
    """With every channel of every block replaced (k = width, all blocks, steps and tokens), alpha 1 makes
    the source's video exactly and alpha 0 the target's."""
    folder = tiny_video_pipelines("wan")
    request = TransportRequest(target_prompt=PROMPT, source_prompt="a blue square", out=tmp_path, spec=ModelSpec(str(folder)),
                               alphas=(0.0, 1.0), k=32, steps=2, **SIZE)
    result = transport(request)
    assert result.target_image.shape == (SIZE["frames"], SIZE["height"], SIZE["width"], 3)
    np.testing.assert_array_equal(result.results[0].image, result.target_image)
    np.testing.assert_array_equal(result.results[1].image, result.source_image)
    assert not np.array_equal(result.source_image, result.target_image)
    written, data = save(result)
    assert data["results"][1]["video"] == "result-01-alpha1.gif" and data["results"][1]["temporal"] is not None
    assert tmp_path / "result-01-alpha1.gif" in written


def test_transport_masks_span_the_latent_frames(tiny_video_pipelines, tmp_path):
    folder = tiny_video_pipelines("wan")
    request = TransportRequest(target_prompt=PROMPT, source_prompt="a blue square", out=tmp_path, spec=ModelSpec(str(folder)),
                               alphas=(1.0,), k=32, mask="target", steps=2, **SIZE)
    result = transport(request)
    assert result.mask.shape == token_grid("wan", SIZE["frames"], SIZE["height"], SIZE["width"])
    assert 0 < result.mask.sum() < result.mask.size
    assert not np.array_equal(result.results[0].image, result.source_image)
    assert not np.array_equal(result.results[0].image, result.target_image)


def test_claims_take_a_folder_of_frame_masks_per_prompt(tiny_video_pipelines, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(PROMPT + "\n")
    masks = tmp_path / "masks"
    frames = 5
    (masks / "000").mkdir(parents=True)
    for f in range(frames):
        Image.fromarray(np.full((SIZE["height"], SIZE["width"]), 255 * (f % 2), np.uint8)).save(masks / "000" / f"{f:04d}.png")
    args = ["claims", "--model", str(tiny_video_pipelines("wan")), "--prompt-file", str(prompts), "--prompts", "1",
            "--ks", "1", "--strategies", "top", "--frames", str(frames), "--height", str(SIZE["height"]),
            "--width", str(SIZE["width"]), "--steps", "2", "--masks", str(masks), "--out", str(tmp_path / "out")]
    assert main(args) == 0
    claims = json.loads((tmp_path / "out" / "claims.json").read_text())
    assert [e["strategy"] for e in claims["disruption"]] == ["top"]
    assert {e["block"] for e in claims["clusters"]} == {"block.0", "block.1"}
    with (tmp_path / "out" / "clusters.csv").open() as f:
        assert {int(r["frame"]) for r in csv.DictReader(f)} == set(range(frames))
