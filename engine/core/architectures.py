"""The adapter table: per diffusers transformer class, where the blocks are and what they return.

This is the only place that knows an architecture. Hooks read block outputs through it, so no
model `forward` is ever copied; a tiny-pipeline test per class catches the day diffusers changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..errors import BadRequest, UnsupportedModel


@dataclass(frozen=True)
class BlockList:
    """One ModuleList of blocks and where each stream sits in a block's output.

    `image`/`text` index a tuple output; None for `image` means the output is the image tensor
    itself. `joint` means one tensor holding [text tokens; image tokens] (FLUX.2 single blocks).
    """

    attr: str
    label: str
    image: int | None
    text: int | None = None
    joint: bool = False


@dataclass(frozen=True)
class Adapter:
    """How to read one transformer class.

    cfg: "batched" pipelines run uncond and cond rows in one call (cond = second half);
    "sequential" ones call the transformer once per branch, cond first.
    tokens: "packed" latents are patchified 2x2 by the pipeline (FLUX, Qwen-Image); "patch"
    latents are patchified inside the transformer by `config.patch_size`.
    """

    transformer_class: str
    block_lists: tuple[BlockList, ...]
    cfg: Literal["batched", "sequential"]
    tokens: Literal["packed", "patch"]

    def blocks(self, transformer: torch.nn.Module) -> list[tuple[str, torch.nn.Module, BlockList]]:
        """(name, module, spec) for every hooked block, in call order."""
        out = []
        for spec in self.block_lists:
            for i, block in enumerate(getattr(transformer, spec.attr)):
                out.append((f"{spec.label}.{i}", block, spec))
        return out

    def stream_blocks(self, transformer: torch.nn.Module) -> dict[str, list[str]]:
        """Block names per stream; a block list without a text output has no text rows."""
        names = {"image": [], "text": []}
        for name, _, spec in self.blocks(transformer):
            names["image"].append(name)
            if spec.text is not None or spec.joint:
                names["text"].append(name)
        return {stream: blocks for stream, blocks in names.items() if blocks}

    def token_stride(self, pipe) -> int:
        """Pixels per image token along each axis."""
        if self.tokens == "packed":
            return int(pipe.vae_scale_factor) * 2
        return int(pipe.vae_scale_factor) * int(pipe.transformer.config.patch_size)

    def grid(self, pipe, height: int, width: int) -> tuple[int, int]:
        stride = self.token_stride(pipe)
        if height % stride or width % stride:
            raise BadRequest(f"height and width must be multiples of {stride} for this model (got {height}x{width})")
        return height // stride, width // stride


_FLUX = (
    BlockList("transformer_blocks", "double", image=1, text=0),
    BlockList("single_transformer_blocks", "single", image=1, text=0),
)

ADAPTERS: dict[str, Adapter] = {
    a.transformer_class: a
    for a in (
        Adapter("FluxTransformer2DModel", _FLUX, cfg="sequential", tokens="packed"),
        Adapter(
            "Flux2Transformer2DModel",
            (
                BlockList("transformer_blocks", "double", image=1, text=0),
                BlockList("single_transformer_blocks", "single", image=None, joint=True),
            ),
            cfg="sequential",
            tokens="packed",
        ),
        Adapter(
            "SD3Transformer2DModel",
            (BlockList("transformer_blocks", "joint", image=1, text=0),),
            cfg="batched",
            tokens="patch",
        ),
        Adapter("PixArtTransformer2DModel", (BlockList("transformer_blocks", "block", image=None),), "batched", "patch"),
        Adapter("SanaTransformer2DModel", (BlockList("transformer_blocks", "block", image=None),), "batched", "patch"),
        Adapter(
            "QwenImageTransformer2DModel",
            (BlockList("transformer_blocks", "double", image=1, text=0),),
            cfg="sequential",
            tokens="packed",
        ),
    )
}

SUPPORTED = tuple(ADAPTERS)


def adapter_for(transformer: torch.nn.Module) -> Adapter:
    name = type(transformer).__name__
    if name not in ADAPTERS:
        raise UnsupportedModel(f"transformer class {name} is not supported; supported: {', '.join(SUPPORTED)}")
    return ADAPTERS[name]
