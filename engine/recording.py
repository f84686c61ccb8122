"""The recording observer: reduces each block's streams on the model's device and writes a step at a time.

Only reduced arrays leave the device, once per step, cast to float32 first (numpy has no bfloat16).
"""
from __future__ import annotations

import numpy as np
import torch

from sessions.records import StepRecord, StreamStats
from sessions.writer import SessionWriter

from .hooks import BlockCall, Streams


def reduce_tokens(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-channel mean |x| and max |x| over tokens, and the median |x| of the whole (tokens, channels) state."""
    a = x.abs()
    return a.mean(dim=0), a.amax(dim=0), a.median()


class Recorder:
    """Collects conditional-branch statistics per block; on step end, writes them to the session."""

    def __init__(self, writer: SessionWriter, k: int):
        self.writer = writer
        layout = writer.layout
        self.k = min(k, layout.channels["image"])
        self.grid = layout.grid
        self.row = {stream: {name: i for i, name in enumerate(names)} for stream, names in layout.blocks.items()}
        self.hidden_blocks = set(layout.hidden_blocks)
        self.hidden_steps = set(layout.hidden_steps)
        self._reset()

    def _reset(self) -> None:
        self._stats: dict[str, dict[int, tuple[torch.Tensor, ...]]] = {s: {} for s in self.row}
        self._top: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._hidden: dict[tuple[str, str], torch.Tensor] = {}

    def on_block(self, call: BlockCall, streams: Streams) -> None:
        rows = call.branches.get("cond")
        if rows is None:
            return None
        for stream, x in streams.items():
            x = x[rows][0].float()
            mean, peak, median = reduce_tokens(x)
            self._stats[stream][self.row[stream][call.name]] = (mean, peak, median)
            if stream == "image":
                top = torch.topk(mean, self.k).indices
                self._top[self.row["image"][call.name]] = (top, x[:, top].T.reshape(self.k, *self.grid))
            if call.name in self.hidden_blocks and call.step in self.hidden_steps:
                self._hidden[(stream, call.name)] = x.clone()
        return None

    def on_step_end(self, step: int, timestep: float) -> None:
        stats = {stream: self._stream_stats(stream) for stream in self._stats}
        n = len(self.row["image"])
        top = torch.stack([self._top[i][0] for i in range(n)]).to(torch.int32).cpu().numpy()
        maps = torch.stack([self._top[i][1] for i in range(n)]).cpu().numpy()
        hidden = {key: value.cpu().numpy() for key, value in self._hidden.items()}
        self.writer.write_step(StepRecord(step, timestep, stats, top, maps, hidden))
        self._reset()

    def _stream_stats(self, stream: str) -> StreamStats:
        """Stack a stream's rows; a block that returned no such stream this step (SD3's last
        joint block has no text output) keeps NaN."""
        n, c = len(self.row[stream]), self.writer.layout.channels[stream]
        mean, peak = np.full((n, c), np.nan, np.float32), np.full((n, c), np.nan, np.float32)
        median = np.full(n, np.nan, np.float32)
        for i, (m, p, med) in self._stats[stream].items():
            mean[i], peak[i], median[i] = m.cpu().numpy(), p.cpu().numpy(), med.item()
        return StreamStats(mean, peak, median)
