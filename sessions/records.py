"""Plain data that crosses from the engine into a session file: no h5py, no torch."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RunInfo:
    """Everything needed to reproduce a generation with plain diffusers code."""

    model: str
    pipeline_class: str
    transformer_class: str
    dtype: str
    device: str
    prompt: str
    negative_prompt: str
    seed: int
    steps: int
    guidance: float
    height: int
    width: int
    k: int
    scheduler: str
    kind: str = "record"
    transformer_config: dict = field(default_factory=dict)
    scheduler_config: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    call: dict = field(default_factory=dict)  # the pipeline call as made (engine.core.calls.CallRecord.describe)
    call_inputs: dict[str, "CallInput"] = field(default_factory=dict)  # its array arguments
    tokens: dict = field(default_factory=dict)  # the image-token sequence: generated, reference, text, padding runs
    image_index: int = 0
    images_in_call: int = 1


@dataclass
class CallInput:
    """One array argument of a pipeline call, kept so the call can be made again."""

    values: np.ndarray
    kind: str  # "tensor", "array" or "pil"
    dtype: str = ""  # the torch dtype of a tensor (stored as float32 when numpy has no such type)


@dataclass
class Layout:
    """Shapes fixed before the first step: blocks per stream, widths, token grid ((h, w), or (frames, h, w)
    for a video), what the profile keeps."""

    blocks: dict[str, list[str]]
    channels: dict[str, int]
    grid: tuple[int, ...]
    hidden_blocks: tuple[str, ...] = ()
    hidden_steps: tuple[int, ...] = ()
    control_sets: tuple[str, ...] = ()
    random_draws: int = 1  # channel sets drawn for the "random" control set
    profile: str = "default"
    kept_steps: tuple[int, ...] | None = None  # steps with per-channel statistics and token maps; None: every step

    @property
    def float_stats(self) -> bool:
        """Whether per-channel statistics are stored exactly (float32) rather than as scaled float16."""
        return self.profile == "full"

    def set_width(self, name: str, k: int) -> int:
        """Columns a channel set stores: k, or draws x k for the random control set."""
        return k * self.random_draws if name == "random" else k

    def keeps(self, step: int) -> bool:
        return self.kept_steps is None or step in self.kept_steps


@dataclass
class Packed:
    """Values as stored: float32 as they are, or 16-bit codes with their float32 scales (sessions.compact)."""

    values: np.ndarray
    scale: np.ndarray | None = None


@dataclass
class StreamStats:
    """One stream's reductions at one step, one row per block of that stream, and the run's aggregates
    over the steps done so far (so an interrupted session has them too)."""

    median_abs: np.ndarray  # (blocks,)
    peak_abs: np.ndarray  # (blocks,) largest |x|
    mean_run: np.ndarray  # (blocks, channels) mean over steps of mean |x|
    max_run: np.ndarray  # (blocks, channels) max over steps of max |x|
    sun_steps: np.ndarray  # (blocks, channels) steps at which Sun et al.'s rule held
    mean_abs: Packed | None = None  # (blocks, channels); None at a step the profile keeps no channels for
    max_abs: Packed | None = None


@dataclass
class StepRecord:
    """What one denoising step adds to a session (conditional branch only)."""

    step: int
    timestep: float
    stats: dict[str, StreamStats]
    channels: dict[str, np.ndarray]  # channel set ("top", "bottom", "random") -> (image blocks, k) ids
    maps: dict[str, Packed] = field(default_factory=dict)  # set -> (image blocks, k, *grid) maps, at kept steps
    hidden: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # (stream, block) -> (tokens, channels)
    top_frame_mean_abs: np.ndarray | None = None  # video: (image blocks, k, frames), mean |x| per latent frame
