"""`python main.py batch --prompts FILE --out DIR`: one session per prompt and seed, plus a dataset summary.

Resumable (run it again: finished sessions are kept), and split across processes when started with
`accelerate launch --num_processes N main.py batch ...` (on CPUs add --multi_gpu, which starts N
processes; --cpu starts one).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from massivelens.engine import defaults

from .record import add_generation_arguments, add_profile_arguments

NAME = "batch"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="record one session per prompt and seed into a folder, with a dataset summary")
    p.add_argument("--prompts", required=True, type=Path, help='.txt: one prompt a line; .jsonl: {"prompt": ..., "seed": ...} a line')
    p.add_argument("--seeds", type=int, default=1, help="seeds per prompt, counting up from --seed (or the line's seed)")
    add_generation_arguments(p)
    add_profile_arguments(p, defaults.BATCH_PROFILE)
    p.add_argument("--out", required=True, type=Path, help="batch folder (resumes when it holds this batch)")


def _settings(args: argparse.Namespace):
    from massivelens.engine.jobs import RecordRequest

    return RecordRequest(
        prompt="", out=args.out, model=args.model, negative_prompt=args.negative_prompt, seed=args.seed,
        steps=args.steps, guidance=args.guidance, height=args.height, width=args.width, frames=args.frames, k=args.k,
        dtype=args.dtype, device=args.device, offload=args.offload, profile=args.profile,
        map_steps=None if args.map_steps is None else tuple(args.map_steps),
    )


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from massivelens.engine.batch import (
        FAILURES,
        BatchRequest,
        process_state,
        run_batch,
    )

    from .console import quiet_libraries

    quiet_libraries()
    ranks = process_state(args.device)
    who = "" if ranks.num_processes == 1 else f"rank {ranks.process_index}/{ranks.num_processes} "
    outcome = run_batch(
        BatchRequest(args.prompts, args.out, _settings(args), args.seeds),
        ranks,
        track=lambda jobs: tqdm(jobs, desc=f"{who}batch", unit="image", file=sys.stderr),
        on_failure=lambda f: tqdm.write(f"{who}failed: {f.file}: {f.error}", file=sys.stderr),
    )
    print(f"{who}recorded {outcome.recorded}, failed {len(outcome.failed)}, already done {outcome.skipped}", file=sys.stderr)
    if outcome.summary is not None:
        failed = len(outcome.summary.failed)
        note = f"; {failed} without a session, listed in {args.out / FAILURES}" if failed else ""
        print(f"summary of {len(outcome.summary.sessions)} sessions in {args.out}/summary.h5 and summary.json{note}")
    return 0
