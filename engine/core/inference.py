"""Adapters for transformer classes the table lacks, inferred from their first call.

Before the first call's blocks run, the transformer is run once more on the same inputs with
temporary hooks (one extra forward per pipeline call). What the adapter needs is read off that run:

- blocks: every ModuleList whose items hold an attention module, in the order they are called;
- the token layout: the first grid reader of the table that understands the call's arguments;
- each list's output: a tensor or tuple element with the image stream's token count is the image
  stream, another one the text stream; a longer tensor whose input began or ended with image tokens
  seen earlier in the call is joint ([text; image] or [image; text]);
- guidance: one image per call is sequential (a repeated timestep is the unconditional branch; a
  step without one makes it "none"), several branches in one call are batched, their order read from
  the pipeline's own code.

Anything undecidable is refused with the reason, in one line.
"""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

import torch

from ..errors import UnsupportedModel
from .architectures import GRID_READERS, SUPPORTED, Adapter, BlockList, call_arguments, split_output
from .tokens import Tokens


def candidate_lists(transformer: torch.nn.Module) -> list[str]:
    """Paths of the ModuleLists whose every item holds an attention module (lists inside them excluded)."""
    found: list[str] = []
    for path, module in transformer.named_modules():
        if not isinstance(module, torch.nn.ModuleList) or not len(module):
            continue
        if any(path.startswith(p + ".") for p in found):
            continue
        if all(_has_attention(block) for block in module):
            found.append(path)
    return found


def _has_attention(block: torch.nn.Module) -> bool:
    return any("Attention" in type(m).__name__ or "Attn" in type(m).__name__ for m in block.modules())


def pending_adapter(transformer: torch.nn.Module) -> Adapter:
    """Blocks of a class the table lacks, each list labelled by its path; the rest comes on the first call."""
    name = type(transformer).__name__
    lists = candidate_lists(transformer)
    if not lists:
        raise UnsupportedModel(
            f"transformer class {name} is not in the adapter table and has no ModuleList of attention blocks to hook; "
            f"supported: {', '.join(SUPPORTED)}"
        )
    return Adapter(name, tuple(BlockList(path, path) for path in lists), "batched", "", pending=True)


def infer_adapter(pipe, transformer: torch.nn.Module, args: tuple, kwargs: dict, images: int | None) -> Adapter:
    """The adapter of `transformer`, inferred from one call (its arguments as the pipeline passed them)."""
    name = type(transformer).__name__
    arguments = call_arguments(transformer, args, kwargs)
    grid, tokens = _read_layout(transformer, arguments, name)
    trace = _Trace(tokens, name)
    with trace.hooks(transformer, candidate_lists(transformer)), torch.no_grad():
        transformer.forward(*args, **kwargs)
    lists = trace.block_lists()
    if not any("image" in spec.streams() for spec in lists):
        raise UnsupportedModel(
            f"cannot infer an adapter for {name}: no block returns the {tokens.image_tokens} image tokens "
            f"that its call implies (read by '{grid}')"
        )
    cfg, cond_first, how = _guidance(pipe, tokens.batch, images, name)
    notice = (
        f"adapter inferred for {name}: " + ", ".join(f"{s.attr} -> {_describe(s)}" for s in lists)
        + _not_called(trace) + f"; tokens read by '{grid}' ({tokens.grid[0]} x {tokens.grid[1]}); guidance: {how}"
    )
    return Adapter(name, tuple(lists), cfg, grid, cond_first, notice)


def _read_layout(transformer, arguments: dict, name: str) -> tuple[str, Tokens]:
    for key, reader in GRID_READERS.items():
        try:
            return key, reader(transformer, arguments)
        except (KeyError, IndexError, TypeError, AttributeError, ValueError):
            continue
    raise UnsupportedModel(
        f"cannot infer an adapter for {name}: none of the grid readers ({', '.join(GRID_READERS)}) understands "
        f"its call arguments ({', '.join(arguments)})"
    )


