"""Fake recording jobs with the engine job's contract: (params, progress, cancel) -> session path; and a fake
engine.probe.probe with the probe's contract: (request, progress, cancel) -> ProbeResult."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image

from massivelens.engine.analysis.metrics import mse, psnr
from massivelens.engine.progress import Progress
from massivelens.gui.worker import RecordParams
from massivelens.sessions.reader import open_session
from massivelens.sessions.records import Layout, StepRecord
from massivelens.sessions.writer import SessionWriter
from tests.session_factory import float_step, synthetic_info, write_synthetic_session


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
        runs: dict = {}
        with SessionWriter(params.out, info, layout) as writer:
            for step in range(steps):
                for block in range(blocks):
                    _wait(delay, busy)
                    cancel.check()
                    progress(Progress(step, steps, block, blocks, names[block]))
                writer.write_step(_step(rng, layout, step, steps, runs))
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


def _step(rng: np.random.Generator, layout: Layout, step: int, steps: int, runs: dict) -> StepRecord:
    blocks, channels = len(layout.blocks["image"]), layout.channels["image"]
    mean = rng.random((blocks, channels), dtype=np.float32)
    mean[:, 7] += 1000.0
    stats = (mean, mean * 2, np.full(blocks, 0.5, dtype=np.float32))
    top = np.argsort(-mean, axis=1, kind="stable")[:, :4].astype(np.int32)
    maps = rng.normal(size=(blocks, 4, 8, 8)).astype(np.float32)
    return float_step(layout, step, 1000.0 * (1 - step / steps), {"image": stats, "text": stats}, {"top": top}, {"top": maps}, runs)


def fake_probe(world: bool = False, delay: float = 0.0):
    """Writes what engine.probe.probe writes (a baseline session per prompt and seed, one PNG per generation)
    without a model: each "disrupted" image is the baseline darkened by an amount set by strategy and k.
    world=True also scores accuracy and mask IoU, as on the embedded model."""
    from massivelens.engine.analysis.probe import ProbeResult, ProbeRow

    def run(request, progress=None, cancel=None):
        plan = [(s, k, d) for s in request.strategies for k in request.ks for d in range(request.draws if s == "random" else 1)]
        total, done, rows, sessions = len(request.prompts) * len(request.seeds) * (1 + len(plan)), 0, [], []
        (request.out / "images").mkdir(parents=True, exist_ok=True)
        for index, prompt in enumerate(request.prompts):
            for seed in request.seeds:
                session = write_synthetic_session(request.out / "sessions" / f"{index:03d}-seed{seed}.h5", seed=index + seed)
                sessions.append(session)
                with open_session(session) as s:
                    baseline = s.image
                done += 1
                for strategy, k, draw in plan:
                    cancel.check()
                    progress(done, total, f"{strategy}-{k}")
                    time.sleep(delay)
                    factor = 1 - 0.1 * k / max(request.ks) * (3 if strategy == "top" else 1) - 0.01 * draw
                    image = (baseline * factor).astype(np.uint8)
                    name = f"{index:03d}-seed{seed}-{strategy}-k{k}-d{draw}.png"
                    Image.fromarray(image).save(request.out / "images" / name)
                    score = (float(strategy != "top"), 1 / (1 + k)) if world else (None, None)
                    rows.append(ProbeRow(index, prompt, seed, strategy, k, draw, mse(image, baseline), psnr(image, baseline),
                                         *score, name))
                    done += 1
        return ProbeResult("fake/shapes-dit", rows, 1.0 if world else None, sessions)

    return run
