"""The Python API on a user's own pipeline object: record a call, zero channels. The CLI, the app's
worker and the probe, transport and batch jobs run on these same functions.

Hooks go on for the duration of a call or a `with` block and come off on every exit, so the pipeline
object is left exactly as it was; recording only reads block outputs, so the call returns
bit-for-bit what it returns without MassiveLens.
"""
from __future__ import annotations

import functools
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from massivelens.sessions.records import Layout, RunInfo
from massivelens.sessions.schema import CONTROL_SETS, PROFILES, RANDOM_DRAWS
from massivelens.sessions.writer import DiskFull, SessionWriter

from . import defaults
from .cancel import CancelToken
from .core import pipeline_info
from .core.architectures import Adapter, adapter_for
from .core.calls import CallRecord, output_images
from .core.hooks import BlockCall, BlockHooks, Observer, Streams
from .core.interventions import Intervention
from .core.recording import Recorder, random_seed
from .errors import BadRequest, EngineError, SessionWriteFailed
from .progress import Progress


class RecordingError(EngineError):
    """A recording block used the wrong way (a second call inside it)."""


def session_paths(out: str | Path, images: int) -> list[Path]:
    """One session per image: `out` itself for one image, `out-0.h5`, `out-1.h5` ... for several."""
    out = Path(out)
    if images == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i}{out.suffix}") for i in range(images)]


