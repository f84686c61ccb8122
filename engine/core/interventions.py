"""Interventions on chosen channels: zero them, set them to their mean, or replace them with
values from another run, at chosen blocks, streams, steps and tokens, blended by alpha.

Each intervention is an observer of `BlockHooks`; the probe and transport jobs build them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Collection, Literal, Mapping, Sequence

import torch

from ..errors import BadRequest
from .hooks import BlockCall, Streams

Mode = Literal["zero", "mean", "replace"]
# (step, block, branch) -> values (tokens, len(channels)) for "replace", or None to leave that call alone.
ValueSource = Callable[[int, str, str], "torch.Tensor | None"]


@dataclass(frozen=True)
class Intervention:
    """Set `channels[block]` of `stream` to a target value: x <- (1 - alpha) x + alpha target.

    `mean` uses each channel's mean over the stream's tokens in the same call and row.
    `token_mask` (tokens,) bool limits the change to some tokens; None means all tokens.
    `branches` says which guidance branches are changed (both by default, so the model
    behaves as if the channels were gone).
    """

    channels: Mapping[str, Sequence[int]]
    mode: Mode = "zero"
    stream: str = "image"
    steps: Collection[int] | None = None
    token_mask: torch.Tensor | None = None
    alpha: float = 1.0
    source: ValueSource | None = None
    branches: tuple[str, ...] = ("cond", "uncond")
    _index: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in ("zero", "mean", "replace"):
            raise BadRequest(f"unknown intervention mode {self.mode!r}; use zero, mean or replace")
        if self.mode == "replace" and self.source is None:
            raise BadRequest("a replace intervention needs a source of values")
        if not 0.0 <= self.alpha <= 1.0:
            raise BadRequest(f"alpha must be in [0, 1], got {self.alpha}")

    def on_block(self, call: BlockCall, streams: Streams) -> Streams | None:
        channels = self.channels.get(call.name)
        if not channels or self.alpha == 0.0 or self.stream not in streams:
            return None
        if self.steps is not None and call.step not in self.steps:
            return None
        x = streams[self.stream]
        idx = self._channel_index(channels, x.device)
        out = None
        for branch, rows in call.branches.items():
            if branch not in self.branches:
                continue
            target = self._target(call, branch, x[rows], idx)
            if target is None:
                continue
            out = x.clone() if out is None else out
            current = out[rows][:, :, idx]
            new = current + self.alpha * (target - current) if self.alpha != 1.0 else target.expand_as(current)
            if self.token_mask is not None:
                mask = self.token_mask.to(x.device).view(1, -1, 1)
                new = torch.where(mask, new, current)
            block = out[rows]
            block[:, :, idx] = new.to(x.dtype)
            out[rows] = block
        return None if out is None else {self.stream: out}

    def on_step_end(self, step: int, timestep: float) -> None:
        return None

    def _channel_index(self, channels: Sequence[int], device: torch.device) -> torch.Tensor:
        key = (tuple(channels), device)
        if key not in self._index:
            self._index[key] = torch.as_tensor(list(channels), dtype=torch.long, device=device)
        return self._index[key]

    def _target(self, call: BlockCall, branch: str, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor | None:
        if self.mode == "zero":
            return torch.zeros((), dtype=x.dtype, device=x.device)
        if self.mode == "mean":
            return x[:, :, idx].mean(dim=1, keepdim=True)
        values = self.source(call.step, call.name, branch)
        if values is None:
            return None
        return values.to(device=x.device, dtype=x.dtype).reshape(1, x.shape[1], len(idx)).expand(x.shape[0], -1, -1)
