"""Statistics over a batch of sessions: which channels are massive how often, and how stable that is.

One pass over the sessions keeps per-block sums, not per-session arrays, so memory does not grow
with the batch. The result is written as `summary.h5` (layout in summary_schema.py and SCHEMA.md)
and `summary.json`; `read_summary` gives it back as plain numpy arrays, without Qt, for the app.
The massive-channel rules are the ones in massive.py, applied as `summarize` applies them to one session.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from . import schema as S
from . import summary_schema as SS
from .massive import peak_over_median, top_channels
from .reader import Session, SessionError, open_session


@dataclass(frozen=True)
class SessionEntry:
    """A complete session of the batch; `file` is relative to the batch directory."""

    file: str
    prompt_index: int
    seed: int


@dataclass(frozen=True)
class Failure:
    """A job without a complete session, and its error as one line."""

    file: str
    prompt_index: int
    seed: int
    error: str


@dataclass
class StreamSummary:
    """One stream's statistics; field names are the dataset names of summary_schema.STREAM_DATASETS."""

    blocks: list[str]
    frequency: np.ndarray  # (blocks, channels)
    mean_abs_mean: np.ndarray  # (blocks, channels)
    mean_abs_std: np.ndarray  # (blocks, channels)
    top_channels: np.ndarray  # (sessions, blocks, k)
    jaccard_seeds: np.ndarray  # (prompts, blocks)
    jaccard_prompts: np.ndarray  # (blocks,)
    sun_frequency: np.ndarray  # (blocks, channels)
    sun_holds: np.ndarray  # (sessions, blocks)
    max_over_median: np.ndarray  # (sessions, blocks)


@dataclass
class DatasetSummary:
    k: int
    model: str
    settings: dict
    prompts: list[str]
    sessions: list[SessionEntry]
    failed: list[Failure]
    streams: dict[str, StreamSummary] = field(default_factory=dict)
    created: str = ""


# Computing ---------------------------------------------------------------------------------------
class _StreamAccumulator:
    """Running sums of one stream over sessions, plus the small per-session arrays (top-k, ratios)."""

    def __init__(self, blocks: list[str], channels: int, sessions: int, k: int):
        self.blocks = blocks
        self.total = np.zeros((len(blocks), channels))
        self.squares = np.zeros_like(self.total)
        self.count = np.zeros_like(self.total)
        self.sun = np.zeros_like(self.total)
        self.top = np.full((sessions, len(blocks), min(k, channels)), -1, np.int32)
        self.holds = np.zeros((sessions, len(blocks)), bool)
        self.ratio = np.full((sessions, len(blocks)), np.nan, np.float32)
        self.seen = 0

    def add(self, i: int, session: Session, stream: str) -> None:
        if session.blocks(stream) != self.blocks or session.channels(stream) != self.total.shape[1]:
            raise SessionError(f"{session.path}: its {stream} blocks differ from the other sessions of the batch")
        mean = session.mean_abs_run(stream).astype(np.float64)  # (blocks, channels), averaged over steps
        present = np.flatnonzero(~np.isnan(mean).all(axis=1))  # SD3's last joint block has no text output
        self.total += mean
        self.squares += mean**2
        self.top[i, present] = top_channels(mean[present], self.top.shape[2])
        self.count[present[:, None], self.top[i, present]] += 1
        sun = session.sun_steps(stream) > 0
        self.sun += sun
        self.holds[i] = sun.any(axis=1)
        self.ratio[i] = peak_over_median(session.peak_abs(stream), session.median_abs(stream)).max(axis=0)
        self.seen += 1

    def finish(self, prompt_index: np.ndarray, prompts: int) -> StreamSummary:
        n = len(self.top)
        if self.seen != n:
            raise SessionError(f"only {self.seen} of {n} sessions have a stream the others have")
        mean = self.total / n
        absent = (self.top[..., 0] < 0).all(axis=0)
        frequency = self.count / n
        frequency[absent] = np.nan
        seeds, across = jaccard_stability(self.top, prompt_index, prompts)
        return StreamSummary(
            blocks=self.blocks,
            frequency=frequency.astype(np.float32),
            mean_abs_mean=mean.astype(np.float32),
            mean_abs_std=np.sqrt(np.maximum(self.squares / n - mean**2, 0)).astype(np.float32),
            top_channels=self.top,
            jaccard_seeds=seeds,
            jaccard_prompts=across,
            sun_frequency=(self.sun / n).astype(np.float32),
            sun_holds=self.holds,
            max_over_median=self.ratio,
        )


def jaccard_matrix(sets: np.ndarray) -> np.ndarray:
    """(n, k) sets of k distinct channels -> (n, n) Jaccard index; |A u B| = 2k - |A n B| for such sets."""
    n, k = sets.shape
    ids, inverse = np.unique(sets.ravel(), return_inverse=True)
    member = np.zeros((n, len(ids)), np.float32)
    member[np.repeat(np.arange(n), k), inverse] = 1
    shared = member @ member.T
    return shared / (2 * k - shared)


