"""Keeping chosen channels of a trajectory, to replay them into another one (transport)."""
from __future__ import annotations

from typing import Collection, Mapping, Sequence

import torch

from .hooks import BlockCall, Streams


class Capture:
    """Observer that stores `channels[block]` of one stream for every (step, block, branch).

    `values` has the signature of `interventions.ValueSource`, so a capture of a source run
    feeds `Intervention(mode="replace", source=capture.values)` in the target run. Values stay
    on the model's device.
    """

    def __init__(self, channels: Mapping[str, Sequence[int]], stream: str = "image", steps: Collection[int] | None = None):
        self.channels = channels
        self.stream = stream
        self.steps = steps
        self._store: dict[tuple[int, str, str], torch.Tensor] = {}

    def on_block(self, call: BlockCall, streams: Streams) -> None:
        channels = self.channels.get(call.name)
        if not channels or self.stream not in streams:
            return None
        if self.steps is not None and call.step not in self.steps:
            return None
        idx = torch.as_tensor(list(channels), dtype=torch.long, device=streams[self.stream].device)
        for branch, rows in call.branches.items():
            self._store[(call.step, call.name, branch)] = streams[self.stream][rows][0][:, idx].clone()
        return None

    def on_step_end(self, step: int, timestep: float) -> None:
        return None

    def values(self, step: int, block: str, branch: str) -> torch.Tensor | None:
        return self._store.get((step, block, branch))

    def __len__(self) -> int:
        return len(self._store)