@dataclass
class _Trace:
    """What the extra forward showed: block lists in call order, each list's first output and joint
    input, and image-stream tensors produced before each block (for locating image tokens in joints)."""

    tokens: Tokens
    name: str
    order: list[str] = field(default_factory=list)
    specs: dict[str, BlockList | None] = field(default_factory=dict)
    widths: dict[str, int] = field(default_factory=dict)
    joints: dict[str, str] = field(default_factory=dict)
    image_inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    image_tensors: list[torch.Tensor] = field(default_factory=list)
    uncalled: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def hooks(self, transformer: torch.nn.Module, lists: list[str]) -> "_Handles":
        handles = []
        inside: set[int] = set()
        for path in lists:
            for i, block in enumerate(transformer.get_submodule(path)):
                inside.update(id(m) for m in block.modules())
                if i == 0:
                    handles.append(block.register_forward_pre_hook(self._first_input(path), with_kwargs=True))
                handles.append(block.register_forward_hook(self._output(path, first=i == 0)))
        for module in transformer.modules():
            if id(module) not in inside and module is not transformer:
                handles.append(module.register_forward_hook(self._module_output))
        self.uncalled = list(lists)
        return _Handles(handles)

    def _lengths(self) -> tuple[int, ...]:
        return (self.tokens.image_tokens, self.tokens.length)

    def _batch_first(self, x) -> torch.Tensor | None:
        """x as (batch, tokens, channels), or None when it is no token tensor of this call."""
        if not isinstance(x, torch.Tensor) or x.ndim != 3:
            return None
        if x.shape[0] == self.tokens.batch:
            return x
        return x.transpose(0, 1) if x.shape[1] == self.tokens.batch else None

    def _keep_image(self, x) -> None:
        x = self._batch_first(x)
        if x is not None and x.shape[1] in self._lengths():
            self.image_tensors.append(x)

    def _module_output(self, module, args, output) -> None:
        for x in output if isinstance(output, (tuple, list)) else (output,):
            self._keep_image(x)

    def _first_input(self, path: str):
        def hook(module, args, kwargs):
            if path in self.order:
                return
            self.order.append(path)
            self.uncalled.remove(path)
            for x in (*args, *kwargs.values()):
                x = self._batch_first(x)
                if any(_same(x, image) for image in self.image_tensors):
                    self.image_inputs[path] = x
                place = self._image_place(x)
                if place:
                    self.joints[path] = place

        return hook

    def _image_place(self, x: torch.Tensor | None) -> str | None:
        """Where image tokens seen earlier in the call sit in a longer tensor: "text_first" at its end."""
        if x is None:
            return None
        for image in self.image_tensors:
            n = image.shape[1]
            if x.shape[1] <= n or x.shape[2] != image.shape[2] or x.dtype != image.dtype:
                continue
            if torch.equal(x[:, x.shape[1] - n:], image):
                return "text_first"
            if torch.equal(x[:, :n], image):
                return "image_first"
        return None

    def _output(self, path: str, first: bool):
        def hook(module, args, output):
            if first:
                self.specs[path] = self._block_list(path, output)
            spec = self.specs[path]
            if spec is not None and "image" in spec.streams():  # later lists may take this block's image tokens into a joint input
                self.image_tensors.append(split_output(output, spec, self.tokens)["image"])

        return hook

    def block_lists(self) -> list[BlockList]:
        """The lists that carry this call's token streams, in call order. Lists whose outputs are no token
        tensors of the call, or text at another width than the image stream's (a text encoder's own
        refiner inside the transformer, as Krea 2's text fusion), are left out."""
        image_widths = {self.widths[p] for p, s in self.specs.items() if s is not None and s.holds != "text"}
        out = []
        for path in self.order:
            spec = self.specs.get(path)
            if spec is None or (spec.holds == "text" and not spec.joint and self.widths[path] not in image_widths):
                self.skipped.append(path)
            else:
                out.append(spec)
        return out

    def _block_list(self, path: str, output) -> BlockList | None:
        """How one list's blocks return their streams, from its first block's output."""
        first = output[0] if isinstance(output, (tuple, list)) and output else output
        self.widths[path] = int(first.shape[-1]) if isinstance(first, torch.Tensor) else -1
        if isinstance(output, torch.Tensor):
            return self._tensor_list(path, output)
        if isinstance(output, (tuple, list)):
            return self._tuple_list(path, output, self.name)
        raise UnsupportedModel(f"cannot infer an adapter for {self.name}: block {path}.0 returns a {type(output).__name__}")

    def _tensor_list(self, path: str, output: torch.Tensor) -> BlockList | None:
        x = self._batch_first(output)
        if x is None:
            return None
        first = x is not output
        length = x.shape[1]
        references = sum(s.count for s in self.tokens.of("reference"))
        if length in self._lengths():
            generated_only = length == self.tokens.image_tokens < self.tokens.length
            return BlockList(path, path, sequence_first=first, generated_only=generated_only)
        if path in self.joints and length > self.tokens.image_tokens:
            return BlockList(path, path, joint=self.joints[path], sequence_first=first)
        if references and length == references:
            return BlockList(path, path, holds="reference", sequence_first=first)
        return BlockList(path, path, holds="text", sequence_first=first)

    def _tuple_list(self, path: str, output, name: str) -> BlockList:
        tensors = {i: self._batch_first(x) for i, x in enumerate(output)}
        tensors = {i: x for i, x in tensors.items() if x is not None}
        image = [i for i, x in tensors.items() if x.shape[1] in self._lengths()]
        if len(image) > 1 and path in self.image_inputs:  # text as long as the image: the residual tells
            image = [min(image, key=lambda i: _distance(tensors[i], self.image_inputs[path]))]
        text = [i for i in tensors if i not in image]
        if len(image) != 1 or len(text) > 1:
            raise UnsupportedModel(
                f"cannot infer an adapter for {name}: block {path}.0 returns {len(image)} tensor(s) with the "
                f"{self.tokens.image_tokens} image tokens and {len(text)} other token tensor(s); cannot tell the streams apart"
            )
        first = tensors[image[0]] is not output[image[0]]
        return BlockList(path, path, image=image[0], text=text[0] if text else None, sequence_first=first)


