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
    """Shapes fixed before the first step: blocks per stream, widths, token grid."""

    blocks: dict[str, list[str]]
    channels: dict[str, int]
    grid: tuple[int, int]
    hidden_blocks: tuple[str, ...] = ()
    hidden_steps: tuple[int, ...] = ()
    control_sets: tuple[str, ...] = ()


@dataclass
class StreamStats:
    """One stream's reductions at one step, one row per block of that stream."""

    mean_abs: np.ndarray  # (blocks, channels)
    max_abs: np.ndarray  # (blocks, channels)
    median_abs: np.ndarray  # (blocks,)


@dataclass
class StepRecord:
    """What one denoising step adds to a session (conditional branch only)."""

    step: int
    timestep: float
    stats: dict[str, StreamStats]
    top_channels: np.ndarray  # (image blocks, k), largest mean |x| first
    top_maps: np.ndarray  # (image blocks, k, h, w)
    hidden: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # (stream, block) -> (tokens, channels)
    control: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # set -> (channels, maps)
