"""The adapter table: per diffusers transformer class, where the blocks are, what they return, how
guidance branches are laid out and where the token grid is read.

This is the only place that knows an architecture. Hooks read block outputs through it, so no
model `forward` is ever copied; a tiny-pipeline test per class catches the day diffusers changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch

from ..errors import EngineError, UnsupportedModel

Grid = tuple[int, ...]  # (h, w) of an image's tokens, (frames, h, w) of a video's, in latent tokens


@dataclass(frozen=True)
class BlockList:
    """One ModuleList of blocks and where each stream sits in a block's output.

    `image`/`text` index a tuple output; None for `image` means the output is the image tensor
    itself. `joint` names the order of one tensor holding both streams (FLUX.2 single blocks:
    "text_first", [text tokens; image tokens]).
    """

    attr: str
    label: str
    image: int | None
    text: int | None = None
    joint: Literal["text_first", "image_first"] | None = None


@dataclass(frozen=True)
class Adapter:
    """How to read one transformer class.

    cfg: "batched" pipelines run the uncond and cond rows in one call (cond = second half);
    "sequential" ones call the transformer once per branch, cond first; "none" never guide.
    grid: the key in GRID_READERS of how a transformer call tells its image-token grid.
    """

    transformer_class: str
    block_lists: tuple[BlockList, ...]
    cfg: Literal["batched", "sequential", "none"]
    grid: str

    def blocks(self, transformer: torch.nn.Module) -> list[tuple[str, torch.nn.Module, BlockList]]:
        """(name, module, spec) for every hooked block, in call order."""
        out = []
        for spec in self.block_lists:
            for i, block in enumerate(getattr(transformer, spec.attr)):
                out.append((f"{spec.label}.{i}", block, spec))
        return out

    def block_names(self, transformer: torch.nn.Module) -> list[str]:
        return [name for name, _, _ in self.blocks(transformer)]

    def stream_blocks(self, transformer: torch.nn.Module) -> dict[str, list[str]]:
        """Block names per stream; a block list without a text output has no text rows."""
        names: dict[str, list[str]] = {"image": [], "text": []}
        for name, _, spec in self.blocks(transformer):
            names["image"].append(name)
            if spec.text is not None or spec.joint:
                names["text"].append(name)
        return {stream: blocks for stream, blocks in names.items() if blocks}

    def read_grid(self, transformer: torch.nn.Module, args: tuple, kwargs: dict) -> Grid:
        """The token grid of the generated image, (h, w), or video, (frames, h, w), in one transformer call."""
        try:
            return GRID_READERS[self.grid](transformer, args, kwargs)
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise EngineError(
                f"cannot read the token grid of a {self.transformer_class} call ({type(exc).__name__}: {exc}); "
                "the adapter does not match this diffusers version"
            ) from None


def _hidden_states(args: tuple, kwargs: dict) -> torch.Tensor:
    return kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]


def _grid_from_latents(transformer, args: tuple, kwargs: dict) -> Grid:
    """Latents (B, C, H, W) patchified inside the transformer (SD3, PixArt, Sana)."""
    h, w = _hidden_states(args, kwargs).shape[-2:]
    patch = int(getattr(transformer.config, "patch_size", 1) or 1)
    return int(h) // patch, int(w) // patch


def _grid_from_ids(transformer, args: tuple, kwargs: dict) -> Grid:
    """Packed latents with position ids (FLUX.1: (tokens, 3) = (ref, h, w); FLUX.2: (B, tokens, 4) =
    (t, h, w, l)). Reference-image tokens (edit pipelines) carry a non-zero first id; they are not the grid."""
    ids = kwargs["img_ids"]
    ids = ids[0] if ids.ndim == 3 else ids
    own = ids[ids[:, 0] == 0]
    return int(own[:, 1].max()) + 1, int(own[:, 2].max()) + 1


def _grid_from_shapes(transformer, args: tuple, kwargs: dict) -> Grid:
    """Qwen-Image passes img_shapes: per batch row, (frames, h, w) of the generated image first."""
    _, h, w = kwargs["img_shapes"][0][0]
    return int(h), int(w)


def _patch_sizes(transformer) -> tuple[int, int, int]:
    """(frames, h, w) patch sizes: one tuple (Wan) or `patch_size` with `patch_size_t` (None: 1)."""
    config = transformer.config
    if isinstance(config.patch_size, (tuple, list)):
        return tuple(int(p) for p in config.patch_size)
    return int(getattr(config, "patch_size_t", None) or 1), int(config.patch_size), int(config.patch_size)


def _video_grid(frames: int, h: int, w: int, transformer) -> Grid:
    pt, ph, pw = _patch_sizes(transformer)
    return -(-int(frames) // pt), int(h) // ph, int(w) // pw  # frames rounded up, as CogVideoX 1.5 patchifies


def _grid_from_video(transformer, args: tuple, kwargs: dict) -> Grid:
    """Video latents (B, C, F, H, W) patchified inside the transformer (Wan, HunyuanVideo)."""
    f, h, w = _hidden_states(args, kwargs).shape[-3:]
    return _video_grid(f, h, w, transformer)


def _grid_from_frames_first(transformer, args: tuple, kwargs: dict) -> Grid:
    """Video latents (B, F, C, H, W) patchified inside the transformer (CogVideoX)."""
    shape = _hidden_states(args, kwargs).shape
    return _video_grid(shape[1], shape[3], shape[4], transformer)


def _grid_from_sizes(transformer, args: tuple, kwargs: dict) -> Grid:
    """Packed video latents with the token grid passed as num_frames, height, width (LTX-Video)."""
    return int(kwargs["num_frames"]), int(kwargs["height"]), int(kwargs["width"])


GRID_READERS: dict[str, Callable[[torch.nn.Module, tuple, dict], Grid]] = {
    "latents": _grid_from_latents,
    "ids": _grid_from_ids,
    "shapes": _grid_from_shapes,
    "video": _grid_from_video,
    "frames_first": _grid_from_frames_first,
    "sizes": _grid_from_sizes,
}

_FLUX = (
    BlockList("transformer_blocks", "double", image=1, text=0),
    BlockList("single_transformer_blocks", "single", image=1, text=0),
)

ADAPTERS: dict[str, Adapter] = {
    a.transformer_class: a
    for a in (
        Adapter("FluxTransformer2DModel", _FLUX, cfg="sequential", grid="ids"),
        Adapter(
            "Flux2Transformer2DModel",
            (
                BlockList("transformer_blocks", "double", image=1, text=0),
                BlockList("single_transformer_blocks", "single", image=None, joint="text_first"),
            ),
            cfg="sequential",
            grid="ids",
        ),
        Adapter("SD3Transformer2DModel", (BlockList("transformer_blocks", "joint", image=1, text=0),), "batched", "latents"),
        Adapter("PixArtTransformer2DModel", (BlockList("transformer_blocks", "block", image=None),), "batched", "latents"),
        Adapter("SanaTransformer2DModel", (BlockList("transformer_blocks", "block", image=None),), "batched", "latents"),
        Adapter("QwenImageTransformer2DModel", (BlockList("transformer_blocks", "double", image=1, text=0),), "sequential", "shapes"),
        # Video: Wan's and LTX's blocks return the video tokens alone (text enters by cross-attention).
        Adapter("WanTransformer3DModel", (BlockList("blocks", "block", image=None),), "sequential", "video"),
        Adapter("LTXVideoTransformer3DModel", (BlockList("transformer_blocks", "block", image=None),), "batched", "sizes"),
        Adapter(
            "HunyuanVideoTransformer3DModel",
            (
                BlockList("transformer_blocks", "double", image=0, text=1),
                BlockList("single_transformer_blocks", "single", image=0, text=1),
            ),
            cfg="sequential",
            grid="video",
        ),
        Adapter("CogVideoXTransformer3DModel", (BlockList("transformer_blocks", "block", image=0, text=1),), "batched", "frames_first"),
    )
}

SUPPORTED = tuple(ADAPTERS)


def adapter_for(transformer: torch.nn.Module) -> Adapter:
    name = type(transformer).__name__
    if name not in ADAPTERS:
        raise UnsupportedModel(f"transformer class {name} is not supported; supported: {', '.join(SUPPORTED)}")
    return ADAPTERS[name]
