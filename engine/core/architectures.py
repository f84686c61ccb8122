"""The adapter table: per diffusers transformer class, where the blocks are, what they return, how
guidance branches are laid out and how a transformer call tells its token layout.

This is the only place that knows an architecture. Hooks read block outputs through it, so no
model `forward` is ever copied; a tiny-pipeline test per class catches the day diffusers changes.
A class not in the table gets an adapter inferred on its first call (`inference.py`).
"""
from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass
from typing import Callable, Literal

import torch

from ..errors import EngineError
from .tokens import STREAM_OF_ROLE, Tokens, merge_image_stream, plain_tokens, split_image_stream, tokens_from_ids

Grid = tuple[int, ...]  # (h, w) of an image's tokens, (frames, h, w) of a video's, in latent tokens
Streams = dict[str, torch.Tensor]

# Where a transformer's forward takes the denoising time, in the order they are looked up.
TIMESTEP_ARGUMENTS = ("timestep", "timesteps", "t")


@dataclass(frozen=True)
class BlockList:
    """One ModuleList of blocks and where each stream sits in a block's output.

    `attr` is the list's path under the transformer ("mode_blocks.image" for a list in a ModuleDict).
    `image`/`text` index a tuple output. Without `image` the output is one tensor: `joint` names the
    order of a tensor holding both streams ([text; image] is "text_first"), otherwise `holds` says which
    stream the tensor is. The image stream is the generated image's tokens, or the call's whole
    image-token sequence (reference images, padding) laid out by `Tokens`; `generated_only` lists never
    carry more than the generated tokens (FLUX.3 runs reference images through blocks of their own).
    `sequence_first`: tensors are (tokens, batch, channels).
    """

    attr: str
    label: str
    image: int | None = None
    text: int | None = None
    joint: Literal["text_first", "image_first"] | None = None
    holds: Literal["image", "text", "reference"] = "image"
    sequence_first: bool = False
    generated_only: bool = False

    def streams(self) -> tuple[str, ...]:
        """The streams a block of this list returns (reference tokens come with the image stream)."""
        if self.image is not None:
            return ("image", "text") if self.text is not None else ("image",)
        if self.joint:
            return ("image", "text")
        return (self.holds,)


@dataclass(frozen=True)
class Adapter:
    """How to read one transformer class.

    cfg: "batched" pipelines run the guidance branches' rows in one call (the unconditional rows
    first, or the conditional ones with `cond_first`); "sequential" ones call the transformer once
    per branch, cond first; "none" never guide it (Ideogram-4 runs its unconditional branch in
    another module). grid: the key in GRID_READERS of how a call tells its token layout.
    notice: for an adapter inferred at run time, the one line that says what was inferred.
    """

    transformer_class: str
    block_lists: tuple[BlockList, ...]
    cfg: Literal["batched", "sequential", "none"]
    grid: str
    cond_first: bool = False
    notice: str = ""
    pending: bool = False  # block lists found, streams and layout still to infer on the first call

    def blocks(self, transformer: torch.nn.Module) -> list[tuple[str, torch.nn.Module, BlockList]]:
        """(name, module, spec) for every hooked block, in call order."""
        out = []
        for spec in self.block_lists:
            for i, block in enumerate(transformer.get_submodule(spec.attr)):
                out.append((f"{spec.label}.{i}", block, spec))
        return out

    def block_names(self, transformer: torch.nn.Module) -> list[str]:
        return [name for name, _, _ in self.blocks(transformer)]

    def stream_blocks(self, transformer: torch.nn.Module, tokens: Tokens | None = None) -> dict[str, list[str]]:
        """Block names per stream. Given a call's `tokens` with reference images or text slots in its image
        sequence, the image-stream blocks also return those."""
        carried = set() if tokens is None else {STREAM_OF_ROLE[s.role] for s in tokens.segments if s.role != "padding"}
        names: dict[str, list[str]] = {"image": [], "text": [], "reference": []}
        for name, _, spec in self.blocks(transformer):
            streams = set(spec.streams()) | (carried if "image" in spec.streams() and not spec.generated_only else set())
            for stream, blocks in names.items():
                if stream in streams:
                    blocks.append(name)
        return {stream: blocks for stream, blocks in names.items() if blocks}

    def read_tokens(self, transformer: torch.nn.Module, arguments: dict) -> Tokens:
        """The token layout of one transformer call (`call_arguments`): rows, the generated grid, references."""
        try:
            return GRID_READERS[self.grid](transformer, arguments)
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise EngineError(
                f"cannot read the token grid of a {self.transformer_class} call ({type(exc).__name__}: {exc}); "
                "the adapter does not match this diffusers version"
            ) from None


