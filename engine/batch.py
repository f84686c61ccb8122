"""Batch recording: one session per prompt and seed, resumable, split across `accelerate launch` processes.

A batch directory holds `jobs.json` (settings and job list), `sessions/<prompt index>-seed<seed>.h5`,
`sessions/<same>.error.json` for a job that failed in its last try, and, once every process is done,
`failures.jsonl`, `summary.h5` and `summary.json`, written by rank 0. Qt-free: the CLI calls
`run_batch`, and the app can too.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Callable, Iterable, Protocol, Sequence

import torch

from massivelens.sessions.dataset_summary import (
    DatasetSummary,
    Failure,
    SessionEntry,
    summarize_dataset,
    write_summary,
)
from massivelens.sessions.reader import SessionError, open_session

from .errors import BadRequest, EngineError
from .jobs import RecordRequest, record
from .loading import load_pipeline

MANIFEST = "jobs.json"
SESSIONS = "sessions"
FAILURES = "failures.jsonl"
ERROR_SUFFIX = ".error.json"
# RecordRequest fields that must not change when a batch resumes (device and offload may).
SETTINGS = ("model", "dtype", "negative_prompt", "steps", "guidance", "height", "width", "frames", "k", "profile", "map_steps")
# Rank 0 waits at the last barrier while the slowest rank finishes its share; gloo's default is 30 min.
BARRIER_TIMEOUT = timedelta(hours=24)


@dataclass(frozen=True)
class PromptLine:
    text: str
    seed: int | None = None  # a .jsonl line's own first seed


@dataclass(frozen=True)
class Job:
    prompt_index: int
    prompt: str
    seed: int

    @property
    def file(self) -> str:
        """Relative to the batch directory and deterministic, so a restart finds its earlier output."""
        return f"{SESSIONS}/{self.prompt_index:05d}-seed{self.seed}.h5"


@dataclass
class BatchRequest:
    prompts: Path
    out: Path
    settings: RecordRequest  # shared by every job; its prompt and out are ignored, its seed is the first seed
    seeds: int = 1


class Ranks(Protocol):
    """What run_batch uses of accelerate's PartialState (tests pass a stub)."""

    process_index: int
    num_processes: int
    is_main_process: bool
    device: torch.device

    def wait_for_everyone(self) -> None: ...


@dataclass
class BatchOutcome:
    recorded: int  # by this process
    skipped: int  # finished before this run
    failed: list[Failure]  # this process's failures
    summary: DatasetSummary | None  # rank 0 only


def process_state(device: str | None) -> Ranks:
    """accelerate's view of this process; a plain `python main.py batch` is rank 0 of 1. CPU processes
    need cpu=True, or accelerate does not join them (with gloo) into one group."""
    from accelerate import PartialState

    cpu = device == "cpu" or (device is None and not torch.cuda.is_available())
    return PartialState(cpu=cpu, timeout=BARRIER_TIMEOUT)


def read_prompts(path: Path) -> list[PromptLine]:
    """.jsonl: one {"prompt": str, "seed": int (optional)} per non-blank line; any other file: one
    prompt per line. A blank .txt line stays a job, which fails and is reported like any bad prompt."""
    if not path.is_file():
        raise BadRequest(f"no such prompts file: {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix == ".jsonl":
        prompts = [_json_prompt(path, n, line) for n, line in enumerate(lines, 1) if line.strip()]
    else:
        prompts = [PromptLine(line) for line in lines]
    if not prompts:
        raise BadRequest(f"{path} holds no prompts")
    return prompts


def _json_prompt(path: Path, n: int, line: str) -> PromptLine:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"{path}:{n}: not JSON ({exc.msg})") from None
    if not isinstance(item, dict) or not isinstance(item.get("prompt"), str):
        raise BadRequest(f'{path}:{n}: expected an object with a "prompt" string')
    seed = item.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise BadRequest(f'{path}:{n}: "seed" must be an integer')
    return PromptLine(item["prompt"], seed)


def plan_jobs(prompts: Sequence[PromptLine], seeds: int, first_seed: int) -> list[Job]:
    """Prompt by prompt, `seeds` consecutive seeds from the line's own seed or `first_seed`."""
    if seeds < 1:
        raise BadRequest(f"--seeds must be at least 1, got {seeds}")
    return [
        Job(i, line.text, (first_seed if line.seed is None else line.seed) + s)
        for i, line in enumerate(prompts)
        for s in range(seeds)
    ]


def share(jobs: Sequence[Job], rank: int, world: int) -> list[Job]:
    """This rank's jobs: every world-th one, so shares differ by at most one job and never overlap."""
    return list(jobs[rank::world])


def is_finished(path: Path) -> bool:
    """A complete session is kept; a missing, half-written or unreadable one is (re)done."""
    try:
        with open_session(path) as s:
            return s.complete
    except SessionError:
        return False


