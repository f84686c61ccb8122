"""Recording overhead at FLUX.1's real size on a CUDA device, measured in one run.

    python bench/record_overhead_flux.py [--steps 28] [--size 1024] [--repeats 2]

A FLUX.1-dev-sized transformer (19 double + 38 single blocks, 3072 channels, 24 heads, guidance
embedding; random weights, built on the device in bf16) inside the tests' tiny FLUX pipeline (its small
text encoders and VAE), so no hub weights are needed: 1024x1024 gives 4096 image tokens, as FLUX does.
Plain and recorded runs alternate after one warm-up pair; prints median wall times, their ratio, peak
CUDA memory of each, and where a recorded run spends its host time (cProfile of one run).
Goal: ratio <= 1.05. `--device cpu --blocks 1 1 --size 128 --steps 2` is a smoke run of the script.
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

from massivelens.engine import loading  # noqa: E402
from massivelens.engine.core.architectures import adapter_for  # noqa: E402
from massivelens.engine.generation import Generation, call_kwargs  # noqa: E402
from massivelens.engine.jobs import RecordRequest, record  # noqa: E402
from tests.tiny_pipelines import build_tiny_pipeline  # noqa: E402


def flux_sized(tiny: Path, device: str, dtype: str, blocks: tuple[int, int]):
    """The tiny pipeline with a FLUX.1-dev-sized random transformer, registered as the loaded model of
    `tiny` (the loader's one-entry cache) so `record` uses it without writing 24 GB of weights."""
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
    loading._cache.clear()
    loading._cache[loading.ModelSpec(str(tiny), dtype, device)] = pipe
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
        gen = Generation("a red circle", "", 0, args.steps, 3.5, args.size, args.size)
        kwargs = call_kwargs(pipe, adapter_for(pipe.transformer), gen)
        request = RecordRequest(prompt=gen.prompt, out=Path(tmp) / "s.h5", model=str(tiny), steps=gen.steps,
                                guidance=gen.guidance, height=gen.height, width=gen.width, dtype=args.dtype,
                                device=args.device, overwrite=True)
        plain, recorded = [], []
        for i in range(args.repeats + 1):  # the first pair warms up and is dropped
            with torch.inference_mode():
                p = timed(lambda: pipe(**kwargs), cuda)
            r = timed(lambda: record(request), cuda)
            if i:
                plain.append(p)
                recorded.append(r)
        profile = cProfile.Profile()
        profile.runcall(record, request)
    tp, tr = statistics.median(t for t, _ in plain), statistics.median(t for t, _ in recorded)
    device = torch.cuda.get_device_name() if cuda else args.device
    print(f"{device}, torch {torch.__version__}: transformer {params:.2f}B params, {args.dtype}, "
          f"{sum(args.blocks)} blocks, {(args.size // 16) ** 2} image tokens, {args.steps} steps")
    print(f"plain {tp:.3f} s, recorded {tr:.3f} s, ratio {tr / tp:.3f} (median of {args.repeats}, interleaved)")
    print(f"peak memory: plain {max(m for _, m in plain):.2f} GiB, recorded {max(m for _, m in recorded):.2f} GiB")
    print("host time of one recorded run, engine and sessions functions by cumulative time:")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(r"(engine|sessions)/", 14)
    costs = reduction_costs((args.size // 16) ** 2, 3072, args.device, args.dtype)
    print("reductions of one block's image stream, ms:", ", ".join(f"{k} {v:.3f}" for k, v in costs.items()))


if __name__ == "__main__":
    main()