def jaccard_stability(top: np.ndarray, prompt_index: np.ndarray, prompts: int) -> tuple[np.ndarray, np.ndarray]:
    """Per block: mean pairwise Jaccard of top-k sets across each prompt's seeds -> (prompts, blocks),
    NaN with fewer than two seeds; and across pairs of sessions of different prompts -> (blocks,)."""
    n, blocks, _ = top.shape
    seeds = np.full((prompts, blocks), np.nan, np.float32)
    across = np.full(blocks, np.nan, np.float32)
    different = prompt_index[:, None] != prompt_index[None, :]
    groups = [np.flatnonzero(prompt_index == p) for p in range(prompts)]
    for b in range(blocks):
        if n == 0 or (top[:, b, 0] < 0).any():
            continue
        j = jaccard_matrix(top[:, b])
        if different.any():
            across[b] = j[different].mean()
        for p, rows in enumerate(groups):
            if len(rows) > 1:
                pairs = j[np.ix_(rows, rows)]
                seeds[p, b] = (pairs.sum() - np.trace(pairs)) / (len(rows) * (len(rows) - 1))
    return seeds, across


def summarize_dataset(
    root: Path,
    sessions: Sequence[SessionEntry],
    prompts: Sequence[str],
    failed: Sequence[Failure],
    k: int,
    model: str,
    settings: dict,
) -> DatasetSummary:
    """Statistics over the complete sessions of a batch directory (files relative to `root`)."""
    accumulators: dict[str, _StreamAccumulator] = {}
    for i, entry in enumerate(sessions):
        with open_session(Path(root) / entry.file) as s:
            for stream in s.streams:
                if stream not in accumulators:
                    accumulators[stream] = _StreamAccumulator(s.blocks(stream), s.channels(stream), len(sessions), k)
                accumulators[stream].add(i, s, stream)
    prompt_index = np.asarray([e.prompt_index for e in sessions], dtype=np.int64)
    return DatasetSummary(
        k=k,
        model=model,
        settings=dict(settings),
        prompts=list(prompts),
        sessions=list(sessions),
        failed=list(failed),
        streams={name: acc.finish(prompt_index, len(prompts)) for name, acc in accumulators.items()},
        created=str(np.datetime_as_string(np.datetime64("now"), unit="s")),
    )


# Writing -----------------------------------------------------------------------------------------
def write_summary(summary: DatasetSummary, directory: Path) -> tuple[Path, Path]:
    """summary.h5 and summary.json, each renamed into place so that no reader sees half a file."""
    h5_path, json_path = Path(directory) / SS.SUMMARY_H5, Path(directory) / SS.SUMMARY_JSON
    partial = h5_path.with_name(h5_path.name + ".partial")
    with h5py.File(partial, "w") as f:
        _write_h5(f, summary)
    os.replace(partial, h5_path)
    partial = json_path.with_name(json_path.name + ".partial")
    partial.write_text(json.dumps(summary_json(summary), indent=1))
    os.replace(partial, json_path)
    return h5_path, json_path


def _write_h5(f: h5py.File, summary: DatasetSummary) -> None:
    f.attrs[S.ATTR_SCHEMA] = SS.SCHEMA_NAME
    f.attrs[S.ATTR_VERSION] = SS.SCHEMA_VERSION
    f.attrs[SS.ATTR_K] = summary.k
    f.attrs[SS.ATTR_MODEL] = summary.model
    f.attrs[SS.ATTR_SETTINGS] = json.dumps(summary.settings, sort_keys=True)
    f.attrs[SS.ATTR_CREATED] = summary.created
    _strings(f, SS.PROMPTS, summary.prompts)
    _strings(f, SS.SESSION_FILE, [e.file for e in summary.sessions])
    f.create_dataset(SS.SESSION_PROMPT, data=np.asarray([e.prompt_index for e in summary.sessions], np.int64))
    f.create_dataset(SS.SESSION_SEED, data=np.asarray([e.seed for e in summary.sessions], np.int64))
    _strings(f, SS.FAILED_FILE, [x.file for x in summary.failed])
    f.create_dataset(SS.FAILED_PROMPT, data=np.asarray([x.prompt_index for x in summary.failed], np.int64))
    f.create_dataset(SS.FAILED_SEED, data=np.asarray([x.seed for x in summary.failed], np.int64))
    _strings(f, SS.FAILED_ERROR, [x.error for x in summary.failed])
    for stream, data in summary.streams.items():
        _strings(f, f"{S.BLOCKS}/{stream}", data.blocks)
        for name in SS.STREAM_DATASETS:
            f.create_dataset(f"{stream}/{name}", data=getattr(data, name))


def _strings(f: h5py.File, name: str, values: Sequence[str]) -> None:
    f.create_dataset(name, shape=(len(values),), dtype=h5py.string_dtype(), data=list(values) or None)


