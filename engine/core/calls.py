"""What a pipeline call was and what it returned, in terms a session can keep and a script can replay.

A call is stored as given: JSON-able keyword arguments as they are, array arguments (latents,
embeddings, reference images) as data, the generator as its seed (or its whole state when it had
been used before), and everything else (a user's callback) named with the reason it was not kept.
The pipeline defaults in effect for the arguments not given are stored beside them.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from massivelens.sessions.records import CallInput

from ..errors import BadRequest

JSON_SCALARS = (str, bool, int, float, type(None))


@dataclass
class CallRecord:
    """One pipeline call: `given` holds every argument by name (positional ones too)."""

    given: dict[str, Any]
    defaults: dict[str, Any]
    kwargs: dict[str, Any] = field(default_factory=dict)  # the JSON-able part of `given`
    inputs: dict[str, CallInput] = field(default_factory=dict)
    lists: dict[str, int] = field(default_factory=dict)  # argument -> length, for lists stored as name.0, name.1 ...
    not_stored: dict[str, str] = field(default_factory=dict)
    generator: Any = None  # {"device", "seed", "fresh"}, a list of those, or None

    @classmethod
    def capture(cls, pipe, args: tuple, kwargs: dict) -> "CallRecord":
        """Bind a call to the pipeline's signature and sort its arguments; generator states are read
        now, before the call draws from them."""
        signature = inspect.signature(type(pipe).__call__)
        try:
            bound = signature.bind(pipe, *args, **kwargs)
        except TypeError as exc:
            raise BadRequest(f"{type(pipe).__name__}: {exc}") from None
        given = dict(bound.arguments)
        given.pop(next(iter(signature.parameters)))  # self
        given.update(given.pop("kwargs", {}))
        defaults = {
            name: p.default for name, p in signature.parameters.items()
            if name not in given and p.default is not inspect.Parameter.empty and _json_able(p.default)
        }
        record = cls(given, defaults)
        for name, value in given.items():
            record._keep(name, value)
        return record

    def _keep(self, name: str, value: Any) -> None:
        if name == "generator":
            self.generator = _describe_generators(value, self.inputs)
        elif _json_able(value):
            self.kwargs[name] = _plain(value)
        elif _array_like(value):
            self.inputs[name] = _as_input(value)
        elif isinstance(value, (list, tuple)) and value and all(_array_like(v) for v in value):
            self.lists[name] = len(value)
            for i, item in enumerate(value):
                self.inputs[f"{name}.{i}"] = _as_input(item)
        else:
            self.not_stored[name] = f"a {type(value).__name__}: not reproduced"

    def value(self, name: str, default: Any = None) -> Any:
        """An argument as the pipeline sees it: given, else the signature's default."""
        return self.given.get(name, self.defaults.get(name, default))

    def per_prompt(self) -> int:
        """Images (or videos) per prompt."""
        return int(self.value("num_images_per_prompt", self.value("num_videos_per_prompt", 1)) or 1)

    def images(self) -> int:
        """How many images (or videos) the call makes: prompts (or prompt embeddings) times per prompt."""
        prompt = self.given.get("prompt")
        if isinstance(prompt, (list, tuple)):
            count = len(prompt)
        elif prompt is None and isinstance(self.given.get("prompt_embeds"), torch.Tensor):
            count = int(self.given["prompt_embeds"].shape[0])
        else:
            count = 1
        return count * self.per_prompt()

    def prompt_of(self, image: int) -> tuple[str, str]:
        """The prompt and negative prompt behind one image of the call."""
        per_prompt = self.per_prompt()
        return _pick(self.given.get("prompt"), image // per_prompt), _pick(self.given.get("negative_prompt"), image // per_prompt)

    def seed_of(self, image: int) -> int:
        """The generator seed behind one image (-1: no generator, not reproducible)."""
        g = self.generator
        if isinstance(g, list):
            g = g[image] if image < len(g) else None
        return -1 if g is None else int(g["seed"])

    def describe(self) -> dict:
        """The JSON part of the session's `call` record."""
        return {
            "kwargs": self.kwargs,
            "defaults": self.defaults,
            "generator": self.generator,
            "inputs": sorted({name.split(".")[0] for name in self.inputs} - {"generator"}),
            "lists": self.lists,
            "not_stored": self.not_stored,
        }


def _pick(value: Any, index: int) -> str:
    if isinstance(value, (list, tuple)):
        return str(value[min(index, len(value) - 1)]) if value else ""
    return "" if value is None else str(value)


def _json_able(value: Any) -> bool:
    if isinstance(value, JSON_SCALARS):
        return not isinstance(value, float) or np.isfinite(value)
    if isinstance(value, np.generic):
        return _json_able(value.item())
    if isinstance(value, (list, tuple)):
        return all(_json_able(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_able(v) for k, v in value.items())
    return False


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _array_like(value: Any) -> bool:
    from PIL import Image

    return isinstance(value, (torch.Tensor, np.ndarray, Image.Image))


def _as_input(value: Any) -> CallInput:
    """Arrays as they are; tensors as float32 where numpy lacks their dtype (bfloat16 widens exactly)."""
    from PIL import Image

    if isinstance(value, Image.Image):
        return CallInput(np.asarray(value).copy(), "pil", value.mode)
    if isinstance(value, np.ndarray):
        return CallInput(value, "array")
    tensor = value.detach().cpu()
    dtype = str(tensor.dtype).removeprefix("torch.")
    if tensor.dtype in (torch.bfloat16, torch.float16):
        tensor = tensor.float()
    return CallInput(tensor.numpy(), "tensor", dtype)


def _describe_generators(value: Any, inputs: dict[str, CallInput]) -> Any:
    if isinstance(value, (list, tuple)):
        return [_describe_generator(g, inputs, f"generator.{i}") for i, g in enumerate(value)]
    return _describe_generator(value, inputs, "generator")


def _describe_generator(g: torch.Generator | None, inputs: dict[str, CallInput], name: str) -> dict | None:
    """A generator's device and seed; `fresh` when nothing was drawn from it since it was seeded
    (then `torch.Generator(device).manual_seed(seed)` is the same generator). A used one also keeps
    its state, so a replay can start from exactly there."""
    if g is None:
        return None
    seed = int(g.initial_seed())
    state = g.get_state()
    fresh = bool(torch.equal(state, torch.Generator(device=g.device).manual_seed(seed).get_state()))
    if not fresh:
        inputs[name] = CallInput(state.numpy().copy(), "generator_state")
    return {"device": str(g.device), "seed": seed, "fresh": fresh}


def to_uint8(image: np.ndarray) -> np.ndarray:
    """The conversion diffusers' numpy_to_pil uses, so stored images match plain diffusers output."""
    return (np.asarray(image) * 255).round().astype(np.uint8)


def output_images(output: Any, count: int, output_type: str | None) -> list[np.ndarray | None]:
    """The call's images as uint8 (H, W, 3), or its videos' frames as uint8 (F, H, W, 3), whatever its
    output_type ("pil", "np", "pt") and return_dict; None for each one when the call returned latents."""
    items = output[0] if isinstance(output, tuple) else getattr(output, "images", getattr(output, "frames", None))
    if items is None or output_type == "latent":
        return [None] * count
    if isinstance(items, torch.Tensor):  # (B, C, H, W) images or (B, F, C, H, W) videos
        items = items.detach().float().cpu().movedim(-3, -1).numpy()
    out = [_uint8(item) for item in list(items)[:count]]
    return out + [None] * (count - len(out))


def _uint8(item: Any) -> np.ndarray:
    """One image or one video (an array, a PIL image, or a list of PIL frames) as uint8."""
    if isinstance(item, np.ndarray):
        return to_uint8(item)
    if isinstance(item, (list, tuple)):
        return np.stack([_uint8(frame) for frame in item])
    return np.asarray(item.convert("RGB")).copy()
