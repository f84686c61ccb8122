"""`python main.py inspect FILE.h5 [--json]`: what a session holds and which channels are massive."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "inspect"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="summarise a session file")
    p.add_argument("session", type=Path)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--k", type=int, help="top channels to list per block (default: the session's k)")


def summary(path: Path, k: int | None = None) -> dict:
    """The session's run attributes and per-block massive-channel summary as plain data."""
    from sessions.massive import summarize
    from sessions.reader import open_session

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


def run(args: argparse.Namespace) -> int:
    data = summary(args.session, args.k)
    if args.json:
        print(json.dumps(data))
        return 0
    state = "complete" if data["complete"] else f"INCOMPLETE ({data['steps_done']}/{data['steps']} steps)"
    print(f"{args.session}: {state}")
    print(f"  model   {data['model']} ({data['transformer_class']}, {data['dtype']})")
    print(f"  prompt  {data['prompt']!r}  seed {data['seed']}  steps {data['steps']}  guidance {data['guidance']}")
    print(f"  size    {data['height']}x{data['width']}  token grid {data['grid'][0]}x{data['grid'][1]}")
    print(f"  {'block':<12} {'stream':<6} {'max/median':>11} {'Sun':>4}  top channels")
    for b in data["blocks"]:
        top = " ".join(str(c) for c in b["top_channels"][:8])
        print(f"  {b['block']:<12} {b['stream']:<6} {b['max_over_median']:>11.1f} {len(b['sun_massive_channels']):>4}  {top}")
    return 0
