"""Recording on a CUDA device in fp32, bf16 and fp16: overhead, peak memory, and what half precision changes.

    python bench/gpu_precision.py [--repeats 3] [--steps 4]

Cases: the embedded model (64x64, its own steps) and the tests' tiny FLUX pipeline with a FLUX-width
random transformer (3072 channels, 24 heads, 2 double + 2 single blocks) at 1024x1024, i.e. 4096
image tokens. For each dtype: median plain and recorded wall time (interleaved), peak CUDA memory of
each, and against the fp32 session: the share of (step, block) cells whose top-1 image channel agrees,
the mean Jaccard of the top-k sets, the largest |x| seen, any non-finite statistic, and image PSNR.
Needs a CUDA device; prints one table row per case and dtype.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.record_overhead import flux_width  # noqa: E402
from bench.record_overhead_flux import timed  # noqa: E402
from massivelens.engine import defaults  # noqa: E402
from massivelens.engine.core.pipeline_info import transformer_width  # noqa: E402
from massivelens.engine.generation import Generation, call_kwargs, default_size, resolve  # noqa: E402
from massivelens.engine.jobs import RecordRequest, record  # noqa: E402
from massivelens.engine.loading import ModelSpec, load_pipeline  # noqa: E402
from massivelens.sessions.reader import open_session  # noqa: E402
from tests.tiny_pipelines import build_tiny_pipeline  # noqa: E402

DTYPES = ("fp32", "bf16", "fp16")


def measure(model: str, gen: Generation, dtype: str, device: str, repeats: int, out: Path) -> dict:
    pipe = load_pipeline(ModelSpec(model, dtype, device))
    plain, recorded = [], []
    for i in range(repeats + 1):  # the first pair warms up and is dropped
        p = timed(lambda: pipe(**call_kwargs(pipe, gen)), device.startswith("cuda"))
        request = RecordRequest(prompt=gen.prompt, out=out / f"{dtype}.h5", model=model, seed=gen.seed,
                                steps=gen.steps, guidance=gen.guidance, height=gen.height, width=gen.width,
                                dtype=dtype, device=device, overwrite=True)
        r = timed(lambda: record(request), device.startswith("cuda"))
        if i:
            plain.append(p)
            recorded.append(r)
    return {"plain_s": statistics.median(t for t, _ in plain), "recorded_s": statistics.median(t for t, _ in recorded),
            "plain_gib": max(m for _, m in plain), "recorded_gib": max(m for _, m in recorded),
            "session": out / f"{dtype}.h5"}


def save(pipe, folder: Path) -> str:
    pipe.save_pretrained(folder)
    return str(folder)


def compare(session: Path, reference: Path) -> dict:
    """Top-channel agreement, extremes and image PSNR of a session against the fp32 one."""
    with open_session(session) as s, open_session(reference) as ref:
        top, ref_top = s.top_channels(), ref.top_channels()
        sets = [len(set(a) & set(b)) / len(set(a) | set(b))
                for a, b in zip(top.reshape(-1, top.shape[-1]), ref_top.reshape(-1, ref_top.shape[-1]))]
        stats = np.concatenate([s.mean_abs().ravel(), s.max_abs().ravel()])
        mse = np.mean((s.image.astype(np.float64) - ref.image.astype(np.float64)) ** 2)
        return {"top1": float(np.mean(top[..., 0] == ref_top[..., 0])), "jaccard": float(np.mean(sets)),
                "max_abs": float(np.nanmax(s.max_abs())), "finite": bool(np.isfinite(stats).all()),
                "psnr": float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4, help="steps for the FLUX-width case")
    parser.add_argument("--size", type=int, default=1024, help="FLUX-width image side (1024 -> 4096 tokens)")
    parser.add_argument("--device", default="cuda", help="cpu gives a smoke run (no memory column)")
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=DTYPES)
    args = parser.parse_args()
    args.dtypes = ["fp32", *[d for d in args.dtypes if d != "fp32"]]  # the reference every row compares with
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("gpu_precision: no CUDA device (use --device cpu for a smoke run)")
    print(torch.cuda.get_device_name() if torch.cuda.is_available() else args.device, "torch", torch.__version__)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        embedded = defaults.DEFAULT_MODEL
        prompt = "a small red circle on a blue background at top left"
        pipe = load_pipeline(ModelSpec(embedded, "fp32", args.device))
        gen = resolve(embedded, prompt)
        height, width = default_size(pipe, gen)
        tokens = (height // pipe.vae_scale_factor // 2) * (width // pipe.vae_scale_factor // 2)
        cases = {
            f"embedded ({transformer_width(pipe.transformer)} ch, {tokens} tokens)": (embedded, gen),
            f"FLUX-width (3072 ch, {(args.size // 16) ** 2} tokens)": (
                save(flux_width(build_tiny_pipeline("flux", root / "tiny")), root / "flux-width"),
                Generation(prompt, steps=args.steps, guidance=3.5, height=args.size, width=args.size),
            ),
        }
        print(f"{'case':<34} {'dtype':<5} {'plain s':>8} {'rec s':>7} {'ratio':>6} {'plain GiB':>9} {'rec GiB':>8}"
              f" {'top1=':>6} {'jacc':>5} {'max|x|':>9} {'finite':>6} {'PSNR':>6}")
        for label, (model, gen) in cases.items():
            out = root / label.split()[0]
            out.mkdir()
            results = {dtype: measure(model, gen, dtype, args.device, args.repeats, out) for dtype in args.dtypes}
            for dtype, r in results.items():
                c = compare(r["session"], results["fp32"]["session"])
                print(f"{label:<34} {dtype:<5} {r['plain_s']:>8.3f} {r['recorded_s']:>7.3f}"
                      f" {r['recorded_s'] / r['plain_s']:>6.3f} {r['plain_gib']:>9.3f} {r['recorded_gib']:>8.3f}"
                      f" {c['top1']:>6.2f} {c['jaccard']:>5.2f} {c['max_abs']:>9.1f} {str(c['finite']):>6}"
                      f" {c['psnr']:>6.1f}", flush=True)


if __name__ == "__main__":
    main()
