"""Forward hooks on every block of a pipeline's transformer, shared by recording and interventions.

One `BlockHooks` context tracks the denoising step and the guidance branch of each transformer
call, splits each block's output into image/text streams through the adapter, hands them to
observers (which may return replacements), checks the cancel token and reports progress. Hooks
are removed on every exit path, so an aborted run leaves the pipeline exactly as it was.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import torch

from ..cancel import CancelToken
from ..errors import EngineError
from ..progress import Progress
from .architectures import Adapter, BlockList

Streams = dict[str, torch.Tensor]


@dataclass(frozen=True)
class BlockCall:
    """Where one block call sits: block name and position, denoising step, and which batch rows
    belong to which guidance branch ("cond", "uncond")."""

    name: str
    position: int
    step: int
    branches: dict[str, slice]


class Observer(Protocol):
    def on_block(self, call: BlockCall, streams: Streams) -> Streams | None:
        """Look at (and optionally replace) the streams of one block call."""

    def on_step_end(self, step: int, timestep: float) -> None:
        """Called once a step's last transformer call has finished."""


class BlockHooks:
    """Context manager that instruments `pipe.transformer` for one pipeline call."""

    def __init__(
        self,
        pipe,
        adapter: Adapter,
        grid: tuple[int, int],
        observers: Sequence[Observer] = (),
        cancel: CancelToken | None = None,
        progress: Callable[[Progress], None] | None = None,
        steps: int = 0,
        images: int = 1,
    ):
        self.pipe = pipe
        self.adapter = adapter
        self.image_tokens = grid[0] * grid[1]
        self.observers = list(observers)
        self.cancel = cancel
        self.progress = progress
        self.steps = steps
        self.images = images
        self.step = -1
        self._call_in_step = 0
        self._last_t: float | None = None
        self._branches: dict[str, slice] = {"cond": slice(None)}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._blocks = adapter.blocks(pipe.transformer)

    # Lifetime ------------------------------------------------------------------------------------
    def __enter__(self) -> "BlockHooks":
        try:
            self._handles.append(
                self.pipe.transformer.register_forward_pre_hook(self._on_transformer, with_kwargs=True)
            )
            for position, (name, block, spec) in enumerate(self._blocks):
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
        value = None if t is None else float(torch.as_tensor(t).flatten()[0])
        if value is None or value != self._last_t:
            if self.step >= 0:
                self._end_step()
            self.step += 1
            self._call_in_step = 0
        else:
            self._call_in_step += 1
        self._last_t = value
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        self._branches = self._branches_for(int(hidden.shape[0]))

    def _branches_for(self, batch: int) -> dict[str, slice]:
        n = self.images
        if self.adapter.cfg == "batched":
            if batch == 2 * n:
                return {"uncond": slice(0, n), "cond": slice(n, 2 * n)}
            return {"cond": slice(0, batch)}
        return {"cond" if self._call_in_step == 0 else "uncond": slice(0, batch)}

    def _end_step(self) -> None:
        timesteps = getattr(self.pipe.scheduler, "timesteps", None)
        t = float(timesteps[self.step]) if timesteps is not None and self.step < len(timesteps) else float("nan")
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
            call = BlockCall(name, position, self.step, self._branches)
            changed = False
            for observer in self.observers:
                replaced = observer.on_block(call, streams)
                if replaced:
                    streams = {**streams, **replaced}
                    changed = True
            return self._merge(output, spec, streams) if changed else None

        return hook

    def _split(self, output, spec: BlockList, name: str) -> Streams:
        if spec.joint:
            streams = {"text": output[:, : -self.image_tokens], "image": output[:, -self.image_tokens :]}
        elif spec.image is None:
            streams = {"image": output}
        else:
            streams = {"image": output[spec.image]}
            if spec.text is not None and output[spec.text] is not None:
                streams["text"] = output[spec.text]
        if streams["image"].shape[1] != self.image_tokens:
            raise EngineError(
                f"block {name} returned {streams['image'].shape[1]} image tokens, expected {self.image_tokens}: "
                f"the adapter for {self.adapter.transformer_class} does not match this diffusers version"
            )
        return streams

    @staticmethod
    def _merge(output, spec: BlockList, streams: Streams):
        if spec.joint:
            return torch.cat([streams["text"], streams["image"]], dim=1)
        if spec.image is None:
            return streams["image"]
        parts = list(output)
        parts[spec.image] = streams["image"]
        if "text" in streams:
            parts[spec.text] = streams["text"]
        return tuple(parts)
