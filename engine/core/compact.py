"""The 16-bit encodings of sessions.compact, computed on the model's device so only 2 bytes a value
cross to the host. sessions.compact holds the formulas' constants and the decoders."""
from __future__ import annotations

import math

import torch

from massivelens.sessions.compact import MAP_LEVELS, STAT_TOP


def encode_maps(maps: torch.Tensor, grid_dims: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Float maps (..., *grid) -> int16 codes and float32 scales (...): x = code * scale."""
    axes = tuple(range(-grid_dims, 0))
    maps = maps.float()
    peak = maps.abs().amax(dim=axes)
    scale = torch.where(peak > 0, peak / MAP_LEVELS, torch.ones_like(peak))
    codes = torch.round(maps / scale.reshape(*scale.shape, *(1,) * grid_dims))
    return codes.to(torch.int16), scale


def encode_stats(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-negative float statistics (..., channels) -> float16 values and float32 power-of-two scales (...)
    that put each row's largest value in [STAT_TOP / 2, STAT_TOP)."""
    values = values.float()
    top = values.nan_to_num(0.0).amax(dim=-1)
    exponent = torch.where(top > 0, torch.floor(torch.log2(top.clamp_min(torch.finfo(torch.float32).tiny))) + 1, torch.zeros_like(top))
    scale = torch.exp2(exponent - math.log2(STAT_TOP))
    return (values / scale[..., None]).to(torch.float16), scale
