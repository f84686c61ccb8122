"""`python main.py record`: one generation, recorded to a session file."""
from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from massivelens.engine import defaults
from massivelens.sessions.schema import PROFILES

NAME = "record"


def add_generation_arguments(p: argparse.ArgumentParser) -> None:
    """Model and generation flags shared by every command that runs a model."""
    p.add_argument("--model", default=defaults.DEFAULT_MODEL, help="hub id or local pipeline folder (default: the embedded model)")
    p.add_argument("--dtype", choices=defaults.DTYPES, default=defaults.DTYPE)
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--offload", action="store_true", help="accelerate model CPU offload (needs a CUDA device)")
    p.add_argument("--negative-prompt", help="(default: none, or the model folder's)")
    p.add_argument("--seed", type=int, default=defaults.SEED)
    p.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    p.add_argument("--guidance", type=float, help="guidance scale (default: the model's)")
    p.add_argument("--height", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--frames", type=int, help="video pipelines: frames to generate, their num_frames (default: the model's)")
    p.add_argument("--k", type=int, default=defaults.K, help="top channels per block whose token maps are kept")


def supported_models_help() -> str:
    """The adapter table's classes, imported when help is shown (it loads torch)."""
    from massivelens.engine.core.architectures import SUPPORTED

    return (
        "supported transformer classes (diffusers pipelines whose pipe.transformer is one of these): "
        + ", ".join(SUPPORTED)
        + ". Any other class with attention blocks gets an adapter inferred on its first call, "
        "recorded with a notice in the session, or is refused with the reason."
    )


def add_profile_arguments(p: argparse.ArgumentParser, default: str) -> None:
    """What a session keeps (record: default; batch: lean)."""
    p.add_argument("--profile", choices=PROFILES, default=default,
                   help="full: statistics in float32; default: 16-bit, token maps at every step; lean: statistics "
                        f"and token maps at --map-steps only (default: {default})")
    p.add_argument("--map-steps", nargs="+", type=int, metavar="STEP",
                   help="lean: the steps that keep per-channel statistics and token maps (default: the middle and last; -1 = last)")


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="generate once and record activations to a session file")
    plain_help = p.format_help
    p.format_help = lambda: plain_help() + "\n" + "\n".join(textwrap.wrap(supported_models_help(), 100)) + "\n"
    p.add_argument("--prompt", required=True)
    add_generation_arguments(p)
    add_profile_arguments(p, defaults.PROFILE)
    p.add_argument("--controls", nargs="*", default=(), choices=("bottom", "random"), help="also keep token maps of control channel sets")
    p.add_argument("--hidden-blocks", nargs="*", default=(), metavar="BLOCK", help="also keep full hidden states of these blocks")
    p.add_argument("--hidden-steps", nargs="*", type=int, metavar="STEP", help="steps for --hidden-blocks (default: all)")
    p.add_argument("--out", required=True, type=Path, help="session file to write (.h5)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing session file")


def run(args: argparse.Namespace) -> int:
    from massivelens.engine.jobs import RecordRequest, record

    from .console import ProgressBar, quiet_libraries

    quiet_libraries()
    request = RecordRequest(
        prompt=args.prompt,
        out=args.out,
        model=args.model,
        negative_prompt=args.negative_prompt,
        seed=args.seed,
        steps=args.steps,
        guidance=args.guidance,
        height=args.height,
        width=args.width,
        frames=args.frames,
        k=args.k,
        dtype=args.dtype,
        device=args.device,
        offload=args.offload,
        hidden_blocks=tuple(args.hidden_blocks),
        hidden_steps=None if args.hidden_steps is None else tuple(args.hidden_steps),
        control_sets=tuple(args.controls),
        profile=args.profile,
        map_steps=None if args.map_steps is None else tuple(args.map_steps),
        overwrite=args.overwrite,
    )
    bar = ProgressBar("record")
    try:
        path = record(request, progress=bar)
    finally:
        bar.close()
    print(f"wrote {path}")
    return 0