def summary_json(summary: DatasetSummary, top: int | None = None) -> dict:
    """Plain data for summary.json and `inspect DIR --json`: per block, the channels most often in
    the top-k (at most `top`, default k), top-k stability, and how often Sun et al.'s rule holds."""
    prompts = summary.prompts
    return {
        S.ATTR_SCHEMA: SS.SCHEMA_NAME,
        S.ATTR_VERSION: SS.SCHEMA_VERSION,
        "model": summary.model,
        "k": summary.k,
        "settings": summary.settings,
        "created": summary.created,
        "sessions": len(summary.sessions),
        "prompts": len(prompts),
        "failed": [
            {"file": x.file, "prompt_index": x.prompt_index, "prompt": prompts[x.prompt_index], "seed": x.seed, "error": x.error}
            for x in summary.failed
        ],
        "blocks": [
            _block_json(data, b, stream, top or summary.k)
            for stream, data in summary.streams.items()
            for b in range(len(data.blocks))
            if not np.isnan(data.frequency[b]).all()
        ],
    }


def _block_json(data: StreamSummary, b: int, stream: str, top: int) -> dict:
    frequency, mean, std = data.frequency[b], data.mean_abs_mean[b], data.mean_abs_std[b]
    order = np.lexsort((-mean, -frequency))  # most frequent first, ties by magnitude
    sun_order = np.argsort(-data.sun_frequency[b], kind="stable")
    return {
        "block": data.blocks[b],
        "stream": stream,
        "frequent_channels": [
            {"channel": int(c), "frequency": float(frequency[c]), "mean_abs": float(mean[c]), "std": float(std[c])}
            for c in order[:top]
            if frequency[c] > 0
        ],
        "jaccard_seeds": _mean_or_none(data.jaccard_seeds[:, b]),
        "jaccard_prompts": _mean_or_none(data.jaccard_prompts[b]),
        "sun_holds": _mean_or_none(data.sun_holds[:, b]),
        "sun_channels": [
            {"channel": int(c), "frequency": float(data.sun_frequency[b, c])} for c in sun_order if data.sun_frequency[b, c] > 0
        ],
        "max_over_median": _mean_or_none(data.max_over_median[:, b]),
    }


def _mean_or_none(values: np.ndarray | float) -> float | None:
    """Mean of the finite values; None (JSON null) when there are none, e.g. a prompt with one seed."""
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else None


# Reading -----------------------------------------------------------------------------------------
def read_summary(path: str | Path) -> DatasetSummary:
    """A batch directory's summary.h5 (or that file) as plain arrays; Qt-free, for the app's heatmap."""
    path = Path(path)
    if path.is_dir():
        path = path / SS.SUMMARY_H5
    if not path.is_file():
        raise SessionError(f"{path}: no such file (python main.py batch writes it)")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise SessionError(f"{path}: not a readable HDF5 file, or truncated or corrupt") from None
    with f:
        _validate_summary(f, path)
        return _read_h5(f)


def _validate_summary(f: h5py.File, path: Path) -> None:
    if f.attrs.get(S.ATTR_SCHEMA) != SS.SCHEMA_NAME:
        raise SessionError(f"{path}: not a MassiveLens dataset summary (no '{SS.SCHEMA_NAME}' schema attribute)")
    version = int(f.attrs.get(S.ATTR_VERSION, -1))
    if version > SS.SCHEMA_VERSION:
        raise SessionError(f"{path}: written by a newer MassiveLens (summary v{version}); this version reads up to v{SS.SCHEMA_VERSION}")


def _read_h5(f: h5py.File) -> DatasetSummary:
    prompts = _read_strings(f[SS.PROMPTS])
    files, errors = _read_strings(f[SS.SESSION_FILE]), _read_strings(f[SS.FAILED_ERROR])
    sessions = [SessionEntry(*row) for row in zip(files, f[SS.SESSION_PROMPT][:].tolist(), f[SS.SESSION_SEED][:].tolist())]
    failed = [
        Failure(*row)
        for row in zip(_read_strings(f[SS.FAILED_FILE]), f[SS.FAILED_PROMPT][:].tolist(), f[SS.FAILED_SEED][:].tolist(), errors)
    ]
    streams = {
        stream: StreamSummary(
            blocks=_read_strings(f[f"{S.BLOCKS}/{stream}"]), **{name: f[f"{stream}/{name}"][()] for name in SS.STREAM_DATASETS}
        )
        for stream in S.STREAMS
        if f"{S.BLOCKS}/{stream}" in f
    }
    return DatasetSummary(
        k=int(f.attrs[SS.ATTR_K]),
        model=str(f.attrs[SS.ATTR_MODEL]),
        settings=json.loads(f.attrs[SS.ATTR_SETTINGS]),
        prompts=prompts,
        sessions=sessions,
        failed=failed,
        streams=streams,
        created=str(f.attrs[SS.ATTR_CREATED]),
    )


def _read_strings(ds: h5py.Dataset) -> list[str]:
    return list(ds.asstr()[()]) if ds.shape[0] else []
