"""Names for what a job writes: never the name of something already there, however fast jobs follow each other."""
from __future__ import annotations

import re
import time
from pathlib import Path


def slug(text: str, default: str = "session", length: int = 40) -> str:
    """A file-name-safe short form of a prompt."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:length] or default


def fresh_path(folder: Path, stem: str, suffix: str = "") -> Path:
    """folder/<date-time to the millisecond>-<stem><suffix>, with -2, -3 ... added while that name is taken
    (two recordings of one prompt within a second used to collide)."""
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f"{int(now * 1000) % 1000:03d}"
    candidate, n = Path(folder) / f"{stamp}-{stem}{suffix}", 1
    while candidate.exists():
        n += 1
        candidate = Path(folder) / f"{stamp}-{stem}-{n}{suffix}"
    return candidate
