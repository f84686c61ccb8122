"""`python main.py inspect FILE.h5|DIR [--json]`: what a session holds and which channels are massive;
for a batch folder, its dataset summary."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "inspect"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="summarise a session file, or a batch folder's sessions")
    p.add_argument("session", type=Path, help="a session file, or a folder written by `batch`")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--k", type=int, help="top channels to list per block (default: the session's k)")


def summary(path: Path, k: int | None = None) -> dict:
    """The session's run attributes and per-block massive-channel summary as plain data."""
    from massivelens.sessions.massive import summarize
    from massivelens.sessions.reader import open_session

    with open_session(path) as s:
        info = s.info
        blocks = summarize(s, k)
        return {
            "model": info.get("model"),
            "pipeline_class": info.get("pipeline_class"),
            "transformer_class": info.get("transformer_class"),
            "prompt": info.get("prompt"),
            "negative_prompt": info.get("negative_prompt"),
            "seed": info.get("seed"),
            "steps": info.get("steps"),
            "steps_done": s.steps_done,
            "guidance": info.get("guidance"),
            "height": info.get("height"),
            "width": info.get("width"),
            "dtype": info.get("dtype"),
            "complete": s.complete,
            "grid": list(s.grid),
            **({"first_frame_ratio": first_frame_ratio(s)} if s.is_video else {}),
            "blocks": [
                {
                    "block": b.block,
                    "stream": b.stream,
                    "top_channels": b.top_channels,
                    "max_over_median": b.max_over_median,
                    "max_abs": b.max_abs,
                    "sun_massive_channels": b.sun_channels,
                }
                for b in blocks
            ],
        }


def first_frame_ratio(session) -> list[float]:
    """Per image block of a video session: its top-1 channel's mean |x| on latent frame 0 over its mean on
    the other latent frames, averaged over steps (above 1: the first frame dominates)."""
    per_frame = session.top_frame_mean_abs()[:, :, 0]  # (steps, blocks, frames) of each step's top-1 channel
    if per_frame.shape[-1] < 2:
        return [1.0] * per_frame.shape[1]
    return [float(r) for r in (per_frame[..., 0] / per_frame[..., 1:].mean(axis=-1)).mean(axis=0)]


def run(args: argparse.Namespace) -> int:
    if args.session.is_dir():
        return _run_dataset(args)
    data = summary(args.session, args.k)
    if args.json:
        print(json.dumps(data))
        return 0
    state = "complete" if data["complete"] else f"INCOMPLETE ({data['steps_done']}/{data['steps']} steps)"
    print(f"{args.session}: {state}")
    print(f"  model   {data['model']} ({data['transformer_class']}, {data['dtype']})")
    print(f"  prompt  {data['prompt']!r}  seed {data['seed']}  steps {data['steps']}  guidance {data['guidance']}")
    print(f"  size    {data['height']}x{data['width']}  token grid {'x'.join(map(str, data['grid']))}")
    if "first_frame_ratio" in data:
        ratios = " ".join(f"{r:.1f}" for r in data["first_frame_ratio"])
        print(f"  frames  top-1 channel's mean |x| on latent frame 0 / later frames, per block: {ratios}")
    print(f"  {'block':<12} {'stream':<6} {'max/median':>11} {'Sun':>4}  top channels")
    for b in data["blocks"]:
        top = " ".join(str(c) for c in b["top_channels"][:8])
        print(f"  {b['block']:<12} {b['stream']:<6} {b['max_over_median']:>11.1f} {len(b['sun_massive_channels']):>4}  {top}")
    return 0


def _run_dataset(args: argparse.Namespace) -> int:
    """A batch folder: how often each channel is in the top-k, how stable that set is, Sun et al.'s rule."""
    from massivelens.sessions.dataset_summary import read_summary, summary_json

    data = summary_json(read_summary(args.session), args.k)
    if args.json:
        print(json.dumps(data))
        return 0
    print(f"{args.session}: {data['sessions']} sessions of {data['prompts']} prompts, k {data['k']}, model {data['model']}")
    print(f"  {'block':<12} {'stream':<6} {'J seeds':>8} {'J prompts':>9} {'Sun':>5}  channels most often in the top-k (share)")
    for b in data["blocks"]:
        channels = " ".join(f"{c['channel']}({c['frequency']:.2f})" for c in b["frequent_channels"][:8])
        stability = f"{_share(b['jaccard_seeds']):>8} {_share(b['jaccard_prompts']):>9} {_share(b['sun_holds']):>5}"
        print(f"  {b['block']:<12} {b['stream']:<6} {stability}  {channels}")
    for f in data["failed"]:
        print(f"  failed  {f['file']}  prompt {f['prompt']!r} seed {f['seed']}: {f['error']}")
    return 0


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
