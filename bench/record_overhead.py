"""Recording overhead: wall time of a recorded generation over a plain one, measured in one run.

    python bench/record_overhead.py [--repeats 3] [--threads 2]

(a) the tiny FLUX pipeline of the tests; (b) the same pipeline with a FLUX-width random
transformer (3072 channels, 24 heads, 2 double + 2 single blocks) at 512x512, i.e. 1024 image
tokens. Plain and recorded runs alternate, so drift in machine load hits both alike. Goal: <= 1.05.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffusers import DiffusionPipeline, FluxTransformer2DModel  # noqa: E402

from massivelens.engine.core.architectures import adapter_for  # noqa: E402
from massivelens.engine.generation import Generation, call_kwargs  # noqa: E402
from massivelens.engine.jobs import RecordRequest, record  # noqa: E402
from massivelens.engine.loading import ModelSpec, load_pipeline  # noqa: E402
from tests.tiny_pipelines import build_tiny_pipeline, tiny_call_kwargs  # noqa: E402


def flux_width(tiny: Path, folder: Path) -> Path:
    """The tiny pipeline with its transformer swapped for a FLUX-width one (random weights)."""
    pipe = DiffusionPipeline.from_pretrained(tiny)
    torch.manual_seed(0)
    pipe.transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=2, num_single_layers=2, attention_head_dim=128,
        num_attention_heads=24, joint_attention_dim=32, pooled_projection_dim=32, guidance_embeds=True,
        axes_dims_rope=(16, 56, 56),
    )
    pipe.register_modules(transformer=pipe.transformer)
    pipe.save_pretrained(folder)
    return folder


def measure(folder: Path, gen: Generation, repeats: int, out_dir: Path) -> tuple[float, float]:
    pipe = load_pipeline(ModelSpec(str(folder)))
    adapter = adapter_for(pipe.transformer)
    plain_times, recorded_times = [], []
    for i in range(repeats + 1):  # the first pair warms up and is dropped
        t0 = time.perf_counter()
        with torch.inference_mode():
            pipe(**call_kwargs(pipe, adapter, gen))
        t1 = time.perf_counter()
        record(RecordRequest(
            prompt=gen.prompt, out=out_dir / f"{folder.name}-{i}.h5", model=str(folder), seed=gen.seed,
            steps=gen.steps, guidance=gen.guidance, height=gen.height, width=gen.width,
        ))
        t2 = time.perf_counter()
        if i:
            plain_times.append(t1 - t0)
            recorded_times.append(t2 - t1)
    return statistics.median(plain_times), statistics.median(recorded_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tiny = build_tiny_pipeline("flux", root / "tiny-flux")
        kw = tiny_call_kwargs("flux")
        cases = {
            "tiny FLUX (32 ch, 24 tokens)": (tiny, Generation("a red circle", "", 0, args.steps, 3.5, kw["height"], kw["width"])),
            "FLUX-width (3072 ch, 1024 tokens)": (
                flux_width(tiny, root / "flux-width"), Generation("a red circle", "", 0, args.steps, 3.5, 512, 512)
            ),
        }
        print(f"{'case':<36} {'plain s':>9} {'recorded s':>11} {'ratio':>7}   (median of {args.repeats}, interleaved)")
        for label, (folder, gen) in cases.items():
            plain, recorded = measure(folder, gen, args.repeats, root)
            print(f"{label:<36} {plain:>9.3f} {recorded:>11.3f} {recorded / plain:>7.3f}")
    print("goal: ratio <= 1.05 with the default recording")


if __name__ == "__main__":
    main()
