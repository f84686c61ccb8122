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


class ProgressBar:
    """A tqdm bar advanced by the engine's (step, block) progress callback."""

    def __init__(self, label: str):
        self.label = label
        self._bar: tqdm | None = None

    def __call__(self, p: Progress) -> None:
        if self._bar is None:
            self._bar = tqdm(total=p.steps * p.blocks, desc=self.label, unit="block", file=sys.stderr, leave=True)
        self._bar.n = p.step * p.blocks + p.block + 1
        self._bar.set_postfix_str(f"step {p.step + 1}/{p.steps} {p.block_name}", refresh=False)
        self._bar.refresh()

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
            self._bar = tqdm(total=total, desc=self.label, unit="image", file=sys.stderr)
        self._bar.n = done
        self._bar.set_postfix_str(text, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
