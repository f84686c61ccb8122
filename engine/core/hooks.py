"""Forward hooks on every block of a pipeline's transformer, shared by recording and interventions.

One `BlockHooks` context tracks the denoising step and the guidance branch of each transformer
call, reads the token grid off the call itself (so resolution binning, a user's latents or any
size a pipeline picks are seen as the transformer sees them), splits each block's output into
image/text streams through the adapter, hands them to observers (which may return replacements),
checks the cancel token and reports progress. Hooks are removed on every exit path, so an aborted
run leaves the pipeline exactly as it was.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import torch

from ..cancel import CancelToken
from ..errors import EngineError
from ..progress import Progress
from .architectures import Adapter, BlockList, Grid, adapter_for

Streams = dict[str, torch.Tensor]


@dataclass(frozen=True)
class BlockCall:
    """Where one block call sits: block name and position, denoising step (of `steps` planned), the
    token grid ((h, w), or (frames, h, w) for a video), and which batch rows belong to which guidance
    branch ("cond", "uncond"; rows of several images are consecutive within a branch)."""

    name: str
    position: int
    step: int
    steps: int
    grid: Grid
    branches: dict[str, slice]


class Observer(Protocol):
    def on_block(self, call: BlockCall, streams: Streams) -> Streams | None:
        """Look at (and optionally replace) the streams of one block call."""

    def on_step_end(self, step: int, timestep: float) -> None:
        """Called once a step's last transformer call has finished."""


def planned_steps(scheduler) -> int:
    """Transformer timesteps the scheduler is set up for, from the one it starts at (img2img skips some)."""
    timesteps = getattr(scheduler, "timesteps", None)
    if timesteps is None:
        return 0
    return max(0, len(timesteps) - _begin(scheduler))


def _begin(scheduler) -> int:
    return int(getattr(scheduler, "begin_index", None) or 0)


def transformers(pipe) -> list[torch.nn.Module]:
    """The pipeline's denoising transformers: `transformer`, and Wan 2.2's low-noise expert `transformer_2`
    (it runs the steps below the pipeline's boundary, with the same block names)."""
    second = getattr(pipe, "transformer_2", None)
    return [pipe.transformer] if second is None else [pipe.transformer, second]


