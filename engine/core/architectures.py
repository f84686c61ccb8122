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

Grid = tuple[int, int]


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
        """The (h, w) grid of the generated image's tokens in one transformer call."""
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


GRID_READERS: dict[str, Callable[[torch.nn.Module, tuple, dict], Grid]] = {
    "latents": _grid_from_latents,
    "ids": _grid_from_ids,
    "shapes": _grid_from_shapes,
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
    )
}

SUPPORTED = tuple(ADAPTERS)


def adapter_for(transformer: torch.nn.Module) -> Adapter:
    name = type(transformer).__name__
    if name not in ADAPTERS:
        raise UnsupportedModel(f"transformer class {name} is not supported; supported: {', '.join(SUPPORTED)}")
    return ADAPTERS[name]