def _same(x: torch.Tensor | None, y: torch.Tensor) -> bool:
    return x is not None and x.shape == y.shape and x.dtype == y.dtype and torch.equal(x, y)


def _distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """How far a block output moved from an input: small along the residual stream that carried it."""
    if x.shape != y.shape:
        return float("inf")
    return float((x.float() - y.float()).norm() / (y.float().norm() + 1e-12))


class _Handles:
    def __init__(self, handles: list):
        self.handles = handles

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()


def _guidance(pipe, batch: int, images: int | None, name: str) -> tuple[str, bool, str]:
    """(cfg, cond_first, how it was decided) from a call's rows and the images the pipeline call makes."""
    groups = 1 if images is None or images == batch else batch // images
    if images is not None and (batch % images or groups not in (1, 2, 3)):
        raise UnsupportedModel(f"cannot infer an adapter for {name}: {batch} rows in a call for {images} image(s)")
    if groups == 1:
        return "sequential", False, "one image per call (a call repeating a step's timestep is the unconditional branch)"
    cond_first = branch_order(type(pipe))
    if cond_first is None:
        raise UnsupportedModel(
            f"cannot infer an adapter for {name}: a call holds {groups} guidance branches and "
            f"{type(pipe).__name__}.__call__ does not show which rows are conditional"
        )
    first = "conditional" if cond_first else "unconditional"
    return "batched", cond_first, f"batched, {first} rows first (read from {type(pipe).__name__}.__call__)"


_SPLIT = re.compile(r"^\s*(\w+)\s*,\s*\w+(?:\s*,\s*\w+)*\s*=\s*[\w.]*(?:chunk|split)\(", re.M)
_HEAD = re.compile(r"^\s*(\w+)\s*=\s*\w+\[\s*:\s*\w+\s*\]", re.M)


def branch_order(pipeline_class: type) -> bool | None:
    """Whether the pipeline's batched guidance puts the conditional rows first, read from the names its
    __call__ gives the first chunk of the prediction (noise_pred_uncond, ... = noise_pred.chunk(2));
    None when no such line names a branch."""
    try:
        source = inspect.getsource(pipeline_class.__call__)
    except (OSError, TypeError):
        return None
    for pattern in (_SPLIT, _HEAD):
        for match in pattern.finditer(source):
            first = match.group(1).lower()
            if "uncond" in first or first.startswith("neg"):
                return False
            if "cond" in first or "text" in first or first.startswith("pos"):
                return True
    return None


def _describe(spec: BlockList) -> str:
    if spec.image is not None:
        parts = {spec.image: "image", **({spec.text: "text"} if spec.text is not None else {})}
        out = "(" + ", ".join(parts[i] for i in sorted(parts)) + ")"
    elif spec.joint:
        out = "[text; image]" if spec.joint == "text_first" else "[image; text]"
    else:
        out = spec.holds if spec.holds == "image" else f"{spec.holds} only"
    return out + (" tokens-first" if spec.sequence_first else "")


def _not_called(trace: _Trace) -> str:
    out = f" (not called, not hooked: {', '.join(trace.uncalled)})" if trace.uncalled else ""
    return out + (f" (no token stream of the model, not hooked: {', '.join(trace.skipped)})" if trace.skipped else "")
