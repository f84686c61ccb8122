"""Facts about a pipeline object as the user built it: widths, dtype, guidance argument, offload, LoRA,
quantization. Sessions store them so a reader knows what was recorded and a replay can rebuild it."""
from __future__ import annotations

import functools
import importlib.metadata
import inspect

import torch

DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def transformer_width(transformer) -> int:
    config = transformer.config
    return int(config.num_attention_heads * config.attention_head_dim)


def dtype_name(dtype: torch.dtype) -> str:
    return DTYPE_NAMES.get(dtype, str(dtype).removeprefix("torch."))


def guidance_argument(pipe, cfg: str) -> str:
    """The call argument that sets classifier-free guidance: `true_cfg_scale` on pipelines that call the
    transformer once per branch and accept it (unless the transformer is guidance-distilled, where
    `guidance_scale` is the embedded guidance), else `guidance_scale`."""
    params = inspect.signature(pipe.__call__).parameters
    distilled = bool(getattr(pipe.transformer.config, "guidance_embeds", False))
    if cfg == "sequential" and "true_cfg_scale" in params and not distilled:
        return "true_cfg_scale"
    return "guidance_scale"


def execution_device(pipe) -> str:
    return str(getattr(pipe, "_execution_device", None) or pipe.device)


def setup(pipe) -> dict:
    """How the pipeline object differs from a plain `from_pretrained(...).to(device)`."""
    source = getattr(pipe, "name_or_path", None)  # a Path when the user loaded from one
    info = {
        "class": type(pipe).__name__,
        "name_or_path": None if source is None else str(source),
        "dtype": dtype_name(pipe.transformer.dtype),
        "device": execution_device(pipe),
        "offload": "model" if getattr(pipe, "_all_hooks", None) else None,
        "scheduler_class": type(pipe.scheduler).__name__,
        "cpu_threads": torch.get_num_threads(),  # CPU sums are bit-identical only at the same thread count
    }
    if hasattr(pipe, "get_list_adapters"):
        try:
            info["lora_adapters"] = {k: list(v) for k, v in pipe.get_list_adapters().items()}
        except (ValueError, AttributeError):  # no PEFT backend: no adapters
            info["lora_adapters"] = {}
    weight_types = sorted({type(p.data).__name__ for p in pipe.transformer.parameters()} - {"Tensor"})
    if weight_types or getattr(pipe.transformer.config, "quantization_config", None):
        info["quantized_weights"] = weight_types or ["quantization_config"]
    return info


@functools.cache
def library_versions() -> dict[str, str]:
    """Looked up once per process: package metadata scans cost milliseconds per call in a batch."""
    out = {}
    for name in ("massivelens", "torch", "diffusers", "transformers", "accelerate", "peft", "h5py", "numpy"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
