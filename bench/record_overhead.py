"""Recording overhead on the CPU: recorded / plain wall time, and the time per step the denoising loop
spends blocked in recording (the recorder's hooks and hand-off; the file is written by a background
thread), measured in one run with plain and recorded calls interleaved.

    python bench/record_overhead.py [--repeats 3] [--threads 2] [--steps 4]

Cases: the embedded model at its own settings, and a FLUX-width random transformer (3072 channels,
24 heads, 2 double + 2 single blocks) in the tiny FLUX pipeline at 512x512, i.e. 1024 image tokens.
Goals: recorded / plain <= 1.05; blocked <= 2% of a step.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffusers import DiffusionPipeline, FluxTransformer2DModel  # noqa: E402

import massivelens  # noqa: E402
from massivelens.engine import defaults  # noqa: E402
from massivelens.engine.core.recording import Recorder  # noqa: E402
from tests.tiny_pipelines import build_tiny_pipeline  # noqa: E402


def flux_width(tiny: Path) -> DiffusionPipeline:
    """The tiny pipeline with its transformer swapped for a FLUX-width one (random weights)."""
    pipe = DiffusionPipeline.from_pretrained(tiny, dtype=torch.float32)
    torch.manual_seed(0)
    pipe.transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=2, num_single_layers=2, attention_head_dim=128,
        num_attention_heads=24, joint_attention_dim=32, pooled_projection_dim=32, guidance_embeds=True,
        axes_dims_rope=(16, 56, 56),
    )
    return pipe


@contextmanager
def blocked_time():
    """Seconds the calling thread spends in the recorder's hooks, per pipeline call."""
    spent = [0.0]
    originals = {name: getattr(Recorder, name) for name in ("on_block", "on_step_end")}

    def timed(method):
        def wrapper(self, *args):
            t0 = time.perf_counter()
            try:
                return method(self, *args)
            finally:
                spent[0] += time.perf_counter() - t0
        return wrapper

    for name, method in originals.items():
        setattr(Recorder, name, timed(method))
    try:
        yield spent
    finally:
        for name, method in originals.items():
            setattr(Recorder, name, method)


def measure(pipe, call: dict, steps: int, profile: str, repeats: int, out: Path) -> dict:
    plain, recorded, blocked = [], [], []
    for i in range(repeats + 1):  # the first pair warms up and is dropped
        t0 = time.perf_counter()
        pipe(**call, generator=torch.Generator("cpu").manual_seed(0))
        t1 = time.perf_counter()
        with blocked_time() as spent:
            massivelens.record(pipe, out / f"{profile}-{i}.h5", profile=profile, overwrite=True, **call,
                               generator=torch.Generator("cpu").manual_seed(0))
        t2 = time.perf_counter()
        if i:
            plain.append(t1 - t0)
            recorded.append(t2 - t1)
            blocked.append(spent[0] / steps)
    step = statistics.median(plain) / steps
    return {"plain": statistics.median(plain), "recorded": statistics.median(recorded),
            "blocked_ms": 1e3 * statistics.median(blocked), "blocked_share": statistics.median(blocked) / step}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4, help="denoising steps of the FLUX-width case")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        embedded = DiffusionPipeline.from_pretrained(defaults.DEFAULT_MODEL, dtype=torch.float32)
        own = defaults.model_defaults(defaults.DEFAULT_MODEL)
        embedded_call = dict(prompt="a large red circle on a white background at center", num_inference_steps=own["steps"],
                             height=own["height"], width=own["width"], true_cfg_scale=own["guidance"], negative_prompt="",
                             max_sequence_length=own["max_sequence_length"])
        wide = flux_width(build_tiny_pipeline("flux", root / "tiny-flux"))
        wide_call = dict(prompt="a red circle", num_inference_steps=args.steps, height=512, width=512, max_sequence_length=16)
        cases = [("embedded model (128 ch, 64 tokens)", embedded, embedded_call, own["steps"]),
                 ("FLUX-width (3072 ch, 1024 tokens)", wide, wide_call, args.steps)]
        print(f"{'case':<36} {'profile':<8} {'plain s':>8} {'recorded s':>10} {'ratio':>6} {'blocked ms/step':>16} {'of a step':>9}")
        for label, pipe, call, steps in cases:
            pipe.set_progress_bar_config(disable=True)
            for profile in ("default", "lean"):
                r = measure(pipe, call, steps, profile, args.repeats, root)
                print(f"{label:<36} {profile:<8} {r['plain']:>8.3f} {r['recorded']:>10.3f} {r['recorded'] / r['plain']:>6.3f} "
                      f"{r['blocked_ms']:>16.2f} {100 * r['blocked_share']:>8.2f}%")
    print(f"(median of {args.repeats} interleaved pairs, {args.threads} threads) goals: ratio <= 1.05, blocked <= 2% of a step")


if __name__ == "__main__":
    main()
