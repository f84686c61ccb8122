"""The recording observer: reduces each block's streams on the model's device, one session per image.

Reductions run on all images of a call at once; only reduced arrays leave the device, once per step
and statistic, cast to float32 first (numpy has no bfloat16).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch

from massivelens.sessions.records import Layout, StepRecord, StreamStats
from massivelens.sessions.schema import STREAMS
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
    """For x (images, tokens, channels): per-channel mean |x| and max |x| over tokens (images, channels),
    and each image's median |x| over every stride-th token (images,)."""
    a = x.abs()
    return a.mean(dim=1), a.amax(dim=1), a[:, ::stride].flatten(1).median(dim=1).values


def random_channels(blocks: int, channels: int, k: int, seed: int) -> torch.Tensor:
    """(blocks, k) channel ids drawn once per block: the paper's random-k control, fixed over steps."""
    generator = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(channels, generator=generator)[:k] for _ in range(blocks)])


OpenSessions = Callable[[BlockCall, Streams, int], tuple[Sequence[SessionWriter], Layout]]


class Recorder:
    """Collects conditional-branch statistics per block and image; on step end, writes one step to
    each image's session. The sessions are opened at the first block call, when the token grid, the
    streams' widths and the number of images are known (`open_sessions(call, streams, images)`)."""

    def __init__(self, open_sessions: OpenSessions, k: int, control_sets: Sequence[str] = (), seed: int = 0):
        self.open_sessions = open_sessions
        self.requested_k = k
        self.control_sets = tuple(control_sets)
        self.seed = seed
        self.writers: list[SessionWriter] = []
        self._reset()

    def _start(self, call: BlockCall, streams: Streams, images: int) -> None:
        writers, layout = self.open_sessions(call, streams, images)
        self.writers = list(writers)
        self.layout = layout
        self.k = min(self.requested_k, layout.channels["image"])
        self.row = {stream: {name: i for i, name in enumerate(names)} for stream, names in layout.blocks.items()}
        self.hidden = set(layout.hidden_blocks), set(layout.hidden_steps)
        self._random = random_channels(len(layout.blocks["image"]), layout.channels["image"], self.k, self.seed)

    def _reset(self) -> None:
        self._stats: dict[str, dict[int, tuple[torch.Tensor, ...]]] = {stream: {} for stream in STREAMS}
        self._maps: dict[str, dict[int, tuple[torch.Tensor, torch.Tensor]]] = {s: {} for s in ("top", *self.control_sets)}
        self._hidden: dict[tuple[str, str], torch.Tensor] = {}

    def on_block(self, call: BlockCall, streams: Streams) -> None:
        rows = call.branches.get("cond")
        if rows is None:
            return None
        if not self.writers:
            self._start(call, streams, rows.stop - rows.start)
        for stream, x in streams.items():
            x = x[rows].float()
            width = call.grid[1] if stream == "image" else 1
            row = self.row[stream][call.name]
            mean, peak, median = reduce_tokens(x, median_stride(x.shape[1], x.shape[2], width))
            self._stats[stream][row] = (mean, peak, median)
            if stream == "image":
                for name, channels in self._channel_sets(mean, row).items():
                    maps = torch.gather(x, 2, channels[:, None, :].expand(-1, x.shape[1], -1))
                    self._maps[name][row] = (channels, maps.transpose(1, 2).reshape(*channels.shape, *call.grid))
            if call.name in self.hidden[0] and call.step in self.hidden[1]:
                self._hidden[(stream, call.name)] = x.clone()
        return None

    def on_step_end(self, step: int, timestep: float) -> None:
        if not self.writers:
            return
        stats = {stream: self._stream_stats(stream) for stream in self.row}
        sets = {name: self._stacked(name) for name in self._maps}
        hidden = {key: value.cpu().numpy() for key, value in self._hidden.items()}
        for i, writer in enumerate(self.writers):
            top_channels, top_maps = sets["top"]
            record = StepRecord(
                step, timestep,
                {stream: StreamStats(mean[:, i], peak[:, i], median[:, i]) for stream, (mean, peak, median) in stats.items()},
                top_channels[:, i], top_maps[:, i],
                {key: value[i] for key, value in hidden.items()},
                {name: (channels[:, i], maps[:, i]) for name, (channels, maps) in sets.items() if name != "top"},
            )
            writer.write_step(record)
        self._reset()

    def _channel_sets(self, mean: torch.Tensor, row: int) -> dict[str, torch.Tensor]:
        """(images, k) channel ids per set, from each image's mean |x| (images, channels)."""
        sets = {"top": torch.topk(mean, self.k, dim=1).indices}
        if "bottom" in self.control_sets:
            sets["bottom"] = torch.topk(mean, self.k, dim=1, largest=False).indices
        if "random" in self.control_sets:
            sets["random"] = self._random[row].to(mean.device).expand(mean.shape[0], -1)
        return sets

    def _stacked(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(blocks, images, k) channel ids and (blocks, images, k, h, w) maps, one host copy each."""
        rows = [self._maps[name][i] for i in range(len(self.row["image"]))]
        channels = torch.stack([c for c, _ in rows]).to(torch.int32).cpu().numpy()
        return channels, torch.stack([m for _, m in rows]).cpu().numpy()

    def _stream_stats(self, stream: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A stream's rows as (blocks, images, ...); a block that returned no such stream this step
        (SD3's last joint block has no text output) keeps NaN."""
        n, images, width = len(self.row[stream]), len(self.writers), self.layout.channels[stream]
        mean = np.full((n, images, width), np.nan, np.float32)
        peak = np.full((n, images, width), np.nan, np.float32)
        median = np.full((n, images), np.nan, np.float32)
        rows = sorted(self._stats[stream])
        if rows:  # one device-to-host copy per statistic: a copy per block would stall the GPU once per block
            stats = [self._stats[stream][i] for i in rows]
            mean[rows] = torch.stack([m for m, _, _ in stats]).cpu().numpy()
            peak[rows] = torch.stack([p for _, p, _ in stats]).cpu().numpy()
            median[rows] = torch.stack([med for _, _, med in stats]).cpu().numpy()
        return mean, peak, median

    def finish(self, images: Sequence[np.ndarray | None]) -> None:
        """Store each session's image and mark it complete."""
        for writer, image in zip(self.writers, images):
            writer.finish(image)

    def close(self) -> None:
        """Close every session as it stands (an aborted run keeps its finished steps)."""
        for writer in self.writers:
            writer.close()
