"""Writes a session step by step so that a killed run leaves a readable, incomplete file.

Datasets are chunked but not compressed: activations are float noise to gzip (a 14% saving on
FLUX-size token maps) and compressing them made a recorded FLUX.1 run on an H200 3.2x slower than
a plain one (bench/record_overhead_flux.py). Token maps and (outside the full profile) statistics are
16-bit with float32 scales instead (sessions.compact). Before each step the writer checks that the
disk can hold it: HDF5 that runs out of space mid-write leaves a file it can no longer close, so a
full disk stops the run with a message while the file is still whole.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np

from . import schema as S
from .compact import SCALE_SUFFIX
from .records import Layout, Packed, RunInfo, StepRecord

_CHUNK_BYTES = 1 << 20  # h5py's guidance: chunks between 10 KiB and 1 MiB
_DISK_MARGIN = 1 << 20  # room left for HDF5's own metadata when a step is written


class DiskFull(OSError):
    """Not enough free disk space for the next write; the file is left whole."""


class SessionWriter:
    """Owns one open HDF5 file; every finished step is flushed before the next starts."""

    def __init__(self, path: str | Path, info: RunInfo, layout: Layout, overwrite: bool = False):
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path} exists; choose another name or allow overwriting")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.layout = layout
        self.info = info
        self._rows = {step: row for row, step in enumerate(layout.kept_steps or ())}
        self._by_step: list[str] = []  # datasets with a row per step: they grow if a run takes more steps
        self._check_space(self.session_bytes(), "the session")
        self._file = h5py.File(self.path, "w")
        self._write_header(info, layout)
        self._file.flush()

    # Header --------------------------------------------------------------------------------------
    def _write_header(self, info: RunInfo, layout: Layout) -> None:
        f = self._file
        f.attrs[S.ATTR_SCHEMA] = S.SCHEMA_NAME
        f.attrs[S.ATTR_VERSION] = S.SCHEMA_VERSION
        f.attrs[S.ATTR_COMPLETE] = False
        f.attrs[S.ATTR_STEPS_DONE] = 0
        f.attrs[S.ATTR_KIND] = info.kind
        f.attrs[S.ATTR_PROFILE] = layout.profile
        f.attrs[S.ATTR_IMAGE_INDEX] = info.image_index
        f.attrs[S.ATTR_IMAGES] = info.images_in_call
        for name in S.RUN_ATTRS:
            if name != "created":
                f.attrs[name] = getattr(info, name)
        f.attrs["created"] = str(np.datetime_as_string(np.datetime64("now"), unit="s"))
        for name in S.JSON_ATTRS:
            f.attrs[name] = json.dumps(getattr(info, name), default=str, sort_keys=True)
        f.create_dataset(S.CALL, data=json.dumps(info.call, default=str, sort_keys=True), dtype=h5py.string_dtype())
        for name, item in info.call_inputs.items():
            ds = f.create_dataset(f"{S.CALL_INPUTS}/{name}", data=item.values)
            ds.attrs[S.INPUT_KIND_ATTR] = item.kind
            ds.attrs[S.INPUT_DTYPE_ATTR] = item.dtype
        f.create_dataset(S.GRID, data=np.asarray(layout.grid, dtype=np.int64))
        self._by_step_dataset(S.TIMESTEPS, (), np.float64)
        for stream, names in layout.blocks.items():
            f.create_dataset(f"{S.BLOCKS}/{stream}", data=np.asarray(names, dtype=h5py.string_dtype()))
            self._stream_datasets(stream, len(names), layout.channels[stream])
        n, k = len(layout.blocks["image"]), self.k
        for name in ("top", *layout.control_sets):
            width = layout.set_width(name, k)
            self._by_step_dataset(f"image/{name}_channels", (n, width), np.int32, fill=-1)
            self._kept_dataset(f"image/{name}_maps", (n, width, *layout.grid), np.int16, fill=0, scale_shape=(n, width, *layout.grid[:-2]))
            if name == "random":
                f[f"image/{name}_channels"].attrs[S.DRAWS_ATTR] = layout.random_draws
        if len(layout.grid) == 3:
            self._by_step_dataset(f"image/{S.TOP_FRAME_MEAN_ABS}", (n, k, layout.grid[0]), np.float32)

    @property
    def k(self) -> int:
        return min(self.info.k, self.layout.channels["image"])

    def _stream_datasets(self, stream: str, n: int, c: int) -> None:
        float_stats = self.layout.float_stats
        for key in (S.MEAN_ABS, S.MAX_ABS):
            self._kept_dataset(f"{stream}/{key}", (n, c), np.float32 if float_stats else np.float16,
                               scale_shape=None if float_stats else (n,))
        for key in (S.MEDIAN_ABS, S.PEAK_ABS):
            self._by_step_dataset(f"{stream}/{key}", (n,), np.float32)
        for key, dtype in ((S.MEAN_RUN, np.float32), (S.MAX_RUN, np.float32), (S.SUN_STEPS, np.uint16)):
            self._file.create_dataset(f"{stream}/{key}", shape=(n, c), dtype=dtype, fillvalue=np.nan if dtype == np.float32 else 0)

    def _by_step_dataset(self, name: str, shape: tuple, dtype, fill=np.nan) -> None:
        """A dataset with a row per step; it can grow past the planned count (a scheduler that adds
        steps) and is cut to the steps done when the run finishes."""
        steps = self.info.steps
        self._file.create_dataset(name, shape=(steps, *shape), dtype=dtype, chunks=_chunks(shape, dtype),
                                  fillvalue=fill, maxshape=(None, *shape))
        self._by_step.append(name)

    def _kept_dataset(self, name: str, shape: tuple, dtype, fill=np.nan, scale_shape: tuple | None = None) -> None:
        """A dataset with a row per kept step (every step unless the profile keeps some only); with a
        `scale_shape`, a float32 `<name>_scale` beside it holds the scale of each map or block row."""
        parts = [(name, shape, dtype, fill)] + ([(name + SCALE_SUFFIX, scale_shape, np.float32, np.nan)] if scale_shape else [])
        kept = self.layout.kept_steps
        for target, target_shape, target_dtype, target_fill in parts:
            if kept is None:
                self._by_step_dataset(target, target_shape, target_dtype, target_fill)
                continue
            ds = self._file.create_dataset(target, shape=(len(kept), *target_shape), dtype=target_dtype,
                                           chunks=_chunks(target_shape, target_dtype), fillvalue=target_fill)
            ds.attrs[S.ROW_STEPS_ATTR] = np.asarray(kept, dtype=np.int64)

    # Steps ---------------------------------------------------------------------------------------
    def write_step(self, record: StepRecord) -> None:
        """Write one step, flush, then mark it done: the mark never runs ahead of the data."""
        f, s = self._file, record.step
        self._check_space(_record_bytes(record), f"step {s}")
        if s >= f[S.TIMESTEPS].shape[0]:
            for name in self._by_step:
                f[name].resize(s + 1, axis=0)
        f[S.TIMESTEPS][s] = record.timestep
        for stream, stats in record.stats.items():
            f[f"{stream}/{S.MEDIAN_ABS}"][s] = stats.median_abs
            f[f"{stream}/{S.PEAK_ABS}"][s] = stats.peak_abs
            f[f"{stream}/{S.MEAN_RUN}"][...] = stats.mean_run
            f[f"{stream}/{S.MAX_RUN}"][...] = stats.max_run
            f[f"{stream}/{S.SUN_STEPS}"][...] = stats.sun_steps
            for key, packed in ((S.MEAN_ABS, stats.mean_abs), (S.MAX_ABS, stats.max_abs)):
                if packed is not None:
                    self._put(f"{stream}/{key}", s, packed)
        for name, channels in record.channels.items():
            f[f"image/{name}_channels"][s] = channels
        for name, packed in record.maps.items():
            self._put(f"image/{name}_maps", s, packed)
        if record.top_frame_mean_abs is not None:
            f[f"image/{S.TOP_FRAME_MEAN_ABS}"][s] = record.top_frame_mean_abs
        for (stream, block), values in record.hidden.items():
            self._hidden_dataset(stream, block, values)[self.layout.hidden_steps.index(s)] = values
        f.flush()
        f.attrs[S.ATTR_STEPS_DONE] = s + 1
        f.flush()

    def _put(self, name: str, step: int, packed: Packed) -> None:
        row = step if self.layout.kept_steps is None else self._rows[step]
        self._file[name][row] = packed.values
        if packed.scale is not None:
            self._file[name + SCALE_SUFFIX][row] = packed.scale

    def _hidden_dataset(self, stream: str, block: str, values: np.ndarray) -> h5py.Dataset:
        name = f"{S.HIDDEN}/{stream}/{block}"
        if name not in self._file:
            shape = (len(self.layout.hidden_steps), *values.shape)
            ds = self._file.create_dataset(name, shape=shape, dtype=np.float32, chunks=(1, *values.shape), fillvalue=np.nan)
            ds.attrs[S.HIDDEN_STEPS_ATTR] = np.asarray(self.layout.hidden_steps, dtype=np.int64)
        return self._file[name]

    # Space ---------------------------------------------------------------------------------------
    def session_bytes(self) -> int:
        """Bytes the session's datasets will hold (what the disk must have room for)."""
        layout, steps = self.layout, self.info.steps
        kept = steps if layout.kept_steps is None else len(layout.kept_steps)
        stat_bytes = 4 if layout.float_stats else 2
        total = 0
        for stream, names in layout.blocks.items():
            n, c = len(names), layout.channels[stream]
            total += kept * n * c * 2 * stat_bytes + steps * n * 8 + n * c * 10
        n, k, tokens = len(layout.blocks["image"]), self.k, int(np.prod(layout.grid))
        frames = int(np.prod(layout.grid[:-2]))  # a video's latent frames: a map scale each; an image: 1
        columns = sum(layout.set_width(name, k) for name in ("top", *layout.control_sets))
        total += columns * n * (steps * 4 + kept * (tokens * 2 + 4 * frames))
        total += steps * n * k * frames * 4 if len(layout.grid) == 3 else 0  # per-frame means of the top channels
        hidden = sum(layout.channels[s] for s in layout.blocks) * tokens * 4 * len(layout.hidden_steps) * len(layout.hidden_blocks)
        return total + hidden

    def _check_space(self, needed: int, what: str) -> None:
        free = shutil.disk_usage(self.path.parent).free
        if free < needed + _DISK_MARGIN:
            raise DiskFull(
                f"not enough disk space for {what} of {self.path.name}: it needs {_mb(needed)}, "
                f"{_mb(free)} free in {self.path.parent}"
            )

    # End -----------------------------------------------------------------------------------------
    def finish(self, image: np.ndarray | None) -> None:
        """Store the final image, or a video's frames (F, H, W, 3) (None when the call returned latents),
        record the steps actually run and the image size, and mark the session complete."""
        f = self._file
        done = int(f.attrs[S.ATTR_STEPS_DONE])
        if done != f[S.TIMESTEPS].shape[0]:
            for name in self._by_step:
                f[name].resize(done, axis=0)
        f.attrs["steps"] = done
        if image is not None:
            self._check_space(image.nbytes, "the image")
            f.create_dataset(S.FRAMES if image.ndim == 4 else S.IMAGE, data=np.asarray(image, dtype=np.uint8))
            f.attrs["height"], f.attrs["width"] = (int(n) for n in image.shape[-3:-1])
        f.flush()
        self._file.attrs[S.ATTR_COMPLETE] = True
        self.close()

    def close(self) -> None:
        if self._file.id.valid:
            self._file.close()

    def __enter__(self) -> "SessionWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _chunks(shape: tuple, dtype) -> tuple:
    """One step per chunk, and as many leading rows of it (blocks) as fit in _CHUNK_BYTES and divide the
    rows evenly (FLUX's 57 blocks: 3 per token-map chunk); a per-step scalar (the timestep) keeps 64
    steps a chunk."""
    if not shape:
        return (64,)  # timesteps: resizable, so the chunk may be larger than the planned steps
    row = int(np.prod(shape[1:], dtype=np.int64)) * np.dtype(dtype).itemsize
    most = max(1, min(shape[0], _CHUNK_BYTES // max(row, 1)))
    lead = max(d for d in range(1, most + 1) if shape[0] % d == 0)  # HDF5 allocates whole chunks: no ragged last one
    return (1, lead, *shape[1:])


def _record_bytes(record: StepRecord) -> int:
    arrays = [a for stats in record.stats.values() for a in (stats.median_abs, stats.mean_run, stats.max_run, stats.sun_steps)]
    arrays += [p.values for stats in record.stats.values() for p in (stats.mean_abs, stats.max_abs) if p is not None]
    arrays += [p.values for p in record.maps.values()] + list(record.channels.values()) + list(record.hidden.values())
    arrays += [] if record.top_frame_mean_abs is None else [record.top_frame_mean_abs]
    return int(sum(np.asarray(a).nbytes for a in arrays))


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"