class Recording:
    """Records the one pipeline call made while it is active (see `recording`)."""

    def __init__(
        self,
        pipe,
        out: str | Path,
        *,
        k: int = defaults.K,
        controls: Sequence[str] = (),
        random_draws: int = RANDOM_DRAWS,
        hidden_blocks: Sequence[str] = (),
        hidden_steps: Sequence[int] | None = None,
        profile: str = defaults.PROFILE,
        map_steps: Sequence[int] | None = None,
        overwrite: bool = False,
        observers: Sequence[Observer] = (),
        progress: Callable[[Progress], None] | None = None,
        cancel: CancelToken | None = None,
        kind: str = "record",
        extra: dict | None = None,
        model: str | None = None,
        notes: Sequence[str] = (),
    ):
        self.pipe, self.out = pipe, Path(out)
        self.adapter: Adapter = adapter_for(pipe.transformer)
        self.k, self.controls, self.random_draws = int(k), tuple(controls), int(random_draws)
        self.hidden_blocks = tuple(hidden_blocks)
        self.hidden_steps = None if hidden_steps is None else tuple(hidden_steps)
        self.profile, self.map_steps = profile, None if map_steps is None else tuple(map_steps)
        self.overwrite, self.observers = overwrite, list(observers)
        self.progress, self.cancel = progress, cancel
        self.kind, self.extra, self.model, self.notes = kind, dict(extra or {}), model, list(notes)
        self.paths: list[Path] = []
        self.calls = 0
        self._validate()

    def _validate(self) -> None:
        if self.k < 1:
            raise BadRequest(f"k must be at least 1, got {self.k}")
        if self.random_draws < 1:
            raise BadRequest(f"the random control needs at least one draw, got {self.random_draws}")
        if self.profile not in PROFILES:
            raise BadRequest(f"unknown profile {self.profile!r}; use {', '.join(PROFILES)}")
        if self.map_steps is not None and self.profile != "lean":
            raise BadRequest(f"map steps choose what a lean session keeps; the {self.profile} profile keeps every step")
        unknown = set(self.controls) - set(CONTROL_SETS)
        if unknown:
            raise BadRequest(f"unknown control set(s) {', '.join(sorted(unknown))}; use {', '.join(CONTROL_SETS)}")
        names = self.adapter.block_names(self.pipe.transformer)
        unknown = sorted(set(self.hidden_blocks) - set(names))
        if unknown:
            raise BadRequest(f"unknown block(s) {', '.join(unknown)}; blocks are {names[0]} ... {names[-1]}")

    def __enter__(self) -> "Recording":
        self._restore = _intercept(self.pipe, self._call)
        return self

    def __exit__(self, *exc) -> None:
        self._restore()

    def _call(self, call: Callable, args: tuple, kwargs: dict) -> Any:
        if self.calls:
            raise RecordingError("this recording block already recorded one pipeline call; open a new one for the next call")
        self.calls += 1
        record = CallRecord.capture(self.pipe, args, kwargs)
        paths = session_paths(self.out, record.images())
        existing = [str(p) for p in paths if p.exists()]
        if existing and not self.overwrite:
            raise FileExistsError(f"{existing[0]} exists; choose another name or allow overwriting")
        seeds = [random_seed(record.prompt_of(i)[0], record.seed_of(i)) for i in range(record.images())]
        recorder = Recorder(functools.partial(self._open, record, paths), self.k, self.controls, seeds)
        hooks = self._hooks = BlockHooks(self.pipe, [*self.observers, recorder], self.cancel, self.progress, record.images(), self.adapter)
        try:
            with hooks:
                output = call(self.pipe, *args, **kwargs)
        except BaseException:
            recorder.close()
            raise
        recorder.finish(output_images(output, len(recorder.writers), record.value("output_type")))
        self.adapter = hooks.adapter  # as inferred and settled over the call, for a class the table lacks
        self.paths = [writer.path for writer in recorder.writers]
        return output

    def _open(self, record: CallRecord, paths: list[Path], call: BlockCall, streams: Streams, images: int) -> tuple[list[SessionWriter], Layout]:
        transformer, tokens = self.pipe.transformer, self._hooks.tokens
        self.adapter = self._hooks.adapter  # inferred on this call's first transformer call, for a class the table lacks
        blocks = self.adapter.stream_blocks(transformer, tokens)
        width = int(next(iter(streams.values())).shape[-1])  # the streams of a transformer share its width
        layout = Layout(
            blocks=blocks,
            channels={stream: int(streams[stream].shape[-1]) if stream in streams else width for stream in blocks},
            grid=call.grid,
            hidden_blocks=self.hidden_blocks,
            hidden_steps=tuple(range(call.steps)) if self.hidden_steps is None else self.hidden_steps,
            control_sets=self.controls,
            random_draws=self.random_draws,
            profile=self.profile,
            kept_steps=kept_steps(self.profile, self.map_steps, call.steps),
        )
        setup = pipeline_info.setup(self.pipe)
        writers = []
        try:
            for i in range(images):
                info = self._info(record, call, layout, setup, i, images, tokens.describe())
                writers.append(SessionWriter(paths[i], info, layout, overwrite=self.overwrite))
        except BaseException as exc:
            for writer in writers:
                writer.close()
            if isinstance(exc, DiskFull):
                raise SessionWriteFailed(str(exc)) from None
            raise
        return writers, layout

    def _info(self, record: CallRecord, call: BlockCall, layout: Layout, setup: dict, image: int, images: int,
              tokens: dict) -> RunInfo:
        pipe = self.pipe
        prompt, negative = record.prompt_of(image)
        guidance = record.value(pipeline_info.guidance_argument(pipe, self.adapter.cfg))
        return RunInfo(
            model=self.model or setup["name_or_path"] or "(a pipeline built in memory)",
            pipeline_class=type(pipe).__name__,
            transformer_class=type(pipe.transformer).__name__,
            dtype=setup["dtype"],
            device=setup["device"],
            prompt=prompt,
            negative_prompt=negative,
            seed=record.seed_of(image),
            steps=call.steps,
            guidance=float("nan") if guidance is None else float(guidance),
            height=int(record.value("height") or 0),
            width=int(record.value("width") or 0),
            k=min(self.k, layout.channels["image"]),
            scheduler=type(pipe.scheduler).__name__,
            kind=self.kind,
            transformer_config=dict(pipe.transformer.config),
            scheduler_config=dict(pipe.scheduler.config),
            versions=dict(pipeline_info.library_versions()),
            extra=self.extra,
            call={**record.describe(), "pipeline": setup, "notes": [*self.notes, *filter(None, [self.adapter.notice])]},
            tokens=tokens,
            call_inputs=record.inputs,
            image_index=image,
            images_in_call=images,
        )


