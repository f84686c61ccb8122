"""Recording overhead at FLUX.1's real size on a CUDA device, measured in one run.

    python bench/record_overhead_flux.py [--steps 28] [--size 1024] [--repeats 2]

A FLUX.1-dev-sized transformer (19 double + 38 single blocks, 3072 channels, 24 heads, guidance
embedding; random weights, built on the device in bf16) inside the tests' tiny FLUX pipeline (its small
text encoders and VAE), so no hub weights are needed: 1024x1024 gives 4096 image tokens, as FLUX does.
Plain and recorded runs (the `default` and `lean` profiles, through `massivelens.record`) alternate after
one warm-up round; prints median wall times, their ratios, peak CUDA memory of each, the time per step
the loop spends in the recorder's hooks, and where a recorded run spends its host time (cProfile).
Goals: default <= 1.05, lean <= 1.02. `--device cpu --blocks 1 1 --size 128 --steps 2` is a smoke run.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffusers import DiffusionPipeline, FluxTransformer2DModel  # noqa: E402
from record_overhead import blocked_time  # noqa: E402

import massivelens  # noqa: E402
from massivelens.engine import loading  # noqa: E402
from tests.tiny_pipelines import build_tiny_pipeline  # noqa: E402

PROFILES = ("default", "lean")


def flux_sized(tiny: Path, device: str, dtype: str, blocks: tuple[int, int]):
    """The tiny pipeline with a FLUX.1-dev-sized random transformer (no 24 GB of weights to write or load)."""
    pipe = DiffusionPipeline.from_pretrained(tiny)
    torch.manual_seed(0)
    with torch.device(device):
        transformer = FluxTransformer2DModel(
            patch_size=1, in_channels=16, num_layers=blocks[0], num_single_layers=blocks[1],
            attention_head_dim=128, num_attention_heads=24, joint_attention_dim=32, pooled_projection_dim=32,
            guidance_embeds=True, axes_dims_rope=(16, 56, 56),
        )
    pipe.register_modules(transformer=transformer)
    pipe.to(device, loading.TORCH_DTYPES[dtype])
    pipe.set_progress_bar_config(disable=True)
    return pipe


def timed(fn, cuda: bool) -> tuple[float, float]:
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    fn()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0


def reduction_costs(tokens: int, channels: int, device: str, dtype: str, reps: int = 50) -> dict[str, float]:
    """Milliseconds per block for the recorder's reductions of one (tokens, channels) state: the median of
    all |x| is a single-slice k-th value search, so it is timed apart (and on every 48th token)."""
    x = torch.randn(tokens, channels, device=device, dtype=loading.TORCH_DTYPES[dtype])
    cases = {
        "mean+max": lambda a: (a.mean(0), a.amax(0)),
        "median, all tokens": lambda a: a.median(),
        "median, every 48th token": lambda a: a[::48].median(),
    }
    out = {}
    for name, fn in cases.items():
        fn(x.float().abs())
        start = time.perf_counter()
        for _ in range(reps):
            fn(x.float().abs())
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        out[name] = (time.perf_counter() - start) / reps * 1e3
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--blocks", type=int, nargs=2, default=(19, 38), metavar=("DOUBLE", "SINGLE"))
    parser.add_argument("--dtype", default="bf16", choices=tuple(loading.TORCH_DTYPES))
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        sys.exit("record_overhead_flux: no CUDA device (use --device cpu for a smoke run)")
    with tempfile.TemporaryDirectory() as tmp:
        tiny = build_tiny_pipeline("flux", Path(tmp) / "tiny")
        pipe = flux_sized(tiny, args.device, args.dtype, tuple(args.blocks))
        params = sum(p.numel() for p in pipe.transformer.parameters()) / 1e9
        call = dict(prompt="a red circle", num_inference_steps=args.steps, height=args.size, width=args.size)

        def seeded() -> dict:
            return {**call, "generator": torch.Generator("cpu").manual_seed(0)}

        def recorded(profile: str):
            return lambda: massivelens.record(pipe, Path(tmp) / f"{profile}.h5", profile=profile, overwrite=True, **seeded())

        plain, runs, blocked = [], {p: [] for p in PROFILES}, {p: [] for p in PROFILES}
        for i in range(args.repeats + 1):  # the first round warms up and is dropped
            p = timed(lambda: pipe(**seeded()), cuda)
            for profile in PROFILES:
                with blocked_time() as spent:
                    r = timed(recorded(profile), cuda)
                if i:
                    runs[profile].append(r)
                    blocked[profile].append(spent[0] / args.steps)
            if i:
                plain.append(p)
        profile_run = cProfile.Profile()
        profile_run.runcall(recorded("default"))
    tp = statistics.median(t for t, _ in plain)
    device = torch.cuda.get_device_name() if cuda else args.device
    print(f"{device}, torch {torch.__version__}: transformer {params:.2f}B params, {args.dtype}, "
          f"{sum(args.blocks)} blocks, {(args.size // 16) ** 2} image tokens, {args.steps} steps")
    print(f"plain {tp:.3f} s, peak memory {max(m for _, m in plain):.2f} GiB (median of {args.repeats}, interleaved)")
    for profile in PROFILES:
        tr = statistics.median(t for t, _ in runs[profile])
        print(f"{profile:<8} recorded {tr:.3f} s, ratio {tr / tp:.3f}, peak memory {max(m for _, m in runs[profile]):.2f} GiB, "
              f"blocked {1e3 * statistics.median(blocked[profile]):.1f} ms/step ({100 * statistics.median(blocked[profile]) / (tp / args.steps):.1f}% of a step)")
    print("host time of one recorded (default) run, engine and sessions functions by cumulative time:")
    pstats.Stats(profile_run).sort_stats("cumulative").print_stats(r"(engine|sessions)/", 14)
    costs = reduction_costs((args.size // 16) ** 2, 3072, args.device, args.dtype)
    print("reductions of one block's image stream, ms:", ", ".join(f"{k} {v:.3f}" for k, v in costs.items()))


if __name__ == "__main__":
    main()
