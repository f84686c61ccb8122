"""Forward hooks on every block of a pipeline's transformer, shared by recording and interventions.

One `BlockHooks` context tracks the denoising step and the guidance branch of each transformer
call, reads the token grid off the call itself (so resolution binning, a user's latents or any
size a pipeline picks are seen as the transformer sees them), splits each block's output into
image/text/reference streams through the adapter (inferring it on the first call for a class the
table lacks), hands them to observers (which may return replacements),
checks the cancel token and reports progress. Hooks are removed on every exit path, so an aborted
run leaves the pipeline exactly as it was.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Protocol, Sequence

import torch

from ..cancel import CancelToken
from ..errors import EngineError
from ..progress import Progress
from .architectures import (
    Adapter,
    BlockList,
    Grid,
    Streams,
    adapter_for,
    call_arguments,
    merge_output,
    split_output,
    timestep_of,
)
from .inference import infer_adapter
from .tokens import Tokens


@dataclass(frozen=True)
class BlockCall:
    """Where one block call sits: block name and position, denoising step (of `steps` planned), the
    token grid ((h, w), or (frames, h, w) for a video), and which batch rows belong to which guidance branch ("cond", "uncond"; rows of
    several images are consecutive within a branch)."""

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
    batched guidance branches apart; when unknown, the pipeline's own `do_classifier_free_guidance`
    decides, and otherwise every row counts as conditional (right for interventions on all rows).
    An adapter still `pending` (a class the table lacks) is inferred on the first transformer call,
    before its blocks run.
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
        self.tokens: Tokens | None = None
        self._call_in_step = 0
        self._repeated = False  # a timestep came twice: sequential guidance branches
        self._last_t: float | None = None
        self._branches: dict[str, slice] = {"cond": slice(None)}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._blocks: list[tuple[str, torch.nn.Module, BlockList]] = []

    # Lifetime ------------------------------------------------------------------------------------
    def __enter__(self) -> "BlockHooks":
        try:
            for transformer in transformers(self.pipe):
                self._handles.append(transformer.register_forward_pre_hook(self._on_transformer, with_kwargs=True))
            if not self.adapter.pending:
                self._hook_blocks()
        except BaseException:
            self.remove()
            raise
        return self

    def _hook_blocks(self) -> None:
        self._blocks = self.adapter.blocks(self.pipe.transformer)
        for transformer in transformers(self.pipe):
            for position, (name, block, spec) in enumerate(self.adapter.blocks(transformer)):
                self._handles.append(block.register_forward_pre_hook(self._pre_block(position, name)))
                self._handles.append(block.register_forward_hook(self._post_block(position, name, spec)))

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
        arguments = call_arguments(module, args, kwargs)
        value = timestep_of(arguments)
        if value is None or value != self._last_t:
            if self.step >= 0:
                self._end_step()
            self.step += 1
            self._call_in_step = 0
        else:
            self._call_in_step += 1
            self._repeated = True
        self._last_t = value
        if self.adapter.pending:
            self.adapter = infer_adapter(self.pipe, module, args, kwargs, self.images)
            self._hook_blocks()
        self.tokens = self.adapter.read_tokens(module, arguments)
        self.grid = self.tokens.grid
        self.steps = max(self.steps, planned_steps(self.pipe.scheduler), self.step + 1)
        self._branches = self._branches_for(self.tokens.batch)

    def _branches_for(self, batch: int) -> dict[str, slice]:
        if self.adapter.cfg == "sequential":
            return {"cond" if self._call_in_step == 0 else "uncond": slice(0, batch)}
        groups = self._groups(batch) if self.adapter.cfg == "batched" else 1
        if groups > 1:
            n = batch // groups  # the conditional rows; the others are unconditional (OmniGen: two groups)
            if self.adapter.cond_first:
                return {"cond": slice(0, n), "uncond": slice(n, batch)}
            return {"uncond": slice(0, batch - n), "cond": slice(batch - n, batch)}
        return {"cond": slice(0, batch)}

    def _groups(self, batch: int) -> int:
        """How many guidance branches a batched call holds, each with one row per image."""
        if self.images is not None:
            if batch % self.images or batch // self.images not in (1, 2, 3):
                raise EngineError(
                    f"{self.adapter.transformer_class} was called on {batch} rows for {self.images} image(s): "
                    "cannot tell the guidance branches apart"
                )
            return batch // self.images
        return 2 if getattr(self.pipe, "do_classifier_free_guidance", False) and batch % 2 == 0 else 1

    def _end_step(self) -> None:
        if self.step == 0 and self.adapter.notice and self.adapter.cfg == "sequential" and not self._repeated:
            self.adapter = replace(self.adapter, cfg="none")  # an inferred adapter: one call per step, one branch
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
            try:
                streams = split_output(output, spec, self.tokens)
            except EngineError as exc:
                raise EngineError(
                    f"block {name}: {exc}; the adapter for {self.adapter.transformer_class} does not match this diffusers version"
                ) from None
            call = BlockCall(name, position, self.step, self.steps, self.grid, self._branches)
            changed = False
            for observer in self.observers:
                replaced = observer.on_block(call, streams)
                if replaced:
                    streams = {**streams, **replaced}
                    changed = True
            return merge_output(output, spec, self.tokens, streams) if changed else None

        return hook
