"""Recording overhead and session size at a Wan2.1-1.3B-like geometry, on the CPU, extrapolated per block.

    python bench/record_overhead_video.py [--blocks 1] [--steps 1] [--threads 2] [--cfg] [--skip-run]

Geometry: width 1536 (12 heads x 128), FFN 8960, UMT5-width text (4096 channels, 512 tokens), 81 frames
at 480x832, i.e. 21 x 30 x 52 = 32760 latent tokens. Four measurements:
(1) a WanPipeline with a random transformer of `--blocks` such blocks, called with prompt embeddings and
    output_type="latent" (no text encoder or VAE cost), plain then recorded (k 16): wall time per block call;
(2) the recorder alone at Wan2.1-1.3B's 30 blocks, driven with random hidden states of that geometry:
    seconds per recorded block call (reductions, maps, per-frame means) and per step end (16-bit encoding
    and hand-over to the background writer: the time the denoising loop is blocked);
(3) the ratio extrapolated to 30 blocks and 50 steps with classifier-free guidance (two transformer calls
    per step, the conditional one recorded): (2*30*t_block + 30*t_record + t_step_end) / (2*30*t_block);
(4) the session size per recording profile (full, default, lean) for 50 steps and the 81 uint8 frames,
    from real files written by the real writer (tests.session_factory.float_step packs as the recorder does).
On a GPU a block call takes milliseconds, not minutes: there (2) is the number that matters.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffusers import DiffusionPipeline, WanTransformer3DModel  # noqa: E402

import massivelens  # noqa: E402
from massivelens.engine.api import kept_steps  # noqa: E402
from massivelens.engine.core.hooks import BlockCall  # noqa: E402
from massivelens.engine.core.recording import Recorder  # noqa: E402
from massivelens.sessions.records import Layout  # noqa: E402
from massivelens.sessions.writer import SessionWriter  # noqa: E402
from tests.session_factory import float_step, synthetic_info  # noqa: E402
from tests.tiny_video_pipelines import build_tiny_video_pipeline  # noqa: E402

WIDTH, HEADS, FFN, TEXT, TEXT_TOKENS = 1536, 12, 8960, 4096, 512
GRID = (21, 30, 52)  # latent frames, h, w of 81 frames at 480x832
FRAMES, HEIGHT, PIXELS_W = 81, 480, 832
BLOCKS, STEPS, K = 30, 50, 16


def wan_pipeline(blocks: int, folder: Path):
    """The tests' tiny Wan pipeline with a Wan2.1-1.3B-width transformer of `blocks` blocks (random weights)."""
    pipe = DiffusionPipeline.from_pretrained(build_tiny_video_pipeline("wan", folder))
    torch.manual_seed(0)
    pipe.transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=HEADS, attention_head_dim=WIDTH // HEADS, in_channels=16, out_channels=16,
        text_dim=TEXT, freq_dim=256, ffn_dim=FFN, num_layers=blocks, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
    ).eval()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def end_to_end(pipe, steps: int, cfg: bool, out: Path) -> tuple[float, float]:
    """Wall time of one plain and one recorded call."""
    embeds = torch.randn(1, TEXT_TOKENS, TEXT, generator=torch.Generator().manual_seed(0))
    call = dict(prompt_embeds=embeds, height=HEIGHT, width=PIXELS_W, num_frames=FRAMES, num_inference_steps=steps,
                guidance_scale=5.0 if cfg else 1.0, output_type="latent")
    if cfg:
        call["negative_prompt_embeds"] = torch.zeros_like(embeds)
    times = []
    for recorded in (False, True):
        generator = torch.Generator().manual_seed(0)
        start = time.perf_counter()
        with torch.inference_mode():
            if recorded:
                massivelens.record(pipe, out, k=K, overwrite=True, generator=generator, **call)
            else:
                pipe(generator=generator, **call)
        times.append(time.perf_counter() - start)
    return times[0], times[1]


def recorder_cost(out: Path, controls: tuple[str, ...], steps: int = 2) -> tuple[float, float]:
    """(seconds per recorded block call, seconds per step end) at 30 blocks, default profile."""
    names = [f"block.{i}" for i in range(BLOCKS)]
    layout = Layout(blocks={"image": names}, channels={"image": WIDTH}, grid=GRID, control_sets=controls)

    def open_sessions(call, streams, images):
        return [SessionWriter(out, synthetic_info(steps, K), layout, overwrite=True)], layout

    recorder = Recorder(open_sessions, K, controls)
    x = torch.randn(1, GRID[0] * GRID[1] * GRID[2], WIDTH, generator=torch.Generator().manual_seed(0))
    blocks_s = write_s = 0.0
    for step in range(steps):
        start = time.perf_counter()
        for position, name in enumerate(names):
            recorder.on_block(BlockCall(name, position, step, steps, GRID, {"cond": slice(0, 1)}), {"image": x})
        middle = time.perf_counter()
        recorder.on_step_end(step, 1000.0 - step)
        blocks_s += middle - start
        write_s += time.perf_counter() - middle
    recorder.finish([None])
    return blocks_s / (steps * BLOCKS), write_s / steps


