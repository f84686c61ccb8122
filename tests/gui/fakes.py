"""Fake recording jobs with the engine job's contract: (params, progress, cancel) -> session path."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gui.worker import RecordParams
from sessions.records import Layout, StepRecord, StreamStats
from sessions.writer import SessionWriter
from tests.session_factory import synthetic_info


@dataclass(frozen=True)
class Progress:
    """Same fields as engine.hooks.Progress, without importing torch."""

    step: int
    steps: int
    block: int
    blocks: int
    block_name: str


def slow_job(steps: int = 3, blocks: int = 4, channels: int = 32, delay: float = 0.01, busy: bool = False):
    """Writes a session step by step like the engine: checks the cancel token and reports at every block.

    busy=True spins in Python instead of sleeping, so it holds the GIL as model code partly does.
    """

    def job(params: RecordParams, progress, cancel) -> Path:
        rng = np.random.default_rng(params.seed)
        names = [f"double.{b}" for b in range(blocks)]
        widths = {"image": channels, "text": channels}
        layout = Layout(blocks={"image": names, "text": names}, channels=widths, grid=(8, 8))
        info = synthetic_info(steps, k=4, prompt=params.prompt)
        with SessionWriter(params.out, info, layout) as writer:
            for step in range(steps):
                for block in range(blocks):
                    _wait(delay, busy)
                    cancel.check()
                    progress(Progress(step, steps, block, blocks, names[block]))
                writer.write_step(_step(rng, step, steps, blocks, channels))
            writer.finish(rng.integers(0, 255, size=(64, 64, 3), dtype=np.uint8))
        return params.out

    return job


def failing_job(error: Exception):
    def job(params: RecordParams, progress, cancel) -> Path:
        raise error

    return job


def _wait(delay: float, busy: bool) -> None:
    end = time.perf_counter() + delay
    while busy and time.perf_counter() < end:
        sum(range(1000))
    if not busy:
        time.sleep(delay)


def _step(rng: np.random.Generator, step: int, steps: int, blocks: int, channels: int) -> StepRecord:
    mean = rng.random((blocks, channels), dtype=np.float32)
    mean[:, 7] += 1000.0
    stats = StreamStats(mean, mean * 2, np.full(blocks, 0.5, dtype=np.float32))
    top = np.argsort(-mean, axis=1, kind="stable")[:, :4].astype(np.int32)
    maps = rng.normal(size=(blocks, 4, 8, 8)).astype(np.float32)
    return StepRecord(step, 1000.0 * (1 - step / steps), {"image": stats, "text": stats}, top, maps)
