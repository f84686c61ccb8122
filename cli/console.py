"""Terminal output for long jobs: quiet library logging and a progress bar over steps x blocks."""
from __future__ import annotations

import sys

from tqdm import tqdm

from massivelens.engine.progress import Progress


def quiet_libraries() -> None:
    """Library progress bars and deprecation chatter drown the one line a user needs."""
    import warnings

    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)


def _bar(total: int, label: str, unit: str) -> tqdm:
    """A bar on stderr; redrawn at most every 10 s when stderr is a file or pipe (a log, CI), not a terminal,
    so a logged run keeps a few lines instead of one per block."""
    return tqdm(total=total, desc=label, unit=unit, file=sys.stderr, mininterval=0.1 if sys.stderr.isatty() else 10.0)


def _advance(bar: tqdm, n: int, text: str) -> None:
    bar.set_postfix_str(text, refresh=False)
    bar.update(n - bar.n)


class ProgressBar:
    """A tqdm bar advanced by the engine's (step, block) progress callback."""

    def __init__(self, label: str):
        self.label = label
        self._bar: tqdm | None = None

    def __call__(self, p: Progress) -> None:
        if self._bar is None:
            self._bar = _bar(p.steps * p.blocks, self.label, "block")
        _advance(self._bar, p.step * p.blocks + p.block + 1, f"step {p.step + 1}/{p.steps} {p.block_name}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class StepBar:
    """A tqdm bar for jobs made of many generations: progress(done, total, label)."""

    def __init__(self, label: str):
        self.label = label
        self._bar: tqdm | None = None

    def __call__(self, done: int, total: int, text: str) -> None:
        if self._bar is None:
            self._bar = _bar(total, self.label, "image")
        _advance(self._bar, done, text)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
