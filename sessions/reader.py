"""Lazy, validating access to a session file: opening reads attributes only."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from . import schema as S
from .compact import SCALE_SUFFIX, decode_maps, decode_stats
from .massive import sun_massive


class SessionError(Exception):
    """A session file that cannot be used, with a message meant for the user."""


def open_session(path: str | Path) -> "Session":
    return Session(path)


def _read(ds: h5py.Dataset, key: Any = ()) -> np.ndarray:
    try:
        return ds[key]
    except (OSError, RuntimeError) as exc:
        raise SessionError(f"{ds.file.filename}: damaged data in {ds.name} ({exc})") from None


class Session:
    """One open session file. Arrays are read on demand, never all at open."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise SessionError(f"{self.path}: no such file")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise SessionError(f"{self.path}: not a readable HDF5 file, or truncated or corrupt ({_short(exc)})") from None
        try:
            self._validate()
        except SessionError:
            self._file.close()
            raise

    def _validate(self) -> None:
        attrs = self._file.attrs
        if attrs.get(S.ATTR_SCHEMA) != S.SCHEMA_NAME:
            raise SessionError(f"{self.path}: not a MassiveLens session (no '{S.SCHEMA_NAME}' schema attribute)")
        version = int(attrs.get(S.ATTR_VERSION, -1))
        if version > S.SCHEMA_VERSION:
            raise SessionError(
                f"{self.path}: written by a newer MassiveLens (schema v{version}); this version reads up to v{S.SCHEMA_VERSION}"
            )
        if version < 1:
            raise SessionError(f"{self.path}: invalid schema version {version}")
        required = [S.TIMESTEPS, S.GRID, f"{S.BLOCKS}/image", f"image/{S.MEAN_ABS}", f"image/{S.TOP_CHANNELS}"]
        missing = [name for name in required if name not in self._file]
        if missing:
            raise SessionError(f"{self.path}: damaged session, missing {', '.join(missing)}")

    # Run description -------------------------------------------------------------------------
    @property
    def info(self) -> dict[str, Any]:
        """Run attributes, JSON ones decoded; plain Python values."""
        attrs = self._file.attrs
        out: dict[str, Any] = {name: _plain(attrs[name]) for name in S.RUN_ATTRS if name in attrs}
        for name in S.JSON_ATTRS:
            if name in attrs:
                out[name] = json.loads(attrs[name])
        out[S.ATTR_KIND] = _plain(attrs.get(S.ATTR_KIND, "record"))
        return out

    @property
    def call(self) -> dict[str, Any]:
        """The pipeline call as made (schema v2; {} in older files): `kwargs` as given, `defaults` of the
        pipeline in effect, the generator, what was not stored and why, and the pipeline's set-up."""
        ds = self._file.get(S.CALL)
        if ds is None:
            return {}
        return json.loads(_plain(_read(ds, ())))

    def call_inputs(self) -> dict[str, tuple[np.ndarray, str, str]]:
        """Array arguments of the call: name -> (values, kind, torch dtype)."""
        group = self._file.get(S.CALL_INPUTS)
        if group is None:
            return {}
        return {
            name: (_read(ds), _plain(ds.attrs[S.INPUT_KIND_ATTR]), _plain(ds.attrs[S.INPUT_DTYPE_ATTR]))
            for name, ds in group.items()
        }

    @property
    def image_index(self) -> int:
        """Which image of its pipeline call the session holds (of `images_in_call`)."""
        return int(self._file.attrs.get(S.ATTR_IMAGE_INDEX, 0))

    @property
    def images_in_call(self) -> int:
        return int(self._file.attrs.get(S.ATTR_IMAGES, 1))

    @property
    def complete(self) -> bool:
        return bool(self._file.attrs[S.ATTR_COMPLETE])

    @property
    def steps_done(self) -> int:
        return int(self._file.attrs[S.ATTR_STEPS_DONE])

    @property
    def profile(self) -> str:
        """What the recording kept (schema.PROFILES); files before profiles kept everything in float32."""
        return _plain(self._file.attrs.get(S.ATTR_PROFILE, "full"))

    @property
    def grid(self) -> tuple[int, ...]:
        """The token grid: (h, w) for an image, (frames, h, w) in latent tokens for a video."""
        return tuple(int(n) for n in _read(self._file[S.GRID]))

    @property
    def is_video(self) -> bool:
        return len(self.grid) == 3

    @property
    def latent_frames(self) -> int:
        """Latent frames of a video's token grid; an image is one."""
        return self.grid[0] if self.is_video else 1

    @property
    def streams(self) -> tuple[str, ...]:
        return tuple(s for s in S.STREAMS if f"{S.BLOCKS}/{s}" in self._file)

    def blocks(self, stream: str = "image") -> list[str]:
        return [b.decode() if isinstance(b, bytes) else str(b) for b in _read(self._file[f"{S.BLOCKS}/{stream}"])]

    def channels(self, stream: str = "image") -> int:
        return int(self._file[f"{stream}/{S.MEAN_ABS}"].shape[2])

    @property
    def k(self) -> int:
        return int(self._file[f"image/{S.TOP_CHANNELS}"].shape[2])

    @property
    def timesteps(self) -> np.ndarray:
        return _read(self._file[S.TIMESTEPS], slice(0, self.steps_done))

    # Statistics --------------------------------------------------------------------------------
    @property
    def stat_steps(self) -> list[int]:
        """Steps done that have per-channel statistics and token maps: every one, except in lean sessions."""
        kept = self._kept(self._file[f"image/{S.MEAN_ABS}"])
        return [s for s in (range(self.steps_done) if kept is None else kept) if s < self.steps_done]

    @staticmethod
    def _kept(ds: h5py.Dataset) -> list[int] | None:
        steps = ds.attrs.get(S.ROW_STEPS_ATTR)
        return None if steps is None else [int(s) for s in steps]

    def _rows(self, name: str, step: int | None, decode, block: int | None = None) -> np.ndarray:
        """A per-step dataset as true values, at one step (and block), or (steps_done, ...) with NaN rows
        for steps the profile kept nothing for."""
        ds = self._file[name]
        scale = self._file.get(name + SCALE_SUFFIX)
        kept = self._kept(ds)
        within = () if block is None else (block,)

        def row_values(row) -> np.ndarray:
            values = _read(ds, (row, *within))
            return values if scale is None else decode(values, _read(scale, (row, *within)))

        if step is not None:
            self._check_step(step)
            if kept is not None and step not in kept:
                raise SessionError(
                    f"{self.path.name}: this {self.profile} session keeps {name.split('/')[-1]} at steps "
                    f"{', '.join(map(str, kept))} only, not at step {step}"
                )
            return row_values(step if kept is None else kept.index(step))
        if kept is None:
            return row_values(slice(0, self.steps_done))
        out = np.full((self.steps_done, *ds.shape[1 + len(within):]), np.nan, np.float32)
        for row, s in enumerate(kept):
            if s < self.steps_done:
                out[s] = row_values(row)
        return out

    def _check_step(self, step: int) -> None:
        if not 0 <= step < self.steps_done:
            raise SessionError(f"{self.path}: step {step} not recorded (steps done: {self.steps_done})")

    def mean_abs(self, stream: str = "image", step: int | None = None) -> np.ndarray:
        """(blocks, channels) at one step, or (steps_done, blocks, channels) (NaN at steps a lean session
        did not keep; `mean_abs_run` is exact over every step)."""
        return self._rows(f"{stream}/{S.MEAN_ABS}", step, decode_stats).astype(np.float32, copy=False)

    def max_abs(self, stream: str = "image", step: int | None = None) -> np.ndarray:
        return self._rows(f"{stream}/{S.MAX_ABS}", step, decode_stats).astype(np.float32, copy=False)

    def median_abs(self, stream: str = "image", step: int | None = None) -> np.ndarray:
        """(blocks,) at one step, or (steps_done, blocks)."""
        return self._rows(f"{stream}/{S.MEDIAN_ABS}", step, decode_stats)

    def peak_abs(self, stream: str = "image", step: int | None = None) -> np.ndarray:
        """The largest |x| of each block's hidden state: (blocks,) at one step, or (steps_done, blocks)."""
        if f"{stream}/{S.PEAK_ABS}" in self._file:
            return self._rows(f"{stream}/{S.PEAK_ABS}", step, decode_stats)
        return self.max_abs(stream, step).max(axis=-1)

    def mean_abs_run(self, stream: str = "image") -> np.ndarray:
        """(blocks, channels): mean |x| per channel averaged over every step done, exact in every profile:
        the paper's ranking statistic."""
        if f"{stream}/{S.MEAN_RUN}" in self._file and self.steps_done:
            return _read(self._file[f"{stream}/{S.MEAN_RUN}"])
        return self.mean_abs(stream).mean(axis=0)

    def max_abs_run(self, stream: str = "image") -> np.ndarray:
        """(blocks, channels): max |x| per channel over every step done."""
        if f"{stream}/{S.MAX_RUN}" in self._file and self.steps_done:
            return _read(self._file[f"{stream}/{S.MAX_RUN}"])
        return self.max_abs(stream).max(axis=0)

    def sun_steps(self, stream: str = "image") -> np.ndarray:
        """(blocks, channels): at how many steps Sun et al.'s rule held for each channel."""
        if f"{stream}/{S.SUN_STEPS}" in self._file:
            return _read(self._file[f"{stream}/{S.SUN_STEPS}"]).astype(np.int64)
        return sun_massive(self.max_abs(stream), self.median_abs(stream)).sum(axis=0)

    def top_channels(self, step: int | None = None) -> np.ndarray:
        """Image stream: (blocks, k) channel ids at one step, largest mean |x| first."""
        return self.set_channels("top", step)

    def top_maps(self, step: int | None = None, block: int | None = None) -> np.ndarray:
        """Image stream: signed token maps of the top-k channels, (k, h, w) for one block and step;
        leave out the block for (blocks, k, h, w), the step too for (steps_done, blocks, k, h, w)."""
        return self.set_maps("top", step, block)

    @property
    def channel_sets(self) -> tuple[str, ...]:
        """"top", plus the control sets ("bottom", "random") when they were recorded."""
        return ("top",) + tuple(name for name in S.CONTROL_SETS if f"image/{name}_channels" in self._file)

    def draws(self, name: str) -> int:
        """How many channel sets a set holds per block: the random control set's draws, 1 for the others."""
        self._check_set(name)
        return int(self._file[f"image/{name}_channels"].attrs.get(S.DRAWS_ATTR, 1))

    def set_channels(self, name: str, step: int | None = None, draw: int = 0) -> np.ndarray:
        """(blocks, k) channel ids of one set at one step (or (steps_done, blocks, k)); `draw` picks one of
        the random control set's draws."""
        return self._draw(name, draw, self._rows(f"image/{name}_channels", step, decode_stats), axis=-1)

    def set_maps(self, name: str, step: int | None = None, block: int | None = None, draw: int = 0) -> np.ndarray:
        """Signed token maps of one channel set: (k, h, w) at one block and step (see top_maps)."""
        self._check_set(name)
        maps = self._rows(f"image/{name}_maps", step, decode_maps, block)
        return self._draw(name, draw, maps, axis=(step is None) + (block is None))

    def _check_set(self, name: str) -> None:
        if name not in self.channel_sets:
            raise SessionError(f"{self.path}: channel set {name!r} was not recorded (recorded: {', '.join(self.channel_sets)})")

    def _draw(self, name: str, draw: int, values: np.ndarray, axis: int) -> np.ndarray:
        """One draw's k columns of a set's array (the channel axis: last for ids, after steps and blocks for maps)."""
        draws = self.draws(name)
        if not 0 <= draw < draws:
            raise SessionError(f"{self.path.name}: channel set {name!r} holds {draws} draw(s), not draw {draw}")
        if draws == 1:
            return values
        k = values.shape[axis] // draws
        return np.take(values, np.arange(draw * k, draw * k + k), axis=axis)

    def frame_maps(self, name: str, step: int, block: int, frame: int = 0) -> np.ndarray:
        """Signed token maps of one channel set at one latent frame, (k, h, w); an image is frame 0."""
        if not 0 <= frame < self.latent_frames:
            raise SessionError(f"{self.path}: no latent frame {frame} (frames: {self.latent_frames})")
        maps = self.set_maps(name, step, block)
        return maps[:, frame] if self.is_video else maps

    def top_frame_mean_abs(self, step: int | None = None) -> np.ndarray:
        """Video: mean |x| of each top channel per latent frame, (blocks, k, frames) at one step, or
        (steps_done, blocks, k, frames); channels as in top_channels, kept at every step in every profile."""
        if not self.is_video:
            raise SessionError(f"{self.path}: an image session has no per-frame statistics")
        return self._rows(f"image/{S.TOP_FRAME_MEAN_ABS}", step, decode_stats)

    def token_map(self, step: int, block: int, channel: int) -> np.ndarray | None:
        """Map of one channel on the token grid ((h, w), or (frames, h, w) for a video), from the top-k maps
        or the full hidden states; None if not recorded."""
        top = self.top_channels(step)[block]
        hits = np.flatnonzero(top == channel)
        if hits.size:
            return self.top_maps(step, block)[hits[0]]
        hidden = self.hidden("image", self.blocks("image")[block])
        if hidden is not None and step in hidden[1]:
            values = _read(hidden[0], (list(hidden[1]).index(step), slice(None), channel))
            return values.reshape(self.grid)
        return None

    def hidden_blocks(self, stream: str = "image") -> list[str]:
        group = self._file.get(f"{S.HIDDEN}/{stream}")
        return list(group.keys()) if group is not None else []

    def hidden(self, stream: str, block: str) -> tuple[h5py.Dataset, list[int]] | None:
        """Full hidden states of one block, lazily: the dataset (steps, tokens, channels) and its step ids."""
        ds = self._file.get(f"{S.HIDDEN}/{stream}/{block}")
        if ds is None:
            return None
        return ds, [int(s) for s in ds.attrs[S.HIDDEN_STEPS_ATTR]]

    @property
    def image(self) -> np.ndarray | None:
        """The generated image, uint8 (H, W, 3) (a video's first frame); None until the run completes (or when
        the call returned latents)."""
        ds = self._file.get(S.IMAGE)
        if ds is None and S.FRAMES in self._file:
            return _read(self._file[S.FRAMES], 0)
        return None if ds is None else _read(ds)

    @property
    def output_frames(self) -> int:
        """How many frames the stored video has (0 for an image session or an unfinished one), without reading them."""
        ds = self._file.get(S.FRAMES)
        return 0 if ds is None else int(ds.shape[0])

    @property
    def frames(self) -> np.ndarray | None:
        """A video's frames, uint8 (frames, H, W, 3); None for an image session or until the run completes."""
        ds = self._file.get(S.FRAMES)
        return None if ds is None else _read(ds)

    def massive(self, rule: str = "topk", stream: str = "image", k: int | None = None) -> dict[str, list[int]]:
        """Massive channels per block over the finished steps: "topk", the paper's k channels of largest
        mean |x| (k: the session's); "sun", Sun et al.'s |x| > 100 and > 1000x the median at some step."""
        from .massive import massive_channels

        return massive_channels(self, rule, stream, k)

    # Lifetime ------------------------------------------------------------------------------------
    def close(self) -> None:
        if self._file.id.valid:
            self._file.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _short(exc: Exception) -> str:
    return str(exc).split("\n")[0][:160]