def kept_steps(profile: str, map_steps: Sequence[int] | None, steps: int) -> tuple[int, ...] | None:
    """The steps a lean session keeps per-channel statistics and token maps for (negative counts from the
    end): the given ones, or the middle and the last; None (every step) in the other profiles."""
    if profile != "lean":
        return None
    chosen = (steps // 2, steps - 1) if map_steps is None else map_steps
    bad = [s for s in chosen if not -steps <= s < steps]
    if bad:
        raise BadRequest(f"map step {bad[0]} is outside the run's {steps} steps")
    return tuple(sorted({s % steps for s in chosen}))


def recording(pipe, out: str | Path, **options) -> Recording:
    """`with massivelens.recording(pipe, "cat.h5", k=16): pipe(prompt=...)` records the one pipeline call
    made inside the block; a second call raises RecordingError, and a block left without a call
    writes no file. A call making several images writes one session per image (`session_paths`);
    `.paths` lists them. Options: k, controls, random_draws, hidden_blocks, hidden_steps, profile, map_steps, overwrite (see
    `record`)."""
    return Recording(pipe, out, **options)


def record(
    pipe,
    out: str | Path,
    *,
    k: int = defaults.K,
    controls: Sequence[str] = (),
    random_draws: int = RANDOM_DRAWS,
    hidden_blocks: Sequence[str] = (),
    hidden_steps: Sequence[int] | None = None,
    profile: str = defaults.PROFILE,
    map_steps: Sequence[int] | None = None,
    overwrite: bool = False,
    **call_kwargs: Any,
) -> Any:
    """Call `pipe(**call_kwargs)` under recording hooks, write the session(s) to `out`, and return the
    pipeline's own output unchanged: a drop-in for `pipe(...)`.

    k: top channels per block whose token maps are kept; controls: also "bottom" and/or "random"
    channel sets (random: `random_draws` sets of k per block, seeded by each image's prompt and seed);
    hidden_blocks / hidden_steps: full hidden states of these blocks (at these steps,
    default all); profile: "full" (statistics in float32), "default" (16-bit, every step) or "lean"
    (per-channel statistics and token maps at `map_steps` only, default the middle and last step)."""
    with recording(pipe, out, k=k, controls=controls, random_draws=random_draws, hidden_blocks=hidden_blocks, hidden_steps=hidden_steps,
                   profile=profile, map_steps=map_steps, overwrite=overwrite):
        return pipe(**call_kwargs)


@contextmanager
def zero_channels(
    pipe,
    channels: Mapping[str, Sequence[int]],
    steps: Sequence[int] | None = None,
    mode: str = "zero",
    *,
    cancel: CancelToken | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> Iterator[None]:
    """`with massivelens.zero_channels(pipe, {"double.3": [96, 38]}):` every pipeline call inside sets
    those channels of each named block's image-stream output to zero (mode "mean": to their mean over
    the image tokens), in both guidance branches, at every step or the given ones. The probe's intervention."""
    names = adapter_for(pipe.transformer).block_names(pipe.transformer)
    unknown = sorted(set(channels) - set(names))
    if unknown:
        raise BadRequest(f"unknown block(s) {', '.join(unknown)}; blocks are {names[0]} ... {names[-1]}")
    if mode not in ("zero", "mean"):
        raise BadRequest(f"unknown mode {mode!r}; use zero or mean")
    with BlockHooks(pipe, [Intervention(channels, mode, steps=steps)], cancel, progress):
        yield


def _intercept(pipe, handler: Callable[[Callable, tuple, dict], Any]) -> Callable[[], None]:
    """Route `pipe(...)` through `handler(original_call, args, kwargs)` for this one object.

    Python looks `__call__` up on the type, so the object gets a same-named subclass for as long as the
    recording lasts (isinstance and the signature are unchanged); the returned function restores it."""
    cls = type(pipe)
    original = cls.__call__

    @functools.wraps(original)
    def __call__(self, *args, **kwargs):
        return handler(original, args, kwargs)

    pipe.__class__ = type(cls.__name__, (cls,), {"__call__": __call__, "__module__": cls.__module__, "__qualname__": cls.__qualname__})

    def restore() -> None:
        pipe.__class__ = cls

    return restore
