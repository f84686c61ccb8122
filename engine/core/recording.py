"""The recording observer: reduces each block's streams on the model's device, one session per image.

Everything that can be is computed on the device: per-channel reductions of all images of a call at
once, the run's aggregates, Sun et al.'s rule per step, and the 16-bit encodings. At a step's end the
results start their way to the host (non-blocking copies into pinned memory on CUDA) and a background
thread waits for them and writes the files, so the denoising loop never waits on the disk; the
writer's bounded queue is the back-pressure. For a video, token maps keep the frame axis (one 16-bit
scale per latent frame: the first frame's channels can be hundreds of times the others'), and each top
channel's mean |x| per latent frame is kept at every step (first-frame dominance).
"""
from __future__ import annotations

import math
import zlib
from typing import Callable, Sequence

import numpy as np
import torch

from massivelens.sessions import schema as S
from massivelens.sessions.background import BackgroundWriter, WriterFailed
from massivelens.sessions.records import Layout, Packed, StepRecord, StreamStats
from massivelens.sessions.writer import SessionWriter

from ..errors import SessionWriteFailed
from .compact import encode_maps, encode_stats
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


def frame_means(x: torch.Tensor, channels: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
    """For x (images, tokens, channels) on a (frames, h, w) grid and chosen channel ids (images, k): each
    channel's mean |x| over each latent frame's tokens, (images, k, frames)."""
    values = torch.gather(x, 2, channels[:, None, :].expand(-1, x.shape[1], -1)).abs()
    return values.reshape(x.shape[0], grid[0], -1, channels.shape[1]).mean(dim=2).transpose(1, 2)


def random_seed(prompt: str, seed: int) -> int:
    """The random control's seed for one image: its prompt and generation seed, so every prompt of a
    study (all at seed 0) gets its own channel draws, and the same image gets the same draws again."""
    return zlib.crc32(f"{seed}\0{prompt}".encode())


def random_channels(blocks: int, channels: int, k: int, seed: int, draws: int = 1) -> torch.Tensor:
    """(blocks, draws x k) channel ids, `draws` sets of k per block: the paper's random-k control, fixed
    over steps; draw d is columns d*k ... d*k+k-1."""
    generator = torch.Generator().manual_seed(seed)
    return torch.stack([
        torch.cat([torch.randperm(channels, generator=generator)[:k] for _ in range(draws)]) for _ in range(blocks)
    ])


OpenSessions = Callable[[BlockCall, Streams, int], tuple[Sequence[SessionWriter], Layout]]


class RunAggregates:
    """One stream's aggregates over the steps done, on the device: mean and max per channel, and the
    number of steps at which Sun et al.'s rule held (a block absent at a step does not count)."""

    def __init__(self, like: torch.Tensor):
        self.total = torch.zeros_like(like)
        self.count = torch.zeros(like.shape[:-1], device=like.device)
        self.max = torch.full_like(like, float("nan"))
        self.sun = torch.zeros(like.shape, dtype=torch.int32, device=like.device)

    def add(self, mean: torch.Tensor, peak: torch.Tensor, median: torch.Tensor) -> None:
        present = ~mean.isnan().all(dim=-1)
        self.total += mean.nan_to_num(0.0)
        self.count += present
        self.max = torch.fmax(self.max, peak)
        self.sun += ((peak > S.SUN_ABSOLUTE) & (peak > S.SUN_RELATIVE * median[..., None])).int()

    def mean(self) -> torch.Tensor:
        return torch.where(self.count[..., None] > 0, self.total / self.count[..., None].clamp_min(1), float("nan"))


class Recorder:
    """Collects conditional-branch statistics per block and image; on step end, hands one step per image's
    session to the background writer. The sessions are opened at the first block call, when the token
    grid, the streams' widths and the number of images are known (`open_sessions(call, streams, images)`)."""

    def __init__(self, open_sessions: OpenSessions, k: int, control_sets: Sequence[str] = (),
                 random_seeds: Sequence[int] = (0,)):
        self.open_sessions = open_sessions
        self.requested_k = k
        self.control_sets = tuple(control_sets)
        self.random_seeds = tuple(random_seeds)  # one per image of the call
        self.writers: list[SessionWriter] = []
        self.background: BackgroundWriter | None = None
        self._runs: dict[str, RunAggregates] = {}
        self._reset()

    def _start(self, call: BlockCall, streams: Streams, images: int) -> None:
        writers, layout = self.open_sessions(call, streams, images)
        self.writers, self.layout = list(writers), layout
        self.k = min(self.requested_k, layout.channels["image"])
        self.row = {stream: {name: i for i, name in enumerate(names)} for stream, names in layout.blocks.items()}
        self.hidden = set(layout.hidden_blocks), set(layout.hidden_steps)
        self._random = torch.stack([
            random_channels(len(layout.blocks["image"]), layout.channels["image"], self.k, seed, layout.random_draws)
            for seed in self.random_seeds[:images]
        ])  # (images, blocks, draws x k)
        self.background = BackgroundWriter()

    def _reset(self) -> None:
        self._stats: dict[str, dict[int, tuple[torch.Tensor, ...]]] = {stream: {} for stream in S.STREAMS}
        self._channels: dict[str, dict[int, torch.Tensor]] = {s: {} for s in ("top", *self.control_sets)}
        self._maps: dict[str, dict[int, torch.Tensor]] = {s: {} for s in ("top", *self.control_sets)}
        self._frame_means: dict[int, torch.Tensor] = {}
        self._hidden: dict[tuple[str, str], torch.Tensor] = {}

    # During a step -------------------------------------------------------------------------------
    def on_block(self, call: BlockCall, streams: Streams) -> None:
        rows = call.branches.get("cond")
        if rows is None:
            return None
        if not self.writers:
            self._start(call, streams, rows.stop - rows.start)
        keep_maps = self.layout.keeps(call.step)
        for stream, x in streams.items():
            x = x[rows].float()
            width = call.grid[-1] if stream == "image" else 1
            row = self.row[stream][call.name]
            mean, peak, median = reduce_tokens(x, median_stride(x.shape[1], x.shape[2], width))
            self._stats[stream][row] = (mean, peak, median)
            if stream == "image":
                for name, channels in self._channel_sets(mean, row).items():
                    self._channels[name][row] = channels
                    if keep_maps:
                        maps = torch.gather(x, 2, channels[:, None, :].expand(-1, x.shape[1], -1))
                        self._maps[name][row] = maps.transpose(1, 2).reshape(*channels.shape, *call.grid)
                if len(call.grid) == 3:
                    self._frame_means[row] = frame_means(x, self._channels["top"][row], call.grid)
            if call.name in self.hidden[0] and call.step in self.hidden[1]:
                self._hidden[(stream, call.name)] = x.clone()
        return None

    def _channel_sets(self, mean: torch.Tensor, row: int) -> dict[str, torch.Tensor]:
        """(images, k) channel ids per set, from each image's mean |x| (images, channels)."""
        sets = {"top": torch.topk(mean, self.k, dim=1).indices}
        if "bottom" in self.control_sets:
            sets["bottom"] = torch.topk(mean, self.k, dim=1, largest=False).indices
        if "random" in self.control_sets:
            sets["random"] = self._random[:, row].to(mean.device)
        return sets

    # At a step's end -----------------------------------------------------------------------------
    def on_step_end(self, step: int, timestep: float) -> None:
        if not self.writers:
            return
        tensors = self._step_tensors(step)
        event = None
        if any(t.is_cuda for t in tensors.values()):
            host = {name: t.to("cpu", non_blocking=True) for name, t in tensors.items()}
            event = torch.cuda.Event()
            event.record()
        else:
            host = tensors
        self._reset()
        try:
            self.background.submit(lambda: self._write(step, timestep, host, event))
        except WriterFailed as exc:
            raise SessionWriteFailed(str(exc)) from exc

    def _step_tensors(self, step: int) -> dict[str, torch.Tensor]:
        """Every array of the step as (blocks, images, ...) device tensors, encoded as the profile stores them."""
        out: dict[str, torch.Tensor] = {}
        keep = self.layout.keeps(step)
        for stream in self.row:
            mean, peak, median = self._stacked_stats(stream)
            if stream not in self._runs:
                self._runs[stream] = RunAggregates(mean)
            run = self._runs[stream]
            run.add(mean, peak, median)
            out.update({f"{stream}/median": median, f"{stream}/peak_abs": peak.amax(dim=-1),
                        f"{stream}/mean_run": run.mean(), f"{stream}/max_run": run.max,
                        f"{stream}/sun_steps": run.sun.clamp_max(np.iinfo(np.uint16).max).to(torch.int32)})
            if keep:
                for key, values in (("mean_abs", mean), ("max_abs", peak)):
                    if self.layout.float_stats:
                        out[f"{stream}/{key}"] = values
                    else:
                        out[f"{stream}/{key}"], out[f"{stream}/{key}_scale"] = encode_stats(values)
        blocks = range(len(self.row["image"]))
        for name in self._channels:
            out[f"channels/{name}"] = torch.stack([self._channels[name][b] for b in blocks]).to(torch.int32)
            if keep:
                maps = torch.stack([self._maps[name][b] for b in blocks])
                out[f"maps/{name}"], out[f"maps/{name}_scale"] = encode_maps(maps, 2)  # a scale per (latent) frame
        if self._frame_means:
            out["frames/top"] = torch.stack([self._frame_means[b] for b in blocks])
        for (stream, block), values in self._hidden.items():
            out[f"hidden/{stream}/{block}"] = values  # (images, tokens, channels)
        return out

    def _stacked_stats(self, stream: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A stream's rows as (blocks, images, channels) and (blocks, images); a block that returned no
        such stream this step (SD3's last joint block has no text output) keeps NaN."""
        present = self._stats[stream]
        device = next(iter(self._stats["image"].values()))[0].device
        shape = (len(self.row[stream]), len(self.writers))
        mean = torch.full((*shape, self.layout.channels[stream]), float("nan"), device=device)
        peak, median = mean.clone(), torch.full(shape, float("nan"), device=device)
        for row, (m, p, med) in present.items():
            mean[row], peak[row], median[row] = m, p, med
        return mean, peak, median

    # In the background thread -------------------------------------------------------------------------
    def _write(self, step: int, timestep: float, host: dict[str, torch.Tensor], event) -> None:
        if event is not None:
            event.synchronize()
        arrays = {name: t.numpy() for name, t in host.items()}
        for i, writer in enumerate(self.writers):
            writer.write_step(self._record(step, timestep, arrays, i))

    def _record(self, step: int, timestep: float, arrays: dict[str, np.ndarray], image: int) -> StepRecord:
        def part(name: str) -> np.ndarray | None:
            return None if name not in arrays else arrays[name][:, image]

        def packed(name: str) -> Packed | None:
            return None if name not in arrays else Packed(part(name), part(name + "_scale"))

        stats = {
            stream: StreamStats(
                part(f"{stream}/median"), part(f"{stream}/peak_abs"), part(f"{stream}/mean_run"),
                part(f"{stream}/max_run"), part(f"{stream}/sun_steps").astype(np.uint16),
                packed(f"{stream}/mean_abs"), packed(f"{stream}/max_abs"),
            )
            for stream in self.row
        }
        channels = {name: part(f"channels/{name}") for name in self._channels}
        maps = {name: packed(f"maps/{name}") for name in self._channels if f"maps/{name}" in arrays}
        hidden = {(stream, block): arrays[f"hidden/{stream}/{block}"][image]
                  for stream, block in (key.split("/")[1:] for key in arrays if key.startswith("hidden/"))}
        return StepRecord(step, timestep, stats, channels, maps, hidden, part("frames/top"))

    # After the call ------------------------------------------------------------------------------
    def finish(self, images: Sequence[np.ndarray | None]) -> None:
        """Store each session's image, mark it complete, and wait until everything is on disk."""
        if self.background is None:
            return
        try:
            for writer, image in zip(self.writers, images):
                self.background.submit(lambda writer=writer, image=image: writer.finish(image))
            self.background.close()
        except WriterFailed as exc:
            self.close()
            raise SessionWriteFailed(str(exc)) from exc

    def close(self) -> None:
        """Stop the writer and close every session as it stands (an aborted run keeps its finished steps)."""
        if self.background is not None:
            try:
                self.background.close()
            except WriterFailed:
                pass  # the run already failed; what is on disk stays as it was
        for writer in self.writers:
            writer.close()
