"""`python main.py batch` as a user runs it: one process, two processes under `accelerate launch`, inspect DIR."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from massivelens.cli.main import main
from massivelens.sessions.dataset_summary import read_summary
from tests.tiny_pipelines import tiny_call_kwargs

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, env=ENV)


def generation_flags(folder: Path) -> list[str]:
    kw = tiny_call_kwargs("flux")
    return ["--model", str(folder), "--steps", "1", "--height", str(kw["height"]), "--width", str(kw["width"]), "--k", "4"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_batch_then_inspect_the_folder(tiny_pipelines, tmp_path, capsys):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "a red circle", "seed": 5}\n{"prompt": ""}\n')
    out = tmp_path / "batch"
    result = run("main.py", "batch", "--prompts", str(prompts), "--seeds", "2", *generation_flags(tiny_pipelines("flux")), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "batch: 100%" in result.stderr and "4/4" in result.stderr  # tqdm bar with rate and ETA on stderr
    assert "failed: sessions/00001-seed0.h5: the prompt is empty" in result.stderr
    assert "summary of 2 sessions" in result.stdout
    assert sorted(p.name for p in (out / "sessions").glob("*.h5")) == ["00000-seed5.h5", "00000-seed6.h5"]

    assert main(["inspect", str(out)]) == 0  # in-process: inspect loads no model
    text = capsys.readouterr().out
    assert "2 sessions of 2 prompts" in text and "double.0" in text
    assert "failed  sessions/00001-seed1.h5  prompt '' seed 1: the prompt is empty" in text
    assert main(["inspect", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == "massivelens.summary" and data["sessions"] == 2 and len(data["failed"]) == 2
    first = next(b for b in data["blocks"] if b["block"] == "double.0" and b["stream"] == "image")
    top = read_summary(out).streams["image"].top_channels[:, 0]
    shared = set(top[0]) & set(top[1])
    assert first["jaccard_seeds"] == pytest.approx(len(shared) / (8 - len(shared)), rel=1e-6)


def test_two_processes_under_accelerate_launch_share_the_jobs(tiny_pipelines, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle\na blue square\n")
    out = tmp_path / "batch"
    launch = ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port())]
    result = run(*launch, "main.py", "batch", "--prompts", str(prompts), "--seeds", "2",
                 *generation_flags(tiny_pipelines("flux")), "--device", "cpu", "--out", str(out))
    assert result.returncode == 0, result.stderr
    counts = re.findall(r"rank (\d)/2 recorded (\d+), failed 0, already done 0", result.stderr)
    assert sorted(counts) == [("0", "2"), ("1", "2")]  # 4 jobs, 2 each, none twice
    summary = read_summary(out)
    assert sorted((s.prompt_index, s.seed) for s in summary.sessions) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert summary.failed == [] and (out / "failures.jsonl").read_text() == ""


def test_a_malformed_prompt_file_gives_one_line(tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "a cat"}\n["a dog"]\n')
    result = run("main.py", "batch", "--prompts", str(prompts), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f'error: {prompts}:2: expected an object with a "prompt" string'], result.stderr