def call_arguments(module: torch.nn.Module, args: tuple, kwargs: dict) -> dict:
    """A module call's arguments by name, defaults included, whether given by position or keyword."""
    bound = _forward_signature(type(module)).bind(module, *args, **kwargs)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    arguments.pop(next(iter(arguments)))  # self
    return arguments


@functools.cache
def _forward_signature(cls: type) -> inspect.Signature:
    return inspect.signature(cls.forward)


def timestep_of(arguments: dict) -> float | None:
    """The call's denoising time (its largest value: image-to-video pipelines give the conditioning frame's
    tokens timestep 0, LTX-Video and Wan 2.2 TI2V), or None when the forward takes none."""
    for name in TIMESTEP_ARGUMENTS:
        if arguments.get(name) is not None:
            return float(torch.as_tensor(arguments[name]).flatten().max())
    return None


# Splitting block outputs into streams --------------------------------------------------------------
def split_output(output, spec: BlockList, tokens: Tokens) -> Streams:
    """The streams of one block output, as views where the layout allows (a plain call stays untouched)."""
    if spec.image is not None:
        streams = split_image_stream(_batch_first(output[spec.image], spec), tokens)
        if spec.text is not None and output[spec.text] is not None:
            streams["text"] = _batch_first(output[spec.text], spec)
        return streams
    x = _batch_first(output, spec)
    if spec.joint:
        n = tokens.length
        if x.shape[1] < n:
            raise EngineError(f"a joint output of {x.shape[1]} tokens cannot hold {n} image tokens")
        text_first = spec.joint == "text_first"
        image, text = (x[:, x.shape[1] - n:], x[:, : x.shape[1] - n]) if text_first else (x[:, :n], x[:, n:])
        streams = split_image_stream(image, tokens)
        if text.shape[1]:
            streams["text"] = text
        return streams
    if spec.holds == "image":
        return split_image_stream(x, tokens)
    return {spec.holds: x}


def merge_output(output, spec: BlockList, tokens: Tokens, streams: Streams):
    """The block output with the streams put back where `split_output` found them."""
    if spec.image is not None:
        parts = list(output)
        parts[spec.image] = _restore(merge_image_stream(_batch_first(output[spec.image], spec), tokens, streams), spec)
        if "text" in streams and spec.text is not None:
            parts[spec.text] = _restore(streams["text"], spec)
        return tuple(parts)
    x = _batch_first(output, spec)
    if spec.joint:
        n = tokens.length
        text_first = spec.joint == "text_first"
        image = x[:, x.shape[1] - n:] if text_first else x[:, :n]
        image = merge_image_stream(image, tokens, streams)
        text = streams.get("text", x[:, : x.shape[1] - n] if text_first else x[:, n:])
        return _restore(torch.cat([text, image] if text_first else [image, text], dim=1), spec)
    if spec.holds == "image":
        return _restore(merge_image_stream(x, tokens, streams), spec)
    return _restore(streams[spec.holds], spec)


def _batch_first(x: torch.Tensor, spec: BlockList) -> torch.Tensor:
    return x.transpose(0, 1) if spec.sequence_first else x


