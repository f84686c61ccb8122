"""Loading a diffusers pipeline from a hub id or a local folder, with dtype, device and offload.

The last pipeline loaded is kept, so repeated jobs on one model (the app, a probe sweep) load once.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .core.architectures import adapter_for
from .defaults import DTYPES
from .errors import BadRequest, ModelLoadError

TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class ModelSpec:
    model: str
    dtype: str = "fp32"
    device: str | None = None
    offload: bool = False

    def resolved_device(self) -> str:
        return self.device or ("cuda" if torch.cuda.is_available() else "cpu")


_cache: dict[ModelSpec, object] = {}


def load_pipeline(spec: ModelSpec):
    """DiffusionPipeline.from_pretrained with clear one-line errors; checks the transformer is supported."""
    if spec in _cache:
        return _cache[spec]
    if spec.dtype not in DTYPES:
        raise BadRequest(f"unknown dtype {spec.dtype!r}; use one of {', '.join(DTYPES)}")
    device = spec.resolved_device()
    if spec.offload and not device.startswith("cuda"):
        raise BadRequest("--offload moves weights between CPU and a CUDA device; it needs --device cuda")
    _check_local(spec.model)
    from diffusers import DiffusionPipeline

    try:
        pipe = DiffusionPipeline.from_pretrained(spec.model, dtype=TORCH_DTYPES[spec.dtype])
    except Exception as exc:  # diffusers raises OSError, ValueError, HTTP and JSON errors here
        raise ModelLoadError(f"cannot load model {spec.model!r}: {_first_line(exc)}") from exc
    if not hasattr(pipe, "transformer"):
        raise ModelLoadError(f"{spec.model!r} is a {type(pipe).__name__}, not a diffusion-transformer pipeline")
    adapter_for(pipe.transformer)
    if spec.offload:
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    _cache.clear()
    _cache[spec] = pipe
    return pipe



def model_source(model: str) -> str:
    """A local folder as an absolute path (a session names it so from anywhere), a hub id as it is."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.is_dir() else model


def _check_local(model: str) -> None:
    path = Path(model).expanduser()
    looks_local = path.is_absolute() or model.startswith((".", "~")) or path.exists()
    if looks_local and not path.is_dir():
        raise ModelLoadError(f"no such model folder: {model}")
    if looks_local and not (path / "model_index.json").is_file():
        raise ModelLoadError(f"{model} is not a diffusers pipeline folder (no model_index.json)")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
