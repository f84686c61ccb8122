"""Batch recording in one process: job list, failures that do not stop the batch, resuming, rank shares."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import pytest
import torch

from massivelens.engine import batch
from massivelens.engine.batch import (
    BatchRequest,
    Job,
    PromptLine,
    plan_jobs,
    process_device,
    process_state,
    read_prompts,
    run_batch,
    share,
)
from massivelens.engine.errors import BadRequest, OutOfMemory
from massivelens.engine.jobs import RecordRequest
from massivelens.sessions import schema as S
from massivelens.sessions.dataset_summary import Failure, read_summary
from massivelens.sessions.reader import open_session
from tests.tiny_pipelines import tiny_call_kwargs


@dataclass
class Rank:
    """A stand-in for accelerate's PartialState: one rank of a group whose barriers are no-ops."""

    process_index: int = 0
    num_processes: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main_process(self) -> bool:
        return self.process_index == 0

    def wait_for_everyone(self) -> None:
        pass


def request(folder: Path, prompts: Path, out: Path, seeds: int = 2) -> BatchRequest:
    kw = tiny_call_kwargs("flux")
    settings = RecordRequest(prompt="", out=out, model=str(folder), steps=1, height=kw["height"], width=kw["width"], k=4)
    return BatchRequest(prompts, out, settings, seeds)


def mtimes(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted((out / batch.SESSIONS).glob("*.h5"))}


def test_prompt_files(tmp_path):
    txt = tmp_path / "p.txt"
    txt.write_text("a cat\n\na dog\n")
    assert read_prompts(txt) == [PromptLine("a cat"), PromptLine(""), PromptLine("a dog")]
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"prompt": "a cat", "seed": 7}\n\n{"prompt": "a dog"}\n')
    assert read_prompts(jsonl) == [PromptLine("a cat", 7), PromptLine("a dog")]
    jsonl.write_text('{"prompt": "a cat"}\n{"prompt": "a dog", "seed": "x"}\n')
    with pytest.raises(BadRequest, match=r"p.jsonl:2: \"seed\" must be an integer"):
        read_prompts(jsonl)
    jsonl.write_text('{"prompt": "a cat"\n')
    with pytest.raises(BadRequest, match=r"p.jsonl:1: not JSON"):
        read_prompts(jsonl)
    with pytest.raises(BadRequest, match="no such prompts file"):
        read_prompts(tmp_path / "missing.txt")


def test_jobs_count_seeds_from_the_line_or_the_first_seed():
    jobs = plan_jobs([PromptLine("a cat", 7), PromptLine("a dog")], seeds=2, first_seed=3)
    assert [(j.prompt_index, j.seed) for j in jobs] == [(0, 7), (0, 8), (1, 3), (1, 4)]
    assert jobs[1].file == "sessions/00000-seed8.h5"
    with pytest.raises(BadRequest, match="--seeds must be at least 1"):
        plan_jobs([PromptLine("a cat")], seeds=0, first_seed=0)


@pytest.mark.parametrize("world", [1, 2, 3])
def test_shares_cover_every_job_once(world):
    jobs = [Job(i, "p", 0) for i in range(7)]
    shares = [share(jobs, rank, world) for rank in range(world)]
    assert sorted(j.prompt_index for s in shares for j in s) == list(range(7))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_each_rank_takes_its_own_device():
    gpu = Rank(1, 2, torch.device("cuda", 1))
    assert process_device(None, gpu) == "cuda:1" and process_device("cuda", gpu) == "cuda:1"
    assert process_device("cpu", gpu) == "cpu" and process_device("cuda:0", gpu) == "cuda:0"
    assert process_device(None, Rank()) is None
    assert process_device(None, Rank(0, 2, torch.device("cpu", 0))) == "cpu"


def test_failures_are_logged_and_a_restart_redoes_only_unfinished_sessions(tiny_pipelines, tmp_path, monkeypatch):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle\n\na blue square\n")
    out = tmp_path / "batch"
    real_record = batch.record

    def out_of_memory_once(req, *args, **kwargs):
        if req.prompt == "a blue square" and req.seed == 1:
            raise OutOfMemory("out of memory on cpu: try a smaller size, bf16, or --offload")
        return real_record(req, *args, **kwargs)

    monkeypatch.setattr(batch, "record", out_of_memory_once)
    seen: list[Failure] = []
    first = run_batch(request(tiny_pipelines("flux"), prompts, out), process_state("cpu"), on_failure=seen.append)
    assert (first.recorded, first.skipped, len(first.failed)) == (3, 0, 3)
    assert seen == first.failed
    logged = [json.loads(line) for line in (out / batch.FAILURES).read_text().splitlines()]
    assert [(x["prompt"], x["seed"], x["error"]) for x in logged] == [
        ("", 0, "the prompt is empty"),
        ("", 1, "the prompt is empty"),
        ("a blue square", 1, "out of memory on cpu: try a smaller size, bf16, or --offload"),
    ]
    summary = read_summary(out)
    assert [(s.prompt_index, s.seed) for s in summary.sessions] == [(0, 0), (0, 1), (2, 0)]
    assert [(x.prompt_index, x.seed) for x in summary.failed] == [(1, 0), (1, 1), (2, 1)]
    assert summary.prompts == ["a red circle", "", "a blue square"]

    monkeypatch.setattr(batch, "record", real_record)
    with h5py.File(out / "sessions/00002-seed0.h5", "a") as f:
        f.attrs[S.ATTR_COMPLETE] = False  # as if killed before the image was written
    before = mtimes(out)
    ran: list[Job] = []
    second = run_batch(request(tiny_pipelines("flux"), prompts, out), process_state("cpu"), track=lambda jobs: ran.extend(jobs) or jobs)
    assert [j.file for j in ran] == [f"sessions/{n}.h5" for n in ("00001-seed0", "00001-seed1", "00002-seed0", "00002-seed1")]
    assert (second.recorded, second.skipped, len(second.failed)) == (2, 2, 2)
    after = mtimes(out)
    assert {name for name in before if after[name] == before[name]} == {"00000-seed0.h5", "00000-seed1.h5"}
    assert not (out / "sessions/00002-seed1.error.json").exists()
    with open_session(out / "sessions/00002-seed1.h5") as s:
        assert s.complete and s.info["prompt"] == "a blue square" and s.info["seed"] == 1
    assert len(read_summary(out).sessions) == 4


def test_a_rank_records_only_its_share_and_leaves_the_summary_to_rank_0(tiny_pipelines, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle\na blue square\n")
    out = tmp_path / "batch"
    outcome = run_batch(request(tiny_pipelines("flux"), prompts, out), Rank(1, 2))
    assert outcome.recorded == 2 and outcome.summary is None
    assert sorted(mtimes(out)) == ["00000-seed1.h5", "00001-seed1.h5"]
    assert not (out / "summary.h5").exists()


def test_a_directory_resumes_only_the_same_batch(tiny_pipelines, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle\n")
    out = tmp_path / "batch"
    run_batch(request(tiny_pipelines("flux"), prompts, out, seeds=1), Rank())
    with pytest.raises(BadRequest, match="holds a batch with other prompts or seeds"):
        run_batch(request(tiny_pipelines("flux"), prompts, out, seeds=2), Rank())
    changed = request(tiny_pipelines("flux"), prompts, out, seeds=1)
    changed.settings.k = 8
    with pytest.raises(BadRequest, match="holds a batch with other k"):
        run_batch(changed, Rank())