def _restore(x: torch.Tensor, spec: BlockList) -> torch.Tensor:
    return x.transpose(0, 1).contiguous() if spec.sequence_first else x


# Grid readers: how one transformer call tells its token layout --------------------------------------
def _hidden(arguments: dict) -> torch.Tensor:
    """The image input: the forward's first argument (hidden_states, x)."""
    return next(iter(arguments.values()))


def _packed(arguments: dict) -> torch.Tensor:
    """The image input as packed tokens (batch, tokens, channels)."""
    hidden = _hidden(arguments)
    if hidden.ndim != 3:
        raise ValueError(f"expected packed (batch, tokens, channels) latents, got {tuple(hidden.shape)}")
    return hidden


def _patch(transformer) -> tuple[int, int]:
    patch = getattr(transformer.config, "patch_size", 1) or 1
    if isinstance(patch, (list, tuple)):
        return int(patch[-2]), int(patch[-1])
    return int(patch), int(patch)


def _from_latents(transformer, arguments: dict) -> Tokens:
    """Latents (B, C, H, W) patchified inside the transformer (SD3, PixArt, Sana, CogView, Lumina 2 ...)."""
    hidden = _hidden(arguments)
    if hidden.ndim != 4:
        raise ValueError(f"expected (batch, channels, height, width) latents, got {tuple(hidden.shape)}")
    (ph, pw), (h, w) = _patch(transformer), hidden.shape[-2:]
    return plain_tokens(int(hidden.shape[0]), (int(h) // ph, int(w) // pw))


def _from_padded_latents(transformer, arguments: dict) -> Tokens:
    """HiDream-I1 pads the tokens of non-square latents to its `max_seq` (its max_resolution in patches)."""
    max_seq = int(transformer.max_seq)
    tokens, (h, w) = _from_latents(transformer, arguments), _hidden(arguments).shape[-2:]
    return tokens if h == w else tokens.padded_to(max_seq)


def _from_ids(transformer, arguments: dict) -> Tokens:
    """Packed latents with position ids, one row per token (FLUX.1: (ref, h, w); FLUX.2: (t, h, w, l)):
    runs of equal first ids are images, the generated one first (edit pipelines append references).
    FLUX.3 passes its reference images apart, as `image_cond_ids`."""
    hidden = _packed(arguments)
    refs = arguments.get("image_cond_ids")
    return tokens_from_ids(int(hidden.shape[0]), arguments["img_ids"], int(hidden.shape[1]), refs)


def _from_position_ids(transformer, arguments: dict) -> Tokens:
    """Krea 2: one (t, h, w) row per token of [text; image]; the image rows are the last ones."""
    hidden, ids = _packed(arguments), arguments["position_ids"]
    if ids.ndim != 2 or ids.shape[1] != 3:
        raise ValueError(f"expected (tokens, 3) position ids, got {tuple(ids.shape)}")
    return tokens_from_ids(int(hidden.shape[0]), ids[-int(hidden.shape[1]):], int(hidden.shape[1]))


def _from_shapes(transformer, arguments: dict) -> Tokens:
    """Qwen-Image passes img_shapes: per batch row, (frames, h, w) of the generated image, then references."""
    hidden, shapes = _hidden(arguments), arguments["img_shapes"][0]
    shapes = [shapes] if isinstance(shapes[0], int) else shapes  # NucleusMoE: one (frames, h, w) per row
    return Tokens.from_images(int(hidden.shape[0]), [(int(h), int(w)) for _, h, w in shapes], generated=0)


def _from_indicator(transformer, arguments: dict) -> Tokens:
    """Ideogram 4 packs [left padding; text; image] into hidden_states; `indicator` marks the image rows."""
    from diffusers.models.transformers.transformer_ideogram4 import OUTPUT_IMAGE_INDICATOR

    hidden, ids = _hidden(arguments), arguments["position_ids"][0]
    image = (arguments["indicator"][0] == OUTPUT_IMAGE_INDICATOR).nonzero().flatten()
    return tokens_from_ids(int(hidden.shape[0]), ids[image], len(image)).after_text(int(image[0]))


def _from_image_mask(transformer, arguments: dict) -> Tokens:
    """Qwen-Image 2.1 interleaves text and condition images in one sequence, the target image last:
    img_mask marks image slots of 2x2 tokens, img_shapes lists condition images then the target. Steps
    that reuse the cached text and condition keys run the target's tokens only."""
    from diffusers.models.transformers.transformer_qwenimage21 import _IMG_TOKENS_PER_SLOT

    hidden, shapes = _hidden(arguments), [(int(h), int(w)) for _, h, w in arguments["img_shapes"][0]]
    if arguments.get("kv_cache_mode") == "cached":
        return plain_tokens(int(hidden.shape[0]), shapes[-1])
    slots = arguments["img_mask"][0]
    image = torch.repeat_interleave(slots, torch.where(slots, _IMG_TOKENS_PER_SLOT, 1))
    return Tokens.interleaved(int(hidden.shape[0]), image.tolist(), shapes)


def _from_padded_list(transformer, arguments: dict) -> Tokens:
    """Z-Image takes a list of (C, F, H, W) latents and pads each image's tokens to a multiple of 32."""
    from diffusers.models.transformers.transformer_z_image import SEQ_MULTI_OF

    latents, patch = arguments["x"], int(arguments["patch_size"])
    if not isinstance(latents, (list, tuple)) or not isinstance(latents[0], torch.Tensor):
        raise TypeError("Z-Image's omni mode (lists of images per row) is not supported")
    h, w = (int(n) // patch for n in latents[0].shape[-2:])
    return plain_tokens(len(latents), (h, w)).padded_to(SEQ_MULTI_OF)


def _from_latents_and_context(transformer, arguments: dict) -> Tokens:
    """Bria FIBO 2: latents (B, C, H, W), reference images as `context_latents` after them. Prompts of
    different lengths in one call move its gist tokens behind the image: that layout is refused."""
    mask = arguments.get("encoder_attention_mask")
    if mask is not None and len(set(mask.sum(dim=1).tolist())) > 1:
        raise ValueError("prompts of different lengths in one call reorder the gist tokens; record one prompt per call")
    tokens = _from_latents(transformer, arguments)
    ph, pw = _patch(transformer)
    refs = [(int(c.shape[-2]) // ph, int(c.shape[-1]) // pw) for c in arguments["context_latents"] or []]
    return Tokens.from_images(tokens.batch, [tokens.grid, *refs], generated=0)


def _video_tokens(transformer, batch: int, frames: int, h: int, w: int) -> Tokens:
    """A video's (frames, h, w) token grid after the transformer's patches: one tuple (Wan) or `patch_size`
    with `patch_size_t` (None: 1); frames round up, as CogVideoX 1.5 pads them."""
    config = transformer.config
    if isinstance(config.patch_size, (list, tuple)):
        pt, ph, pw = (int(p) for p in config.patch_size)
    else:
        pt, ph, pw = int(getattr(config, "patch_size_t", None) or 1), int(config.patch_size), int(config.patch_size)
    return plain_tokens(batch, (math.ceil(int(frames) / pt), int(h) // ph, int(w) // pw))


def _from_video(transformer, arguments: dict) -> Tokens:
    """Video latents (B, C, F, H, W) patchified inside the transformer (Wan, HunyuanVideo)."""
    hidden = _hidden(arguments)
    if hidden.ndim != 5:
        raise ValueError(f"expected (batch, channels, frames, height, width) latents, got {tuple(hidden.shape)}")
    return _video_tokens(transformer, int(hidden.shape[0]), *hidden.shape[-3:])


def _from_frames_first(transformer, arguments: dict) -> Tokens:
    """Video latents (B, F, C, H, W) patchified inside the transformer (CogVideoX)."""
    hidden = _hidden(arguments)
    if hidden.ndim != 5:
        raise ValueError(f"expected (batch, frames, channels, height, width) latents, got {tuple(hidden.shape)}")
    return _video_tokens(transformer, int(hidden.shape[0]), hidden.shape[1], *hidden.shape[-2:])


def _from_sizes(transformer, arguments: dict) -> Tokens:
    """Packed video latents whose token grid is passed as num_frames, height, width (LTX-Video)."""
    hidden = _packed(arguments)
    return plain_tokens(int(hidden.shape[0]), (int(arguments["num_frames"]), int(arguments["height"]), int(arguments["width"])))


# In the order inference tries them: readers of specific arguments first, plain latents last.
GRID_READERS: dict[str, Callable[[torch.nn.Module, dict], Tokens]] = {
    "ids": _from_ids,
    "indicator": _from_indicator,
    "position_ids": _from_position_ids,
    "image_mask": _from_image_mask,
    "shapes": _from_shapes,
    "padded_list": _from_padded_list,
    "context_latents": _from_latents_and_context,
    "sizes": _from_sizes,
    "video": _from_video,
    "frames_first": _from_frames_first,
    "padded_latents": _from_padded_latents,
    "latents": _from_latents,
}

# The table ----------------------------------------------------------------------------------------
_DOUBLE = BlockList("transformer_blocks", "double", image=1, text=0)
_SINGLE_TUPLE = BlockList("single_transformer_blocks", "single", image=1, text=0)
_SINGLE_JOINT = BlockList("single_transformer_blocks", "single", joint="text_first")
_BLOCKS_IMAGE = BlockList("transformer_blocks", "block")
_JOINT_IMAGE_FIRST = BlockList("transformer_blocks", "joint", image=0, text=1)

ADAPTERS: dict[str, Adapter] = {
    a.transformer_class: a
    for a in (
        Adapter("FluxTransformer2DModel", (_DOUBLE, _SINGLE_TUPLE), "sequential", "ids"),
        Adapter("Flux2Transformer2DModel", (_DOUBLE, _SINGLE_JOINT), "sequential", "ids"),
        Adapter("SD3Transformer2DModel", (BlockList("transformer_blocks", "joint", image=1, text=0),), "batched", "latents"),
        Adapter("PixArtTransformer2DModel", (_BLOCKS_IMAGE,), "batched", "latents"),
        Adapter("SanaTransformer2DModel", (_BLOCKS_IMAGE,), "batched", "latents"),
        Adapter("QwenImageTransformer2DModel", (_DOUBLE,), "sequential", "shapes"),
        Adapter("ChromaTransformer2DModel", (_DOUBLE, _SINGLE_JOINT), "sequential", "ids"),
        Adapter("BriaTransformer2DModel", (_DOUBLE, _SINGLE_TUPLE), "batched", "ids"),
        Adapter("BriaFiboTransformer2DModel", (_DOUBLE, _SINGLE_JOINT), "batched", "ids"),
        Adapter("LongCatImageTransformer2DModel", (_DOUBLE, _SINGLE_TUPLE), "sequential", "ids"),
        Adapter("OvisImageTransformer2DModel", (_DOUBLE, _SINGLE_TUPLE), "sequential", "ids"),
        Adapter(
            "AuraFlowTransformer2DModel",
            (BlockList("joint_transformer_blocks", "joint", image=1, text=0), _SINGLE_JOINT),
            "batched",
            "latents",
        ),
        Adapter("CogView3PlusTransformer2DModel", (_JOINT_IMAGE_FIRST,), "batched", "latents"),
        Adapter("CogView4Transformer2DModel", (_JOINT_IMAGE_FIRST,), "sequential", "latents"),
        Adapter("GlmImageTransformer2DModel", (_JOINT_IMAGE_FIRST,), "sequential", "latents"),
        Adapter(
            "HunyuanImageTransformer2DModel",
            (BlockList("context_embedder.token_refiner.refiner_blocks", "refiner", holds="text"),
             BlockList("transformer_blocks", "double", image=0, text=1),
             BlockList("single_transformer_blocks", "single", image=0, text=1)),
            "sequential",
            "latents",
        ),
        Adapter(
            "HiDreamImageTransformer2DModel",
            (BlockList("double_stream_blocks", "double", image=0, text=1),
             BlockList("single_stream_blocks", "single", joint="image_first")),
            "batched",
            "padded_latents",
        ),
        Adapter(
            "Lumina2Transformer2DModel",
            (BlockList("context_refiner", "context", holds="text"), BlockList("noise_refiner", "noise"),
             BlockList("layers", "layer", joint="text_first")),
            "sequential",
            "latents",
        ),
        Adapter(
            "ZImageTransformer2DModel",
            (BlockList("noise_refiner", "noise"), BlockList("context_refiner", "context", holds="text"),
             BlockList("layers", "layer", joint="image_first")),
            "batched",
            "padded_list",
            cond_first=True,
        ),
        Adapter("Krea2Transformer2DModel", (BlockList("transformer_blocks", "block", joint="text_first"),), "sequential", "position_ids"),
        Adapter(
            "ErnieImageTransformer2DModel",
            (BlockList("layers", "layer", joint="image_first", sequence_first=True),),
            "batched",
            "latents",
        ),
        Adapter("PRXTransformer2DModel", (BlockList("blocks", "block"),), "batched", "latents"),
        Adapter("OmniGenTransformer2DModel", (BlockList("layers", "layer", joint="text_first"),), "batched", "latents", cond_first=True),
        Adapter("NucleusMoEImageTransformer2DModel", (_BLOCKS_IMAGE,), "sequential", "shapes"),
        Adapter("Ideogram4Transformer2DModel", (BlockList("layers", "layer"),), "none", "indicator"),
        Adapter("QwenImage21Transformer2DModel", (_BLOCKS_IMAGE,), "sequential", "image_mask"),
        Adapter(
            "BriaFibo2Transformer2DModel",
            (BlockList("noise_refiner", "noise"), BlockList("perceiver.layers", "perceiver", holds="text"),
             BlockList("layers", "layer", joint="text_first")),
            "sequential",
            "context_latents",
        ),
        Adapter(
            "Flux3Transformer2DModel",
            (BlockList("txt_mode_blocks", "text", holds="text"), BlockList("mode_blocks.image", "image", generated_only=True),
             BlockList("mode_blocks.image_cond", "reference", holds="reference"), _SINGLE_TUPLE),
            "sequential",
            "ids",
        ),
        Adapter("DiTTransformer2DModel", (_BLOCKS_IMAGE,), "batched", "latents", cond_first=True),
        # Video: Wan's and LTX's blocks return the video tokens alone (text enters by cross-attention).
        Adapter("WanTransformer3DModel", (BlockList("blocks", "block"),), "sequential", "video"),
        Adapter("LTXVideoTransformer3DModel", (_BLOCKS_IMAGE,), "batched", "sizes"),
        Adapter(
            "HunyuanVideoTransformer3DModel",
            (BlockList("transformer_blocks", "double", image=0, text=1),
             BlockList("single_transformer_blocks", "single", image=0, text=1)),
            "sequential",
            "video",
        ),
        Adapter("CogVideoXTransformer3DModel", (BlockList("transformer_blocks", "block", image=0, text=1),), "batched", "frames_first"),
    )
}

SUPPORTED = tuple(ADAPTERS)


def adapter_for(transformer: torch.nn.Module) -> Adapter:
    """The table's adapter, or for a class the table lacks, one to be inferred on its first call."""
    name = type(transformer).__name__
    if name in ADAPTERS:
        return ADAPTERS[name]
    from .inference import pending_adapter

    return pending_adapter(transformer)
