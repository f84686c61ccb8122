"""Writes a session step by step so that a killed run leaves a readable, incomplete file.

Datasets are chunked but not compressed: activations are float noise to gzip (a 14% saving on
FLUX-size token maps) and compressing them made a recorded FLUX.1 run on an H200 3.2x slower than
a plain one (bench/record_overhead_flux.py)."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from . import schema as S
from .records import Layout, RunInfo, StepRecord

_CHUNK_BYTES = 1 << 20  # h5py's guidance: chunks between 10 KiB and 1 MiB


class SessionWriter:
    """Owns one open HDF5 file; every finished step is flushed before the next starts."""

    def __init__(self, path: str | Path, info: RunInfo, layout: Layout, overwrite: bool = False):
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path} exists; choose another name or allow overwriting")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.layout = layout
        self.info = info
        self._by_step: list[str] = []  # datasets whose first axis is the step
        self._file = h5py.File(self.path, "w")
        self._write_header(info, layout)
        self._file.flush()

    def _write_header(self, info: RunInfo, layout: Layout) -> None:
        f = self._file
        f.attrs[S.ATTR_SCHEMA] = S.SCHEMA_NAME
        f.attrs[S.ATTR_VERSION] = S.SCHEMA_VERSION
        f.attrs[S.ATTR_COMPLETE] = False
        f.attrs[S.ATTR_STEPS_DONE] = 0
        f.attrs[S.ATTR_KIND] = info.kind
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
        self._create(S.TIMESTEPS, (info.steps,), np.float64, (max(1, info.steps),))
        f.create_dataset(S.GRID, data=np.asarray(layout.grid, dtype=np.int64))
        steps, grid, k = info.steps, tuple(layout.grid), info.k
        for stream, names in layout.blocks.items():
            f.create_dataset(f"{S.BLOCKS}/{stream}", data=np.asarray(names, dtype=h5py.string_dtype()))
            n, c = len(names), layout.channels[stream]
            rows = max(1, min(n, _CHUNK_BYTES // (4 * c)))
            for key in (S.MEAN_ABS, S.MAX_ABS):
                self._create(f"{stream}/{key}", (steps, n, c), np.float32, (1, rows, c))
            self._create(f"{stream}/{S.MEDIAN_ABS}", (steps, n), np.float32, (1, n))
        n_img = len(layout.blocks["image"])
        k = min(k, layout.channels["image"])
        for name in ("top", *layout.control_sets):
            self._create(f"image/{name}_channels", (steps, n_img, k), np.int32, (1, n_img, k), fill=-1)
            self._create(f"image/{name}_maps", (steps, n_img, k, *grid), np.float32, (1, 1, k, *_frame(grid)))
        if len(grid) == 3:
            self._create(f"image/{S.TOP_FRAME_MEAN_ABS}", (steps, n_img, k, grid[0]), np.float32, (1, n_img, k, grid[0]))

    def _create(self, name: str, shape: tuple, dtype, chunks: tuple, fill=np.nan) -> None:
        """A dataset whose first axis is steps: it can grow past the planned count (a scheduler that
        adds steps) and is cut to the steps done when the run finishes."""
        self._file.create_dataset(name, shape=shape, dtype=dtype, chunks=chunks, fillvalue=fill, maxshape=(None, *shape[1:]))
        self._by_step.append(name)

    def _resize_steps(self, steps: int) -> None:
        for name in self._by_step:
            self._file[name].resize(steps, axis=0)

    def write_step(self, record: StepRecord) -> None:
        """Write one step, flush, then mark it done: the mark never runs ahead of the data."""
        f, s = self._file, record.step
        if s >= f[S.TIMESTEPS].shape[0]:
            self._resize_steps(s + 1)
        f[S.TIMESTEPS][s] = record.timestep
        for stream, stats in record.stats.items():
            f[f"{stream}/{S.MEAN_ABS}"][s] = stats.mean_abs
            f[f"{stream}/{S.MAX_ABS}"][s] = stats.max_abs
            f[f"{stream}/{S.MEDIAN_ABS}"][s] = stats.median_abs
        f[f"image/{S.TOP_CHANNELS}"][s] = record.top_channels
        f[f"image/{S.TOP_MAPS}"][s] = record.top_maps
        if record.top_frame_mean_abs is not None:
            f[f"image/{S.TOP_FRAME_MEAN_ABS}"][s] = record.top_frame_mean_abs
        for name, (channels, maps) in record.control.items():
            f[f"image/{name}_channels"][s] = channels
            f[f"image/{name}_maps"][s] = maps
        for (stream, block), values in record.hidden.items():
            self._hidden_dataset(stream, block, values)[self.layout.hidden_steps.index(s)] = values
        f.flush()
        f.attrs[S.ATTR_STEPS_DONE] = s + 1
        f.flush()

    def _hidden_dataset(self, stream: str, block: str, values: np.ndarray) -> h5py.Dataset:
        name = f"{S.HIDDEN}/{stream}/{block}"
        if name not in self._file:
            shape = (len(self.layout.hidden_steps), *values.shape)
            ds = self._file.create_dataset(name, shape=shape, dtype=np.float32, chunks=(1, *values.shape), fillvalue=np.nan)
            ds.attrs[S.HIDDEN_STEPS_ATTR] = np.asarray(self.layout.hidden_steps, dtype=np.int64)
        return self._file[name]

    def finish(self, image: np.ndarray | None) -> None:
        """Store the final image, or a video's frames (F, H, W, 3) (None when the call returned latents),
        record the steps actually run and the image size, and mark the session complete."""
        f = self._file
        done = int(f.attrs[S.ATTR_STEPS_DONE])
        if done != f[S.TIMESTEPS].shape[0]:
            self._resize_steps(done)
        f.attrs["steps"] = done
        if image is not None:
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


def _frame(grid: tuple[int, ...]) -> tuple[int, ...]:
    """A token map chunk: the whole grid of an image, one latent frame of a video (the unit views read)."""
    return grid if len(grid) == 2 else (1, *grid[1:])