def run_batch(
    request: BatchRequest,
    ranks: Ranks,
    track: Callable[[list[Job]], Iterable[Job]] = iter,
    on_failure: Callable[[Failure], None] | None = None,
) -> BatchOutcome:
    """Record this rank's share of the unfinished jobs; rank 0 then writes the summary of all ranks' sessions.
    `track` wraps the job loop (a progress bar); model errors end the batch, a job's own error does not."""
    lines = read_prompts(request.prompts)
    jobs = plan_jobs(lines, request.seeds, request.settings.seed)
    claim_directory(request, jobs, ranks.is_main_process)
    todo = [job for job in jobs if not is_finished(request.out / job.file)]
    ranks.wait_for_everyone()  # all ranks list the same unfinished jobs before any of them writes
    mine = share(todo, ranks.process_index, ranks.num_processes)
    settings = replace(request.settings, device=process_device(request.settings.device, ranks))
    if mine:
        load_pipeline(settings.spec)
    failed = []
    for job in track(mine):
        failure = run_job(request.out, job, settings)
        if failure is not None:
            failed.append(failure)
            if on_failure is not None:
                on_failure(failure)
    ranks.wait_for_everyone()
    summary = build_summary(request, jobs, [line.text for line in lines]) if ranks.is_main_process else None
    return BatchOutcome(len(mine) - len(failed), len(jobs) - len(todo), failed, summary)


def process_device(requested: str | None, ranks: Ranks) -> str | None:
    """With several processes each takes its rank's device (cuda:<local rank>) unless told another kind."""
    if ranks.num_processes == 1 or requested not in (None, ranks.device.type):
        return requested
    return ranks.device.type if ranks.device.type == "cpu" else str(ranks.device)


def claim_directory(request: BatchRequest, jobs: Sequence[Job], is_main: bool) -> None:
    """Write jobs.json, or check that the directory's earlier run had the same jobs and settings:
    resuming with other ones would mix incomparable sessions in one summary."""
    manifest = {
        "settings": json.loads(json.dumps({name: getattr(request.settings, name) for name in SETTINGS})),  # as read back
        "jobs": [{"file": j.file, "prompt_index": j.prompt_index, "prompt": j.prompt, "seed": j.seed} for j in jobs],
    }
    path = request.out / MANIFEST
    if path.is_file():
        before = json.loads(path.read_text())
        changed = [name for name in SETTINGS if before["settings"].get(name) != manifest["settings"][name]]
        if changed or before["jobs"] != manifest["jobs"]:
            what = f"other {', '.join(changed)}" if changed else "other prompts or seeds"
            raise BadRequest(f"{request.out} holds a batch with {what}; resume it with the same input or use a new --out")
    (request.out / SESSIONS).mkdir(parents=True, exist_ok=True)
    if is_main:
        _write_json(path, manifest)


def run_job(out: Path, job: Job, settings: RecordRequest) -> Failure | None:
    """Record one job. Any error becomes a Failure, kept beside the session, so the batch goes on."""
    path = out / job.file
    error_file = path.with_name(path.stem + ERROR_SUFFIX)
    try:
        record(replace(settings, prompt=job.prompt, seed=job.seed, out=path, overwrite=True))
    except Exception as exc:  # one prompt's error (empty, out of memory, a pipeline bug) must not end the batch
        failure = Failure(job.file, job.prompt_index, job.seed, one_line(exc))
        _write_json(error_file, {**asdict(failure), "prompt": job.prompt})
        return failure
    error_file.unlink(missing_ok=True)
    return None


def one_line(exc: Exception) -> str:
    """Engine errors are already written for the user; anything else keeps its type."""
    lines = str(exc).strip().splitlines()
    text = lines[0][:300] if lines else ""
    return text if isinstance(exc, EngineError) else f"{type(exc).__name__}: {text}"


def build_summary(request: BatchRequest, jobs: Sequence[Job], prompts: list[str]) -> DatasetSummary:
    """failures.jsonl, summary.h5 and summary.json over every job of the directory."""
    done, failed = [], []
    for job in jobs:
        if is_finished(request.out / job.file):
            done.append(SessionEntry(job.file, job.prompt_index, job.seed))
        else:
            failed.append(Failure(job.file, job.prompt_index, job.seed, _last_error(request.out / job.file)))
    lines = [json.dumps({**asdict(x), "prompt": prompts[x.prompt_index]}) + "\n" for x in failed]
    (request.out / FAILURES).write_text("".join(lines))
    settings = request.settings
    summary = summarize_dataset(
        request.out, done, prompts, failed, settings.k, settings.model, {name: getattr(settings, name) for name in SETTINGS}
    )
    write_summary(summary, request.out)
    return summary


def _last_error(session: Path) -> str:
    error_file = session.with_name(session.stem + ERROR_SUFFIX)
    if error_file.is_file():
        return json.loads(error_file.read_text())["error"]
    return "no complete session (interrupted)"


def _write_json(path: Path, data: dict) -> None:
    """Renamed into place: another rank may read it at any moment."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=1))
    os.replace(partial, path)
