"""Per-session cache of what the views read, so a slider move does no HDF5 I/O.

All reads happen on the GUI thread (h5py holds one global lock; the recording worker writes its own file).
The statistics of a stream are read whole when the session opens (a FLUX run: about 20 MB per array), which
also finds damaged parts: a stream that cannot be read is left out and an unreadable image or schedule is
replaced, each with a one-line entry in `problems`; non-finite statistics are shown as gaps (NaN) and named
there too. Token maps are read per (step, block) chunk and kept in a small LRU; a live recording's session
grows with `refresh`. A video's frames are read once; its token maps are served per frame.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from massivelens.engine.analysis.clusters import latent_frame
from massivelens.sessions import massive
from massivelens.sessions.reader import Session, SessionError, open_session

READ_ERRORS = (SessionError, OSError, RuntimeError, KeyError, ValueError, TypeError)  # what a damaged file raises

_MAP_CACHE = 128  # (step, block) chunks of top-k token maps; 256 KiB each for FLUX at k=16


@dataclass
class StreamStats:
    """All finished steps of one stream, plus what the views derive from them once."""

    blocks: list[str]
    mean_abs: np.ndarray  # (steps, blocks, channels)
    max_abs: np.ndarray  # (steps, blocks, channels)
    median_abs: np.ndarray  # (steps, blocks)
    ratio: np.ndarray  # (steps, blocks): max |x| / median |x|
    peak: np.ndarray  # (steps, blocks): max |x| over channels
    levels: tuple[float, float]  # colour range of mean |x| over all steps, fixed so steps compare
    log_levels: tuple[float, float]


@dataclass(frozen=True)
class Pick:
    """A selection made valid for one session (a comparison can select past the end of the smaller run)."""

    stream: str
    block: int
    step: int
    channel: int
    frame: int = 0  # a video's frame (an image is frame 0)


class SessionData:
    """A session opened for viewing: the reader plus caches. Close it to release the file."""

    def __init__(self, session: Session):
        self.session = session
        self.problems: list[str] = []
        self._streams: dict[str, StreamStats] = {}
        self._derived: dict[tuple[str, str, int], object] = {}  # per (kind, stream, step): small, kept
        self._maps: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()

    @classmethod
    def open(cls, path: str | Path) -> "SessionData":
        """Raises SessionError (one-line message) for files that are not usable sessions; a session with damaged
        parts opens, and says what is damaged in `problems`."""
        data = cls(open_session(path))
        try:
            data.check()
        except SessionError:
            data.close()
            raise
        return data

    def check(self) -> None:
        """Read what every view needs now, so damage shows once, at open, instead of on every redraw."""
        try:
            self.steps_done, self.complete, self.info, self.grid, self.k, self.channel_sets  # noqa: B018 - read to cache
        except READ_ERRORS as exc:
            raise SessionError(f"{self.path}: damaged session ({_first_line(exc)})") from None
        for stream in self.session.streams:
            try:
                self.stats(stream)
            except READ_ERRORS as exc:
                if stream == "image":
                    raise SessionError(f"{self.path}: damaged image-stream statistics ({_first_line(exc)})") from None
                self.problems.append(f"{stream} stream left out: {_first_line(exc)}")
        blocks, steps = len(self.blocks("image")), self.steps_done
        fallbacks = {"stored_top": lambda: np.full((steps, blocks, self.k), -1), "image": lambda: None,
                     "timesteps": lambda: np.full(steps, np.nan)}
        for name, fallback in fallbacks.items():
            try:
                getattr(self, name)
            except READ_ERRORS as exc:
                self.__dict__[name] = fallback()  # what the cached property returns from now on
                self.problems.append(f"{name.replace('_', ' ')} unreadable: {_first_line(exc)}")

    # Run description -----------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self.session.path

    @cached_property
    def info(self) -> dict:
        return self.session.info

    @cached_property
    def complete(self) -> bool:
        return self.session.complete

    @cached_property
    def steps_done(self) -> int:
        return self.session.steps_done

    @cached_property
    def steps_planned(self) -> int:
        return int(self.info.get("steps", self.steps_done))

    @cached_property
    def grid(self) -> tuple[int, ...]:
        """(h, w), or a video's (frames, h, w) in latent tokens."""
        return self.session.grid

    @cached_property
    def k(self) -> int:
        return self.session.k

    @property
    def streams(self) -> tuple[str, ...]:
        """The streams whose statistics could be read."""
        return tuple(stream for stream in self.session.streams if stream in self._streams)

    @cached_property
    def channel_sets(self) -> tuple[str, ...]:
        return self.session.channel_sets

    @cached_property
    def timesteps(self) -> np.ndarray:
        return _finite(self.session.timesteps[: self.steps_done], "schedule", self.problems)

    @cached_property
    def image(self) -> np.ndarray | None:
        return self.session.image

    # Video ---------------------------------------------------------------------------------------
    @property
    def is_video(self) -> bool:
        return len(self.grid) == 3

    @cached_property
    def frames(self) -> np.ndarray | None:
        """A video's frames (F, H, W, 3), read once (81 frames at 480x832: 97 MB); None for an image."""
        return self.session.frames if self.is_video else None

    @property
    def frame_count(self) -> int:
        """Frames the frame slider spans: the video's, or its latent frames until the frames are written."""
        if not self.is_video:
            return 1
        return len(self.frames) if self.frames is not None else self.grid[0]

    def latent_of(self, frame: int) -> int:
        """The latent frame (of the token maps) that a frame of the slider shows."""
        if self.frames is None:
            return frame
        return latent_frame(frame, len(self.frames), self.grid[0])

    @cached_property
    def _frame_means(self) -> np.ndarray:
        """(steps, blocks, k, latent frames): each step's top channels' mean |x| per latent frame, read once."""
        return self.session.top_frame_mean_abs()[: self.steps_done]

    def frame_means(self, step: int, channel: int) -> np.ndarray:
        """(blocks, latent frames) mean |x| of one channel at one step; NaN in blocks where it is not in the top-k."""
        hits = self.stored_top[step] == channel  # (blocks, k)
        values = self._frame_means[step][np.arange(len(hits)), hits.argmax(axis=1)]
        return np.where(hits.any(axis=1)[:, None], values, np.nan)

    def picture(self, frame: int = 0) -> np.ndarray | None:
        """The image, or a video's frame, under the maps."""
        return self.image if self.frames is None else self.frames[frame]

    def refresh(self) -> bool:
        """Catch up with a recording that is still writing this file: True when steps (or the image) arrived.
        Everything read per step is read again; the statistics of a run are small next to its token maps."""
        steps, complete = self.session.steps_done, self.session.complete
        if (steps, complete) == (self.steps_done, self.complete):
            return False
        for name in ("steps_done", "complete", "timesteps", "stored_top", "image", "frames", "_frame_means", "info"):
            self.__dict__.pop(name, None)
        self._streams.clear()
        self._derived.clear()
        self._maps.clear()
        self.problems.clear()
        self.check()
        return True

    def blocks(self, stream: str) -> list[str]:
        return self.stats(stream).blocks

    def resolve(self, selection) -> Pick | None:
        """Clamp a Selection to this session; None while no step is recorded."""
        if self.steps_done == 0:
            return None
        stream = selection.stream if selection.stream in self.streams else "image"
        st = self.stats(stream)
        return Pick(
            stream=stream,
            block=min(max(selection.block, 0), len(st.blocks) - 1),
            step=min(max(selection.step, 0), self.steps_done - 1),
            channel=min(max(selection.channel, 0), st.mean_abs.shape[2] - 1),
            frame=min(max(selection.frame, 0), self.frame_count - 1),
        )

    def strongest(self) -> dict[str, int] | None:
        """The largest image-stream cell at the middle recorded step, where a freshly opened session starts:
        mid-trajectory the layout is set (the step token clusters default to, engine.clusters.default_step)."""
        if self.steps_done == 0:
            return None
        middle = self.steps_done // 2
        mean = self.stats("image").mean_abs[middle]
        if not np.isfinite(mean).any():  # a damaged step: start at its first cell
            return {"step": middle, "block": 0, "channel": 0}
        block, channel = np.unravel_index(np.nanargmax(mean), mean.shape)
        return {"step": middle, "block": int(block), "channel": int(channel)}

    def step_label(self, step: int) -> str:
        """Steps are 0-based everywhere (as in the file), with the scheduler timestep for orientation."""
        return f"step {step} (t={self.timesteps[step]:.0f})"

    @cached_property
    def stat_steps(self) -> tuple[int, ...]:
        """Steps with per-channel statistics and token maps: all of them, except in a lean session."""
        return tuple(self.session.stat_steps)

    def keeps(self, step: int) -> bool:
        return step in self.stat_steps

    def not_kept(self, step: int, what: str) -> str:
        """What a view says at a step a lean session kept nothing for."""
        kept = ", ".join(map(str, self.stat_steps)) or "none yet"
        return f"no {what} at step {step}: this {self.session.profile} session keeps them at steps {kept}"

    # Statistics ----------------------------------------------------------------------------------
    def stats(self, stream: str) -> StreamStats:
        """Every finished step of one stream, read once."""
        if stream not in self._streams:
            self._streams[stream] = self._read_stats(stream)
        return self._streams[stream]

    def _read_stats(self, stream: str) -> StreamStats:
        with np.errstate(all="ignore"):  # a damaged file's garbage overflows; its values are flagged, not warned on
            return self._derive_stats(stream)

    def _derive_stats(self, stream: str) -> StreamStats:
        s, n = self.session, self.steps_done  # a live recording may add a step between two reads: keep n
        kept = [step for step in self.stat_steps if step < n]  # a lean session's other rows are NaN by design
        mean = _finite(s.mean_abs(stream)[:n], f"{stream} mean |x|", self.problems, kept)
        peak_abs = _finite(s.max_abs(stream)[:n], f"{stream} max |x|", self.problems, kept)
        median = _finite(s.median_abs(stream)[:n], f"{stream} median |x|", self.problems)
        finite = mean[np.isfinite(mean)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        log_lo = float(np.log10(max(lo, 1e-6)))
        return StreamStats(
            blocks=s.blocks(stream),
            mean_abs=mean,
            max_abs=peak_abs,
            median_abs=median,
            ratio=massive.max_over_median(peak_abs, median),
            peak=np.nanmax(np.where(np.isnan(peak_abs), -np.inf, peak_abs), axis=-1, initial=0.0),
            levels=(lo, max(hi, lo + 1e-6)),
            log_levels=(log_lo, max(float(np.log10(max(hi, 1e-6))), log_lo + 1e-3)),
        )

    def heatmap(self, stream: str, step: int, log: bool) -> np.ndarray:
        """(blocks, channels) mean |x| at one step, log10 when asked (the colour scale is set by `levels`)."""
        values = self.stats(stream).mean_abs[step]
        return np.log10(np.maximum(values, 1e-6)) if log else values

    def sun_cells(self, stream: str, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(blocks, channels) index arrays of the cells that pass Sun et al.'s rule at one step."""
        key = ("sun", stream, step)
        if key not in self._derived:
            st = self.stats(stream)
            self._derived[key] = np.nonzero(massive.sun_massive(st.max_abs[step], st.median_abs[step]))
        return self._derived[key]

    def top_channels(self, stream: str, step: int) -> np.ndarray:
        """(blocks, k) channel ids by the paper's rule at one step: as recorded for the image stream, computed
        (and cached: sorting every block costs ~20 ms for FLUX) for the text stream, whose ids are not stored."""
        if stream == "image":
            return self.stored_top[step]
        key = ("top", stream, step)
        if key not in self._derived:
            self._derived[key] = massive.top_channels(self.stats(stream).mean_abs[step], self.k)
        return self._derived[key]

    # Token maps ----------------------------------------------------------------------------------
    @cached_property
    def stored_top(self) -> np.ndarray:
        """(steps, blocks, k) channel ids whose image-stream token maps the file holds (-1 where damaged)."""
        top = self.session.top_channels()[: self.steps_done]
        bad = (top < 0) | (top >= self.stats("image").mean_abs.shape[2])
        if bad.any():
            self.problems.append(f"top channels: {int(bad.sum())} ids out of range (damaged?)")
        return np.where(bad, -1, top)

    def token_map(self, step: int, block: int, channel: int, frame: int = 0) -> np.ndarray | None:
        """(h, w) signed map of one image-stream channel (at a video's frame); None when it was not recorded."""
        hits = np.flatnonzero(self.stored_top[step, block] == channel)
        values = self._top_maps(step, block)[hits[0]] if hits.size else self.session.token_map(step, block, channel)
        return values[self.latent_of(frame)] if values is not None and self.is_video else values

    def _top_maps(self, step: int, block: int) -> np.ndarray:
        key = (step, block)
        if key in self._maps:
            self._maps.move_to_end(key)
        else:
            self._maps[key] = self.session.top_maps(step, block)
            while len(self._maps) > _MAP_CACHE:
                self._maps.popitem(last=False)
        return self._maps[key]

    def close(self) -> None:
        self.session.close()


def _finite(values: np.ndarray, name: str, problems: list[str], rows: list[int] | None = None) -> np.ndarray:
    """Non-finite values become NaN, drawn as gaps and skipped by every statistic; how many is noted once
    (counted over `rows` only, when given: the steps that hold values)."""
    values = np.asarray(values, dtype=np.float64 if values.dtype == np.float64 else np.float32)
    bad = ~np.isfinite(values)
    if rows is not None:
        bad[[i for i in range(len(values)) if i not in set(rows)]] = False
    if bad.any():
        problems.append(f"{name}: {int(bad.sum())} non-finite values (damaged?) shown as gaps")
        values = np.where(bad, np.nan, values)
    return values


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
