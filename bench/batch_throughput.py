"""Batch throughput on CPU: images per second with 1 and 2 processes, recording overhead, memory growth.

    python bench/batch_throughput.py [--prompts 24] [--steps 2] [--model DIR] [--processes 1 2]
    python bench/batch_throughput.py --prompts 100 --model resources/shapes-dit --processes 1   # a lean batch of 100

Without --model it builds the tests' tiny FLUX pipeline. Each process count runs the same
`main.py batch` engine (`run_batch`) in fresh processes, 2 under `accelerate launch --multi_gpu`
(the launcher that starts several CPU processes). Throughput counts the job loops only (model
loading and the summary excluded): images / (last rank's end - first rank's start). In the
1-process run, plain pipeline calls on the same prompts and seeds run before and after the batch,
giving recorded/plain; RSS is read after every prompt and its least-squares slope printed, and the
sessions' bytes per session (--profile, default lean as `batch` records).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

COLOURS = ("red", "blue", "green", "yellow", "purple", "white")
SHAPES = ("circle", "square", "triangle", "star")


def write_prompts(path: Path, n: int) -> Path:
    lines = [f"a {COLOURS[i % len(COLOURS)]} {SHAPES[i // len(COLOURS) % len(SHAPES)]} number {i}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def launch(processes: int, worker_args: list[str], port: int) -> None:
    script = [str(Path(__file__).resolve()), "--worker", *worker_args]
    if processes == 1:
        cmd = [sys.executable, *script]
    else:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port), *script]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}  # one core per process, as one GPU per process
    subprocess.run(cmd, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# Worker (one process of a run) ---------------------------------------------------------------------
def worker(args: argparse.Namespace) -> None:
    import psutil
    import torch

    from massivelens.engine.batch import (
        BatchRequest,
        plan_jobs,
        process_state,
        read_prompts,
        run_batch,
    )
    from massivelens.engine.jobs import RecordRequest

    torch.set_num_threads(1)
    ranks = process_state("cpu")
    settings = RecordRequest(prompt="", out=args.out, model=args.model, steps=args.steps, height=args.height, width=args.width,
                             k=16, device="cpu", profile=args.profile)
    request = BatchRequest(args.prompts_file, args.out, settings)
    jobs = plan_jobs(read_prompts(args.prompts_file), 1, settings.seed)
    plain = plain_seconds(settings, jobs) if ranks.num_processes == 1 else []
    times, rss = [], []

    def track(mine):
        times.append(time.time())
        for job in mine:
            yield job
            rss.append(psutil.Process().memory_info().rss)
        times.append(time.time())

    run_batch(request, ranks, track=track)
    if ranks.num_processes == 1:
        plain += plain_seconds(settings, jobs)
    result = {"start": times[0], "end": times[-1], "images": len(rss), "rss": rss, "plain": plain}
    (args.results / f"rank{ranks.process_index}.json").write_text(json.dumps(result))


def plain_seconds(settings, jobs) -> list[float]:
    """One pass of plain pipeline calls (no hooks, no file) over the batch's prompts and seeds."""
    from dataclasses import replace

    from massivelens.engine.generation import call_kwargs
    from massivelens.engine.loading import load_pipeline

    pipe = load_pipeline(settings.spec)
    gens = [replace(settings, prompt=j.prompt, seed=j.seed).generation() for j in jobs]
    pipe(**call_kwargs(pipe, gens[0]))  # warm-up
    t0 = time.perf_counter()
    for gen in gens:
        pipe(**call_kwargs(pipe, gen))
    return [time.perf_counter() - t0]


# Driver ----------------------------------------------------------------------------------------------
def report(processes: int, results: list[dict], baseline: float | None) -> float:
    images = sum(r["images"] for r in results)
    rate = images / (max(r["end"] for r in results) - min(r["start"] for r in results))
    speedup = "" if baseline is None else f"   x{rate / baseline:.2f} vs 1 process"
    print(f"{processes} process(es): {images} images, {rate:.2f} images/s{speedup}")
    return rate


def report_single(result: dict) -> None:
    import numpy as np

    batch_seconds = result["end"] - result["start"]
    plain = sum(result["plain"]) / len(result["plain"])
    print(f"  recorded batch / plain generation: {batch_seconds:.2f} s / {plain:.2f} s = {batch_seconds / plain:.3f}")
    rss = np.asarray(result["rss"], dtype=np.float64) / 1024
    half = rss[len(rss) // 2 :]
    slope_all = np.polyfit(np.arange(len(rss)), rss, 1)[0]
    slope_half = np.polyfit(np.arange(len(half)), half, 1)[0] if len(half) > 1 else float("nan")
    print(f"  RSS after prompt 1: {rss[0] / 1024:.1f} MiB, after prompt {len(rss)}: {rss[-1] / 1024:.1f} MiB")
    print(f"  RSS slope: {slope_all:.1f} KiB/prompt over all prompts, {slope_half:.1f} KiB/prompt over the second half")


def tiny_flux(root: Path, args: argparse.Namespace) -> str:
    """The tests' tiny FLUX pipeline at their image size, unless a size was given."""
    from tests.tiny_pipelines import build_tiny_pipeline, tiny_call_kwargs

    kw = tiny_call_kwargs("flux")
    args.height, args.width = args.height or kw["height"], args.width or kw["width"]
    return str(build_tiny_pipeline("flux", root / "tiny-flux"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--model", help="pipeline folder (default: the tests' tiny FLUX, built here)")
    parser.add_argument("--height", type=int)
    parser.add_argument("--width", type=int)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--profile", default="lean", choices=("full", "default", "lean"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prompts-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--results", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = args.model or tiny_flux(root, args)
        size = [flag for name in ("height", "width") if getattr(args, name) for flag in (f"--{name}", str(getattr(args, name)))]
        prompts = write_prompts(root / "prompts.txt", args.prompts)
        print(f"{args.prompts} prompts x 1 seed, {args.steps} steps, model {model}, {os.cpu_count()} CPUs")
        baseline = None
        for processes in args.processes:
            results_dir = root / f"results-{processes}"
            results_dir.mkdir()
            worker_args = ["--model", model, "--steps", str(args.steps), *size, "--prompts-file", str(prompts),
                           "--out", str(root / f"batch-{processes}"), "--results", str(results_dir), "--profile", args.profile]
            launch(processes, worker_args, 29500 + processes + os.getpid() % 1000)
            results = [json.loads(p.read_text()) for p in sorted(results_dir.glob("rank*.json"))]
            rate = report(processes, results, baseline)
            baseline = rate if baseline is None else baseline
            if processes == 1:
                report_single(results[0])
            files = list((root / f"batch-{processes}" / "sessions").glob("*.h5"))
            print(f"  {args.profile} sessions: {sum(f.stat().st_size for f in files) / len(files) / 1024:.1f} KiB each ({len(files)} files)")


if __name__ == "__main__":
    main()
