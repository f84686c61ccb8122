"""Where a running generation is, as reported to the CLI and the app (torch-free, so views and fakes can use it)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    step: int
    steps: int
    block: int
    blocks: int
    block_name: str
