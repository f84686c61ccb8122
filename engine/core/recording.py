"""The recording observer: reduces each block's streams on the model's device and writes a step at a time.

Only reduced arrays leave the device, once per step, cast to float32 first (numpy has no bfloat16).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from massivelens.sessions.records import StepRecord, StreamStats
from massivelens.sessions.writer import SessionWriter

from .hooks import BlockCall, Streams

MEDIAN_VALUES = 1 << 18  # above this many values, the median is taken over a token subsample


def median_stride(tokens: int, channels: int, width: int = 1) -> int:
    """Token stride for the median |x|. An exact median is a single-slice k-th value search: 0.65 ms per
    FLUX-size block on an H200 against 0.15 ms on every 48th token (bench/record_overhead_flux.py), a
    second per FLUX run. The stride is coprime with the token grid's width, so every column is sampled."""
    stride = max(1, math.ceil(tokens * channels / MEDIAN_VALUES))
    while math.gcd(stride, width) != 1:
        stride += 1
    return stride


def reduce_tokens(x: torch.Tensor, stride: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-channel mean |x| and max |x| over tokens, and the median |x| of the (tokens, channels) state
    (over every stride-th token)."""
    a = x.abs()
    return a.mean(dim=0), a.amax(dim=0), a[::stride].median()


def random_channels(blocks: int, channels: int, k: int, seed: int) -> torch.Tensor:
    """(blocks, k) channel ids drawn once per block: the paper's random-k control, fixed over steps."""
    generator = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(channels, generator=generator)[:k] for _ in range(blocks)])


class Recorder:
    """Collects conditional-branch statistics per block; on step end, writes them to the session."""

    def __init__(self, writer: SessionWriter, k: int, seed: int = 0):
        self.writer = writer
        layout = writer.layout
        self.k = min(k, layout.channels["image"])
        self.control_sets = layout.control_sets
        self._random = random_channels(len(layout.blocks["image"]), layout.channels["image"], self.k, seed)
        self.grid = layout.grid
        self.row = {stream: {name: i for i, name in enumerate(names)} for stream, names in layout.blocks.items()}
        self.hidden_blocks = set(layout.hidden_blocks)
        self.hidden_steps = set(layout.hidden_steps)
        self._reset()

    def _reset(self) -> None:
        self._stats: dict[str, dict[int, tuple[torch.Tensor, ...]]] = {s: {} for s in self.row}
        self._maps: dict[str, dict[int, tuple[torch.Tensor, torch.Tensor]]] = {s: {} for s in ("top", *self.control_sets)}
        self._hidden: dict[tuple[str, str], torch.Tensor] = {}

    def on_block(self, call: BlockCall, streams: Streams) -> None:
        rows = call.branches.get("cond")
        if rows is None:
            return None
        for stream, x in streams.items():
            x = x[rows][0].float()
            width = self.grid[1] if stream == "image" else 1
            mean, peak, median = reduce_tokens(x, median_stride(*x.shape, width))
            self._stats[stream][self.row[stream][call.name]] = (mean, peak, median)
            if stream == "image":
                row = self.row["image"][call.name]
                for name, channels in self._channel_sets(mean, row).items():
                    self._maps[name][row] = (channels, x[:, channels].T.reshape(self.k, *self.grid))
            if call.name in self.hidden_blocks and call.step in self.hidden_steps:
                self._hidden[(stream, call.name)] = x.clone()
        return None

    def on_step_end(self, step: int, timestep: float) -> None:
        stats = {stream: self._stream_stats(stream) for stream in self._stats}
        sets = {name: self._stacked(name) for name in self._maps}
        top, maps = sets.pop("top")
        hidden = {key: value.cpu().numpy() for key, value in self._hidden.items()}
        self.writer.write_step(StepRecord(step, timestep, stats, top, maps, hidden, sets))
        self._reset()

    def _channel_sets(self, mean: torch.Tensor, row: int) -> dict[str, torch.Tensor]:
        sets = {"top": torch.topk(mean, self.k).indices}
        if "bottom" in self.control_sets:
            sets["bottom"] = torch.topk(mean, self.k, largest=False).indices
        if "random" in self.control_sets:
            sets["random"] = self._random[row].to(mean.device)
        return sets

    def _stacked(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        rows = [self._maps[name][i] for i in range(len(self.row["image"]))]
        channels = torch.stack([c for c, _ in rows]).to(torch.int32).cpu().numpy()
        return channels, torch.stack([m for _, m in rows]).cpu().numpy()

    def _stream_stats(self, stream: str) -> StreamStats:
        """Stack a stream's rows; a block that returned no such stream this step (SD3's last
        joint block has no text output) keeps NaN."""
        n, c = len(self.row[stream]), self.writer.layout.channels[stream]
        mean, peak = np.full((n, c), np.nan, np.float32), np.full((n, c), np.nan, np.float32)
        median = np.full(n, np.nan, np.float32)
        rows = sorted(self._stats[stream])
        if rows:  # one device-to-host copy per statistic: a copy per block would stall the GPU once per block
            stats = [self._stats[stream][i] for i in rows]
            mean[rows] = torch.stack([m for m, _, _ in stats]).cpu().numpy()
            peak[rows] = torch.stack([p for _, p, _ in stats]).cpu().numpy()
            median[rows] = torch.stack([med for _, _, med in stats]).cpu().numpy()
        return StreamStats(mean, peak, median)