def session_size(path: Path, profile: str) -> int:
    """Bytes of a 50-step session of the Wan layout in one profile, with its 81 frames."""
    rng = np.random.default_rng(0)
    names = [f"block.{i}" for i in range(BLOCKS)]
    layout = Layout(blocks={"image": names}, channels={"image": WIDTH}, grid=GRID, profile=profile,
                    kept_steps=kept_steps(profile, None, STEPS))
    runs: dict = {}
    with SessionWriter(path, synthetic_info(STEPS, K), layout) as writer:
        for step in range(STEPS):
            mean = rng.gamma(2.0, size=(BLOCKS, WIDTH)).astype(np.float32)
            top = np.argsort(-mean, axis=1)[:, :K].astype(np.int32)
            maps = {"top": rng.normal(size=(BLOCKS, K, *GRID)).astype(np.float32)} if layout.keeps(step) else {}
            record = float_step(layout, step, float(step), {"image": (mean, mean * 4, np.full(BLOCKS, 1.5, np.float32))},
                                {"top": top}, maps, runs)
            writer.write_step(replace(record, top_frame_mean_abs=rng.random((BLOCKS, K, GRID[0]), dtype=np.float32)))
        writer.finish(np.zeros((FRAMES, HEIGHT, PIXELS_W, 3), np.uint8))
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=1, help="transformer blocks in the end-to-end run")
    parser.add_argument("--steps", type=int, default=1, help="denoising steps in the end-to-end run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cfg", action="store_true", help="run the end-to-end call with classifier-free guidance")
    parser.add_argument("--skip-run", action="store_true", help="skip (1); use --block-seconds for the extrapolation")
    parser.add_argument("--block-seconds", type=float, help="plain seconds per block call, when (1) is skipped")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tokens = GRID[0] * GRID[1] * GRID[2]
    print(f"Wan2.1-1.3B-like geometry: width {WIDTH}, {tokens} latent tokens ({GRID[0]}x{GRID[1]}x{GRID[2]}), "
          f"{FRAMES} frames at {HEIGHT}x{PIXELS_W}, k {K}, {args.threads} threads")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t_block = args.block_seconds
        if not args.skip_run:
            pipe = wan_pipeline(args.blocks, root / "wan")
            plain, recorded = end_to_end(pipe, args.steps, args.cfg, root / "run.h5")
            calls = args.blocks * args.steps * (2 if args.cfg else 1)
            t_block = plain / calls
            print(f"(1) end to end, {args.blocks} block(s) x {args.steps} step(s){' with CFG' if args.cfg else ''}: "
                  f"plain {plain:.1f} s, recorded {recorded:.1f} s, ratio {recorded / plain:.4f}; "
                  f"{t_block:.1f} s per plain block call, {(recorded - plain) / (args.blocks * args.steps):.2f} s recording per block")
        for controls in ((), ("bottom", "random")):
            per_block, per_end = recorder_cost(root / "rec.h5", controls)
            label = "top-k" if not controls else "top-k + bottom/random"
            print(f"(2) recorder alone, {label}: {per_block:.3f} s per block call, {per_end:.2f} s per step end")
            if t_block:
                plain_50 = 2 * BLOCKS * t_block
                ratio = (plain_50 + BLOCKS * per_block + per_end) / plain_50
                print(f"(3) {label}, extrapolated to {BLOCKS} blocks x {STEPS} steps with CFG: ratio {ratio:.4f} "
                      f"({BLOCKS * per_block + per_end:.1f} s recording per step over {plain_50:.0f} s of blocks)")
        for profile in ("full", "default", "lean"):
            size = session_size(root / f"{profile}.h5", profile)
            print(f"(4) {profile} profile: {size / 2**30:.2f} GiB for {STEPS} steps (k {K}, top-k maps) with the "
                  f"{FRAMES} frames ({FRAMES * HEIGHT * PIXELS_W * 3 / 2**20:.0f} MiB of them)")
            (root / f"{profile}.h5").unlink()


if __name__ == "__main__":
    main()