class BlockHooks:
    """Context manager that instruments the pipeline's transformer(s) for the pipeline calls made inside it.

    `images` is how many images the call makes (prompts x images per prompt), which tells the
    batched guidance halves apart; when unknown, the pipeline's own `do_classifier_free_guidance`
    decides, and otherwise every row counts as conditional (right for interventions on all rows).
    """

    def __init__(
        self,
        pipe,
        observers: Sequence[Observer] = (),
        cancel: CancelToken | None = None,
        progress: Callable[[Progress], None] | None = None,
        images: int | None = None,
        adapter: Adapter | None = None,
    ):
        self.pipe = pipe
        self.adapter = adapter or adapter_for(pipe.transformer)
        self.observers = list(observers)
        self.cancel = cancel
        self.progress = progress
        self.images = images
        self.step = -1
        self.steps = 0
        self.grid: Grid | None = None
        self._call_in_step = 0
        self._last_t: float | None = None
        self._branches: dict[str, slice] = {"cond": slice(None)}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._transformers = transformers(pipe)
        self._blocks = self.adapter.blocks(pipe.transformer)

    # Lifetime ------------------------------------------------------------------------------------
    def __enter__(self) -> "BlockHooks":
        try:
            for transformer in self._transformers:
                self._handles.append(transformer.register_forward_pre_hook(self._on_transformer, with_kwargs=True))
                for position, (name, block, spec) in enumerate(self.adapter.blocks(transformer)):
                    self._handles.append(block.register_forward_pre_hook(self._pre_block(position, name)))
                    self._handles.append(block.register_forward_hook(self._post_block(position, name, spec)))
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.remove()
        if exc_type is None and self.step >= 0:
            self._end_step()

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    # Step and branch tracking ------------------------------------------------------------------
    def _on_transformer(self, module, args, kwargs) -> None:
        t = kwargs.get("timestep")
        # The largest: image-to-video pipelines give the conditioning frame's tokens timestep 0 (LTX, Wan 2.2 TI2V).
        value = None if t is None else float(torch.as_tensor(t).flatten().max())
        if value is None or value != self._last_t:
            if self.step >= 0:
                self._end_step()
            self.step += 1
            self._call_in_step = 0
        else:
            self._call_in_step += 1
        self._last_t = value
        self.grid = self.adapter.read_grid(module, args, kwargs)
        self.steps = max(self.steps, planned_steps(self.pipe.scheduler), self.step + 1)
        hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        self._branches = self._branches_for(int(hidden.shape[0]))

    def _branches_for(self, batch: int) -> dict[str, slice]:
        if self.adapter.cfg == "sequential":
            return {"cond" if self._call_in_step == 0 else "uncond": slice(0, batch)}
        if self.adapter.cfg == "batched" and self._guided(batch):
            half = batch // 2
            return {"uncond": slice(0, half), "cond": slice(half, batch)}
        return {"cond": slice(0, batch)}

    def _guided(self, batch: int) -> bool:
        """Whether a batched call holds both guidance halves."""
        if self.images is not None:
            if batch not in (self.images, 2 * self.images):
                raise EngineError(
                    f"{self.adapter.transformer_class} was called on {batch} rows for {self.images} image(s): "
                    "cannot tell the guidance branches apart"
                )
            return batch == 2 * self.images
        return bool(getattr(self.pipe, "do_classifier_free_guidance", False)) and batch % 2 == 0

    def _end_step(self) -> None:
        timesteps = getattr(self.pipe.scheduler, "timesteps", None)
        index = self.step + _begin(self.pipe.scheduler)
        t = float(timesteps[index]) if timesteps is not None and index < len(timesteps) else float("nan")
        for observer in self.observers:
            observer.on_step_end(self.step, t)

    # Block hooks -------------------------------------------------------------------------------
    def _pre_block(self, position: int, name: str):
        def hook(module, args):
            if self.cancel is not None:
                self.cancel.check()
            if self.progress is not None and "cond" in self._branches:
                self.progress(Progress(self.step, self.steps, position, len(self._blocks), name))

        return hook

    def _post_block(self, position: int, name: str, spec: BlockList):
        def hook(module, args, output):
            streams = self._split(output, spec, name)
            call = BlockCall(name, position, self.step, self.steps, self.grid, self._branches)
            changed = False
            for observer in self.observers:
                replaced = observer.on_block(call, streams)
                if replaced:
                    streams = {**streams, **replaced}
                    changed = True
            return self._merge(output, spec, streams) if changed else None

        return hook

    def _split(self, output, spec: BlockList, name: str) -> Streams:
        tokens = math.prod(self.grid)
        if spec.joint == "text_first":
            streams = {"text": output[:, :-tokens], "image": output[:, -tokens:]}
        elif spec.joint == "image_first":
            streams = {"image": output[:, :tokens], "text": output[:, tokens:]}
        elif spec.image is None:
            streams = {"image": output}
        else:
            streams = {"image": output[spec.image]}
            if spec.text is not None and output[spec.text] is not None:
                streams["text"] = output[spec.text]
        if streams["image"].shape[1] != tokens:
            raise EngineError(
                f"block {name} returned {streams['image'].shape[1]} image tokens, expected {tokens}: "
                f"the adapter for {self.adapter.transformer_class} does not match this diffusers version"
            )
        return streams

    @staticmethod
    def _merge(output, spec: BlockList, streams: Streams):
        if spec.joint == "text_first":
            return torch.cat([streams["text"], streams["image"]], dim=1)
        if spec.joint == "image_first":
            return torch.cat([streams["image"], streams["text"]], dim=1)
        if spec.image is None:
            return streams["image"]
        parts = list(output)
        parts[spec.image] = streams["image"]
        if "text" in streams:
            parts[spec.text] = streams["text"]
        return tuple(parts)
