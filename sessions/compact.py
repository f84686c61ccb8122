"""16-bit storage that keeps the range: how sessions store token maps and statistics, and how to read them.

Token maps: int16 with a float32 scale per map, x = q * scale, scale = max|x| / 32767; every value is
within scale / 2 = max|x| / 65534 of the exact one, whatever the magnitude (1e8 as well as 1e-3).
Statistics (mean |x|, max |x| per channel): float16 with a float32 power-of-two scale per (step, block)
row, x = h * scale, chosen so the row's largest value lands in [2^14, 2^15): every value keeps float16's
relative precision (2^-11) down to 2^-28 of the row's largest, and none overflows float16 (Qwen-Image
reaches ~2e7). The encoders (engine.core.compact) run on the model's device; these decoders are what
plain h5py readers apply, as SCHEMA.md says.
"""
from __future__ import annotations

import numpy as np

MAP_LEVELS = 32767  # int16 codes span [-MAP_LEVELS, MAP_LEVELS]
STAT_TOP = 2.0**15  # a row's largest statistic is scaled into [STAT_TOP / 2, STAT_TOP)
SCALE_SUFFIX = "_scale"  # <dataset>_scale holds the float32 scales of <dataset>


def decode_maps(codes: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """int16 maps (..., *grid) and their scales (...) -> float32 maps."""
    scale = np.asarray(scale, np.float32)
    return codes.astype(np.float32) * scale.reshape(scale.shape + (1,) * (codes.ndim - scale.ndim))


def decode_stats(values: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """float16 statistics (..., channels) and their row scales (...) -> float32."""
    return values.astype(np.float32) * np.asarray(scale, np.float32)[..., None]


def encode_maps(maps: np.ndarray, grid_dims: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The numpy twin of engine.core.compact.encode_maps (tests and synthetic sessions)."""
    axes = tuple(range(-grid_dims, 0))
    peak = np.abs(maps).max(axis=axes)
    scale = np.where(peak > 0, peak / MAP_LEVELS, 1.0).astype(np.float32)
    return np.round(maps / np.expand_dims(scale, axes)).astype(np.int16), scale


def encode_stats(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The numpy twin of engine.core.compact.encode_stats."""
    top = np.nanmax(np.abs(values), axis=-1, initial=0.0)
    exponent = np.where(top > 0, np.floor(np.log2(np.where(top > 0, top, 1.0))) + 1 - np.log2(STAT_TOP), 0.0)
    scale = np.exp2(exponent).astype(np.float32)
    return (values / scale[..., None]).astype(np.float16), scale
